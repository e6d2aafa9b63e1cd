//! The IO layer over fake workers: proves the effects of the machine reach the seam
//! (spawn, grant, cancel, kill) and the seam's events reach the machine. Waits are on
//! events with generous deadlines, never on elapsed time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::*;
use crate::pool::seam::{BoxFuture, Reply};
use crate::pool::worker::StartError;
use crate::pool::{AuthContext, Runtime};

const PATIENCE: Duration = Duration::from_secs(20);

struct FakeWorker {
    events: Events,
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    next: AtomicU64,
    cancels: Mutex<Vec<u64>>,
    killed: Mutex<Option<ExitCause>>,
    acks_cancels: bool,
}

impl FakeWorker {
    fn answer(&self, status: u16) -> bool {
        let tx = {
            let mut p = self.pending.lock().unwrap();
            let Some(&id) = p.keys().next() else {
                return false;
            };
            p.remove(&id)
        };
        let _ = tx.unwrap().send(Ok(WorkerResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"ok"),
            proxy: None,
        }));
        true
    }

    fn in_flight(&self) -> usize {
        self.pending.lock().unwrap().len()
    }
}

impl Channel for FakeWorker {
    fn send<'a>(
        &'a self,
        _req: &'a WorkerRequest,
    ) -> BoxFuture<'a, Result<(u64, oneshot::Receiver<Reply>), PoolError>> {
        Box::pin(async move {
            let id = self.next.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            self.pending.lock().unwrap().insert(id, tx);
            Ok((id, rx))
        })
    }

    fn cancel(&self, req: u64) {
        self.cancels.lock().unwrap().push(req);
        if self.acks_cancels {
            self.pending.lock().unwrap().remove(&req);
            (self.events)(WorkerEvent::CancelAcked(req));
        }
    }

    fn kill(&self, cause: ExitCause) {
        if self.killed.lock().unwrap().replace(cause).is_none() {
            self.pending.lock().unwrap().clear();
            (self.events)(WorkerEvent::Exited(cause));
        }
    }
}

#[derive(Default)]
struct FakeSpawner {
    fail: bool,
    /// Starts after this many fail.
    fail_after: Option<u64>,
    attempts: AtomicU64,
    acks_cancels: bool,
    /// While set, starts wait (a start in progress).
    hold: AtomicBool,
    released: Notify,
    workers: Mutex<Vec<Arc<FakeWorker>>>,
}

impl Spawn for Arc<FakeSpawner> {
    fn spawn(
        &self,
        _id: WorkerId,
        events: Events,
    ) -> BoxFuture<'static, Result<Arc<dyn Channel>, StartError>> {
        let me = self.clone();
        Box::pin(async move {
            loop {
                let n = me.released.notified();
                tokio::pin!(n);
                n.as_mut().enable();
                if !me.hold.load(Ordering::Acquire) {
                    break;
                }
                n.await;
            }
            let n = me.attempts.fetch_add(1, Ordering::Relaxed);
            if me.fail || me.fail_after.is_some_and(|k| n >= k) {
                return Err(StartError::Fatal {
                    error: "SyntaxError: fake".into(),
                });
            }
            let w = Arc::new(FakeWorker {
                events,
                pending: Mutex::new(HashMap::new()),
                next: AtomicU64::new(1),
                cancels: Mutex::new(Vec::new()),
                killed: Mutex::new(None),
                acks_cancels: me.acks_cancels,
            });
            me.workers.lock().unwrap().push(w.clone());
            Ok(w as Arc<dyn Channel>)
        })
    }
}

impl FakeSpawner {
    fn worker(&self, i: usize) -> Arc<FakeWorker> {
        self.workers.lock().unwrap()[i].clone()
    }

    fn count(&self) -> usize {
        self.workers.lock().unwrap().len()
    }
}

fn spec(min: usize, max: usize, timeout_ms: u64) -> Arc<PoolSpec> {
    Arc::new(PoolSpec {
        function: Arc::from("fake"),
        runtime: Runtime::Python,
        handler: PathBuf::from("/fake/handler.py"),
        dir: PathBuf::from("/fake"),
        root: PathBuf::from("/"),
        env: Vec::new(),
        secrets: Vec::new(),
        min_workers: min,
        max_workers: max,
        concurrency: 1,
        timeout: Duration::from_millis(timeout_ms),
        code_hash: [0; 32],
        handler_name: None,
        shared_deps: Vec::new(),
        overflow_status: http::StatusCode::TOO_MANY_REQUESTS,
        max_queue: None,
        queue_timeout: None,
        idle_timeout: None,
    })
}

fn request() -> WorkerRequest {
    WorkerRequest {
        request_id: Arc::from("rid"),
        method: http::Method::GET,
        path: "/fake".into(),
        query: None,
        params: Vec::new(),
        headers: HeaderMap::new(),
        body: Bytes::new(),
        auth: AuthContext {
            kind: "none",
            subject: None,
            claims: None,
        },
        client_ip: None,
        meta: Arc::default(),
    }
}

fn timing(grace_ms: u64) -> Timing {
    Timing {
        idle_timeout: Duration::from_secs(600),
        cancel_grace: Duration::from_millis(grace_ms),
        prefetch: 0,
    }
}

async fn until(mut f: impl FnMut() -> bool) {
    tokio::time::timeout(PATIENCE, async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("condition within the patience");
}

fn pool(spawner: &Arc<FakeSpawner>, spec: Arc<PoolSpec>, grace_ms: u64) -> Arc<FunctionPool> {
    let warm = spec.min_workers;
    Arc::new(FunctionPool::start(
        spec,
        Arc::new(spawner.clone()),
        timing(grace_ms),
        warm,
    ))
}

#[tokio::test]
async fn a_fake_worker_serves_and_its_slot_is_reused() {
    let spawner = Arc::new(FakeSpawner::default());
    let p = pool(&spawner, spec(1, 2, 60_000), 1000);
    p.wait_ready(1).await.unwrap();
    for _ in 0..3 {
        let call = tokio::spawn({
            let p = p.clone();
            async move { p.dispatch(&request()).await }
        });
        let w = spawner.worker(0);
        until(|| w.in_flight() == 1).await;
        assert!(w.answer(201));
        assert_eq!(call.await.unwrap().unwrap().status, 201);
    }
    assert_eq!(spawner.count(), 1, "sequential requests stay on one worker");
}

#[tokio::test]
async fn a_timeout_cancels_and_an_acknowledged_cancel_keeps_the_worker() {
    let spawner = Arc::new(FakeSpawner {
        acks_cancels: true,
        ..FakeSpawner::default()
    });
    let p = pool(&spawner, spec(1, 1, 50), 60_000);
    p.wait_ready(1).await.unwrap();
    let r = p.dispatch(&request()).await;
    assert!(
        matches!(r, Err(PoolError::Timeout { timeout_ms: 50 })),
        "{r:?}"
    );
    let w = spawner.worker(0);
    assert_eq!(*w.cancels.lock().unwrap(), vec![1]);
    // The slot came back with the ack: the next request reaches the same worker.
    let call = tokio::spawn({
        let p = p.clone();
        async move { p.dispatch(&request()).await }
    });
    until(|| w.in_flight() == 1).await;
    w.answer(200);
    assert!(call.await.unwrap().is_ok());
    assert!(w.killed.lock().unwrap().is_none());
    assert_eq!(spawner.count(), 1);
}

#[tokio::test]
async fn an_unacknowledged_cancel_kills_the_worker_after_the_grace() {
    let spawner = Arc::new(FakeSpawner::default());
    let p = pool(&spawner, spec(1, 1, 50), 50);
    p.wait_ready(1).await.unwrap();
    assert!(matches!(
        p.dispatch(&request()).await,
        Err(PoolError::Timeout { .. })
    ));
    let w = spawner.worker(0);
    until(|| *w.killed.lock().unwrap() == Some(ExitCause::Timeout)).await;
    // Replaced to keep `min`.
    until(|| spawner.count() == 2).await;
}

#[tokio::test]
async fn a_handler_that_cannot_start_answers_waiters_at_once() {
    let spawner = Arc::new(FakeSpawner {
        fail: true,
        ..FakeSpawner::default()
    });
    let p = pool(&spawner, spec(2, 4, 600_000), 1000);
    let e = p.wait_ready(2).await.unwrap_err();
    assert!(e.contains("SyntaxError"), "{e}");
    let r = tokio::time::timeout(PATIENCE, p.dispatch(&request()))
        .await
        .expect("answered long before the 600 s timeout");
    // The runtime's own text, as FastFN's daemon answers a handler it cannot load.
    match r {
        Err(PoolError::HandlerError { status, message }) => {
            assert_eq!(status, http::StatusCode::INTERNAL_SERVER_ERROR);
            assert!(message.contains("SyntaxError"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn shutdown_during_a_start_kills_the_worker_once_it_is_up() {
    let spawner = Arc::new(FakeSpawner::default());
    spawner.hold.store(true, Ordering::Release);
    let p = pool(&spawner, spec(1, 1, 60_000), 1000);
    let waiter = tokio::spawn({
        let p = p.clone();
        async move { p.dispatch(&request()).await }
    });
    p.inner.apply(|sh, _| sh.machine.stop());
    assert!(matches!(waiter.await.unwrap(), Err(PoolError::Crashed)));
    spawner.hold.store(false, Ordering::Release);
    spawner.released.notify_waiters();
    until(|| spawner.count() == 1).await;
    let w = spawner.worker(0);
    until(|| *w.killed.lock().unwrap() == Some(ExitCause::Retired)).await;
    p.stop().await;
}

#[tokio::test]
async fn retire_lets_the_request_in_flight_finish_then_stops() {
    let spawner = Arc::new(FakeSpawner::default());
    let p = pool(&spawner, spec(1, 1, 60_000), 1000);
    p.wait_ready(1).await.unwrap();
    let call = tokio::spawn({
        let p = p.clone();
        async move { p.dispatch(&request()).await }
    });
    let w = spawner.worker(0);
    until(|| w.in_flight() == 1).await;
    let retire = tokio::spawn({
        let p = p.clone();
        async move { p.retire().await }
    });
    tokio::task::yield_now().await;
    assert!(
        w.killed.lock().unwrap().is_none(),
        "not while it holds a request"
    );
    w.answer(200);
    assert!(call.await.unwrap().is_ok());
    retire.await.unwrap();
    assert_eq!(*w.killed.lock().unwrap(), Some(ExitCause::Retired));
}

#[tokio::test]
async fn a_version_with_some_workers_up_and_the_rest_failing_is_ready() {
    let spawner = Arc::new(FakeSpawner {
        fail_after: Some(2),
        ..FakeSpawner::default()
    });
    let p = pool(&spawner, spec(4, 4, 60_000), 1000);
    tokio::time::timeout(PATIENCE, p.wait_ready(4))
        .await
        .expect("does not wait for workers that cannot start")
        .unwrap();
    assert_eq!(spawner.count(), 2);
}

/// `worker_pool.idle_ttl_seconds` is the pool's own idle timeout: with `[runtimes]`'s at
/// ten minutes, the function's 30 ms stops its idle worker (none kept: `min_warm` 0).
#[tokio::test]
async fn the_functions_idle_ttl_wins_over_the_runtimes_idle_timeout() {
    let spawner = Arc::new(FakeSpawner::default());
    let mut s = (*spec(0, 1, 60_000)).clone();
    s.idle_timeout = Some(Duration::from_millis(30));
    let p = pool(&spawner, Arc::new(s), 1000);
    let call = tokio::spawn({
        let p = p.clone();
        async move { p.dispatch(&request()).await }
    });
    until(|| spawner.count() == 1 && spawner.worker(0).in_flight() == 1).await;
    assert!(spawner.worker(0).answer(200));
    assert_eq!(call.await.unwrap().unwrap().status, 200);
    let w = spawner.worker(0);
    until(|| w.killed.lock().unwrap().is_some()).await;
    assert_eq!(*w.killed.lock().unwrap(), Some(ExitCause::Retired));
}
