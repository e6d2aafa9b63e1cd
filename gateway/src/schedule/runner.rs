//! The driver: one task for the whole gateway. It reads the current snapshot (so a reload
//! adds, changes or drops schedules within a second), asks the plan what is due, and
//! dispatches each run to the function's own pool as a request with the schedule's
//! method, query, headers and body. Runs are counted in `edgefn_schedule_runs_total` and
//! logged; failures are retried with backoff when `retry` asks for it. `keep_warm` pings
//! go the same way, counted in `edgefn_keep_warm_pings_total`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::config::Schedule;
use super::plan::{Due, Key, Kind, Plan};
use crate::metrics::names;
use crate::pool::event::EventMeta;
use crate::pool::{AuthContext, Pool, WorkerRequest};
use crate::snapshot::Store;

/// The plan is re-read at least this often, so a reload is seen promptly.
const MAX_WAIT: Duration = Duration::from_secs(1);

pub fn spawn(store: Arc<Store>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(drive(store))
}

async fn drive(store: Arc<Store>) {
    let mut plan = Plan::default();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Key, bool)>();
    loop {
        let now = now_ms();
        let snap = store.load_full();
        let scheduled = snap.functions.iter().flat_map(|f| {
            [
                (Kind::Schedule, f.def.schedule.as_ref()),
                (Kind::KeepWarm, f.def.keep_warm.as_ref()),
            ]
            .into_iter()
            .filter_map(|(kind, s)| s.map(|s| ((f.def.name.clone(), kind), s)))
        });
        for due in plan.tick(scheduled, now) {
            match due {
                Due::Skipped(key) => {
                    count(&key, "skipped");
                    tracing::info!(function = %key.0, trigger = trigger(key.1), "schedule run skipped: the previous run is still going");
                }
                Due::Start(key) => {
                    let Some(f) = snap.functions.iter().find(|f| f.def.name == key.0) else {
                        continue;
                    };
                    let entry = match key.1 {
                        Kind::Schedule => &f.def.schedule,
                        Kind::KeepWarm => &f.def.keep_warm,
                    };
                    let Some(schedule) = entry.clone() else {
                        continue;
                    };
                    let job = Job {
                        key,
                        pool: f.pool.clone(),
                        meta: f.event_meta.clone(),
                        path: f.def.route.clone(),
                        schedule,
                    };
                    let done = done_tx.clone();
                    tokio::spawn(async move {
                        let ok = job.run().await;
                        let _ = done.send((job.key, ok));
                    });
                }
            }
        }
        let wait = plan.wait(now_ms(), MAX_WAIT);
        drop(snap);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            Some((key, ok)) = done_rx.recv() => plan.finished(&key, ok, now_ms()),
        }
        while let Ok((key, ok)) = done_rx.try_recv() {
            plan.finished(&key, ok, now_ms());
        }
    }
}

struct Job {
    key: Key,
    pool: Arc<Pool>,
    meta: Arc<EventMeta>,
    path: String,
    schedule: Arc<Schedule>,
}

impl Job {
    /// True when an attempt answered below 500.
    async fn run(&self) -> bool {
        let s = &self.schedule;
        let (name, kind) = (&self.key.0, trigger(self.key.1));
        let mut delay = s.base_delay;
        for attempt in 1..=s.max_attempts {
            let rid = crate::request_id::new_id();
            let req = WorkerRequest {
                request_id: Arc::from(rid.to_str().unwrap_or_default()),
                method: s.method.clone(),
                path: self.path.clone(),
                query: s.query.clone(),
                params: Vec::new(),
                headers: s.headers.clone(),
                body: s.body.clone(),
                auth: AuthContext {
                    kind,
                    subject: None,
                    claims: None,
                },
                client_ip: None,
                meta: self.meta.clone(),
            };
            let outcome = match self.pool.dispatch(&req).await {
                Ok(resp) if !resp.status.is_server_error() => Ok(resp.status.as_u16()),
                Ok(resp) => Err(format!("status {}", resp.status.as_u16())),
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(status) => {
                    count(&self.key, "ok");
                    tracing::info!(function = %name, trigger = kind, status, attempt, "schedule run");
                    return true;
                }
                Err(error) => {
                    count(&self.key, "error");
                    tracing::warn!(function = %name, trigger = kind, %error, attempt, "schedule run failed");
                }
            }
            if attempt < s.max_attempts {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(s.max_delay);
            }
        }
        false
    }
}

/// The trigger's name in log lines and the worker's `context.auth.type`.
fn trigger(kind: Kind) -> &'static str {
    match kind {
        Kind::Schedule => "schedule",
        Kind::KeepWarm => "keep_warm",
    }
}

fn count(key: &Key, result: &'static str) {
    let name = match key.1 {
        Kind::Schedule => names::SCHEDULE_RUNS_TOTAL,
        Kind::KeepWarm => names::KEEP_WARM_PINGS_TOTAL,
    };
    metrics::counter!(name,
        names::LABEL_FUNCTION => key.0.to_string(),
        names::LABEL_RESULT => result)
    .increment(1);
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
