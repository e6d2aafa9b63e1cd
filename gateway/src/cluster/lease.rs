//! The optional local token lease (`[cluster] lease_tokens` > 1): a round trip to the
//! store takes up to `lease_tokens` tokens of a client's shared bucket at once, and this
//! node spends the rest locally for at most `lease_ms`, with no round trip. Tokens are
//! real (already counted in the shared bucket), so the cluster never admits more than the
//! bucket granted; what the lease changes is *when*: a token granted at `t` may be spent
//! until `t + lease_ms`, and one not spent by then is lost. Hence the documented bound:
//! in any interval the cluster admits at most the limit plus `nodes × (lease_tokens − 1)`,
//! and a client that moves between nodes may get up to that many fewer.
//!
//! State: one small entry per (function, client) key, bounded by [`MAX_LEASES`] (when full,
//! requests just make their round trip).

use std::time::{Duration, Instant};

use dashmap::DashMap;

/// Leases held per node before new ones are no longer kept.
pub const MAX_LEASES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Lease {
    left: u32,
    until: Instant,
}

#[derive(Debug, Default)]
pub struct Leases {
    held: DashMap<String, Lease>,
}

impl Leases {
    /// Spends one leased token of `key`, if one is held and still valid.
    pub fn spend(&self, key: &str, now: Instant) -> bool {
        let Some(mut lease) = self.held.get_mut(key) else {
            return false;
        };
        if lease.left == 0 || lease.until <= now {
            return false;
        }
        lease.left -= 1;
        true
    }

    /// Keeps the `left` tokens of a fresh grant for `window`.
    pub fn keep(&self, key: String, left: u32, now: Instant, window: Duration) {
        if left == 0 {
            self.held.remove(&key);
            return;
        }
        if self.held.len() >= MAX_LEASES {
            self.held.retain(|_, l| l.left > 0 && l.until > now);
            if self.held.len() >= MAX_LEASES {
                return;
            }
        }
        let until = now + window;
        self.held.insert(key, Lease { left, until });
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spends_until_empty_or_expired() {
        let l = Leases::default();
        let t = Instant::now();
        let w = Duration::from_millis(100);
        assert!(!l.spend("k", t));
        l.keep("k".into(), 2, t, w);
        assert!(l.spend("k", t) && l.spend("k", t));
        assert!(!l.spend("k", t), "two tokens, two requests");
        l.keep("k".into(), 3, t, w);
        assert!(!l.spend("k", t + w), "expired tokens are never spent");
        l.keep("k".into(), 0, t, w);
        assert!(l.is_empty());
    }
}
