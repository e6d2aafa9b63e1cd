//! Verified JWTs, so a warm token costs a digest and a map lookup instead of a signature
//! check. Keyed by SHA-256 of the token (the token itself is never stored); an entry
//! answers only while its `exp` (plus leeway) has not passed and the key set it was
//! verified with is still the current one (a rotation or refetch changes the generation).
//! Only successes are cached. Bounded: at [`JwtCache::capacity`] entries, expired ones are
//! swept, and if that frees nothing the map is emptied; memory stays bounded either way.

use std::sync::Arc;

use dashmap::DashMap;
use ring::digest;

use super::jwt::ClaimMap;

/// What a verification produced, shared by every hit.
#[derive(Debug)]
pub struct Verified {
    pub subject: Option<Arc<str>>,
    pub forwarded: Option<Arc<ClaimMap>>,
    /// `exp` plus leeway: past this the entry is dead.
    pub valid_until: f64,
    pub generation: u64,
}

#[derive(Debug)]
pub struct JwtCache {
    map: DashMap<[u8; 32], Arc<Verified>>,
    capacity: usize,
}

pub const DEFAULT_ENTRIES: usize = 10_000;
pub const MAX_ENTRIES: usize = 1_000_000;

fn key(token: &str) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, token.as_bytes());
    let mut k = [0u8; 32];
    k.copy_from_slice(d.as_ref());
    k
}

impl JwtCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            map: DashMap::new(),
            capacity,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn get(&self, token: &str, now: u64, generation: u64) -> Option<Arc<Verified>> {
        let hit = self.map.get(&key(token))?.clone();
        if hit.generation == generation && (now as f64) < hit.valid_until {
            Some(hit)
        } else {
            None
        }
    }

    pub fn insert(&self, token: &str, now: u64, v: Arc<Verified>) {
        if self.map.len() >= self.capacity {
            self.map.retain(|_, e| (now as f64) < e.valid_until);
            if self.map.len() >= self.capacity {
                self.map.clear();
            }
        }
        self.map.insert(key(token), v);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(valid_until: f64, generation: u64) -> Arc<Verified> {
        Arc::new(Verified {
            subject: Some(Arc::from("u")),
            forwarded: None,
            valid_until,
            generation,
        })
    }

    #[test]
    fn hits_until_exp_or_a_new_key_set() {
        let c = JwtCache::new(10);
        c.insert("tok", 100, entry(200.0, 7));
        assert!(c.get("tok", 150, 7).is_some());
        assert!(c.get("tok", 200, 7).is_none(), "expired");
        assert!(c.get("tok", 150, 8).is_none(), "key set changed");
        assert!(c.get("other", 150, 7).is_none());
    }

    #[test]
    fn bounded() {
        let c = JwtCache::new(3);
        for i in 0..3 {
            c.insert(
                &format!("t{i}"),
                100,
                entry(if i == 0 { 50.0 } else { 500.0 }, 1),
            );
        }
        c.insert("t3", 100, entry(500.0, 1));
        assert_eq!(c.len(), 3, "the expired entry was swept");
        c.insert("t4", 100, entry(500.0, 1));
        assert!(c.len() <= 3);
        assert!(c.get("t4", 100, 1).is_some());
    }
}
