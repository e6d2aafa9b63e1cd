//! The process-wide PBKDF2 slots of Basic auth: at most [`max_concurrent_pbkdf2`]
//! derivations run at once. A check that finds every slot taken waits for one (at most
//! [`MAX_WAIT`], at most [`MAX_WAITERS`] waiting) instead of failing at once: with each
//! address's derivations budgeted (`limits::pbkdf2_budget`) the queue is short, and a
//! correct password arriving during someone else's derivation is served, not refused
//! as `busy`. The wait and the derivation run under `block_in_place` on the gateway's
//! multi-threaded runtime, so the other connections of that worker thread move on.

use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Checks queued for a slot at most; beyond it: `busy` at once.
pub const MAX_WAITERS: usize = 8;
/// Longest wait for a slot.
pub const MAX_WAIT: Duration = Duration::from_millis(500);

/// Half the cores (at least one): the rest keep serving requests that are already in.
pub fn max_concurrent_pbkdf2() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)))
}

#[derive(Default)]
struct Slots {
    /// (running, waiting)
    counts: Mutex<(usize, usize)>,
    freed: Condvar,
}

fn slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(Slots::default)
}

/// Holds one slot until dropped.
pub struct Slot(());

/// A slot, waiting for one within the bounds above; `None`: busy.
pub fn acquire() -> Option<Slot> {
    let s = slots();
    let max = max_concurrent_pbkdf2();
    let mut c = s.counts.lock().unwrap_or_else(|p| p.into_inner());
    if c.0 < max {
        c.0 += 1;
        return Some(Slot(()));
    }
    if c.1 >= MAX_WAITERS {
        return None;
    }
    c.1 += 1;
    let deadline = Instant::now() + MAX_WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            c.1 -= 1;
            return None;
        }
        c = s
            .freed
            .wait_timeout(c, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
        if c.0 < max {
            c.0 += 1;
            c.1 -= 1;
            return Some(Slot(()));
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let s = slots();
        s.counts.lock().unwrap_or_else(|p| p.into_inner()).0 -= 1;
        s.freed.notify_one();
    }
}

/// Runs `f` (a wait and a derivation) where blocking is allowed: under `block_in_place`
/// on a multi-threaded runtime, directly elsewhere (tests, tools).
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_slot_goes_to_a_waiter() {
        let held: Vec<Slot> = std::iter::from_fn(|| {
            let c = slots().counts.lock().unwrap().0;
            (c < max_concurrent_pbkdf2()).then(|| acquire().unwrap())
        })
        .collect();
        let waiter = std::thread::spawn(acquire);
        drop(held);
        assert!(waiter.join().unwrap().is_some());
    }
}
