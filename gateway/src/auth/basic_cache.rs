//! Short-lived memory of successful Basic verifications, so PBKDF2 (deliberately slow) runs
//! once per client per [`TTL`] instead of on every request.
//!
//! Keyed by `HMAC(k, credentials)` under a random per-policy key: the cache never holds a
//! password, nor a fast unsalted digest of one that could be brute-forced from a memory
//! dump. Only successes are cached (a failure is never "remembered" as good), the table is
//! bounded by [`MAX_ENTRIES`], and a reload builds a new policy and so an empty cache, which
//! is what makes a changed password take effect.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use ring::{hmac, rand};

pub const TTL: Duration = Duration::from_secs(60);
pub const MAX_ENTRIES: usize = 10_000;

pub struct VerifiedCache {
    key: hmac::Key,
    entries: DashMap<[u8; 32], (Instant, Arc<str>)>,
}

impl std::fmt::Debug for VerifiedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedCache")
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl Default for VerifiedCache {
    fn default() -> Self {
        Self {
            key: hmac::Key::generate(hmac::HMAC_SHA256, &rand::SystemRandom::new())
                .expect("the system RNG is available"),
            entries: DashMap::new(),
        }
    }
}

impl VerifiedCache {
    /// The cache key of presented credentials (the raw `user:password` bytes).
    pub fn key_of(&self, credentials: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&self.key, credentials).as_ref());
        out
    }

    /// The user these credentials were verified for, if that was less than [`TTL`] ago.
    pub fn get(&self, key: &[u8; 32], now: Instant) -> Option<Arc<str>> {
        let hit = self.entries.get(key)?;
        let (expires, user) = &*hit;
        (now < *expires).then(|| user.clone())
    }

    pub fn insert(&self, key: [u8; 32], user: Arc<str>, now: Instant) {
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.retain(|_, (exp, _)| now < *exp);
            if self.entries.len() >= MAX_ENTRIES {
                // Still full of live entries: skip caching; verification stays correct.
                return;
            }
        }
        self.entries.insert(key, (now + TTL, user));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_until_expiry() {
        let c = VerifiedCache::default();
        let k = c.key_of(b"alice:pw");
        assert_ne!(k, c.key_of(b"alice:pw2"));
        let t0 = Instant::now();
        assert_eq!(c.get(&k, t0), None);
        c.insert(k, Arc::from("alice"), t0);
        assert_eq!(
            c.get(&k, t0 + Duration::from_secs(59)).as_deref(),
            Some("alice")
        );
        assert_eq!(c.get(&k, t0 + TTL), None);
    }
}
