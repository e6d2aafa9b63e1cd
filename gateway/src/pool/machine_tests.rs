//! Every transition of the pool, driven with fake worker ids and synthetic instants.

use super::*;

fn limits(min: usize, max: usize, concurrency: usize) -> Limits {
    Limits {
        min,
        max,
        concurrency,
        queue_cap: 4,
        queue_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        cancel_grace: Duration::from_secs(1),
        prefetch: 0,
        prefetch_window: Duration::from_millis(2),
    }
}

fn prefetching(min: usize, max: usize, concurrency: usize, prefetch: usize) -> Limits {
    Limits {
        prefetch,
        ..limits(min, max, concurrency)
    }
}

fn us(t0: Instant, us: u64) -> Instant {
    t0 + Duration::from_micros(us)
}

fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

fn spawned(effects: &[Effect]) -> Vec<WorkerId> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Spawn(w) => Some(*w),
            _ => None,
        })
        .collect()
}

fn has(effects: &[Effect], e: &Effect) -> bool {
    effects.contains(e)
}

/// A pool with `n` ready workers (ids 1..=n).
fn ready_pool(l: Limits, n: usize, t0: Instant) -> Machine {
    let (mut m, fx) = Machine::new(l, n);
    for w in spawned(&fx) {
        m.started(w, t0);
    }
    assert_eq!(m.ready_count(), n);
    m
}

#[test]
fn backoff_grows_and_is_capped() {
    assert_eq!(backoff(1), Duration::ZERO);
    assert_eq!(backoff(2), Duration::from_millis(100));
    assert_eq!(backoff(3), Duration::from_millis(200));
    assert_eq!(backoff(40), MAX_BACKOFF);
}

#[test]
fn warm_start_spawns_min_and_first_request_is_granted() {
    let t0 = Instant::now();
    let (mut m, fx) = Machine::new(limits(2, 4, 1), 2);
    assert_eq!(spawned(&fx), vec![1, 2]);
    // A request before any worker is ready queues (and starts a third, below max).
    let fx = m.submit(10, t0);
    assert_eq!(spawned(&fx), vec![3]);
    assert!(has(&fx, &Effect::Wake(at(t0, 10_000))));
    let fx = m.started(1, t0);
    assert_eq!(fx, vec![Effect::Grant(10, 1)]);
    // Sequential requests land on the same warm worker.
    m.released(1, true, t0);
    assert_eq!(m.submit(11, t0), vec![Effect::Grant(11, 1)]);
}

#[test]
fn concurrency_fills_a_worker_before_the_next() {
    let t0 = Instant::now();
    let mut m = ready_pool(limits(2, 2, 2), 2, t0);
    let grants: Vec<_> = (0..4).map(|i| m.submit(i, t0)).collect();
    assert_eq!(grants[0], vec![Effect::Grant(0, 1)]);
    assert_eq!(grants[1], vec![Effect::Grant(1, 1)]);
    assert_eq!(grants[2], vec![Effect::Grant(2, 2)]);
    assert_eq!(grants[3], vec![Effect::Grant(3, 2)]);
    // Full and at max: the fifth queues without a spawn, and gets the first freed slot.
    let fx = m.submit(4, t0);
    assert!(spawned(&fx).is_empty());
    assert_eq!(m.released(2, true, t0), vec![Effect::Grant(4, 2)]);
}

#[test]
fn crash_while_starting_retries_at_once_then_backs_off() {
    let t0 = Instant::now();
    let (mut m, _) = Machine::new(limits(1, 2, 1), 1);
    // First failure: streak 1, no backoff, a replacement starts at once.
    let fx = m.start_failed(1, t0);
    assert_eq!(spawned(&fx), vec![2]);
    // Second: 100 ms backoff, armed as a wake-up, not spawned.
    let fx = m.start_failed(2, t0);
    assert!(spawned(&fx).is_empty());
    assert!(has(&fx, &Effect::Wake(at(t0, 100))));
    assert!(spawned(&m.tick(at(t0, 50))).is_empty());
    let fx = m.tick(at(t0, 100));
    assert_eq!(spawned(&fx), vec![3]);
    m.started(3, at(t0, 150));
    assert!(!m.is_failing());
}

#[test]
fn crash_mid_request_replaces_the_worker_and_backs_off_when_it_repeats() {
    let t0 = Instant::now();
    let mut m = ready_pool(limits(1, 1, 4), 1, t0);
    assert_eq!(m.submit(1, t0), vec![Effect::Grant(1, 1)]);
    let fx = m.exited(1, ExitCause::Crash, t0);
    assert_eq!(spawned(&fx), vec![2]);
    // The request's guard releases on a worker that is gone: nothing happens.
    assert!(m.released(1, false, t0).is_empty());
    m.started(2, t0);
    let fx = m.exited(2, ExitCause::Crash, t0);
    assert!(spawned(&fx).is_empty(), "second crash in a row waits");
    assert!(has(&fx, &Effect::Wake(at(t0, 100))));
    assert_eq!(spawned(&m.tick(at(t0, 100))), vec![3]);
    // A good reply ends the streak: the next crash restarts at once.
    m.started(3, at(t0, 100));
    m.submit(2, at(t0, 100));
    m.released(3, true, at(t0, 101));
    assert_eq!(
        spawned(&m.exited(3, ExitCause::Crash, at(t0, 102))),
        vec![4]
    );
}

#[test]
fn timeout_cancel_acknowledged_frees_the_slot_without_a_kill() {
    let t0 = Instant::now();
    let mut m = ready_pool(limits(1, 1, 1), 1, t0);
    assert_eq!(m.submit(1, t0), vec![Effect::Grant(1, 1)]);
    m.submit(2, t0); // queued behind the slow one
    let fx = m.abandoned(1, 77, t0);
    assert_eq!(fx, vec![Effect::Cancel(1, 77), Effect::Wake(at(t0, 1000))]);
    // Until the ack, the slot stays taken.
    assert!(m.tick(at(t0, 500)).is_empty());
    let fx = m.cancel_acked(1, 77, at(t0, 600));
    assert_eq!(fx, vec![Effect::Grant(2, 1)]);
    // The grace deadline passing later kills nothing.
    assert!(m.tick(at(t0, 2000)).is_empty());
}

#[test]
fn timeout_without_ack_within_grace_kills_only_then() {
    let t0 = Instant::now();
    let mut m = ready_pool(limits(1, 1, 16), 1, t0);
    for i in 0..16 {
        assert_eq!(m.submit(i, t0), vec![Effect::Grant(i, 1)]);
    }
    m.abandoned(1, 5, t0);
    // The other 15 finish normally before the grace runs out.
    for _ in 0..15 {
        m.released(1, true, at(t0, 10));
    }
    assert!(m.tick(at(t0, 999)).is_empty());
    let fx = m.tick(at(t0, 1000));
    assert!(has(&fx, &Effect::Kill(1, ExitCause::Timeout)));
    // Replaced at once (killed workers count for nothing), before its exit is seen.
    assert_eq!(spawned(&fx), vec![2]);
    // A late ack from the killed worker changes nothing.
    assert!(m.cancel_acked(1, 5, at(t0, 1001)).is_empty());
    assert!(spawned(&m.exited(1, ExitCause::Timeout, at(t0, 1002))).is_empty());
}

#[test]
fn broken_handler_with_min_two_refuses_promptly_and_respects_backoff() {
    let t0 = Instant::now();
    let (mut m, fx) = Machine::new(limits(2, 4, 1), 2);
    assert_eq!(spawned(&fx), vec![1, 2]);
    // Queued while both start.
    m.submit(10, t0);
    m.submit(11, t0);
    let fx = m.start_failed(1, t0);
    assert!(!fx.iter().any(|e| matches!(e, Effect::Refuse(..))));
    // The two waiters each started a worker too (below max): 1..=4 are out.
    for w in [2, 3] {
        let fx = m.start_failed(w, t0);
        assert!(!fx.iter().any(|e| matches!(e, Effect::Refuse(..))));
        assert!(spawned(&fx).is_empty(), "no start inside the backoff");
    }
    // The last start fails with nothing ready: both waiters get 502 now, not at timeout.
    let fx = m.start_failed(4, t0);
    assert!(has(&fx, &Effect::Refuse(10, Refusal::Crashed)));
    assert!(has(&fx, &Effect::Refuse(11, Refusal::Crashed)));
    assert!(spawned(&fx).is_empty());
    assert!(m.is_failing());
    assert_eq!(m.ready_count(), 0);
    assert_eq!(m.starting_count(), 0);
    // A new request inside the backoff: refused at once, and no start.
    let fx = m.submit(12, at(t0, 1));
    assert_eq!(fx, vec![Effect::Refuse(12, Refusal::Crashed)]);
    // Earlier wake-ups (armed by earlier failures) start nothing: the first start
    // comes at the latest backoff's end (streak 4: 400 ms), one at a time.
    let mut first = None;
    while let Some(wake) = m.next_wake() {
        let fx = m.tick(wake);
        if !spawned(&fx).is_empty() {
            first = Some((wake, spawned(&fx)));
            break;
        }
    }
    let (when, ids) = first.expect("a restart is armed");
    assert!(when >= at(t0, 400), "{:?}", when - t0);
    assert_eq!(ids.len(), 1);
}

#[test]
fn waiters_are_refused_when_the_last_start_fails() {
    let t0 = Instant::now();
    let (mut m, _) = Machine::new(limits(1, 1, 1), 1);
    m.submit(10, t0);
    m.submit(11, t0);
    // Streak 1 retries at once: no refusal while a start is pending.
    let fx = m.start_failed(1, t0);
    assert_eq!(spawned(&fx), vec![2]);
    assert!(!fx.iter().any(|e| matches!(e, Effect::Refuse(..))));
    let fx = m.start_failed(2, t0);
    assert!(has(&fx, &Effect::Refuse(10, Refusal::Crashed)));
    assert!(has(&fx, &Effect::Refuse(11, Refusal::Crashed)));
    assert!(spawned(&fx).is_empty());
}

#[test]
fn drain_on_code_change_finishes_in_flight_then_stops() {
    let t0 = Instant::now();
    let mut m = ready_pool(limits(2, 2, 1), 2, t0);
    assert_eq!(m.submit(1, t0), vec![Effect::Grant(1, 1)]);
    let fx = m.drain(t0);
    // The idle worker could go now, but the pool stops as a whole once nothing is held.
    assert!(!has(&fx, &Effect::Kill(1, ExitCause::Retired)));
    // Draining starts nothing, even for a crash.
    assert!(spawned(&m.exited(2, ExitCause::Crash, t0)).is_empty());
    let fx = m.released(1, true, at(t0, 5));
    assert_eq!(fx, vec![Effect::Kill(1, ExitCause::Retired)]);
    assert!(!m.is_empty());
    m.exited(1, ExitCause::Retired, at(t0, 6));
    assert!(m.is_empty());
}

#[test]
fn draining_pool_with_nothing_running_refuses_new_requests() {
    let t0 = Instant::now();
    let (mut m, _) = Machine::new(limits(0, 2, 1), 0);
    m.drain(t0);
    assert_eq!(m.submit(1, t0), vec![Effect::Refuse(1, Refusal::Crashed)]);
}

#[test]
fn idle_workers_above_min_are_reaped_and_min_stays() {
    let t0 = Instant::now();
    let mut m = ready_pool(limits(1, 3, 1), 3, t0);
    assert_eq!(m.next_wake(), Some(at(t0, 60_000)));
    assert!(m.tick(at(t0, 59_999)).is_empty());
    let fx = m.tick(at(t0, 60_000));
    // The last two go (the first stays warm for sequential traffic).
    assert_eq!(
        fx,
        vec![
            Effect::Kill(3, ExitCause::Retired),
            Effect::Kill(2, ExitCause::Retired)
        ]
    );
    m.exited(3, ExitCause::Retired, at(t0, 60_001));
    m.exited(2, ExitCause::Retired, at(t0, 60_001));
    assert!(m.tick(at(t0, 200_000)).is_empty());
    assert_eq!(m.ready_count(), 1);
}

#[test]
fn a_busy_worker_is_not_reaped() {
    let t0 = Instant::now();
    let mut m = ready_pool(limits(0, 1, 1), 1, t0);
    m.submit(1, t0);
    assert!(m.tick(at(t0, 120_000)).is_empty());
    m.released(1, true, at(t0, 120_000));
    assert!(m.tick(at(t0, 179_999)).is_empty());
    assert_eq!(
        m.tick(at(t0, 180_000)),
        vec![Effect::Kill(1, ExitCause::Retired)]
    );
}

#[test]
fn shutdown_during_a_start_kills_the_worker_when_it_is_ready() {
    let t0 = Instant::now();
    let (mut m, fx) = Machine::new(limits(1, 1, 1), 1);
    assert_eq!(spawned(&fx), vec![1]);
    m.submit(5, t0);
    let fx = m.stop();
    assert_eq!(fx, vec![Effect::Refuse(5, Refusal::Crashed)]);
    assert!(!m.is_empty(), "the start is still out");
    assert_eq!(m.started(1, t0), vec![Effect::Kill(1, ExitCause::Retired)]);
    m.exited(1, ExitCause::Retired, t0);
    assert!(m.is_empty());
    assert_eq!(m.submit(6, t0), vec![Effect::Refuse(6, Refusal::Crashed)]);
}

#[test]
fn shutdown_during_a_failing_start_leaves_nothing() {
    let t0 = Instant::now();
    let (mut m, _) = Machine::new(limits(1, 1, 1), 1);
    m.stop();
    assert!(spawned(&m.start_failed(1, t0)).is_empty());
    assert!(m.is_empty());
    assert_eq!(m.next_wake(), None);
}

#[test]
fn queue_cap_refuses_the_overflow_with_overloaded() {
    let t0 = Instant::now();
    let mut m = ready_pool(limits(1, 1, 1), 1, t0);
    m.submit(0, t0);
    for w in 1..=4 {
        let fx = m.submit(w, t0);
        assert!(!fx.iter().any(|e| matches!(e, Effect::Refuse(..))));
    }
    assert_eq!(
        m.submit(5, t0),
        vec![Effect::Refuse(5, Refusal::Overloaded)]
    );
    // A waiter that left frees its place.
    m.left_queue(2);
    assert!(!m
        .submit(6, t0)
        .iter()
        .any(|e| matches!(e, Effect::Refuse(..))));
}

#[test]
fn queue_timeout_refuses_with_queue_timeout_in_order() {
    let t0 = Instant::now();
    let mut m = ready_pool(limits(1, 1, 1), 1, t0);
    m.submit(0, t0);
    m.submit(1, t0);
    m.submit(2, at(t0, 5000));
    assert_eq!(m.next_wake(), Some(at(t0, 10_000)));
    assert_eq!(
        m.tick(at(t0, 10_000)),
        vec![Effect::Refuse(1, Refusal::QueueTimeout)]
    );
    assert_eq!(m.next_wake(), Some(at(t0, 15_000)));
    // The remaining waiter still gets the slot when it frees.
    assert_eq!(
        m.released(1, true, at(t0, 12_000)),
        vec![Effect::Grant(2, 1)]
    );
}

#[test]
fn min_zero_starts_on_demand() {
    let t0 = Instant::now();
    let (mut m, fx) = Machine::new(limits(0, 2, 1), 0);
    assert!(fx.is_empty());
    let fx = m.submit(1, t0);
    assert_eq!(spawned(&fx), vec![1]);
    assert_eq!(m.started(1, t0), vec![Effect::Grant(1, 1)]);
}

/// `ready_pool` whose workers each answered one request at `t0` (waiter ids 1000+).
fn answered_pool(l: Limits, n: usize, t0: Instant) -> Machine {
    let mut m = ready_pool(l, n, t0);
    for w in 0..n as u64 {
        assert_eq!(m.submit(1000 + w, t0), vec![Effect::Grant(1000 + w, w + 1)]);
    }
    for w in 1..=n as u64 {
        m.released(w, true, t0);
    }
    m
}

#[test]
fn prefetch_hands_full_workers_requests_evenly_then_queues() {
    let t0 = Instant::now();
    let mut m = answered_pool(prefetching(2, 2, 1, 2), 2, t0);
    let owners: Vec<WorkerId> = (0..6)
        .map(|i| match m.submit(i, t0).as_slice() {
            [Effect::Grant(w, id)] if *w == i => *id,
            fx => panic!("request {i}: {fx:?}"),
        })
        .collect();
    // Free slots first, then the least loaded full worker (the first of equals).
    assert_eq!(owners, vec![1, 2, 1, 2, 1, 2]);
    // concurrency + prefetch reached everywhere: the seventh queues.
    let fx = m.submit(6, t0);
    assert!(has(&fx, &Effect::Wake(at(t0, 10_000))), "{fx:?}");
    assert!(!fx.iter().any(|e| matches!(e, Effect::Grant(..))));
    // An answer frees room on its worker, which takes the queue's head.
    assert_eq!(m.released(2, true, us(t0, 100)), vec![Effect::Grant(6, 2)]);
    assert_eq!(m.busy_count(), 2);
}

#[test]
fn prefetch_waits_until_the_pool_is_at_max_with_every_worker_ready() {
    let t0 = Instant::now();
    let mut m = answered_pool(prefetching(1, 2, 1, 4), 1, t0);
    assert_eq!(m.submit(1, t0), vec![Effect::Grant(1, 1)]);
    // Below max a busy pool grows: the request queues for the new worker.
    let fx = m.submit(2, t0);
    assert_eq!(spawned(&fx), vec![2]);
    assert!(!fx.iter().any(|e| matches!(e, Effect::Grant(..))));
    // At max with one starting, requests still queue: the new worker will take them.
    let fx = m.submit(3, t0);
    assert!(!fx.iter().any(|e| matches!(e, Effect::Grant(..))), "{fx:?}");
    assert_eq!(m.released(1, true, us(t0, 50)), vec![Effect::Grant(2, 1)]);
    // Every worker ready: the new one takes its slot from the queue, and a fresh busy
    // worker takes the next request beyond its concurrency.
    assert_eq!(m.started(2, us(t0, 60)), vec![Effect::Grant(3, 2)]);
    assert_eq!(m.submit(4, us(t0, 70)), vec![Effect::Grant(4, 1)]);
}

#[test]
fn a_worker_without_a_recent_answer_takes_no_prefetch() {
    let t0 = Instant::now();
    // Never answered (a worker just started, or its first request is slow): nothing
    // waits behind its first request.
    let mut m = ready_pool(prefetching(1, 1, 1, 4), 1, t0);
    assert_eq!(m.submit(1, t0), vec![Effect::Grant(1, 1)]);
    assert!(!m
        .submit(2, t0)
        .iter()
        .any(|e| matches!(e, Effect::Grant(..))));

    let mut m = answered_pool(prefetching(2, 2, 1, 4), 2, t0);
    assert_eq!(m.submit(1, t0), vec![Effect::Grant(1, 1)]);
    assert_eq!(m.submit(2, at(t0, 1)), vec![Effect::Grant(2, 2)]);
    m.released(2, true, at(t0, 1));
    assert_eq!(m.submit(5, at(t0, 1)), vec![Effect::Grant(5, 2)]);
    // Worker 1 answered 2.5 ms ago (past the 2 ms window); worker 2 1.5 ms ago.
    assert_eq!(m.submit(3, us(t0, 2500)), vec![Effect::Grant(3, 2)]);
    // Both past the window: requests queue, as without prefetch.
    let fx = m.submit(4, at(t0, 10));
    assert!(!fx.iter().any(|e| matches!(e, Effect::Grant(..))), "{fx:?}");
    // Worker 2 answers: it takes the waiter (fresh again, it has prefetch room).
    assert_eq!(m.released(2, true, at(t0, 11)), vec![Effect::Grant(4, 2)]);
}

#[test]
fn prefetch_is_off_while_draining_and_at_zero() {
    let t0 = Instant::now();
    let mut off = answered_pool(prefetching(1, 1, 1, 0), 1, t0);
    off.submit(1, t0);
    assert!(!off
        .submit(2, t0)
        .iter()
        .any(|e| matches!(e, Effect::Grant(..))));

    let mut m = answered_pool(prefetching(1, 1, 1, 4), 1, t0);
    assert_eq!(m.submit(1, t0), vec![Effect::Grant(1, 1)]);
    m.drain(t0);
    let fx = m.submit(2, t0);
    assert!(!fx.iter().any(|e| matches!(e, Effect::Grant(..))), "{fx:?}");
    // Draining: the queued request gets the slot, not prefetch room.
    assert_eq!(m.released(1, true, us(t0, 10)), vec![Effect::Grant(2, 1)]);
}

#[test]
fn a_crash_with_prefetched_requests_frees_everything_and_replaces_the_worker() {
    let t0 = Instant::now();
    let mut m = answered_pool(prefetching(1, 1, 1, 2), 1, t0);
    for i in 0..3 {
        assert_eq!(m.submit(i, t0), vec![Effect::Grant(i, 1)]);
    }
    m.submit(3, t0); // queued: the worker is full
    m.submit(4, t0);
    // The IO layer answered the three held requests with 502; the queued ones wait
    // for the replacement, which takes one into its slot and none beyond it until it
    // has answered.
    let fx = m.exited(1, ExitCause::Crash, us(t0, 10));
    assert_eq!(spawned(&fx), vec![2]);
    for _ in 0..3 {
        assert!(m.released(1, false, us(t0, 11)).is_empty());
    }
    assert_eq!(m.started(2, us(t0, 20)), vec![Effect::Grant(3, 2)]);
    assert_eq!(m.released(2, true, us(t0, 30)), vec![Effect::Grant(4, 2)]);
    assert_eq!(m.submit(5, us(t0, 31)), vec![Effect::Grant(5, 2)]);
}

#[test]
fn a_cancelled_prefetched_request_keeps_its_place_until_acknowledged() {
    let t0 = Instant::now();
    let mut m = answered_pool(prefetching(1, 1, 1, 1), 1, t0);
    assert_eq!(m.submit(1, t0), vec![Effect::Grant(1, 1)]);
    assert_eq!(m.submit(2, t0), vec![Effect::Grant(2, 1)]);
    m.submit(3, t0);
    // The prefetched request's client went away: its place is held until the worker
    // drops it unrun and says so.
    let fx = m.abandoned(1, 22, us(t0, 5));
    assert_eq!(fx[0], Effect::Cancel(1, 22));
    assert_eq!(m.cancel_acked(1, 22, us(t0, 6)), vec![Effect::Grant(3, 1)]);
}
