//! What a node remembers of the shared buckets between round trips, per (function, client)
//! key: leased tokens and a refusal.
//!
//! **Lease** (`[cluster] lease_tokens` = L > 1): a round trip takes up to L − 1 tokens more
//! than its requests need, and this node spends them locally for at most `lease_ms`, with
//! no round trip. Tokens are real (already counted in the shared bucket), and a node holds
//! at most L − 1 of a key at a time (a new lease is only taken once the old one is spent or
//! drained into a batch). What the lease changes is *when* a token is spent: one granted at
//! `t` may be spent until `t + lease_ms`, and one not spent by then is lost. Hence the
//! bound: over any interval the cluster admits at most the limit plus
//! `min(nodes × (L − 1), per_second × lease_ms)`, and a client that moves between nodes
//! may get up to `(nodes − 1) × (L − 1)` fewer (tokens stranded on the nodes it left).
//!
//! **Refusal**: when the store says a bucket is empty for `retry_after`, nothing any node
//! does can refill it sooner (tokens only come with time), so this node refuses the key
//! locally until then, capped at [`MAX_REFUSAL`] (a Redis that lost its data would admit
//! sooner). Exact: it never admits more; it refuses at most one one-way network delay too
//! long.
//!
//! State: one small entry per key, bounded by [`MAX_LEASES`] (when full and nothing can be
//! swept, requests just make their round trip).

use std::time::{Duration, Instant};

use dashmap::DashMap;

/// Keys remembered per node before new ones are no longer kept.
pub const MAX_LEASES: usize = 100_000;
/// Longest a refusal is repeated without asking the store again.
pub const MAX_REFUSAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Entry {
    left: u32,
    until: Instant,
    refused_until: Option<Instant>,
}

impl Entry {
    fn is_dead(&self, now: Instant) -> bool {
        (self.left == 0 || self.until <= now) && self.refused_until.is_none_or(|r| r <= now)
    }
}

/// What the node can decide for a key without the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// A leased token was spent.
    Admit,
    /// The shared bucket is known to be empty for this long.
    Refuse(Duration),
    /// Only the store knows.
    Ask,
}

#[derive(Debug, Default)]
pub struct Leases {
    held: DashMap<String, Entry>,
}

impl Leases {
    /// Spends one leased token of `key`, or repeats a refusal still in force.
    pub fn check(&self, key: &str, now: Instant) -> Local {
        let Some(mut e) = self.held.get_mut(key) else {
            return Local::Ask;
        };
        if let Some(r) = e.refused_until {
            if r > now {
                return Local::Refuse(r - now);
            }
            e.refused_until = None;
        }
        if e.left > 0 && e.until > now {
            e.left -= 1;
            return Local::Admit;
        }
        Local::Ask
    }

    /// Takes up to `n` valid leased tokens of `key` at once (for a batch about to ask the
    /// store, so a lease granted meanwhile is spent rather than replaced).
    pub fn take_up_to(&self, key: &str, n: u32, now: Instant) -> u32 {
        let Some(mut e) = self.held.get_mut(key) else {
            return 0;
        };
        if e.until <= now {
            e.left = 0;
        }
        let k = e.left.min(n);
        e.left -= k;
        k
    }

    /// Keeps the `left` tokens of a fresh grant for `window` (replacing an empty lease)
    /// and clears a refusal.
    pub fn keep(&self, key: &str, left: u32, now: Instant, window: Duration) {
        let entry = Entry {
            left,
            until: now + window,
            refused_until: None,
        };
        if let Some(mut e) = self.held.get_mut(key) {
            *e = entry;
            return;
        }
        if left > 0 && self.room(now) {
            self.held.insert(key.to_owned(), entry);
        }
    }

    /// The store refused `key` for `retry_after`: repeat it locally (capped).
    pub fn refuse(&self, key: &str, retry_after: Duration, now: Instant) {
        let until = now + retry_after.min(MAX_REFUSAL);
        if let Some(mut e) = self.held.get_mut(key) {
            e.left = 0;
            e.refused_until = Some(until);
            return;
        }
        if self.room(now) {
            let entry = Entry {
                left: 0,
                until: now,
                refused_until: Some(until),
            };
            self.held.insert(key.to_owned(), entry);
        }
    }

    fn room(&self, now: Instant) -> bool {
        if self.held.len() < MAX_LEASES {
            return true;
        }
        self.held.retain(|_, e| !e.is_dead(now));
        self.held.len() < MAX_LEASES
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
        assert_eq!(l.check("k", t), Local::Ask);
        l.keep("k", 2, t, w);
        assert_eq!(
            (l.check("k", t), l.check("k", t)),
            (Local::Admit, Local::Admit)
        );
        assert_eq!(l.check("k", t), Local::Ask, "two tokens, two requests");
        l.keep("k", 3, t, w);
        assert_eq!(
            l.check("k", t + w),
            Local::Ask,
            "expired tokens are never spent"
        );
        assert_eq!(l.take_up_to("k", 5, t + w), 0);
    }

    #[test]
    fn a_batch_drains_the_lease_first() {
        let l = Leases::default();
        let t = Instant::now();
        l.keep("k", 3, t, Duration::from_secs(1));
        assert_eq!(l.take_up_to("k", 2, t), 2);
        assert_eq!(l.take_up_to("k", 2, t), 1);
        assert_eq!(l.check("k", t), Local::Ask);
    }

    #[test]
    fn refusals_repeat_until_the_bucket_refills_capped() {
        let l = Leases::default();
        let t = Instant::now();
        let ms = Duration::from_millis;
        l.keep("k", 3, t, ms(100));
        l.refuse("k", ms(40), t);
        assert_eq!(l.check("k", t + ms(10)), Local::Refuse(ms(30)));
        assert_eq!(
            l.check("k", t + ms(40)),
            Local::Ask,
            "and no stale lease after"
        );
        l.refuse("slow", Duration::from_secs(1000), t);
        assert_eq!(l.check("slow", t), Local::Refuse(MAX_REFUSAL));
        assert_eq!(l.check("slow", t + MAX_REFUSAL), Local::Ask);
        l.keep("slow", 0, t, ms(1));
        assert_eq!(l.check("slow", t), Local::Ask, "a grant clears the refusal");
    }

    #[test]
    fn bounded() {
        let l = Leases::default();
        let t = Instant::now();
        for i in 0..MAX_LEASES {
            l.refuse(&i.to_string(), Duration::from_millis(1), t);
        }
        l.keep("live", 1, t, Duration::from_secs(1));
        assert_eq!(l.len(), MAX_LEASES, "full of live refusals: not kept");
        let later = t + Duration::from_millis(2);
        l.keep("live", 1, later, Duration::from_secs(1));
        assert_eq!(l.len(), 1, "dead entries swept for the new one");
        assert_eq!(l.check("live", later), Local::Admit);
    }
}
