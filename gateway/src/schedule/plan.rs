//! Which schedules are due, without IO or a clock of its own: the runner feeds it the
//! functions of the current snapshot and "now", it answers the ones to start. A schedule
//! whose run is still going when its next time comes is skipped (never overlapped), and
//! its next time is computed from now, so a slow run never causes a burst afterwards.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::config::{Schedule, Trigger};

#[derive(Debug)]
struct Slot {
    schedule: Arc<Schedule>,
    /// Unix milliseconds.
    next_ms: i64,
    running: bool,
}

/// What a tick decided for one schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    Start(Arc<str>),
    /// Its time came while the previous run was still going.
    Skipped(Arc<str>),
}

#[derive(Debug, Default)]
pub struct Plan {
    slots: HashMap<Arc<str>, Slot>,
}

impl Plan {
    /// Reconciles with the snapshot's schedules (new or changed ones start counting from
    /// now, removed ones are forgotten) and returns what is due at `now_ms`.
    pub fn tick<'a>(
        &mut self,
        schedules: impl IntoIterator<Item = (&'a Arc<str>, &'a Arc<Schedule>)>,
        now_ms: i64,
    ) -> Vec<Due> {
        let mut seen = Vec::new();
        let mut due = Vec::new();
        for (name, schedule) in schedules {
            seen.push(name.clone());
            let slot = self.slots.entry(name.clone()).or_insert_with(|| Slot {
                schedule: schedule.clone(),
                next_ms: next(schedule, now_ms),
                running: false,
            });
            if *slot.schedule != **schedule {
                slot.schedule = schedule.clone();
                slot.next_ms = next(schedule, now_ms);
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

    /// A run finished; the schedule may start again at its next time.
    pub fn finished(&mut self, name: &str) {
        if let Some(slot) = self.slots.get_mut(name) {
            slot.running = false;
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

fn next(schedule: &Schedule, now_ms: i64) -> i64 {
    match &schedule.trigger {
        Trigger::Every(d) => now_ms + d.as_millis() as i64,
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
        let name: Arc<str> = Arc::from("f");
        let s = every(1);
        let list = [(&name, &s)];
        assert!(plan.tick(list, 0).is_empty());
        assert!(plan.tick(list, 999).is_empty());
        assert_eq!(plan.tick(list, 1000), [Due::Start(name.clone())]);
        // Still running at its next two times: skipped, never started twice.
        assert_eq!(plan.tick(list, 2000), [Due::Skipped(name.clone())]);
        assert_eq!(plan.tick(list, 3500), [Due::Skipped(name.clone())]);
        plan.finished("f");
        assert!(plan.tick(list, 4000).is_empty());
        assert_eq!(plan.tick(list, 4500), [Due::Start(name.clone())]);
        assert_eq!(
            plan.wait(4500, Duration::from_secs(9)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn changed_and_removed_schedules() {
        let mut plan = Plan::default();
        let name: Arc<str> = Arc::from("f");
        let (one, five) = (every(1), every(5));
        plan.tick([(&name, &one)], 0);
        // A reload changed it to every 5 s: counted again from the reload.
        assert!(plan.tick([(&name, &five)], 900).is_empty());
        assert!(plan.tick([(&name, &five)], 1000).is_empty());
        assert_eq!(
            plan.tick([(&name, &five)], 5900),
            [Due::Start(name.clone())]
        );
        assert!(plan.tick(std::iter::empty(), 6000).is_empty());
        assert_eq!(
            plan.wait(6000, Duration::from_secs(3)),
            Duration::from_secs(3)
        );
    }
}
