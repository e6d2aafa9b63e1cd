//! One worker process: spawned with its own Unix socket, handed the function's env in an
//! init frame, and supervised by a task that owns the child. Replies are matched to
//! requests by id, so a worker may serve several requests at once; when the worker dies
//! every request still waiting on it is answered with an error at once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixListener;
use tokio::process::Child;
use tokio::sync::{oneshot, Notify};

use super::deps::DepsEnv;
use super::launch::Launcher;
use super::output::{self, Masker};
use super::protocol::{self, FromWorker, Init, RequestHeader};
use super::{PoolError, PoolSpec, WorkerRequest, WorkerResponse};
use crate::logging::Stream;

/// How long a worker may take from spawn to `ready` (imports included).
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub type Reply = Result<WorkerResponse, PoolError>;

/// Why a worker stopped; chooses the restart metric and the answer to its pending requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCause {
    /// It exited or closed its channel on its own.
    Crash,
    /// It sent a frame the gateway could not read.
    Protocol,
    /// The gateway killed it because a request ran past its timeout.
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

    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(c: u8) -> ExitCause {
        match c {
            1 => ExitCause::Protocol,
            2 => ExitCause::Timeout,
            3 => ExitCause::Retired,
            _ => ExitCause::Crash,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {path}: {source}")]
    Listen {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the runtime: {source}")]
    Spawn { source: std::io::Error },
    #[error("the worker exited before it was ready ({status})")]
    ExitedEarly { status: String },
    #[error("the worker was not ready within {} s", START_TIMEOUT.as_secs())]
    Timeout,
    #[error("the handler could not be loaded: {error}")]
    Fatal { error: String },
    #[error("the worker's channel failed during start-up: {0}")]
    Channel(String),
}

/// What a pool passes to start its workers.
#[derive(Debug, Clone)]
pub struct SpawnCtx {
    pub spec: Arc<PoolSpec>,
    pub launcher: Arc<Launcher>,
    pub deps: DepsEnv,
    pub masker: Masker,
    pub serial: Arc<AtomicU64>,
    pub idle_timeout: Duration,
}

struct Pending {
    closed: bool,
    waiting: HashMap<u64, oneshot::Sender<Reply>>,
}

pub struct Worker {
    pub pid: u32,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
    kill: Notify,
    kill_cause: AtomicU8,
    function: Arc<str>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("pid", &self.pid).finish()
    }
}

impl Worker {
    /// Sends one request and waits for its reply (the caller bounds the wait).
    pub async fn call(&self, req: &WorkerRequest) -> Result<oneshot::Receiver<Reply>, PoolError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut p = self.pending.lock().expect("pending lock");
            if p.closed {
                return Err(PoolError::Crashed);
            }
            p.waiting.insert(id, tx);
        }
        let header = RequestHeader {
            id,
            function: &self.function,
            req,
        };
        let (frame, rest) = protocol::encode(&header, &req.body);
        if self.write(&frame, rest.as_ref()).await.is_err() {
            self.pending
                .lock()
                .expect("pending lock")
                .waiting
                .remove(&id);
            return Err(PoolError::Crashed);
        }
        Ok(rx)
    }

    async fn write(&self, frame: &[u8], rest: Option<&Bytes>) -> std::io::Result<()> {
        let mut w = self.writer.lock().await;
        w.write_all(frame).await?;
        if let Some(body) = rest {
            w.write_all(body).await?;
        }
        Ok(())
    }

    /// True once the process is gone (or its channel closed): nothing more can be sent.
    pub fn is_closed(&self) -> bool {
        self.pending.lock().expect("pending lock").closed
    }

    /// Asks the supervisor to stop the process; the first cause given wins.
    pub fn kill(&self, cause: ExitCause) {
        let _ = self.kill_cause.compare_exchange(
            u8::MAX,
            cause.code(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.kill.notify_one();
    }

    fn fail_pending(&self, cause: ExitCause) {
        let waiting = {
            let mut p = self.pending.lock().expect("pending lock");
            p.closed = true;
            std::mem::take(&mut p.waiting)
        };
        for (_, tx) in waiting {
            let _ = tx.send(Err(match cause {
                ExitCause::Protocol => PoolError::BadResponse {
                    detail: "the worker sent a malformed frame",
                },
                _ => PoolError::Crashed,
            }));
        }
    }

    fn deliver(&self, id: u64, reply: Reply) {
        let tx = self
            .pending
            .lock()
            .expect("pending lock")
            .waiting
            .remove(&id);
        if let Some(tx) = tx {
            let _ = tx.send(reply);
        }
    }
}

/// Starts a worker and waits until its handler is loaded. `on_exit` runs once, after the
/// process is gone and its pending requests were answered.
pub async fn spawn(
    ctx: &SpawnCtx,
    on_exit: impl FnOnce(Arc<Worker>, ExitCause) + Send + 'static,
) -> Result<Arc<Worker>, StartError> {
    let started = Instant::now();
    let spec = &ctx.spec;
    let n = ctx.serial.fetch_add(1, Ordering::Relaxed);
    let path = ctx.launcher.socket_path(n);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|source| StartError::Listen {
        path: path.clone(),
        source,
    })?;
    // OpenFaaS secret files: the one hook into the spawn (see openfaas/secrets.rs).
    let socket_dir = path.parent();
    let mut cmd =
        crate::openfaas::secrets::command(ctx.launcher.command(spec.runtime), socket_dir, spec);
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
    let (pid, reader, writer) = match result {
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
    let worker = Arc::new(Worker {
        pid,
        writer: tokio::sync::Mutex::new(writer),
        pending: Mutex::new(Pending {
            closed: false,
            waiting: HashMap::new(),
        }),
        next_id: AtomicU64::new(1),
        kill: Notify::new(),
        kill_cause: AtomicU8::new(u8::MAX),
        function: spec.function.clone(),
    });
    tracing::info!(
        function = %spec.function,
        pid,
        ready_ms = started.elapsed().as_secs_f64() * 1000.0,
        "worker ready"
    );
    tokio::spawn(supervise(worker.clone(), child, reader, on_exit));
    Ok(worker)
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
) -> Result<(u32, BufReader<OwnedReadHalf>, OwnedWriteHalf), StartError> {
    let stream = tokio::select! {
        accepted = listener.accept() => accepted.map_err(|e| StartError::Channel(e.to_string()))?.0,
        status = child.wait() => {
            return Err(StartError::ExitedEarly {
                status: status.map_or_else(|e| e.to_string(), |s| s.to_string()),
            })
        }
    };
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 << 10, reader);
    let init = Init {
        kind: "init",
        function: &ctx.spec.function,
        env: protocol::EnvRef(&ctx.spec.env),
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
        Ok(FromWorker::Ready { pid }) => Ok((pid, reader, writer)),
        Ok(FromWorker::Fatal { error }) => Err(StartError::Fatal { error }),
        Ok(_) => Err(StartError::Channel("unexpected first frame".into())),
        Err(e) => Err(StartError::Channel(e.to_string())),
    }
}

async fn supervise(
    worker: Arc<Worker>,
    mut child: Child,
    mut reader: BufReader<OwnedReadHalf>,
    on_exit: impl FnOnce(Arc<Worker>, ExitCause),
) {
    let cause = tokio::select! {
        cause = read_loop(&worker, &mut reader) => cause,
        _ = worker.kill.notified() => ExitCause::from_code(worker.kill_cause.load(Ordering::Acquire)),
        _ = child.wait() => ExitCause::Crash,
    };
    if cause == ExitCause::Retired {
        // Closing the channel lets the worker exit on its own (atexit handlers run).
        let _ = worker.writer.lock().await.shutdown().await;
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
    on_exit(worker, cause);
}

async fn read_loop(worker: &Worker, reader: &mut BufReader<OwnedReadHalf>) -> ExitCause {
    loop {
        let (header, body) = match protocol::read_frame(reader).await {
            Ok(f) => f,
            Err(protocol::FrameError::Closed) | Err(protocol::FrameError::Io(_)) => {
                return ExitCause::Crash
            }
            Err(e) => {
                tracing::warn!(function = %worker.function, error = %e, "worker sent garbage");
                return ExitCause::Protocol;
            }
        };
        match FromWorker::parse(&header) {
            Ok(FromWorker::Res {
                id,
                status,
                headers,
            }) => worker.deliver(
                id,
                protocol::response(status, headers, body)
                    .map_err(|detail| PoolError::BadResponse { detail }),
            ),
            Ok(FromWorker::Err { id, kind }) => worker.deliver(
                id,
                Err(if kind == "bad_response" {
                    PoolError::BadResponse {
                        detail: "the handler's return value is not a response",
                    }
                } else {
                    PoolError::HandlerError
                }),
            ),
            Ok(FromWorker::Ready { .. }) | Ok(FromWorker::Fatal { .. }) => {}
            Err(e) => {
                tracing::warn!(function = %worker.function, error = %e, "worker sent garbage");
                return ExitCause::Protocol;
            }
        }
    }
}
