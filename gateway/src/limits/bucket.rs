//! A token bucket as GCRA (generic cell rate algorithm): the whole state of one bucket is
//! one `u64`, the theoretical arrival time (TAT) in nanoseconds, updated with a CAS loop.
//! Integer math only, no lock, no float on the request path.
//!
//! With `interval = 1 s / rate` and `tolerance = (burst - 1) * interval`, a request at
//! `now` is admitted when `tat <= now + tolerance`, and then `tat = max(tat, now) +
//! interval`. A bucket whose `tat <= now` is full again: indistinguishable from a fresh
//! one, which is why idle buckets can be evicted without losing anything.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    interval_ns: u64,
    tolerance_ns: u64,
}

impl Gcra {
    /// `per_second` must be positive and finite; `burst` at least 1.
    pub fn new(per_second: f64, burst: u32) -> Gcra {
        let interval_ns = ((1e9 / per_second).round() as u64).max(1);
        Gcra {
            interval_ns,
            tolerance_ns: interval_ns.saturating_mul(u64::from(burst.max(1)) - 1),
        }
    }

    /// From an interval in nanoseconds and a burst.
    pub fn from_parts(interval_ns: u64, burst: u32) -> Gcra {
        let interval_ns = interval_ns.max(1);
        Gcra {
            interval_ns,
            tolerance_ns: interval_ns.saturating_mul(u64::from(burst.max(1)) - 1),
        }
    }

    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    pub fn tolerance_ns(&self) -> u64 {
        self.tolerance_ns
    }

    /// Admits one request at `now_ns`, or returns how many nanoseconds until one would be.
    pub fn check(&self, tat: &AtomicU64, now_ns: u64) -> Result<(), u64> {
        let mut current = tat.load(Ordering::Relaxed);
        loop {
            let allow_at = current.saturating_sub(self.tolerance_ns);
            if allow_at > now_ns {
                return Err(allow_at - now_ns);
            }
            let next = current.max(now_ns).saturating_add(self.interval_ns);
            match tat.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(seen) => current = seen,
            }
        }
    }

    /// Whether [`Gcra::check`] would admit one request at `now_ns`, without spending it.
    pub fn would_admit(&self, tat: &AtomicU64, now_ns: u64) -> bool {
        tat.load(Ordering::Relaxed)
            .saturating_sub(self.tolerance_ns)
            <= now_ns
    }

    /// True when the bucket is full again (safe to forget).
    pub fn is_idle(tat: &AtomicU64, now_ns: u64) -> bool {
        tat.load(Ordering::Relaxed) <= now_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn burst_then_rate() {
        let g = Gcra::new(2.0, 3);
        let tat = AtomicU64::new(0);
        let t0 = 10 * S;
        for _ in 0..3 {
            assert_eq!(g.check(&tat, t0), Ok(()));
        }
        // Fourth at once: wait one interval (0.5 s).
        assert_eq!(g.check(&tat, t0), Err(S / 2));
        assert_eq!(g.check(&tat, t0 + S / 2), Ok(()));
        assert_eq!(g.check(&tat, t0 + S / 2), Err(S / 2));
        // After long idle the bucket is full again.
        assert!(Gcra::is_idle(&tat, t0 + 3 * S));
        for _ in 0..3 {
            assert_eq!(g.check(&tat, t0 + 3 * S), Ok(()));
        }
    }

    #[test]
    fn slow_rates_and_threads() {
        let g = Gcra::new(0.5, 1);
        let tat = AtomicU64::new(0);
        assert_eq!(g.check(&tat, S), Ok(()));
        assert_eq!(g.check(&tat, S), Err(2 * S));
        let g = Gcra::new(1000.0, 100);
        let tat = AtomicU64::new(0);
        let admitted = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        if g.check(&tat, 5 * S).is_ok() {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(
            admitted.load(Ordering::Relaxed),
            100,
            "exactly the burst at one instant"
        );
    }
}
