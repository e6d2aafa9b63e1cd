//! Which schedules are due, without IO or a clock of its own: the runner feeds it the
//! functions of the current snapshot and "now", it answers the ones to start. A schedule
//! whose run is still going when its next time comes is skipped (never overlapped), and
//! its next time is computed from now, so a slow run never causes a burst afterwards.
//! A function's `schedule` and its `keep_warm` pings are two entries, keyed by [`Kind`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::config::{Schedule, Trigger};

/// FastFN's scheduler ticks every second: an entry that must run "now" but failed is
/// tried again this much later.
const RETRY_TICK_MS: i64 = 1000;

/// Which entry of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Schedule,
    KeepWarm,
}

/// A function's name and which of its entries.
pub type Key = (Arc<str>, Kind);

#[derive(Debug)]
struct Slot {
    schedule: Arc<Schedule>,
    /// Unix milliseconds.
    next_ms: i64,
    running: bool,
    /// The end of the last successful run (keep_warm's "warm at").
    warm_ms: Option<i64>,
}

/// What a tick decided for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    Start(Key),
    /// Its time came while the previous run was still going.
    Skipped(Key),
}

#[derive(Debug, Default)]
pub struct Plan {
    slots: HashMap<Key, Slot>,
}

impl Plan {
    /// Reconciles with the snapshot's schedules (new or changed ones start counting from
    /// now, removed ones are forgotten) and returns what is due at `now_ms`.
    pub fn tick<'a>(
        &mut self,
        schedules: impl IntoIterator<Item = (Key, &'a Arc<Schedule>)>,
        now_ms: i64,
    ) -> Vec<Due> {
        let mut seen = Vec::new();
        let mut due = Vec::new();
        for (name, schedule) in schedules {
            seen.push(name.clone());
            let slot = self.slots.entry(name.clone()).or_insert_with(|| Slot {
                schedule: schedule.clone(),
                next_ms: first(schedule, now_ms),
                running: false,
                warm_ms: None,
            });
            if *slot.schedule != **schedule {
                slot.schedule = schedule.clone();
                slot.next_ms = first(schedule, now_ms);
            }
            if now_ms < slot.next_ms {
                continue;
            }
            slot.next_ms = next(schedule, now_ms);
            if slot.running {
                due.push(Due::Skipped(name.clone()));
            } else {
                slot.running = true;
                due.push(Due::Start(name.clone()));
            }
        }
        self.slots.retain(|k, _| seen.contains(k));
        due
    }

    /// A run finished (`ok`: answered below 500); the entry may start again at its next
    /// time. For keep_warm a success is "warm at now": due again after `idle_ttl` at the
    /// latest; a failure before it was ever warm is tried again on the next tick.
    pub fn finished(&mut self, key: &Key, ok: bool, now_ms: i64) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        slot.running = false;
        if ok {
            slot.warm_ms = Some(now_ms);
        }
        if let Trigger::KeepWarm { idle_ttl, .. } = slot.schedule.trigger {
            let due = match slot.warm_ms {
                Some(warm) => warm + idle_ttl.as_millis() as i64,
                None => now_ms + RETRY_TICK_MS,
            };
            slot.next_ms = slot.next_ms.min(due);
        }
    }

    /// How long the driver may sleep: until the earliest next time, at most `cap`.
    pub fn wait(&self, now_ms: i64, cap: Duration) -> Duration {
        self.slots
            .values()
            .map(|s| Duration::from_millis((s.next_ms - now_ms).max(0) as u64))
            .min()
            .map_or(cap, |d| d.min(cap))
    }
}

/// When a new (or changed) entry is first due: keep_warm pings at once (never warm yet).
fn first(schedule: &Schedule, now_ms: i64) -> i64 {
    match schedule.trigger {
        Trigger::KeepWarm { .. } => now_ms,
        _ => next(schedule, now_ms),
    }
}

fn next(schedule: &Schedule, now_ms: i64) -> i64 {
    match &schedule.trigger {
        Trigger::Every(d) | Trigger::KeepWarm { ping_every: d, .. } => {
            now_ms + d.as_millis() as i64
        }
        Trigger::Cron(c, offset) => c
            .next_after(now_ms.div_euclid(1000), *offset)
            .map_or(i64::MAX, |s| s * 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::config::compile;

    fn every(s: u64) -> Arc<Schedule> {
        let v = serde_json::json!({"enabled": true, "every_seconds": s});
        Arc::new(compile(&v).unwrap().unwrap())
    }

    #[test]
    fn runs_on_time_and_never_overlaps() {
        let mut plan = Plan::default();
        let name: Key = (Arc::from("f"), Kind::Schedule);
        let s = every(1);
        let list = || [(name.clone(), &s)];
        assert!(plan.tick(list(), 0).is_empty());
        assert!(plan.tick(list(), 999).is_empty());
        assert_eq!(plan.tick(list(), 1000), [Due::Start(name.clone())]);
        // Still running at its next two times: skipped, never started twice.
        assert_eq!(plan.tick(list(), 2000), [Due::Skipped(name.clone())]);
        assert_eq!(plan.tick(list(), 3500), [Due::Skipped(name.clone())]);
        plan.finished(&name, true, 3900);
        assert!(plan.tick(list(), 4000).is_empty());
        assert_eq!(plan.tick(list(), 4500), [Due::Start(name.clone())]);
        assert_eq!(
            plan.wait(4500, Duration::from_secs(9)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn changed_and_removed_schedules() {
        let mut plan = Plan::default();
        let name: Key = (Arc::from("f"), Kind::Schedule);
        let (one, five) = (every(1), every(5));
        plan.tick([(name.clone(), &one)], 0);
        // A reload changed it to every 5 s: counted again from the reload.
        assert!(plan.tick([(name.clone(), &five)], 900).is_empty());
        assert!(plan.tick([(name.clone(), &five)], 1000).is_empty());
        assert_eq!(
            plan.tick([(name.clone(), &five)], 5900),
            [Due::Start(name.clone())]
        );
        assert!(plan.tick(std::iter::empty(), 6000).is_empty());
        assert_eq!(
            plan.wait(6000, Duration::from_secs(3)),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn keep_warm_pings_at_once_then_every_ping_and_after_idle_ttl() {
        let mut plan = Plan::default();
        let name: Key = (Arc::from("f"), Kind::KeepWarm);
        let kw = |ping: u64, ttl: u64| {
            let v = serde_json::json!({"enabled": true, "ping_every_seconds": ping, "idle_ttl_seconds": ttl});
            let k = crate::schedule::keep_warm::compile(&v).unwrap().0.unwrap();
            Arc::new(k.schedule(&[]))
        };
        let s = kw(10, 300);
        let list = || [(name.clone(), &s)];
        // Never warm: due on the first tick.
        assert_eq!(plan.tick(list(), 0), [Due::Start(name.clone())]);
        // A failed first ping is tried again on the next tick, never two at once.
        assert!(plan.tick(list(), 500).is_empty());
        plan.finished(&name, false, 600);
        assert_eq!(plan.tick(list(), 1600), [Due::Start(name.clone())]);
        plan.finished(&name, true, 1700);
        // Warm: the next ping is ping_every after the last one.
        assert!(plan.tick(list(), 11_000).is_empty());
        assert_eq!(plan.tick(list(), 11_600), [Due::Start(name.clone())]);
        plan.finished(&name, true, 11_700);
        // An idle_ttl shorter than ping_every pings when the warmth runs out.
        let mut plan = Plan::default();
        let s = kw(60, 5);
        let list = || [(name.clone(), &s)];
        assert_eq!(plan.tick(list(), 0), [Due::Start(name.clone())]);
        plan.finished(&name, true, 100);
        assert!(plan.tick(list(), 5000).is_empty());
        assert_eq!(plan.tick(list(), 5100), [Due::Start(name.clone())]);
        // A schedule entry of the same function is its own slot.
        let every1 = every(1);
        let sched: Key = (Arc::from("f"), Kind::Schedule);
        assert!(plan
            .tick([(name.clone(), &s), (sched.clone(), &every1)], 6100)
            .is_empty());
        assert_eq!(
            plan.tick([(name.clone(), &s), (sched.clone(), &every1)], 7100),
            [Due::Start(sched)]
        );
    }
}
