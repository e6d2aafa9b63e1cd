//! One worker process: spawned with its own Unix socket, handed the function's env in an
//! init frame, and supervised by a task that owns the child. Replies are matched to
//! requests by id, so a worker may serve several requests at once; when the worker dies
//! every request still waiting on it is answered with an error at once. A request the
//! gateway gives up on is `cancel`led (protocol 2): its id stays held until the worker
//! answers `cancelled` (or replies late), then the pool is told it is free.

use std::borrow::Cow;
use std::io::IoSlice;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixListener;
use tokio::process::Child;
use tokio::sync::{oneshot, Notify};

use super::deps::DepsEnv;
use super::id_map::IdMap;
use super::launch::Launcher;
pub use super::machine::ExitCause;
use super::machine::{RequestId, WorkerId};
use super::output::{self, Masker};
use super::protocol::{self, Cancel, FromWorker, Init, PROTOCOL_VERSION};
use super::seam::{BoxFuture, Channel, Events, Reply, Spawn, WorkerEvent};
use super::socket::{self, ReadHalf, WriteHalf};
use super::{PoolError, PoolSpec, WorkerRequest, WorkerResponse};
use crate::logging::Stream;

/// How long a worker may take from spawn to `ready` (imports included).
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {path}: {source}")]
    Listen {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the runtime: {source}")]
    Spawn { source: std::io::Error },
    #[error("the {runtime} runtime is not available in this build")]
    Unsupported { runtime: &'static str },
    #[error("the worker exited before it was ready ({status})")]
    ExitedEarly { status: String },
    #[error("the worker was not ready within {} s", START_TIMEOUT.as_secs())]
    Timeout,
    #[error("the handler could not be loaded: {error}")]
    Fatal { error: String },
    #[error("the worker's channel failed during start-up: {0}")]
    Channel(String),
    #[error("the worker speaks protocol {got}; this gateway speaks protocol {PROTOCOL_VERSION}")]
    Version { got: String },
}

/// What a pool passes to start its workers.
#[derive(Debug, Clone)]
pub struct SpawnCtx {
    pub spec: Arc<PoolSpec>,
    pub launcher: Arc<Launcher>,
    pub deps: DepsEnv,
    pub masker: Masker,
    pub serial: Arc<AtomicU64>,
}

/// The real [`Spawn`]: a process per worker.
#[derive(Debug, Clone)]
pub struct ProcessSpawner(pub SpawnCtx);

impl Spawn for ProcessSpawner {
    fn spawn(
        &self,
        _id: WorkerId,
        events: Events,
    ) -> BoxFuture<'static, Result<Arc<dyn Channel>, StartError>> {
        let ctx = self.0.clone();
        Box::pin(async move {
            let w = spawn(&ctx, events).await?;
            Ok(w as Arc<dyn Channel>)
        })
    }
}

/// A request the worker holds: someone waits for its reply, or the gateway gave up on it
/// and waits only for the worker to let it go.
enum Pending {
    Waiting(oneshot::Sender<Reply>),
    Cancelled,
}

enum Conn {
    Open(IdMap<Pending>),
    Closed,
}

/// The channel's sending side and the buffer request frames are written into (kept
/// between requests; given back when one frame made it large).
struct Writer {
    half: WriteHalf,
    frame: Vec<u8>,
}

/// Frame capacity kept between requests.
const KEEP_FRAME: usize = 16 << 10;

pub struct Worker {
    pub pid: u32,
    writer: Arc<tokio::sync::Mutex<Writer>>,
    conn: Mutex<Conn>,
    next_id: AtomicU64,
    kill: Notify,
    kill_cause: Mutex<Option<ExitCause>>,
    events: Events,
    function: Arc<str>,
    /// The request encoding the worker's `ready` asked for.
    encoding: protocol::Encoding,
    /// Masks the function's secrets out of the error texts its handler raises.
    masker: Masker,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("pid", &self.pid).finish()
    }
}

impl Channel for Worker {
    fn send<'a>(
        &'a self,
        req: &'a WorkerRequest,
    ) -> BoxFuture<'a, Result<(RequestId, oneshot::Receiver<Reply>), PoolError>> {
        Box::pin(self.call(req))
    }

    fn cancel(&self, id: RequestId) {
        let known = {
            let mut conn = self.conn.lock().expect("conn lock");
            match &mut *conn {
                Conn::Open(pending) => match pending.get_mut(&id) {
                    Some(p) => {
                        *p = Pending::Cancelled;
                        true
                    }
                    None => false,
                },
                Conn::Closed => false,
            }
        };
        if !known {
            // Already answered (or the worker is gone): nothing occupies its slot.
            (self.events)(WorkerEvent::CancelAcked(id));
            return;
        }
        let (frame, _) = protocol::encode(&Cancel { kind: "cancel", id }, &Bytes::new());
        let writer = self.writer.clone();
        tokio::spawn(async move {
            let _ = writer.lock().await.half.write_all(&frame).await;
        });
    }

    fn kill(&self, cause: ExitCause) {
        self.kill_cause
            .lock()
            .expect("kill lock")
            .get_or_insert(cause);
        self.kill.notify_one();
    }
}

/// Cleans up after a `send` whose future was dropped: before the first byte, the request
/// is simply forgotten; mid-frame, the channel is out of step and the worker is killed.
struct SendGuard<'a> {
    worker: &'a Worker,
    id: RequestId,
    stage: SendStage,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SendStage {
    Queued,
    Writing,
    Done,
}

impl Drop for SendGuard<'_> {
    fn drop(&mut self) {
        match self.stage {
            SendStage::Queued => self.worker.forget(self.id),
            SendStage::Writing => self.worker.kill(ExitCause::Timeout),
            SendStage::Done => {}
        }
    }
}

impl Worker {
    async fn call(
        &self,
        req: &WorkerRequest,
    ) -> Result<(RequestId, oneshot::Receiver<Reply>), PoolError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut conn = self.conn.lock().expect("conn lock");
            match &mut *conn {
                Conn::Open(pending) => pending.insert(id, Pending::Waiting(tx)),
                Conn::Closed => return Err(PoolError::Crashed),
            };
        }
        let mut guard = SendGuard {
            worker: self,
            id,
            stage: SendStage::Queued,
        };
        let mut w = self.writer.lock().await;
        let Writer { half, frame } = &mut *w;
        frame.clear();
        protocol::encode_request(frame, id, &self.function, req, self.encoding);
        guard.stage = SendStage::Writing;
        let written = write_frame(half, frame, &req.body).await;
        if frame.capacity() > KEEP_FRAME {
            *frame = Vec::new();
        }
        drop(w);
        guard.stage = SendStage::Done;
        if written.is_err() {
            self.forget(id);
            return Err(PoolError::Crashed);
        }
        Ok((id, rx))
    }

    fn forget(&self, id: RequestId) {
        if let Conn::Open(pending) = &mut *self.conn.lock().expect("conn lock") {
            pending.remove(&id);
        }
    }

    fn kill_cause(&self) -> ExitCause {
        self.kill_cause
            .lock()
            .expect("kill lock")
            .unwrap_or(ExitCause::Crash)
    }

    fn fail_pending(&self, cause: ExitCause) {
        let pending =
            match std::mem::replace(&mut *self.conn.lock().expect("conn lock"), Conn::Closed) {
                Conn::Open(p) => p,
                Conn::Closed => return,
            };
        for (_, p) in pending {
            if let Pending::Waiting(tx) = p {
                let _ = tx.send(Err(match cause {
                    ExitCause::Protocol => PoolError::BadResponse {
                        detail: "the worker sent a malformed frame",
                    },
                    _ => PoolError::Crashed,
                }));
            }
        }
    }

    /// A reply, or the acknowledgement of a cancel (a late reply counts as one).
    fn deliver(&self, id: RequestId, reply: Option<Reply>) {
        let taken = match &mut *self.conn.lock().expect("conn lock") {
            Conn::Open(pending) => match pending.get(&id) {
                Some(Pending::Waiting(_)) if reply.is_none() => None,
                Some(_) => pending.remove(&id),
                None => None,
            },
            Conn::Closed => None,
        };
        match (taken, reply) {
            (Some(Pending::Waiting(tx)), Some(reply)) => {
                let _ = tx.send(reply);
            }
            (Some(Pending::Cancelled), _) => (self.events)(WorkerEvent::CancelAcked(id)),
            _ => {}
        }
    }
}

/// Header and body in one vectored write: the body is never copied into the frame.
async fn write_frame(w: &WriteHalf, head: &[u8], body: &[u8]) -> std::io::Result<()> {
    w.write_all_vectored(&mut [IoSlice::new(head), IoSlice::new(body)])
        .await
}

/// Starts a worker and waits until its handler is loaded. `Exited` is reported once,
/// after the process is gone and its pending requests were answered.
pub async fn spawn(ctx: &SpawnCtx, events: Events) -> Result<Arc<Worker>, StartError> {
    let started = Instant::now();
    let spec = &ctx.spec;
    let n = ctx.serial.fetch_add(1, Ordering::Relaxed);
    let path = ctx.launcher.socket_path(n);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|source| StartError::Listen {
        path: path.clone(),
        source,
    })?;
    let Some(cmd) = ctx.launcher.command(spec.runtime) else {
        let _ = std::fs::remove_file(&path);
        return Err(StartError::Unsupported {
            runtime: spec.runtime.as_str(),
        });
    };
    // OpenFaaS secret files: the one hook into the spawn (see openfaas/secrets.rs).
    let socket_dir = path.parent();
    let mut cmd = crate::openfaas::secrets::command(cmd, socket_dir, spec);
    cmd.arg(&path)
        .arg(&spec.handler)
        .arg(spec.concurrency.to_string())
        .current_dir(&spec.dir)
        .env_clear()
        .envs(std::env::vars_os().filter(|(k, _)| passed_through(k)))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in &ctx.deps.vars {
        if *k != "PYTHONPATH" {
            cmd.env(k, v);
        }
    }
    ctx.launcher.runtime_env(spec.runtime, &mut cmd);
    if spec.runtime == super::Runtime::Python {
        let deps = ctx.deps.vars.iter().find(|(k, _)| *k == "PYTHONPATH");
        if let Some(pp) = ctx.launcher.python_path(deps.map(|(_, v)| v.as_path())) {
            cmd.env("PYTHONPATH", pp);
        }
    }
    let spawned = cmd.spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(source) => {
            let _ = std::fs::remove_file(&path);
            return Err(StartError::Spawn { source });
        }
    };
    forward_output(&mut child, ctx);
    let handshake = handshake(&listener, &mut child, ctx);
    let result = tokio::time::timeout(START_TIMEOUT, handshake).await;
    drop(listener);
    let _ = std::fs::remove_file(&path);
    let (pid, encoding, reader, writer) = match result {
        Ok(Ok(ok)) => ok,
        Ok(Err(e)) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(e);
        }
        Err(_) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(StartError::Timeout);
        }
    };
    run_as_batch(pid).await;
    let worker = Arc::new(Worker {
        pid,
        writer: Arc::new(tokio::sync::Mutex::new(Writer {
            half: writer,
            frame: Vec::with_capacity(1024),
        })),
        conn: Mutex::new(Conn::Open(IdMap::default())),
        next_id: AtomicU64::new(1),
        kill: Notify::new(),
        kill_cause: Mutex::new(None),
        events,
        function: spec.function.clone(),
        encoding,
        masker: ctx.masker.clone(),
    });
    tracing::info!(
        function = %spec.function,
        pid,
        ready_ms = started.elapsed().as_secs_f64() * 1000.0,
        "worker ready"
    );
    tokio::spawn(supervise(worker.clone(), child, reader));
    Ok(worker)
}

/// Workers run under `SCHED_BATCH`: a worker woken by a request then waits until the
/// gateway thread that wrote it sleeps, instead of preempting it mid-request (on a shared
/// core that is an extra context switch per request, and the gateway's caches evicted
/// before it answers). Batch tasks keep their full share of the CPU; only wake-up
/// preemption is off. Set with util-linux's `chrt` on every thread of the process; where
/// `chrt` is missing or refused, the worker keeps the default policy.
async fn run_as_batch(pid: u32) {
    let status = tokio::process::Command::new("chrt")
        .args(["--all-tasks", "--batch", "--pid", "0"])
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    if !status.as_ref().is_ok_and(|s| s.success()) {
        tracing::debug!(pid, ?status, "worker keeps the default scheduling policy");
    }
}

/// The gateway's own environment stays out of functions (it may hold the operator's
/// credentials); only what interpreters and TLS/proxy clients need is passed through.
/// A function's own values come from its `fn.env.json`.
const PASSED_THROUGH: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "PYENV_ROOT",
];

fn passed_through(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|n| PASSED_THROUGH.contains(&n))
}

fn forward_output(child: &mut Child, ctx: &SpawnCtx) {
    fn forward<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
        reader: Option<R>,
        stream: Stream,
        ctx: &SpawnCtx,
    ) {
        if let Some(r) = reader {
            let (function, masker) = (ctx.spec.function.clone(), ctx.masker.clone());
            tokio::spawn(output::forward(function, stream, r, masker));
        }
    }
    forward(child.stdout.take(), Stream::Stdout, ctx);
    forward(child.stderr.take(), Stream::Stderr, ctx);
}

async fn handshake(
    listener: &UnixListener,
    child: &mut Child,
    ctx: &SpawnCtx,
) -> Result<(u32, protocol::Encoding, BufReader<ReadHalf>, WriteHalf), StartError> {
    let stream = tokio::select! {
        accepted = listener.accept() => accepted.map_err(|e| StartError::Channel(e.to_string()))?.0,
        status = child.wait() => {
            return Err(StartError::ExitedEarly {
                status: status.map_or_else(|e| e.to_string(), |s| s.to_string()),
            })
        }
    };
    let (reader, writer) = socket::split(stream).map_err(|e| StartError::Channel(e.to_string()))?;
    let mut reader = BufReader::with_capacity(64 << 10, reader);
    let init = Init {
        kind: "init",
        version: PROTOCOL_VERSION,
        function: &ctx.spec.function,
        runtime: ctx.spec.runtime.as_str(),
        env: protocol::EnvRef(&ctx.spec.env),
        handler_name: ctx.spec.handler_name.as_deref(),
    };
    let (frame, _) = protocol::encode(&init, &Bytes::new());
    writer
        .write_all(&frame)
        .await
        .map_err(|e| StartError::Channel(e.to_string()))?;
    let first = tokio::select! {
        f = protocol::read_frame(&mut reader) => f,
        status = child.wait() => {
            return Err(StartError::ExitedEarly {
                status: status.map_or_else(|e| e.to_string(), |s| s.to_string()),
            })
        }
    };
    let (header, _) = first.map_err(|e| StartError::Channel(e.to_string()))?;
    match FromWorker::parse(&header) {
        Ok(FromWorker::Ready {
            pid,
            version: Some(v),
            encoding,
        }) if v == u64::from(PROTOCOL_VERSION) => Ok((pid, encoding, reader, writer)),
        Ok(FromWorker::Ready { version, .. }) => Err(StartError::Version {
            got: version.map_or_else(|| "1 (no version in ready)".into(), |v| v.to_string()),
        }),
        Ok(FromWorker::Fatal { error }) => Err(StartError::Fatal {
            error: ctx.masker.mask(&error),
        }),
        Ok(_) => Err(StartError::Channel("unexpected first frame".into())),
        Err(e) => Err(StartError::Channel(e.to_string())),
    }
}

async fn supervise(worker: Arc<Worker>, mut child: Child, mut reader: BufReader<ReadHalf>) {
    let cause = tokio::select! {
        cause = read_loop(&worker, &mut reader) => cause,
        _ = worker.kill.notified() => worker.kill_cause(),
        _ = child.wait() => ExitCause::Crash,
    };
    if cause == ExitCause::Retired {
        // Closing the channel lets the worker exit on its own (atexit handlers run).
        let _ = worker.writer.lock().await.half.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
    }
    let _ = child.start_kill();
    let status = child.wait().await;
    worker.fail_pending(cause);
    if cause != ExitCause::Retired {
        tracing::warn!(
            function = %worker.function,
            pid = worker.pid,
            cause = cause.label(),
            status = %status.map_or_else(|e| e.to_string(), |s| s.to_string()),
            "worker stopped"
        );
    }
    (worker.events)(WorkerEvent::Exited(cause));
}

/// A worker's `err` frame as FastFN's runtime would answer it: the status it names (500
/// unless a 4xx/5xx), the exception's text with every secret of the function masked.
fn handler_error(
    worker: &Worker,
    kind: &str,
    status: Option<i64>,
    detail: Option<Cow<'_, str>>,
) -> PoolError {
    let status = status
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (400..=599).contains(s))
        .and_then(|s| http::StatusCode::from_u16(s).ok())
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let fallback = if kind == "bad_response" {
        "invalid runtime response"
    } else {
        "runtime error"
    };
    let text = detail.as_deref().unwrap_or(fallback);
    // Masked whole, then cut: a secret straddling the cut is never half shown.
    let masked = worker.masker.mask(text);
    PoolError::HandlerError {
        status,
        message: Arc::from(protocol::error_text(&masked)),
    }
}

async fn read_loop(worker: &Worker, reader: &mut BufReader<ReadHalf>) -> ExitCause {
    loop {
        let buffered = match reader.fill_buf().await {
            Ok([]) | Err(_) => return ExitCause::Crash,
            Ok(b) => b,
        };
        let stop = match protocol::buffered_frame(buffered) {
            Ok(Some((header, body, used))) => {
                let stop = on_frame(worker, header, Bytes::copy_from_slice(body));
                reader.consume(used);
                stop
            }
            // Not all here yet (or larger than the buffer): read it whole.
            Ok(None) => match protocol::read_frame(reader).await {
                Ok((header, body)) => on_frame(worker, &header, body),
                Err(protocol::FrameError::Closed) | Err(protocol::FrameError::Io(_)) => {
                    return ExitCause::Crash
                }
                Err(e) => garbage(worker, &e),
            },
            Err(e) => garbage(worker, &e),
        };
        if let Some(cause) = stop {
            return cause;
        }
    }
}

fn garbage(worker: &Worker, e: &dyn std::fmt::Display) -> Option<ExitCause> {
    tracing::warn!(function = %worker.function, error = %e, "worker sent garbage");
    Some(ExitCause::Protocol)
}

/// One frame from the worker; `Some` when the channel can no longer be trusted.
fn on_frame(worker: &Worker, header: &[u8], body: Bytes) -> Option<ExitCause> {
    match FromWorker::parse(header) {
        Ok(FromWorker::Res {
            id,
            status,
            headers,
            proxy,
        }) => worker.deliver(
            id,
            Some(
                protocol::response(status, headers, body)
                    .map(|r| WorkerResponse { proxy, ..r })
                    .map_err(|detail| PoolError::BadResponse { detail }),
            ),
        ),
        Ok(FromWorker::Err {
            id,
            kind,
            status,
            detail,
        }) => worker.deliver(id, Some(Err(handler_error(worker, &kind, status, detail)))),
        Ok(FromWorker::Cancelled { id }) => worker.deliver(id, None),
        Ok(FromWorker::Ready { .. }) | Ok(FromWorker::Fatal { .. }) => {}
        Err(e) => return garbage(worker, &e),
    }
    None
}
