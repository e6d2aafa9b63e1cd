//! Runs queued calls. One loop claims due calls while it has room (at most
//! `MAX_IN_FLIGHT` at once), and each call runs in its own task: it waits for a slot of
//! its function's async share (half the function's worker slots, at least one, so
//! synchronous traffic always keeps the rest), dispatches through the function's pool as
//! a synchronous call would, then lets the state machine decide: settle done, requeue
//! with a backoff, or dead-letter. Callbacks are delivered before a call is settled, so a
//! crash in between repeats the call and its callback (at least once, never lost).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::callback::Report;
use super::machine::{self, Next};
use super::metrics;
use super::store::{now_ms, Claimed, Settle};
use super::AsyncQueue;
use crate::error::GatewayError;
use crate::openfaas::headers as of;
use crate::pool::{AuthContext, WorkerRequest};
use crate::snapshot::{Function, Store};

/// Calls taken at once by this node, all functions together (running, or waiting for
/// their function's share). Kept small: with Redis, a call taken but waiting longer than
/// `visibility_timeout_ms` may be taken by another node too.
const MAX_IN_FLIGHT: usize = 64;
/// How often an idle dispatcher on Redis looks for calls other nodes queued and retries
/// come due.
const POLL: Duration = Duration::from_millis(200);
/// The longest an idle dispatcher on the embedded store sleeps with nothing due: it is
/// rung at every enqueue and retry, so this only bounds the cost of a missed ring (a
/// wall-clock step, say).
const IDLE_CAP: Duration = Duration::from_secs(5);

/// Per-function semaphores, resized when a reload changes the function's worker slots.
#[derive(Default)]
struct Shares {
    by_function: Mutex<HashMap<String, (usize, Arc<Semaphore>)>>,
}

impl Shares {
    fn of(&self, f: &Function) -> Arc<Semaphore> {
        let slots = f.def.policy.max_workers * f.def.policy.concurrency.max(1);
        let share = (slots / 2).max(1);
        let mut map = self.by_function.lock().expect("shares lock");
        match map.get(&*f.def.name) {
            Some((n, s)) if *n == share => s.clone(),
            _ => {
                let s = Arc::new(Semaphore::new(share));
                map.insert(f.def.name.to_string(), (share, s.clone()));
                s
            }
        }
    }
}

/// The dispatcher's loop; runs until the task is aborted at shutdown (calls in flight
/// then stay `running` in the store and run again after the restart).
pub async fn run(q: Arc<AsyncQueue>, snapshots: Arc<Store>) {
    let room = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let shares = Arc::new(Shares::default());
    loop {
        let free = room.available_permits();
        if free == 0 {
            drop(room.acquire().await);
            continue;
        }
        match q.backend.claim(free.min(64)).await {
            Ok(claimed) if !claimed.is_empty() => {
                for c in claimed {
                    let permit = room
                        .clone()
                        .acquire_owned()
                        .await
                        .expect("the room semaphore is never closed");
                    let (q, snapshots, shares) = (q.clone(), snapshots.clone(), shares.clone());
                    tokio::spawn(run_one(q, snapshots, shares, c, permit));
                }
            }
            Ok(_) => {
                let wait = q.backend.idle_wait(POLL, IDLE_CAP);
                tokio::select! {
                    _ = q.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "async dispatcher: cannot claim calls; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The function's answer, or the gateway's error answer when the pool failed.
struct Outcome {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

async fn run_one(
    q: Arc<AsyncQueue>,
    snapshots: Arc<Store>,
    shares: Arc<Shares>,
    c: Claimed,
    _room: OwnedSemaphorePermit,
) {
    let _held = q.backend.hold(&c);
    let snap = snapshots.load_full();
    let func = snap
        .functions
        .iter()
        .find(|f| *f.def.name == c.call.function);
    let started = Instant::now();
    let outcome = match func {
        Some(f) => {
            let share = shares.of(f);
            let _slot = share.acquire_owned().await;
            invoke(f, &c).await
        }
        None => error_outcome(&GatewayError::NotFound, &c.call.id),
    };
    let took = started.elapsed();
    let (progress, next) = c
        .progress
        .finish(outcome.status.as_u16(), q.cfg.max_attempts);
    metrics::call(func.map_or("_unmatched", |f| &f.def.name), next);
    let settle = match next {
        Next::Retry { after } => Settle::RetryAt(now_ms() + after.as_millis() as u64),
        Next::Done | Next::Dead => {
            if let Some(url) = &c.call.callback {
                let report = Report {
                    call_id: &c.call.id,
                    function: &c.call.function,
                    status: outcome.status.as_u16(),
                    headers: &outcome.headers,
                    body: outcome.body.clone(),
                    duration: took,
                };
                deliver(&q, url, &report).await;
            }
            if next == Next::Done {
                Settle::Done
            } else {
                tracing::warn!(call_id = %c.call.id, function = %c.call.function,
                    attempts = progress.attempts, status = outcome.status.as_u16(), "async call dead-lettered");
                Settle::Dead
            }
        }
    };
    if let Err(e) = q.backend.settle(&c, progress, settle).await {
        // Left running: the next start (or another node) runs it again.
        tracing::warn!(call_id = %c.call.id, error = %e, "async call could not be settled");
    } else if matches!(settle, Settle::RetryAt(_)) {
        // An idle dispatcher sleeps until the due time it knew; this one may be sooner.
        q.wake.notify_one();
    }
    if let Ok(n) = q.backend.pending().await {
        metrics::queued(n);
    }
}

async fn deliver(q: &AsyncQueue, url: &str, report: &Report<'_>) {
    let mut tries = 0;
    loop {
        tries += 1;
        let d = q.callbacks.deliver(url, report).await;
        metrics::callback(d);
        match machine::callback_next(d, tries, q.cfg.max_attempts) {
            Some(wait) => tokio::time::sleep(wait).await,
            None => return,
        }
    }
}

async fn invoke(f: &Function, c: &Claimed) -> Outcome {
    let call = &c.call;
    let mut headers = call.header_map();
    if let Ok(v) = HeaderValue::from_str(&call.id) {
        headers.insert(of::CALL_ID.clone(), v);
    }
    let req = WorkerRequest {
        request_id: Arc::from(call.id.as_str()),
        method: call.http_method(),
        path: call.path.clone(),
        query: call.query.clone(),
        params: call.params.clone(),
        headers,
        body: call.body_bytes(),
        auth: AuthContext {
            kind: static_kind(&call.auth_kind),
            subject: call.subject.as_deref().map(Arc::from),
            claims: None,
        },
        // Queued calls have no peer by the time they run.
        client_ip: None,
        meta: f.event_meta.clone(),
    };
    match f.pool.dispatch(&req).await {
        Ok(w) => Outcome {
            status: w.status,
            headers: w.headers,
            body: w.body,
        },
        Err(e) => error_outcome(&GatewayError::Pool(e), &call.id),
    }
}

fn error_outcome(e: &GatewayError, call_id: &str) -> Outcome {
    let answer = crate::respond::error_answer(e, call_id.as_bytes());
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Outcome {
        status: answer.status,
        headers,
        body: answer.body,
    }
}

/// `event.context.auth.type` is a `&'static str`; the stored kind maps back onto the
/// known names.
fn static_kind(kind: &str) -> &'static str {
    const KINDS: &[&str] = &[
        "none", "api_key", "hmac", "bearer", "basic", "jwt", "oidc", "mtls", "token", "ed25519",
    ];
    KINDS
        .iter()
        .find(|k| **k == kind)
        .copied()
        .unwrap_or("async")
}
