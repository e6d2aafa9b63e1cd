//! `[xdp]` section of edgefn.toml: the per-source new-connection limit applied by the XDP
//! program, or by the user-space limiter when XDP is off or unavailable (same semantics).

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
    /// Connections an idle source may open back to back before the rate applies (0 and 1
    /// both mean one).
    pub burst: u32,
    /// Sources never limited (an exception carved out of `deny` too).
    pub allow: Vec<ipnet::IpNet>,
    /// Sources whose new connections are always refused.
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

/// Most new connections per second per source that the limit can express (1 µs apart).
pub const MAX_RATE: u32 = 1_000_000;
/// Largest burst: bounds how far ahead a source's GCRA state may run.
pub const MAX_BURST: u32 = 1_000_000;

impl XdpConfig {
    /// Every problem with the section, as (key, message), for the config loader to report
    /// together with the rest of the file.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(name) = &self.interface {
            // IFNAMSIZ is 16 including the NUL; names never contain '/' or whitespace.
            if name.len() > 15 || name.contains('/') || name.chars().any(char::is_whitespace) {
                out.push((
                    "xdp.interface",
                    format!("{name:?} is not a valid interface name (at most 15 characters, no '/' or spaces)"),
                ));
            }
        }
        if self.new_connections_per_second > MAX_RATE {
            out.push((
                "xdp.new_connections_per_second",
                format!(
                    "{} is out of range; use 0 (no limit) to {MAX_RATE}",
                    self.new_connections_per_second
                ),
            ));
        }
        if self.burst > MAX_BURST {
            out.push((
                "xdp.burst",
                format!("{} is out of range; use 0 to {MAX_BURST}", self.burst),
            ));
        }
        let max = gateway_common::MAX_CIDRS as usize;
        for (key, list) in [("xdp.allow", &self.allow), ("xdp.deny", &self.deny)] {
            let v4 = list
                .iter()
                .filter(|n| matches!(n, ipnet::IpNet::V4(_)))
                .count();
            if v4 > max || list.len() - v4 > max {
                out.push((
                    key,
                    format!(
                        "{} entries; at most {max} IPv4 and {max} IPv6 CIDRs fit",
                        list.len()
                    ),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_each_key() {
        let ok = XdpConfig {
            enabled: true,
            interface: Some("eth0".into()),
            new_connections_per_second: 50,
            burst: 100,
            ..XdpConfig::default()
        };
        assert!(ok.problems().is_empty());
        let bad = XdpConfig {
            interface: Some("a-very-long-interface-name".into()),
            new_connections_per_second: MAX_RATE + 1,
            burst: MAX_BURST + 1,
            deny: vec!["10.0.0.0/8".parse().unwrap(); gateway_common::MAX_CIDRS as usize + 1],
            ..XdpConfig::default()
        };
        let keys: Vec<&str> = bad.problems().iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "xdp.interface",
                "xdp.new_connections_per_second",
                "xdp.burst",
                "xdp.deny"
            ]
        );
    }
}
