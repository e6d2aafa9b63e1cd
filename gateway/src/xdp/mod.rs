//! Connection-level admission: the XDP program when it can load, else a user-space
//! per-source limiter with the same config. Never silently nothing.
//!
//! CONTRACT STUB: the XDP work replaces the body, keeping these names.

use std::net::IpAddr;

use crate::config::xdp::XdpConfig;

/// Which layer enforces the connection limit; shown at start-up and on `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    Xdp {
        interface: String,
        mode: &'static str,
    },
    UserSpace {
        reason: String,
    },
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Layer::Xdp { interface, mode } => write!(f, "xdp ({mode} mode on {interface})"),
            Layer::UserSpace { reason } => write!(f, "user-space ({reason})"),
        }
    }
}

#[derive(Debug)]
pub struct ConnectionGuard {
    layer: Layer,
}

impl ConnectionGuard {
    /// Attaches XDP when configured and possible, else falls back; logs one line saying which.
    pub fn start(cfg: &XdpConfig, _ports: &[u16]) -> ConnectionGuard {
        let _ = cfg;
        ConnectionGuard {
            layer: Layer::UserSpace {
                reason: "XDP not built yet".into(),
            },
        }
    }

    pub fn layer(&self) -> &Layer {
        &self.layer
    }

    /// Called by the accept loop per new connection; always true when XDP enforces.
    pub fn admit(&self, _peer: IpAddr) -> bool {
        true
    }

    /// Applies a reloaded `[xdp]` section without re-attaching.
    pub fn reconfigure(&self, _cfg: &XdpConfig) {}

    /// Detaches the program.
    pub fn shutdown(&self) {}
}
