//! Connection-level admission: the XDP program when it can load, else a user-space
//! per-source limiter with the same config. Never silently nothing.
//!
//! Flow: [`ConnectionGuard::start`] (server start-up) loads the embedded XDP object
//! ([`loader`]), writes the `[xdp]` section and the public ports into its maps ([`maps`]),
//! attaches it and starts a poller copying its counters into the metrics ([`metrics`]).
//! If any step fails — `enabled = false`, object not built, no privilege, kernel refusal,
//! unknown interface — the reason is logged once and [`userspace`] enforces instead.
//! The accept loop calls [`ConnectionGuard::admit`] per connection (always true under XDP:
//! the kernel already dropped what was over the limit); reloads call
//! [`ConnectionGuard::reconfigure`], which rewrites the maps in place.

pub mod loader;
pub mod maps;
pub mod metrics;
pub mod userspace;

use std::net::IpAddr;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use crate::config::xdp::XdpConfig;
pub use loader::{XdpError, XdpProgram};
use userspace::UserSpaceLimiter;

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

/// The attached program, shared with the metrics poller; `None` once shut down.
type SharedProgram = Arc<Mutex<Option<XdpProgram>>>;

struct XdpState {
    program: SharedProgram,
    /// Dropping the sender stops the poller.
    stop: Mutex<Option<mpsc::Sender<()>>>,
    poller: Mutex<Option<JoinHandle<()>>>,
}

enum Enforcer {
    Xdp(XdpState),
    UserSpace(UserSpaceLimiter),
}

pub struct ConnectionGuard {
    layer: Layer,
    enforcer: Enforcer,
    ports: Vec<u16>,
    /// The settings that decide the layer; a reload changing them needs a restart.
    started_with: XdpConfig,
}

impl std::fmt::Debug for ConnectionGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionGuard")
            .field("layer", &self.layer)
            .finish()
    }
}

fn attach(cfg: &XdpConfig, ports: &[u16]) -> Result<(XdpProgram, Layer), XdpError> {
    let interface = cfg.interface.clone().unwrap_or_default();
    let mut program = XdpProgram::load()?;
    program.configure(cfg, ports)?;
    let mode = program.attach(&interface, cfg.mode)?;
    Ok((program, Layer::Xdp { interface, mode }))
}

fn poll(program: &SharedProgram, stop: &mpsc::Receiver<()>) {
    let mut tracked = 0;
    for round in 0u64.. {
        {
            let guard = program.lock().unwrap_or_else(|e| e.into_inner());
            let Some(p) = guard.as_ref() else { return };
            // Counting the sources walks the whole LRU table (one syscall per entry, up to
            // 65 536), so it runs every few rounds; the counters are four lookups.
            if round % metrics::TRACKED_EVERY == 0 {
                tracked = p.tracked_sources();
            }
            match p.counters() {
                Ok(totals) => metrics::publish_xdp(&totals, tracked),
                Err(e) => tracing::warn!(error = %e, "cannot read XDP counters"),
            }
        }
        match stop.recv_timeout(metrics::POLL_INTERVAL) {
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            _ => return,
        }
    }
}

impl ConnectionGuard {
    /// Attaches XDP when configured and possible, else falls back; logs one line saying which.
    /// `ports` are the public listener ports whose SYNs are limited.
    pub fn start(cfg: &XdpConfig, ports: &[u16]) -> ConnectionGuard {
        let attached = if cfg.enabled {
            attach(cfg, ports).map_err(|e| e.describe())
        } else {
            Err("xdp.enabled = false".to_string())
        };
        let (layer, enforcer) = match attached {
            Ok((program, layer)) => {
                let program: SharedProgram = Arc::new(Mutex::new(Some(program)));
                let (tx, rx) = mpsc::channel();
                let shared = program.clone();
                let poller = std::thread::Builder::new()
                    .name("xdp-metrics".into())
                    .spawn(move || poll(&shared, &rx))
                    .ok();
                let state = XdpState {
                    program,
                    stop: Mutex::new(Some(tx)),
                    poller: Mutex::new(poller),
                };
                (layer, Enforcer::Xdp(state))
            }
            Err(reason) => {
                let limiter = UserSpaceLimiter::new(cfg);
                (Layer::UserSpace { reason }, Enforcer::UserSpace(limiter))
            }
        };
        match &layer {
            Layer::Xdp { .. } => tracing::info!(
                layer = %layer, ports = ?ports,
                rate = cfg.new_connections_per_second, burst = cfg.burst,
                "connection limit: XDP program attached"
            ),
            Layer::UserSpace { reason } if cfg.enabled => tracing::warn!(
                layer = %layer, reason = %reason,
                "connection limit: XDP unavailable, using the user-space limiter"
            ),
            Layer::UserSpace { .. } => tracing::info!(
                layer = %layer,
                "connection limit: user-space limiter (XDP disabled)"
            ),
        }
        ConnectionGuard {
            layer,
            enforcer,
            ports: ports.to_vec(),
            started_with: cfg.clone(),
        }
    }

    pub fn layer(&self) -> &Layer {
        &self.layer
    }

    /// Called by the accept loop per new connection; always true when XDP enforces.
    pub fn admit(&self, peer: IpAddr) -> bool {
        match &self.enforcer {
            Enforcer::Xdp(_) => true,
            Enforcer::UserSpace(limiter) => {
                let verdict = limiter.check(peer);
                if !verdict.admitted() {
                    metrics::user_space_refused();
                }
                metrics::user_space_tracked(limiter.tracked_sources());
                verdict.admitted()
            }
        }
    }

    /// Applies a reloaded `[xdp]` section without re-attaching: rate, burst, allow and deny
    /// change live; `enabled`, `interface` and `mode` need a restart (logged).
    pub fn reconfigure(&self, cfg: &XdpConfig) {
        let s = &self.started_with;
        if cfg.enabled != s.enabled || cfg.interface != s.interface || cfg.mode != s.mode {
            tracing::warn!(
                "xdp.enabled, xdp.interface or xdp.mode changed: they apply at the next restart"
            );
        }
        match &self.enforcer {
            Enforcer::Xdp(state) => {
                let mut guard = state.program.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(p) = guard.as_mut() {
                    match p.configure(cfg, &self.ports) {
                        Ok(()) => tracing::info!(
                            rate = cfg.new_connections_per_second,
                            burst = cfg.burst,
                            allow = cfg.allow.len(),
                            deny = cfg.deny.len(),
                            "XDP limits updated"
                        ),
                        Err(e) => tracing::error!(error = %e, "XDP limits not updated"),
                    }
                }
            }
            Enforcer::UserSpace(limiter) => limiter.reconfigure(cfg),
        }
    }

    /// Detaches the program (idempotent) and stops the metrics poller.
    pub fn shutdown(&self) {
        let Enforcer::Xdp(state) = &self.enforcer else {
            return;
        };
        drop(state.stop.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(h) = state
            .poller
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = h.join();
        }
        let program = state
            .program
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut p) = program {
            match p.detach() {
                Ok(()) => tracing::info!(layer = %self.layer, "XDP program detached"),
                Err(e) => tracing::warn!(error = %e, "XDP detach failed; dropping the program"),
            }
        }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.shutdown();
    }
}
