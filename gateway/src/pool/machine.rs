//! The scheduling state of one function version, without IO. Every event the pool sees
//! (a request arrives, a worker is ready, fails, exits, a request ends or is given up,
//! time passes) is a method that changes the state and returns the [`Effect`]s the IO
//! layer (`function_pool`) must carry out: spawn or kill a worker, hand a worker to a
//! waiting request or refuse it, send a cancel, wake at a time. Time is passed in, so
//! tests drive every transition with plain `Instant`s and no process.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub type WorkerId = u64;
pub type WaiterId = u64;
pub type RequestId = u64;

/// Longest pause between restarts of a crash-looping function.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why a worker stopped; chooses the restart metric and the answer to its pending requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCause {
    /// It exited or closed its channel on its own.
    Crash,
    /// It sent a frame the gateway could not read.
    Protocol,
    /// It did not acknowledge a cancelled request within the grace period.
    Timeout,
    /// Idle reaping, a reload or shutdown.
    Retired,
}

impl ExitCause {
    pub fn label(self) -> &'static str {
        match self {
            ExitCause::Crash => "crash",
            ExitCause::Protocol => "bad_response",
            ExitCause::Timeout => "timeout",
            ExitCause::Retired => "retired",
        }
    }
}

/// Why a waiting request is answered without a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No worker can start (the handler is broken) or the pool stopped: 502.
    Crashed,
    /// The queue is full.
    Overloaded,
    /// Queued, and no worker came free in time.
    QueueTimeout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Spawn(WorkerId),
    Kill(WorkerId, ExitCause),
    Grant(WaiterId, WorkerId),
    Refuse(WaiterId, Refusal),
    Cancel(WorkerId, RequestId),
    /// Call [`Machine::tick`] at this time.
    Wake(Instant),
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub min: usize,
    pub max: usize,
    pub concurrency: usize,
    pub queue_cap: usize,
    /// How long a request may wait for a worker slot.
    pub queue_timeout: Duration,
    pub idle_timeout: Duration,
    pub cancel_grace: Duration,
    /// Requests a worker may hold beyond `concurrency` when every worker is full and the
    /// pool is at `max`: they wait in the worker's socket, so a sync worker finds its next
    /// request without a round trip and answers several per wake-up (0: never).
    pub prefetch: usize,
    /// Only a worker that answered within this takes a prefetched request: one busy
    /// longer (a slow handler, or one just started) gets none behind it.
    pub prefetch_window: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Serving,
    /// Retired by a reload: finishes what it holds, starts nothing, then stops its workers.
    Draining,
    /// Shut down: every worker killed, every waiter refused.
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum WorkerState {
    Starting,
    Ready {
        /// Requests holding a slot (prefetched and cancelled-but-unacknowledged included).
        in_flight: usize,
        idle_since: Instant,
        /// Its last answer (none yet: it has not proved fast).
        answered: Option<Instant>,
        /// Given-up requests and when the worker is killed unless it acknowledges them.
        cancelling: Vec<(RequestId, Instant)>,
    },
    /// Killed; its exit has not been seen yet. Holds no slot and counts for nothing.
    Stopping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Healthy,
    /// The last start failed and no worker has been ready since: no start before `retry_at`.
    Failing {
        retry_at: Instant,
    },
}

#[derive(Debug)]
pub struct Machine {
    limits: Limits,
    phase: Phase,
    health: Health,
    /// Crashes and failed starts since the last good reply; sets the backoff.
    streak: u32,
    workers: Vec<(WorkerId, WorkerState)>,
    queue: VecDeque<(WaiterId, Instant)>,
    /// A replacement start waiting out its backoff.
    restart_at: Option<Instant>,
    next_worker: WorkerId,
}

/// 0 for the first crash, then 100 ms doubling up to [`MAX_BACKOFF`].
pub fn backoff(streak: u32) -> Duration {
    if streak <= 1 {
        return Duration::ZERO;
    }
    let ms = 100u64.saturating_mul(1 << (streak - 2).min(16));
    Duration::from_millis(ms).min(MAX_BACKOFF)
}

impl Machine {
    /// A serving pool; `warm` workers start at once (`min`, or one to prove a new version).
    pub fn new(limits: Limits, warm: usize) -> (Machine, Vec<Effect>) {
        let mut m = Machine {
            limits,
            phase: Phase::Serving,
            health: Health::Healthy,
            streak: 0,
            workers: Vec::new(),
            queue: VecDeque::new(),
            restart_at: None,
            next_worker: 1,
        };
        let mut out = Vec::new();
        for _ in 0..warm.min(m.limits.max) {
            m.spawn(&mut out);
        }
        (m, out)
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn ready_count(&self) -> usize {
        self.workers
            .iter()
            .filter(|(_, s)| matches!(s, WorkerState::Ready { .. }))
            .count()
    }

    pub fn starting_count(&self) -> usize {
        self.workers
            .iter()
            .filter(|(_, s)| *s == WorkerState::Starting)
            .count()
    }

    pub fn busy_count(&self) -> usize {
        self.workers
            .iter()
            .filter(|(_, s)| matches!(s, WorkerState::Ready { in_flight, .. } if *in_flight > 0))
            .count()
    }

    pub fn is_failing(&self) -> bool {
        matches!(self.health, Health::Failing { .. })
    }

    /// No worker left in any state: a draining or stopped pool is done.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// The earliest time [`Machine::tick`] has work to do.
    pub fn next_wake(&self) -> Option<Instant> {
        let mut at = self.restart_at;
        let mut earliest = |t: Instant| at = Some(at.map_or(t, |a| a.min(t)));
        if let Some((_, t)) = self.queue.front() {
            earliest(*t);
        }
        let spare = self.ready_count() > self.limits.min;
        for (_, s) in &self.workers {
            if let WorkerState::Ready {
                in_flight,
                idle_since,
                cancelling,
                ..
            } = s
            {
                for (_, t) in cancelling {
                    earliest(*t);
                }
                if spare && *in_flight == 0 && self.phase == Phase::Serving {
                    earliest(*idle_since + self.limits.idle_timeout);
                }
            }
        }
        at
    }

    /// A request wants a slot.
    pub fn submit(&mut self, waiter: WaiterId, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.phase == Phase::Stopped {
            out.push(Effect::Refuse(waiter, Refusal::Crashed));
            return out;
        }
        if let Some(w) = self.free_worker() {
            self.take_slot(w, now);
            out.push(Effect::Grant(waiter, w));
            return out;
        }
        // Prefetch never overtakes the queue: waiters already queued go first.
        if self.queue.is_empty() {
            if let Some(w) = self.prefetch_worker(now) {
                self.take_slot(w, now);
                out.push(Effect::Grant(waiter, w));
                return out;
            }
        }
        let live = self.live();
        let may_start = match self.health {
            Health::Healthy => true,
            Health::Failing { retry_at } => now >= retry_at,
        };
        if self.phase == Phase::Serving && live < self.limits.max && may_start {
            self.spawn(&mut out);
        } else if live == 0 && (self.is_failing() || self.phase != Phase::Serving) {
            // Nothing runs and nothing may start yet: answer now, retry later.
            out.push(Effect::Refuse(waiter, Refusal::Crashed));
            return out;
        }
        if self.queue.len() >= self.limits.queue_cap {
            out.push(Effect::Refuse(waiter, Refusal::Overloaded));
            return out;
        }
        let deadline = now + self.limits.queue_timeout;
        self.queue.push_back((waiter, deadline));
        out.push(Effect::Wake(deadline));
        out
    }

    /// A queued request went away before it was given a worker.
    pub fn left_queue(&mut self, waiter: WaiterId) {
        self.queue.retain(|(w, _)| *w != waiter);
    }

    /// A worker finished its handshake.
    pub fn started(&mut self, worker: WorkerId, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        let Some(i) = self.index(worker) else {
            out.push(Effect::Kill(worker, ExitCause::Retired));
            return out;
        };
        if self.phase == Phase::Stopped {
            self.workers[i].1 = WorkerState::Stopping;
            out.push(Effect::Kill(worker, ExitCause::Retired));
            return out;
        }
        self.health = Health::Healthy;
        self.workers[i].1 = WorkerState::Ready {
            in_flight: 0,
            idle_since: now,
            answered: None,
            cancelling: Vec::new(),
        };
        self.hand_out(worker, now, &mut out);
        self.settle(now, &mut out);
        out
    }

    /// A worker could not start (spawn error, `fatal`, exit before `ready`).
    pub fn start_failed(&mut self, worker: WorkerId, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.index(worker).is_none() {
            return out;
        }
        self.workers.retain(|(w, _)| *w != worker);
        self.streak += 1;
        let delay = backoff(self.streak);
        self.health = Health::Failing {
            retry_at: now + delay,
        };
        self.replenish(now, delay, &mut out);
        if self.live() == 0 {
            for (w, _) in self.queue.drain(..) {
                out.push(Effect::Refuse(w, Refusal::Crashed));
            }
        }
        self.settle(now, &mut out);
        out
    }

    /// A worker's process is gone (its pending requests were answered by the IO layer).
    pub fn exited(&mut self, worker: WorkerId, cause: ExitCause, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        let Some(i) = self.index(worker) else {
            return out;
        };
        let was_stopping = self.workers[i].1 == WorkerState::Stopping;
        self.workers.remove(i);
        let delay = match cause {
            ExitCause::Crash | ExitCause::Protocol if !was_stopping => {
                self.streak += 1;
                backoff(self.streak)
            }
            _ => Duration::ZERO,
        };
        self.replenish(now, delay, &mut out);
        self.settle(now, &mut out);
        out
    }

    /// A request on `worker` ended with a reply (`ok`: a valid response, which ends a
    /// crash streak) or without one.
    pub fn released(&mut self, worker: WorkerId, ok: bool, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        if ok {
            self.streak = 0;
        }
        if let Some(WorkerState::Ready {
            in_flight,
            idle_since,
            answered,
            ..
        }) = self.state_mut(worker)
        {
            *in_flight = in_flight.saturating_sub(1);
            *answered = Some(now);
            if *in_flight == 0 {
                *idle_since = now;
            }
            self.hand_out(worker, now, &mut out);
        }
        self.settle(now, &mut out);
        out
    }

    /// The gateway gave up on request `req` (timeout, client gone): the worker is asked to
    /// drop it and keeps the slot until it acknowledges, or is killed after the grace.
    pub fn abandoned(&mut self, worker: WorkerId, req: RequestId, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        let deadline = now + self.limits.cancel_grace;
        if let Some(WorkerState::Ready { cancelling, .. }) = self.state_mut(worker) {
            cancelling.push((req, deadline));
            out.push(Effect::Cancel(worker, req));
            out.push(Effect::Wake(deadline));
        }
        out
    }

    /// The worker no longer runs `req` (a `cancelled` frame, or a late reply).
    pub fn cancel_acked(&mut self, worker: WorkerId, req: RequestId, now: Instant) -> Vec<Effect> {
        let mut acked = false;
        if let Some(WorkerState::Ready { cancelling, .. }) = self.state_mut(worker) {
            let before = cancelling.len();
            cancelling.retain(|(r, _)| *r != req);
            acked = cancelling.len() < before;
        }
        if acked {
            return self.released(worker, false, now);
        }
        self.settle_now(now)
    }

    /// Time passed: queue waits and cancel graces run out, idle workers above `min` are
    /// stopped, a restart that waited out its backoff begins.
    pub fn tick(&mut self, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        while let Some(&(w, deadline)) = self.queue.front() {
            if deadline > now {
                break;
            }
            self.queue.pop_front();
            out.push(Effect::Refuse(w, Refusal::QueueTimeout));
        }
        let mut overdue = Vec::new();
        for (id, s) in &self.workers {
            if let WorkerState::Ready { cancelling, .. } = s {
                if cancelling.iter().any(|(_, t)| *t <= now) {
                    overdue.push(*id);
                }
            }
        }
        for id in overdue {
            self.stop_worker(id, ExitCause::Timeout, &mut out);
        }
        if self.phase == Phase::Serving {
            let mut spare = self.ready_count().saturating_sub(self.limits.min);
            let idle: Vec<WorkerId> = self
                .workers
                .iter()
                .rev()
                .filter_map(|(id, s)| match s {
                    WorkerState::Ready {
                        in_flight: 0,
                        idle_since,
                        ..
                    } if now.duration_since(*idle_since) >= self.limits.idle_timeout => Some(*id),
                    _ => None,
                })
                .collect();
            for id in idle {
                if spare == 0 {
                    break;
                }
                spare -= 1;
                self.stop_worker(id, ExitCause::Retired, &mut out);
            }
        }
        if self.restart_at.is_some_and(|t| t <= now) {
            self.restart_at = None;
        }
        self.replenish(now, Duration::ZERO, &mut out);
        self.settle(now, &mut out);
        out
    }

    /// A reload retired this version: serve what is held, then stop every worker.
    pub fn drain(&mut self, now: Instant) -> Vec<Effect> {
        if self.phase == Phase::Serving {
            self.phase = Phase::Draining;
            self.restart_at = None;
        }
        self.settle_now(now)
    }

    /// Shutdown (or the end of a drain's patience): every waiter refused, every worker killed.
    pub fn stop(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        self.phase = Phase::Stopped;
        self.restart_at = None;
        for (w, _) in self.queue.drain(..) {
            out.push(Effect::Refuse(w, Refusal::Crashed));
        }
        let ready: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|(_, s)| matches!(s, WorkerState::Ready { .. }))
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            self.stop_worker(id, ExitCause::Retired, &mut out);
        }
        out
    }

    fn settle_now(&mut self, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        self.settle(now, &mut out);
        out
    }

    /// A draining pool stops its workers once it holds no request; waiters it can no
    /// longer serve are refused.
    fn settle(&mut self, _now: Instant, out: &mut Vec<Effect>) {
        if self.phase != Phase::Draining {
            return;
        }
        if self.live() == 0 {
            for (w, _) in self.queue.drain(..) {
                out.push(Effect::Refuse(w, Refusal::Crashed));
            }
        }
        let busy = self
            .workers
            .iter()
            .any(|(_, s)| matches!(s, WorkerState::Ready { in_flight, .. } if *in_flight > 0));
        if self.queue.is_empty() && !busy {
            let ready: Vec<WorkerId> = self
                .workers
                .iter()
                .filter(|(_, s)| matches!(s, WorkerState::Ready { .. }))
                .map(|(id, _)| *id)
                .collect();
            for id in ready {
                self.stop_worker(id, ExitCause::Retired, out);
            }
        }
    }

    /// Keeps `min` workers and serves a queue nobody can take: starts one after `delay`
    /// (and never before a failing function's backoff).
    fn replenish(&mut self, now: Instant, delay: Duration, out: &mut Vec<Effect>) {
        // A healthy pool tops up to `min` at once; a failing one tries one start at a time.
        loop {
            if self.phase != Phase::Serving {
                return;
            }
            let live = self.live();
            let unserved = !self.queue.is_empty() && self.free_worker().is_none();
            let wanted = live < self.limits.min || (unserved && self.starting_count() == 0);
            if !wanted || live >= self.limits.max {
                return;
            }
            let mut at = now + delay;
            if let Health::Failing { retry_at } = self.health {
                at = at.max(retry_at);
            }
            if at > now {
                if self.restart_at.is_none_or(|t| at < t) {
                    self.restart_at = Some(at);
                    out.push(Effect::Wake(at));
                }
                return;
            }
            if self.restart_at.is_some_and(|t| t > now) {
                return;
            }
            self.restart_at = None;
            self.spawn(out);
            if self.is_failing() {
                return;
            }
        }
    }

    fn spawn(&mut self, out: &mut Vec<Effect>) {
        let id = self.next_worker;
        self.next_worker += 1;
        self.workers.push((id, WorkerState::Starting));
        out.push(Effect::Spawn(id));
    }

    fn stop_worker(&mut self, id: WorkerId, cause: ExitCause, out: &mut Vec<Effect>) {
        if let Some(s) = self.state_mut(id) {
            *s = WorkerState::Stopping;
            out.push(Effect::Kill(id, cause));
        }
    }

    /// Gives the worker's spare concurrency to queued requests, oldest first, then its
    /// prefetch depth when the pool may prefetch.
    fn hand_out(&mut self, worker: WorkerId, now: Instant, out: &mut Vec<Effect>) {
        let mut room = self.limits.concurrency;
        if self.may_prefetch() && self.fresh(worker, now) {
            room += self.limits.prefetch;
        }
        while let Some(WorkerState::Ready { in_flight, .. }) = self.state_mut(worker) {
            if *in_flight >= room {
                return;
            }
            let Some((waiter, _)) = self.queue.pop_front() else {
                return;
            };
            self.take_slot(worker, now);
            out.push(Effect::Grant(waiter, worker));
        }
    }

    /// Prefetching only replaces queueing: while the pool may still start a worker, or
    /// one is starting (it will take the queue), requests queue.
    fn may_prefetch(&self) -> bool {
        self.limits.prefetch > 0
            && self.phase == Phase::Serving
            && self.health == Health::Healthy
            && self.live() >= self.limits.max
            && self.starting_count() == 0
    }

    fn answered_within(&self, answered: Option<Instant>, now: Instant) -> bool {
        answered.is_some_and(|t| now.saturating_duration_since(t) <= self.limits.prefetch_window)
    }

    fn fresh(&self, worker: WorkerId, now: Instant) -> bool {
        self.workers.iter().any(|(id, s)| {
            *id == worker
                && matches!(s, WorkerState::Ready { answered, .. }
                    if self.answered_within(*answered, now))
        })
    }

    /// The full worker with the fewest requests that still has prefetch room and answered
    /// recently (the first of equals: sequential traffic keeps to one worker).
    fn prefetch_worker(&self, now: Instant) -> Option<WorkerId> {
        if !self.may_prefetch() {
            return None;
        }
        let room = self.limits.concurrency + self.limits.prefetch;
        let mut best: Option<(WorkerId, usize)> = None;
        for (id, s) in &self.workers {
            if let WorkerState::Ready {
                in_flight,
                answered,
                ..
            } = s
            {
                let fresh = self.answered_within(*answered, now);
                if fresh && *in_flight < room && best.is_none_or(|(_, n)| *in_flight < n) {
                    best = Some((*id, *in_flight));
                }
            }
        }
        best.map(|(id, _)| id)
    }

    /// The first worker with a spare slot: sequential requests keep landing on the same
    /// warm worker, so the others can be reaped.
    fn free_worker(&self) -> Option<WorkerId> {
        let conc = self.limits.concurrency;
        self.workers.iter().find_map(|(id, s)| match s {
            WorkerState::Ready { in_flight, .. } if *in_flight < conc => Some(*id),
            _ => None,
        })
    }

    fn take_slot(&mut self, worker: WorkerId, _now: Instant) {
        if let Some(WorkerState::Ready { in_flight, .. }) = self.state_mut(worker) {
            *in_flight += 1;
        }
    }

    /// Workers starting or ready (a stopping one is already replaced).
    fn live(&self) -> usize {
        self.workers
            .iter()
            .filter(|(_, s)| *s != WorkerState::Stopping)
            .count()
    }

    fn index(&self, worker: WorkerId) -> Option<usize> {
        self.workers.iter().position(|(w, _)| *w == worker)
    }

    fn state_mut(&mut self, worker: WorkerId) -> Option<&mut WorkerState> {
        self.workers
            .iter_mut()
            .find(|(w, _)| *w == worker)
            .map(|(_, s)| s)
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
