//! `[xdp]` section of edgefn.toml.
//!
//! CONTRACT STUB: the XDP work owns this file.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum XdpMode {
    #[default]
    Skb,
    Driver,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct XdpConfig {
    pub enabled: bool,
    pub interface: Option<String>,
    pub mode: XdpMode,
    /// New connections per second per source address; 0 = no limit.
    pub new_connections_per_second: u32,
    pub burst: u32,
    pub allow: Vec<ipnet::IpNet>,
    pub deny: Vec<ipnet::IpNet>,
}

impl Default for XdpConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            interface: None,
            mode: XdpMode::Skb,
            new_connections_per_second: 0,
            burst: 0,
            allow: Vec::new(),
            deny: Vec::new(),
        }
    }
}
