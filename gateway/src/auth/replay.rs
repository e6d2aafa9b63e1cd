//! Replay guard for timestamped webhook schemes (Stripe, Slack): a signed message (timestamp
//! and body) that already got in once is refused if presented again while its timestamp is
//! still inside the tolerance window (after that, the staleness check refuses it anyway).
//! Keyed on the message, not on the signature that matched: during a secret roll the same
//! message carries one valid signature per secret, and each must not buy another delivery.
//!
//! Entries are the SHA-256 of the signed message with their expiry; memory is bounded
//! by [`MAX_ENTRIES`], expired entries are swept when the table fills, and if it is still
//! full the oldest protection is given up (the staleness check still applies) rather than
//! refusing genuine deliveries.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

pub const MAX_ENTRIES: usize = 100_000;

/// A verified message that must be used once: its digest and when its window closes. The
/// policy checks it against its own guard, or hands it to the cluster store (`SET NX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayClaim {
    pub digest: [u8; 32],
    pub expires_unix: u64,
}

#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: DashMap<[u8; 32], u64>,
    last_sweep: AtomicU64,
}

impl ReplayGuard {
    /// Records `message_digest` valid until `expires_unix`; false if it was already seen
    /// and has not expired (a replay).
    pub fn first_use(&self, message_digest: [u8; 32], now_unix: u64, expires_unix: u64) -> bool {
        // `len()` reads every shard: take it before `entry()` holds one shard's lock.
        let mut full = self.seen.len() >= MAX_ENTRIES;
        if full {
            self.sweep(now_unix);
            full = self.seen.len() >= MAX_ENTRIES;
        }
        match self.seen.entry(message_digest) {
            dashmap::Entry::Occupied(mut e) => {
                if *e.get() >= now_unix {
                    false
                } else {
                    e.insert(expires_unix);
                    true
                }
            }
            dashmap::Entry::Vacant(e) => {
                if !full {
                    e.insert(expires_unix);
                }
                true
            }
        }
    }

    fn sweep(&self, now_unix: u64) {
        // At most one sweep per second: a full table of live entries must not make every
        // request walk it.
        let last = self.last_sweep.load(Ordering::Relaxed);
        if last == now_unix
            || self
                .last_sweep
                .compare_exchange(last, now_unix, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.seen.retain(|_, exp| *exp >= now_unix);
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_refused_until_expiry() {
        let g = ReplayGuard::default();
        assert!(g.first_use([1; 32], 100, 400));
        assert!(!g.first_use([1; 32], 200, 500));
        assert!(g.first_use([2; 32], 200, 500));
        // Past its window the entry no longer counts (staleness refuses such requests).
        assert!(g.first_use([1; 32], 401, 700));
    }
}
