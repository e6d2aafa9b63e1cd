//! A tiny lock-free cache of counters keyed by `'static` label values, for labels whose
//! values are bounded but not known when a function's handles are built (auth failure
//! reasons, rate-limit layers).
//!
//! Each slot is a `OnceLock`: the first event with a new key claims a free slot and
//! registers its counter once (one label-set allocation); afterwards a lookup is a few
//! atomic loads and short string compares. When every slot is taken the caller falls back
//! to registering per event, which stays correct, only slower; slot counts are chosen so
//! that does not happen with the label values this gateway produces.

use std::sync::OnceLock;

use metrics::Counter;

pub struct CounterCache<K, const N: usize> {
    slots: [OnceLock<(K, Counter)>; N],
}

impl<K: Copy + Eq, const N: usize> CounterCache<K, N> {
    pub fn new() -> Self {
        Self {
            slots: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// The counter for `key`, registered with `register` on first use; `None` when full.
    pub fn get(&self, key: K, register: impl Fn() -> Counter) -> Option<&Counter> {
        for slot in &self.slots {
            let (k, counter) = match slot.get() {
                Some(entry) => entry,
                None => slot.get_or_init(|| (key, register())),
            };
            if *k == key {
                return Some(counter);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn registers_once_per_key_and_reports_full() {
        let registered = AtomicUsize::new(0);
        let register = || {
            registered.fetch_add(1, Ordering::Relaxed);
            Counter::noop()
        };
        let cache: CounterCache<(&str, &str), 2> = CounterCache::new();
        for _ in 0..3 {
            assert!(cache.get(("basic", "missing"), register).is_some());
            assert!(cache.get(("basic", "bad_password"), register).is_some());
        }
        assert_eq!(registered.load(Ordering::Relaxed), 2);
        assert!(cache.get(("basic", "expired"), register).is_none());
        assert_eq!(registered.load(Ordering::Relaxed), 2);
    }
}
