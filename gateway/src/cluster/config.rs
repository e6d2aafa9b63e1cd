//! `[cluster]`: raw serde struct with defaults, checked at start (`problems`, collected with
//! the rest of edgefn.toml's errors). Read once: changing it needs a restart.

use serde::Deserialize;

pub const DEFAULT_TIMEOUT_MS: u64 = 250;
pub const MAX_TIMEOUT_MS: u64 = 10_000;
pub const MAX_NODES_HINT: u32 = 1_000;
pub const MAX_LEASE_TOKENS: u32 = 1_000;
pub const DEFAULT_LEASE_MS: u64 = 100;
pub const MAX_LEASE_MS: u64 = 10_000;

#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// `redis://HOST:PORT/DB`; absent: every limit and replay guard is per node.
    pub store: Option<String>,
    /// Nodes sharing the limits: while the store is unreachable each node allows
    /// `limit / nodes_hint` (rate and burst, rounded up).
    pub nodes_hint: u32,
    /// While the store is unreachable, replay-guarded functions answer 503 (senders
    /// retry) unless this is true, when each node's own guard is used instead.
    pub replay_fail_open: bool,
    /// Connect and response timeout of one store call.
    pub timeout_ms: u64,
    /// Tokens taken per round trip (1: no lease). See `cluster::lease` for the bound.
    pub lease_tokens: u32,
    /// How long leased tokens may be spent.
    pub lease_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            store: None,
            nodes_hint: 1,
            replay_fail_open: false,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            lease_tokens: 1,
            lease_ms: DEFAULT_LEASE_MS,
        }
    }
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: only whether it is set.
        f.debug_struct("ClusterConfig")
            .field("store", &self.store.as_ref().map(|_| "<set>"))
            .field("nodes_hint", &self.nodes_hint)
            .field("replay_fail_open", &self.replay_fail_open)
            .field("timeout_ms", &self.timeout_ms)
            .field("lease_tokens", &self.lease_tokens)
            .field("lease_ms", &self.lease_ms)
            .finish()
    }
}

impl ClusterConfig {
    /// Every problem as (dotted key, message with the fix). The URL is never echoed: it
    /// may hold a password.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(url) = &self.store {
            if !url.starts_with("redis://") || redis::Client::open(url.as_str()).is_err() {
                out.push((
                    "cluster.store",
                    "is not a Redis URL; use \"redis://HOST:PORT/DB\" (a password as redis://:PASSWORD@HOST:PORT/DB)".to_owned(),
                ));
            }
        }
        if self.nodes_hint == 0 || self.nodes_hint > MAX_NODES_HINT {
            out.push((
                "cluster.nodes_hint",
                format!("{} is out of range; use 1 to {MAX_NODES_HINT} (the number of nodes behind the balancer)", self.nodes_hint),
            ));
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            out.push((
                "cluster.timeout_ms",
                format!(
                    "{} is out of range; use 1 to {MAX_TIMEOUT_MS}",
                    self.timeout_ms
                ),
            ));
        }
        if self.lease_tokens == 0 || self.lease_tokens > MAX_LEASE_TOKENS {
            out.push((
                "cluster.lease_tokens",
                format!(
                    "{} is out of range; use 1 (no lease) to {MAX_LEASE_TOKENS}",
                    self.lease_tokens
                ),
            ));
        }
        if self.lease_ms == 0 || self.lease_ms > MAX_LEASE_MS {
            out.push((
                "cluster.lease_ms",
                format!("{} is out of range; use 1 to {MAX_LEASE_MS}", self.lease_ms),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_single_node() {
        let c = ClusterConfig::default();
        assert_eq!(
            (c.store.as_deref(), c.nodes_hint, c.replay_fail_open),
            (None, 1, false)
        );
        assert!(c.problems().is_empty());
    }

    #[test]
    fn problems_name_keys_and_never_the_url() {
        let c = ClusterConfig {
            store: Some("http://:hunter2@h:1".into()),
            nodes_hint: 0,
            replay_fail_open: false,
            timeout_ms: 0,
            lease_tokens: 0,
            lease_ms: 1,
        };
        let p = c.problems();
        let keys: Vec<_> = p.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "cluster.store",
                "cluster.nodes_hint",
                "cluster.timeout_ms",
                "cluster.lease_tokens"
            ]
        );
        assert!(p.iter().all(|(_, m)| !m.contains("hunter2")));
        let ok = ClusterConfig {
            store: Some("redis://127.0.0.1:6379/0".into()),
            ..ClusterConfig::default()
        };
        assert!(ok.problems().is_empty());
    }
}
