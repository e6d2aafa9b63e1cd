//! The driver: one task for the whole gateway. It reads the current snapshot (so a reload
//! adds, changes or drops schedules within a second), asks the plan what is due, and
//! dispatches each run to the function's own pool as a request with the schedule's
//! method, query, headers and body. Runs are counted in `edgefn_schedule_runs_total` and
//! logged; failures are retried with backoff when `retry` asks for it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::config::Schedule;
use super::plan::{Due, Plan};
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
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Arc<str>>();
    loop {
        let now = now_ms();
        let snap = store.load_full();
        let scheduled = snap
            .functions
            .iter()
            .filter_map(|f| f.def.schedule.as_ref().map(|s| (&f.def.name, s)));
        for due in plan.tick(scheduled, now) {
            match due {
                Due::Skipped(name) => {
                    count(&name, "skipped");
                    tracing::info!(function = %name, "schedule run skipped: the previous run is still going");
                }
                Due::Start(name) => {
                    let Some(f) = snap.functions.iter().find(|f| f.def.name == name) else {
                        continue;
                    };
                    let Some(schedule) = f.def.schedule.clone() else {
                        continue;
                    };
                    let job = Job {
                        name: name.clone(),
                        pool: f.pool.clone(),
                        meta: f.event_meta.clone(),
                        path: f.def.route.clone(),
                        schedule,
                    };
                    let done = done_tx.clone();
                    tokio::spawn(async move {
                        job.run().await;
                        let _ = done.send(job.name);
                    });
                }
            }
        }
        let wait = plan.wait(now_ms(), MAX_WAIT);
        drop(snap);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            Some(name) = done_rx.recv() => plan.finished(&name),
        }
        while let Ok(name) = done_rx.try_recv() {
            plan.finished(&name);
        }
    }
}

struct Job {
    name: Arc<str>,
    pool: Arc<Pool>,
    meta: Arc<EventMeta>,
    path: String,
    schedule: Arc<Schedule>,
}

impl Job {
    async fn run(&self) {
        let s = &self.schedule;
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
                    kind: "schedule",
                    subject: None,
                    claims: None,
                },
                client_ip: None,
                meta: self.meta.clone(),
            };
            let outcome = match self.pool.dispatch(req).await {
                Ok(resp) if !resp.status.is_server_error() => Ok(resp.status.as_u16()),
                Ok(resp) => Err(format!("status {}", resp.status.as_u16())),
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(status) => {
                    count(&self.name, "ok");
                    tracing::info!(function = %self.name, status, attempt, "schedule run");
                    return;
                }
                Err(error) => {
                    count(&self.name, "error");
                    tracing::warn!(function = %self.name, %error, attempt, "schedule run failed");
                }
            }
            if attempt < s.max_attempts {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(s.max_delay);
            }
        }
    }
}

fn count(function: &str, result: &'static str) {
    metrics::counter!(names::SCHEDULE_RUNS_TOTAL,
        names::LABEL_FUNCTION => function.to_owned(),
        names::LABEL_RESULT => result)
    .increment(1);
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
