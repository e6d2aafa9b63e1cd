//! Maps keyed by ids the gateway hands out itself (a pool's worker, waiter and request
//! counters): the keys are never chosen by a client, so they need none of SipHash's
//! resistance to crafted keys, and one multiply spreads a counter over the table. The
//! request path looks such a map up several times per request.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map from a gateway-issued `u64` id.
pub type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// Fibonacci hashing of one `u64`: the high bits (hashbrown's tag) and the low bits (its
/// bucket) both change with every step of a counter.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(GOLDEN);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(GOLDEN);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_fill_a_map_and_are_found_again() {
        let mut m: IdMap<u64> = IdMap::default();
        for id in 0..10_000u64 {
            m.insert(id, id * 2);
        }
        for id in (0..10_000u64).step_by(2) {
            assert_eq!(m.remove(&id), Some(id * 2));
        }
        assert_eq!(m.len(), 5_000);
        assert!((1..10_000u64)
            .step_by(2)
            .all(|id| m.get(&id) == Some(&(id * 2))));
    }
}
