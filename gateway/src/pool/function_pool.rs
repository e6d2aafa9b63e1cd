//! The pool of one function version: `min` workers warm from load, growth to `max` on
//! demand, a bounded FIFO of waiting requests, idle reaping, and replacement of workers
//! that crash (with exponential backoff, so a crash loop cannot spin a core) or that
//! are killed at a request's timeout.
//!
//! Scheduling state sits behind one short `std::sync::Mutex` (never held across an
//! await): a request takes a slot on the first worker with spare concurrency, so
//! sequential requests keep landing on the same warm worker and the others can be reaped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge};
use tokio::sync::{oneshot, Notify};
use tokio::time::timeout_at;

use super::worker::{self, ExitCause, SpawnCtx, Worker};
use super::{PoolError, PoolSpec, WorkerRequest, WorkerResponse};
use crate::metrics::names::{
    LABEL_CAUSE, LABEL_FUNCTION, LABEL_STATE, WORKERS, WORKER_RESTARTS_TOTAL,
};

use crate::config::runtimes::DEFAULT_IDLE_TIMEOUT;
/// Longest pause between restarts of a crash-looping function.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

type Waiter = oneshot::Sender<Result<Arc<Worker>, PoolError>>;

struct Slot {
    worker: Arc<Worker>,
    in_flight: usize,
    idle_since: Instant,
}

struct State {
    slots: Vec<Slot>,
    starting: usize,
    waiters: VecDeque<Waiter>,
    /// The last start failed and no worker has been ready since.
    failing: bool,
    next_attempt: Instant,
    retired: bool,
    published: [i64; 3],
}

struct Gauges {
    idle: Gauge,
    busy: Gauge,
    starting: Gauge,
}

pub(super) struct Inner {
    spec: Arc<PoolSpec>,
    ctx: Option<SpawnCtx>,
    unavailable: Option<Arc<str>>,
    state: Mutex<State>,
    crash_streak: AtomicU32,
    queue_cap: usize,
    gauges: Gauges,
    drained: Notify,
}

/// The pool of one function version.
pub struct Pool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("function", &self.inner.spec.function)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool that answers every request with `Unavailable` (e.g. its dependencies
    /// failed to install); the reason is safe to show to clients.
    pub(super) fn unavailable(spec: PoolSpec, reason: Arc<str>) -> Pool {
        Pool {
            inner: Inner::new(Arc::new(spec), None, Some(reason)),
        }
    }

    /// Starts `min` workers and waits until they are ready (or failed).
    pub(super) async fn start(ctx: SpawnCtx) -> Pool {
        let inner = Inner::new(ctx.spec.clone(), Some(ctx), None);
        let min = inner.spec.min_workers;
        if min > 0 {
            inner.state.lock().expect("pool lock").starting += min;
            let mut starts = tokio::task::JoinSet::new();
            for _ in 0..min {
                let inner = inner.clone();
                starts.spawn(async move { inner.start_one().await });
            }
            while starts.join_next().await.is_some() {}
        }
        let idle = inner
            .ctx
            .as_ref()
            .map_or(DEFAULT_IDLE_TIMEOUT, |c| c.idle_timeout);
        tokio::spawn(reap(Arc::downgrade(&inner), idle));
        Pool { inner }
    }

    pub fn spec(&self) -> &PoolSpec {
        &self.inner.spec
    }

    pub(super) fn is_retired(&self) -> bool {
        self.inner.state.lock().expect("pool lock").retired
    }

    pub async fn dispatch(&self, req: WorkerRequest) -> Result<WorkerResponse, PoolError> {
        let inner = &self.inner;
        if let Some(reason) = &inner.unavailable {
            return Err(PoolError::Unavailable {
                reason: reason.clone(),
            });
        }
        // Waiting for a slot is bounded by the timeout (then 503)...
        let queued_until = tokio::time::Instant::now() + inner.spec.timeout;
        let worker = inner.acquire(queued_until).await?;
        let _slot = SlotGuard {
            inner,
            worker: &worker,
        };
        // ...and the worker's own time starts once it has the request: time spent queued
        // is not charged to it, so a healthy worker is never killed for the queue's wait.
        let deadline = tokio::time::Instant::now() + inner.spec.timeout;
        let exchange = async {
            let rx = worker.call(&req).await?;
            rx.await.map_err(|_| PoolError::Crashed)?
        };
        match timeout_at(deadline, exchange).await {
            Ok(reply) => {
                if reply.is_ok() && inner.crash_streak.load(Ordering::Relaxed) != 0 {
                    inner.crash_streak.store(0, Ordering::Relaxed);
                }
                reply
            }
            Err(_) => {
                inner.kill_for_timeout(&worker);
                Err(PoolError::Timeout {
                    timeout_ms: inner.spec.timeout.as_millis() as u64,
                })
            }
        }
    }

    /// Stops taking new work once drained: waits for in-flight requests (bounded by the
    /// function's timeout), then stops every worker.
    pub(super) async fn retire(&self) {
        let inner = &self.inner;
        inner.state.lock().expect("pool lock").retired = true;
        let deadline = Instant::now() + inner.spec.timeout + Duration::from_secs(1);
        loop {
            let notified = inner.drained.notified();
            if inner.is_idle() || Instant::now() >= deadline {
                break;
            }
            let _ = tokio::time::timeout_at(deadline.into(), notified).await;
        }
        let workers: Vec<Arc<Worker>> = {
            let mut st = inner.state.lock().expect("pool lock");
            for w in st.waiters.drain(..) {
                let _ = w.send(Err(PoolError::Crashed));
            }
            st.slots.iter().map(|s| s.worker.clone()).collect()
        };
        for w in &workers {
            w.kill(ExitCause::Retired);
        }
        // Wait for the supervisors to report every exit, so shutdown leaves no process.
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let notified = inner.drained.notified();
            if inner.state.lock().expect("pool lock").slots.is_empty() || Instant::now() >= deadline
            {
                break;
            }
            let _ = tokio::time::timeout_at(deadline.into(), notified).await;
        }
    }
}

/// Gives the slot back when the request ends, however it ends (also when the client
/// went away and the request future was dropped).
struct SlotGuard<'a> {
    inner: &'a Arc<Inner>,
    worker: &'a Arc<Worker>,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.inner.release(self.worker);
    }
}

/// A queued request; if it is dropped after a worker was handed to it, the slot goes back.
struct Waiting<'a> {
    inner: &'a Arc<Inner>,
    rx: oneshot::Receiver<Result<Arc<Worker>, PoolError>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Ok(Ok(w)) = self.rx.try_recv() {
            self.inner.release(&w);
        }
    }
}

impl Inner {
    fn new(
        spec: Arc<PoolSpec>,
        ctx: Option<SpawnCtx>,
        unavailable: Option<Arc<str>>,
    ) -> Arc<Inner> {
        let f = spec.function.clone();
        let gauge = |state: &'static str| metrics::gauge!(WORKERS, LABEL_FUNCTION => f.to_string(), LABEL_STATE => state);
        let queue_cap = (spec.max_workers * spec.concurrency * 8).max(32);
        Arc::new(Inner {
            gauges: Gauges {
                idle: gauge("idle"),
                busy: gauge("busy"),
                starting: gauge("starting"),
            },
            spec,
            ctx,
            unavailable,
            state: Mutex::new(State {
                slots: Vec::new(),
                starting: 0,
                waiters: VecDeque::new(),
                failing: false,
                next_attempt: Instant::now(),
                retired: false,
                published: [0; 3],
            }),
            crash_streak: AtomicU32::new(0),
            queue_cap,
            drained: Notify::new(),
        })
    }

    fn restarts(&self, cause: &'static str) -> Counter {
        metrics::counter!(WORKER_RESTARTS_TOTAL,
            LABEL_FUNCTION => self.spec.function.to_string(), LABEL_CAUSE => cause)
    }

    async fn acquire(
        self: &Arc<Self>,
        deadline: tokio::time::Instant,
    ) -> Result<Arc<Worker>, PoolError> {
        let rx = {
            let mut st = self.state.lock().expect("pool lock");
            let conc = self.spec.concurrency;
            if let Some(slot) = st.slots.iter_mut().find(|s| s.in_flight < conc) {
                slot.in_flight += 1;
                let w = slot.worker.clone();
                self.publish(&mut st);
                return Ok(w);
            }
            let now = Instant::now();
            let may_start = !st.failing || now >= st.next_attempt;
            if st.slots.len() + st.starting < self.spec.max_workers && may_start && !st.retired {
                st.starting += 1;
                self.publish(&mut st);
                let me = self.clone();
                tokio::spawn(async move { me.start_one().await });
            } else if st.failing && st.slots.is_empty() && st.starting == 0 {
                // The function cannot start (see the log); answer now, retry later.
                return Err(PoolError::Crashed);
            }
            if st.waiters.len() >= self.queue_cap {
                // Waiters that gave up (timed out, client gone) hold no real place.
                st.waiters.retain(|w| !w.is_closed());
            }
            if st.waiters.len() >= self.queue_cap {
                return Err(PoolError::Overloaded { retry_after_s: 1 });
            }
            let (tx, rx) = oneshot::channel();
            st.waiters.push_back(tx);
            rx
        };
        let mut waiting = Waiting { inner: self, rx };
        match timeout_at(deadline, &mut waiting.rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(PoolError::Crashed),
            Err(_) => Err(PoolError::Overloaded { retry_after_s: 1 }),
        }
    }

    fn release(&self, worker: &Arc<Worker>) {
        let mut st = self.state.lock().expect("pool lock");
        if let Some(i) = st.slots.iter().position(|s| Arc::ptr_eq(&s.worker, worker)) {
            st.slots[i].in_flight -= 1;
            if st.slots[i].in_flight == 0 {
                st.slots[i].idle_since = Instant::now();
            }
            self.hand_out(&mut st, i);
        }
        self.publish(&mut st);
        if self.state_idle(&st) {
            self.drained.notify_waiters();
        }
    }

    /// Gives slot `i`'s spare concurrency to queued requests, oldest first.
    fn hand_out(&self, st: &mut State, i: usize) {
        while st.slots[i].in_flight < self.spec.concurrency {
            let Some(tx) = st.waiters.pop_front() else {
                return;
            };
            if tx.is_closed() {
                continue;
            }
            st.slots[i].in_flight += 1;
            if tx.send(Ok(st.slots[i].worker.clone())).is_err() {
                st.slots[i].in_flight -= 1;
            }
        }
    }

    fn is_idle(&self) -> bool {
        self.state_idle(&self.state.lock().expect("pool lock"))
    }

    fn state_idle(&self, st: &State) -> bool {
        st.waiters.is_empty() && st.slots.iter().all(|s| s.in_flight == 0)
    }

    /// Starts one worker (already counted in `starting`).
    async fn start_one(self: Arc<Self>) {
        let Some(ctx) = &self.ctx else { return };
        let weak = Arc::downgrade(&self);
        let result = worker::spawn(ctx, move |w, cause| {
            if let Some(inner) = weak.upgrade() {
                inner.on_exit(&w, cause);
            }
        })
        .await;
        let mut st = self.state.lock().expect("pool lock");
        st.starting -= 1;
        match result {
            Ok(w) if st.retired => {
                w.kill(ExitCause::Retired);
            }
            Ok(w) if w.is_closed() => {
                // It died between its ready line and now; `on_exit` already ran and found
                // no slot. Never add a dead worker: replace it as `on_exit` would.
                let streak = self.crash_streak.load(Ordering::Relaxed);
                self.schedule_replacement(&mut st, backoff(streak));
            }
            Ok(w) => {
                st.failing = false;
                st.slots.push(Slot {
                    worker: w,
                    in_flight: 0,
                    idle_since: Instant::now(),
                });
                let i = st.slots.len() - 1;
                self.hand_out(&mut st, i);
            }
            Err(e) => {
                tracing::error!(function = %self.spec.function, error = %e, "worker failed to start");
                self.restarts("start_failed").increment(1);
                let streak = self.crash_streak.fetch_add(1, Ordering::Relaxed) + 1;
                st.failing = true;
                st.next_attempt = Instant::now() + backoff(streak);
                if st.slots.is_empty() && st.starting == 0 {
                    for w in st.waiters.drain(..) {
                        let _ = w.send(Err(PoolError::Crashed));
                    }
                }
                self.schedule_replacement(&mut st, backoff(streak));
            }
        }
        self.publish(&mut st);
    }

    fn kill_for_timeout(self: &Arc<Self>, worker: &Arc<Worker>) {
        let mut st = self.state.lock().expect("pool lock");
        self.evict(&mut st, worker, ExitCause::Timeout);
    }

    /// Every deliberate stop (timeout, idle reaping): the worker leaves the slot table at
    /// once, then is killed. Between the kill and its exit being noticed (`on_exit`, which
    /// counts it and replaces it when `min` needs it), no request may be handed to it: it
    /// would come back as a crash.
    fn evict(self: &Arc<Self>, st: &mut State, worker: &Arc<Worker>, cause: ExitCause) {
        st.slots.retain(|s| !Arc::ptr_eq(&s.worker, worker));
        worker.kill(cause);
        if !st.retired {
            self.schedule_replacement(st, Duration::ZERO);
        }
        self.publish(st);
    }

    fn on_exit(self: &Arc<Self>, worker: &Arc<Worker>, cause: ExitCause) {
        let mut st = self.state.lock().expect("pool lock");
        st.slots.retain(|s| !Arc::ptr_eq(&s.worker, worker));
        let delay = match cause {
            ExitCause::Retired => Duration::ZERO,
            ExitCause::Timeout => {
                self.restarts("timeout").increment(1);
                Duration::ZERO
            }
            ExitCause::Crash | ExitCause::Protocol => {
                self.restarts(cause.label()).increment(1);
                let streak = self.crash_streak.fetch_add(1, Ordering::Relaxed) + 1;
                backoff(streak)
            }
        };
        if !st.retired {
            self.schedule_replacement(&mut st, delay);
        }
        self.publish(&mut st);
        self.drained.notify_waiters();
    }

    /// Keeps `min` workers alive and serves queued requests: starts one after `delay`.
    fn schedule_replacement(self: &Arc<Self>, st: &mut State, delay: Duration) {
        let live = st.slots.len() + st.starting;
        let wanted = live < self.spec.min_workers || (!st.waiters.is_empty() && live == 0);
        if st.retired || !wanted || live >= self.spec.max_workers {
            return;
        }
        st.starting += 1;
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(inner) = weak.upgrade() else { return };
            {
                let mut st = inner.state.lock().expect("pool lock");
                if st.retired {
                    st.starting -= 1;
                    inner.publish(&mut st);
                    return;
                }
            }
            inner.start_one().await;
        });
    }

    /// `edgefn_workers{state}` as deltas, so an old and a new pool of one function can
    /// both report while the old one drains.
    fn publish(&self, st: &mut State) {
        let busy = st.slots.iter().filter(|s| s.in_flight > 0).count() as i64;
        let now = [st.slots.len() as i64 - busy, busy, st.starting as i64];
        let gauges = [&self.gauges.idle, &self.gauges.busy, &self.gauges.starting];
        for (i, g) in gauges.iter().enumerate() {
            let d = now[i] - st.published[i];
            if d != 0 {
                g.increment(d as f64);
            }
        }
        st.published = now;
    }
}

/// 0 for the first crash, then 100 ms doubling up to [`MAX_BACKOFF`].
fn backoff(streak: u32) -> Duration {
    if streak <= 1 {
        return Duration::ZERO;
    }
    let ms = 100u64.saturating_mul(1 << (streak - 2).min(16));
    Duration::from_millis(ms).min(MAX_BACKOFF)
}

/// Stops workers above `min` that have been idle for `idle`.
async fn reap(weak: Weak<Inner>, idle: Duration) {
    let mut tick = tokio::time::interval(idle / 4);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        let mut st = inner.state.lock().expect("pool lock");
        if st.retired {
            return;
        }
        let spare = st.slots.len().saturating_sub(inner.spec.min_workers);
        let idle_workers: Vec<Arc<Worker>> = st
            .slots
            .iter()
            .rev()
            .filter(|s| s.in_flight == 0 && s.idle_since.elapsed() >= idle)
            .take(spare)
            .map(|s| s.worker.clone())
            .collect();
        for w in &idle_workers {
            inner.evict(&mut st, w, ExitCause::Retired);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(200));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
