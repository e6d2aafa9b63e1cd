//! The pool of one function version: the IO around [`Machine`]. Every event (a request,
//! a worker ready / failed / exited / done with a cancelled request, a timer) is turned
//! into one machine transition under one short `std::sync::Mutex` (never held across an
//! await), and the effects it returns are carried out after the lock is released:
//! workers are started through the [`Spawn`] seam, handed to waiting requests, killed or
//! sent a cancel. A driver task sleeps until the machine's next deadline and ticks it.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge};
use tokio::sync::{oneshot, Notify};
use tokio::time::timeout_at;

use super::id_map::IdMap;
use super::machine::{Effect, ExitCause, Limits, Machine, Phase, Refusal, WaiterId, WorkerId};
use super::seam::{Channel, Events, Spawn, WorkerEvent};
use super::worker::StartError;
use super::{PoolError, PoolSpec, Runtime, WorkerRequest, WorkerResponse};
use crate::metrics::names::{
    LABEL_CAUSE, LABEL_FUNCTION, LABEL_STATE, WORKERS, WORKER_RESTARTS_TOTAL,
};

type Grant = (WorkerId, Arc<dyn Channel>);
type Waiter = oneshot::Sender<Result<Grant, PoolError>>;

/// Settings shared by every pool (`[runtimes]`).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub idle_timeout: Duration,
    pub cancel_grace: Duration,
    /// Prefetch depth of pools whose workers queue what they are handed (Python's).
    pub prefetch: usize,
}

/// How recently a worker must have answered to be handed a prefetched request.
const PREFETCH_WINDOW: Duration = Duration::from_millis(2);

struct Shared {
    machine: Machine,
    waiters: IdMap<Waiter>,
    workers: IdMap<Arc<dyn Channel>>,
    next_waiter: WaiterId,
    /// The last start failure, for the log when a new version is refused.
    last_error: Option<Arc<str>>,
    /// What the handler's runtime said when it could not load it (the worker's `fatal`),
    /// until a worker starts: FastFN's daemon answers the requests with that text.
    load_error: Option<Arc<str>>,
    /// The deadline the driver sleeps until.
    armed: Option<Instant>,
    published: [i64; 3],
}

struct Gauges {
    idle: Gauge,
    busy: Gauge,
    starting: Gauge,
}

struct Inner {
    spec: Arc<PoolSpec>,
    timing: Timing,
    spawner: Arc<dyn Spawn>,
    shared: Mutex<Shared>,
    /// Re-arms the driver when a transition set a new deadline.
    wake: Arc<Notify>,
    /// Any transition: readiness and emptiness waits re-check.
    changed: Notify,
    gauges: Gauges,
}

/// The pool of one function version.
pub struct FunctionPool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FunctionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionPool")
            .field("function", &self.inner.spec.function)
            .finish_non_exhaustive()
    }
}

/// Carried out after the lock is released.
enum Action {
    Spawn(WorkerId),
    Kill(Arc<dyn Channel>, ExitCause),
    Grant(Option<Waiter>, WorkerId, Option<Arc<dyn Channel>>),
    Refuse(Option<Waiter>, PoolError),
    Cancel(Arc<dyn Channel>, u64),
}

impl FunctionPool {
    /// Starts `warm` workers (not waiting for them: see [`FunctionPool::wait_ready`]).
    pub fn start(
        spec: Arc<PoolSpec>,
        spawner: Arc<dyn Spawn>,
        timing: Timing,
        warm: usize,
    ) -> FunctionPool {
        // The function's own `worker_pool.idle_ttl_seconds` wins over `[runtimes]`'s.
        let timing = Timing {
            idle_timeout: spec.idle_timeout.unwrap_or(timing.idle_timeout),
            ..timing
        };
        let limits = Limits {
            min: spec.min_workers,
            max: spec.max_workers.max(1),
            concurrency: spec.concurrency.max(1),
            queue_cap: spec
                .max_queue
                .unwrap_or((spec.max_workers * spec.concurrency * 8).max(32)),
            queue_timeout: spec.queue_timeout.unwrap_or(spec.timeout),
            idle_timeout: timing.idle_timeout,
            cancel_grace: timing.cancel_grace,
            // A Python worker runs what it is handed beyond `concurrency` strictly after
            // (edgefn_worker.py's backlog); Node would run it at once.
            prefetch: match spec.runtime {
                Runtime::Python => timing.prefetch,
                _ => 0,
            },
            prefetch_window: PREFETCH_WINDOW,
        };
        let (machine, effects) = Machine::new(limits, warm);
        let f = spec.function.clone();
        let gauge = |state: &'static str| metrics::gauge!(WORKERS, LABEL_FUNCTION => f.to_string(), LABEL_STATE => state);
        let inner = Arc::new(Inner {
            gauges: Gauges {
                idle: gauge("idle"),
                busy: gauge("busy"),
                starting: gauge("starting"),
            },
            spec,
            timing,
            spawner,
            shared: Mutex::new(Shared {
                machine,
                waiters: IdMap::default(),
                workers: IdMap::default(),
                next_waiter: 1,
                last_error: None,
                load_error: None,
                armed: None,
                published: [0; 3],
            }),
            wake: Arc::new(Notify::new()),
            changed: Notify::new(),
        });
        inner.apply(move |_, _| effects);
        tokio::spawn(drive(Arc::downgrade(&inner), inner.wake.clone()));
        FunctionPool { inner }
    }

    /// Waits until `want` workers are ready (or some are and the others failed: `Ok`),
    /// or a start failed with none ready (`Err` with the start error).
    pub async fn wait_ready(&self, want: usize) -> Result<(), Arc<str>> {
        let mut outcome = None;
        self.wait_until(None, |sh| {
            let ready = sh.machine.ready_count();
            let failing = sh.machine.is_failing();
            // Some workers up and the rest failing: serve with those (the pool keeps
            // trying to reach `min` with backoff) rather than never.
            if ready >= want || (ready > 0 && failing && sh.machine.starting_count() == 0) {
                outcome = Some(Ok(()));
            } else if ready == 0 && failing {
                let e = sh.last_error.clone();
                outcome = Some(Err(
                    e.unwrap_or_else(|| Arc::from("the worker failed to start"))
                ));
            } else if sh.machine.phase() == Phase::Stopped {
                outcome = Some(Err(Arc::from("the pool stopped")));
            }
            outcome.is_some()
        })
        .await;
        outcome.unwrap_or(Ok(()))
    }

    pub async fn dispatch(&self, req: &WorkerRequest) -> Result<WorkerResponse, PoolError> {
        let inner = &self.inner;
        let (wid, chan) = inner.acquire().await?;
        let mut slot = InFlight {
            inner,
            worker: wid,
            req: None,
            answered: false,
        };
        // The worker's time starts once it has the request: time spent queued is not
        // charged to it, so a healthy worker is never cancelled for the queue's wait (a
        // prefetched request's wait inside its worker is: it was handed over already).
        let deadline = tokio::time::Instant::now() + inner.spec.timeout;
        let timed_out = || PoolError::Timeout {
            timeout_ms: inner.spec.timeout.as_millis() as u64,
        };
        // One deadline for the send and the reply (one timer, armed only if the reply
        // is not there at once).
        let call = async {
            let (id, rx) = chan.send(req).await?;
            slot.req = Some(id);
            let reply = rx.await.unwrap_or(Err(PoolError::Crashed));
            slot.answered = true;
            reply
        };
        match timeout_at(deadline, call).await {
            Ok(reply) => reply,
            // Dropping the slot cancels the request on its worker.
            Err(_) => Err(timed_out()),
        }
    }

    /// A reload replaced this version: in-flight requests finish (bounded by the
    /// function's timeout and the cancel grace), then every worker stops.
    pub async fn retire(&self) {
        let inner = &self.inner;
        inner.apply(|sh, now| sh.machine.drain(now));
        let patience = inner.spec.timeout + inner.timing.cancel_grace + Duration::from_secs(1);
        let deadline = tokio::time::Instant::now() + patience;
        if !self
            .wait_until(Some(deadline), |sh| sh.machine.is_empty())
            .await
        {
            self.stop().await;
        }
        inner.apply(|sh, _| sh.machine.stop());
    }

    /// Shutdown: every waiter refused, every worker killed; waits (briefly) for the
    /// exits so no process outlives the gateway.
    pub async fn stop(&self) {
        self.inner.apply(|sh, _| sh.machine.stop());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        self.wait_until(Some(deadline), |sh| sh.machine.is_empty())
            .await;
    }

    async fn wait_until(
        &self,
        deadline: Option<tokio::time::Instant>,
        mut done: impl FnMut(&Shared) -> bool,
    ) -> bool {
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done(&self.inner.shared.lock().expect("pool lock")) {
                return true;
            }
            match deadline {
                Some(d) => {
                    if timeout_at(d, notified).await.is_err() {
                        return done(&self.inner.shared.lock().expect("pool lock"));
                    }
                }
                None => notified.await,
            }
        }
    }
}

impl Drop for FunctionPool {
    /// A version dropped without `stop` (a superseded start) leaves no process behind.
    fn drop(&mut self) {
        self.inner.apply(|sh, _| sh.machine.stop());
        self.inner.wake.notify_one();
    }
}

/// Gives the slot back when the request ends, however it ends; a request given up
/// (timeout, or the client went away and the future was dropped) is cancelled instead.
struct InFlight<'a> {
    inner: &'a Arc<Inner>,
    worker: WorkerId,
    req: Option<u64>,
    answered: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let (w, answered) = (self.worker, self.answered);
        match self.req {
            Some(id) if !answered => self.inner.apply(|sh, now| sh.machine.abandoned(w, id, now)),
            _ => self
                .inner
                .apply(|sh, now| sh.machine.released(w, answered, now)),
        }
    }
}

/// A queued request; if it goes away, it leaves the queue (or gives back the slot it was
/// just handed).
struct Waiting<'a> {
    inner: &'a Arc<Inner>,
    id: WaiterId,
    rx: oneshot::Receiver<Result<Grant, PoolError>>,
    done: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        match self.rx.try_recv() {
            Ok(Ok((w, _))) => self
                .inner
                .apply(|sh, now| sh.machine.released(w, false, now)),
            Ok(Err(_)) => {}
            Err(_) => {
                let mut sh = self.inner.shared.lock().expect("pool lock");
                sh.waiters.remove(&self.id);
                sh.machine.left_queue(self.id);
            }
        }
    }
}

impl Inner {
    fn restarts(&self, cause: &'static str) -> Counter {
        metrics::counter!(WORKER_RESTARTS_TOTAL,
            LABEL_FUNCTION => self.spec.function.to_string(), LABEL_CAUSE => cause)
    }

    /// A worker slot: at once when one is free (the common case: no waiter is registered
    /// and nothing is sent), else through the queue.
    async fn acquire(self: &Arc<Self>) -> Result<Grant, PoolError> {
        let now = Instant::now();
        let (id, rx) = {
            let mut sh = self.shared.lock().expect("pool lock");
            let id = sh.next_waiter;
            sh.next_waiter += 1;
            let effects = sh.machine.submit(id, now);
            if let [Effect::Grant(waiter, worker)] = effects[..] {
                if let Some(chan) = sh.workers.get(&worker).filter(|_| waiter == id).cloned() {
                    let (actions, wake) = self.resolve(&mut sh, Vec::new());
                    drop(sh);
                    self.perform(actions, wake);
                    return Ok((worker, chan));
                }
            }
            let (tx, rx) = oneshot::channel();
            sh.waiters.insert(id, tx);
            let (actions, wake) = self.resolve(&mut sh, effects);
            drop(sh);
            self.perform(actions, wake);
            (id, rx)
        };
        let mut waiting = Waiting {
            inner: self,
            id,
            rx,
            done: false,
        };
        let got = (&mut waiting.rx).await;
        waiting.done = true;
        got.unwrap_or(Err(PoolError::Crashed))
    }

    /// One transition: run `f` on the state under the lock, then carry out its effects.
    fn apply(self: &Arc<Self>, f: impl FnOnce(&mut Shared, Instant) -> Vec<Effect>) {
        let now = Instant::now();
        let (actions, wake) = {
            let mut sh = self.shared.lock().expect("pool lock");
            let effects = f(&mut sh, now);
            self.resolve(&mut sh, effects)
        };
        self.perform(actions, wake);
    }

    /// Turns effects into actions on the workers and waiters they name (under the lock).
    fn resolve(&self, sh: &mut Shared, effects: Vec<Effect>) -> (Vec<Action>, bool) {
        let mut actions = Vec::new();
        let mut wake = false;
        {
            for effect in effects {
                match effect {
                    Effect::Spawn(id) => actions.push(Action::Spawn(id)),
                    Effect::Kill(id, cause) => {
                        if let Some(w) = sh.workers.get(&id) {
                            actions.push(Action::Kill(w.clone(), cause));
                        }
                    }
                    Effect::Grant(waiter, id) => {
                        let tx = sh.waiters.remove(&waiter);
                        let w = sh.workers.get(&id).cloned();
                        actions.push(Action::Grant(tx, id, w));
                    }
                    Effect::Refuse(waiter, why) => {
                        let e = refusal_error(why, sh.load_error.as_ref(), &self.spec);
                        actions.push(Action::Refuse(sh.waiters.remove(&waiter), e));
                    }
                    Effect::Cancel(id, req) => {
                        if let Some(w) = sh.workers.get(&id) {
                            actions.push(Action::Cancel(w.clone(), req));
                        }
                    }
                    Effect::Wake(t) => wake |= sh.armed.is_none_or(|a| t < a),
                }
            }
            self.publish(sh);
        }
        // Any transition may bring a deadline forward (a worker fell idle, a cancel).
        let next = sh.machine.next_wake();
        wake |= next.is_some_and(|n| sh.armed.is_none_or(|a| n < a));
        (actions, wake)
    }

    fn perform(self: &Arc<Self>, actions: Vec<Action>, wake: bool) {
        for action in actions {
            match action {
                Action::Spawn(id) => self.spawn(id),
                Action::Kill(w, cause) => w.kill(cause),
                Action::Grant(tx, id, w) => {
                    let delivered = match (tx, w) {
                        (Some(tx), Some(w)) => tx.send(Ok((id, w))).is_ok(),
                        _ => false,
                    };
                    if !delivered {
                        self.apply(|sh, now| sh.machine.released(id, false, now));
                    }
                }
                Action::Refuse(tx, e) => {
                    if let Some(tx) = tx {
                        let _ = tx.send(Err(e));
                    }
                }
                Action::Cancel(w, req) => w.cancel(req),
            }
        }
        if wake {
            self.wake.notify_one();
        }
        self.changed.notify_waiters();
    }

    fn spawn(self: &Arc<Self>, id: WorkerId) {
        let weak = Arc::downgrade(self);
        let events: Events = Arc::new(move |ev| {
            if let Some(inner) = weak.upgrade() {
                inner.on_event(id, ev);
            }
        });
        let start = self.spawner.spawn(id, events);
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let result = start.await;
            let Some(inner) = weak.upgrade() else {
                if let Ok(w) = result {
                    w.kill(ExitCause::Retired);
                }
                return;
            };
            match result {
                Ok(w) => inner.apply(|sh, now| {
                    sh.workers.insert(id, w);
                    sh.load_error = None;
                    sh.machine.started(id, now)
                }),
                Err(e) => {
                    tracing::error!(
                        function = %inner.spec.function,
                        file = %inner.spec.handler.display(),
                        error = %e,
                        "worker failed to start"
                    );
                    inner.restarts("start_failed").increment(1);
                    let load_error = match &e {
                        StartError::Fatal { error } => {
                            Some(Arc::<str>::from(super::protocol::error_text(error)))
                        }
                        _ => None,
                    };
                    let e: Arc<str> = Arc::from(e.to_string());
                    inner.apply(|sh, now| {
                        sh.last_error = Some(e);
                        if load_error.is_some() {
                            sh.load_error = load_error;
                        }
                        sh.machine.start_failed(id, now)
                    });
                }
            }
        });
    }

    fn on_event(self: &Arc<Self>, id: WorkerId, ev: WorkerEvent) {
        match ev {
            WorkerEvent::CancelAcked(req) => {
                self.apply(|sh, now| sh.machine.cancel_acked(id, req, now))
            }
            WorkerEvent::Exited(cause) => {
                if cause != ExitCause::Retired {
                    self.restarts(cause.label()).increment(1);
                }
                self.apply(|sh, now| {
                    sh.workers.remove(&id);
                    sh.machine.exited(id, cause, now)
                });
            }
        }
    }

    /// `edgefn_workers{state}` as deltas, so an old and a new pool of one function can
    /// both report while the old one drains.
    fn publish(&self, sh: &mut Shared) {
        let busy = sh.machine.busy_count() as i64;
        let ready = sh.machine.ready_count() as i64;
        let now = [ready - busy, busy, sh.machine.starting_count() as i64];
        let gauges = [&self.gauges.idle, &self.gauges.busy, &self.gauges.starting];
        for (i, g) in gauges.iter().enumerate() {
            let d = now[i] - sh.published[i];
            if d != 0 {
                g.increment(d as f64);
            }
        }
        sh.published = now;
    }
}

/// Sleeps until the machine's next deadline (or a transition re-arms it), then ticks.
async fn drive(weak: Weak<Inner>, wake: Arc<Notify>) {
    loop {
        let next = {
            let Some(inner) = weak.upgrade() else { return };
            let mut sh = inner.shared.lock().expect("pool lock");
            if sh.machine.phase() == Phase::Stopped && sh.machine.is_empty() {
                return;
            }
            // With nothing due, the driver still wakes within an idle timeout: a worker
            // falling idle (every released request) then sets no earlier deadline and
            // need not wake it.
            let idle = Instant::now().checked_add(inner.timing.idle_timeout);
            sh.armed = sh.machine.next_wake().or(idle);
            sh.armed
        };
        match next {
            Some(t) => {
                let at = tokio::time::Instant::from_std(t);
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
        let Some(inner) = weak.upgrade() else { return };
        inner.apply(|sh, now| sh.machine.tick(now));
    }
}

/// A refused waiter's error. No worker of a handler that cannot load can serve it: FastFN's
/// daemon answers such requests 500 with the runtime's text (an import's `SyntaxError`).
fn refusal_error(why: Refusal, load_error: Option<&Arc<str>>, spec: &PoolSpec) -> PoolError {
    let status = spec.overflow_status;
    match (why, load_error) {
        (Refusal::Crashed, Some(text)) => PoolError::HandlerError {
            status: http::StatusCode::INTERNAL_SERVER_ERROR,
            message: text.clone(),
        },
        (Refusal::Crashed, None) => PoolError::Crashed,
        (Refusal::Overloaded, _) => PoolError::Overloaded {
            retry_after_s: 1,
            status,
        },
        (Refusal::QueueTimeout, _) => PoolError::QueueTimeout {
            retry_after_s: 1,
            status,
        },
    }
}

#[cfg(test)]
#[path = "function_pool_tests.rs"]
mod tests;
