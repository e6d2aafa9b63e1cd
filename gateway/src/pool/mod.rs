//! Warm runtime worker pools. Flow: reload asks the [`PoolRegistry`] for a pool per
//! function ([`PoolRegistry::ensure`] reuses the running pool when the spec is unchanged,
//! else installs dependencies and starts `min` workers); the request path calls
//! [`Pool::dispatch`], which takes a worker slot, sends one frame and waits for the reply
//! within the function's timeout; after the new snapshot is stored, pools no longer in it
//! drain and stop.
//!
//! Modules: `launch` (embedded runtime scripts, interpreter), `deps` (pip / npm installs),
//! `worker` (one process and its channel), `function_pool` (slots, queue, healing),
//! `protocol` (frames), `output` (captured stdout/stderr with secrets masked).

mod deps;
pub mod event;
mod function_pool;
mod launch;
mod output;
pub mod protocol;
mod worker;

pub use function_pool::Pool;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OnceCell;

use launch::Launcher;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

pub use crate::catalog::runtime::Runtime;

/// Commands that start each runtime (`[runtimes.*] command` in edgefn.toml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeCommands {
    pub python: Vec<String>,
    pub node: Vec<String>,
    /// Workers above `workers.min` idle this long are stopped
    /// (`[runtimes] worker_idle_timeout_ms`).
    pub idle_timeout: Duration,
}

impl Default for RuntimeCommands {
    fn default() -> Self {
        Self {
            python: vec!["python3".into()],
            node: vec!["node".into()],
            idle_timeout: function_pool::DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// Everything a pool needs about its function, computed at load. `Debug` never prints
/// env values (they may be secrets).
#[derive(Clone, PartialEq)]
pub struct PoolSpec {
    pub function: Arc<str>,
    pub runtime: Runtime,
    /// Absolute path of the handler file.
    pub handler: PathBuf,
    /// Absolute path of the function folder.
    pub dir: PathBuf,
    /// `event.env`: (name, value), secrets included (the function may read them).
    pub env: Vec<(String, String)>,
    /// Values to replace with `***` in captured stdout/stderr.
    pub secrets: Vec<String>,
    pub min_workers: usize,
    pub max_workers: usize,
    /// In-flight requests per worker.
    pub concurrency: usize,
    pub timeout: Duration,
    /// Digest of the function folder's code files: a change restarts the pool.
    pub code_hash: [u8; 32],
}

/// Who the gateway let in, for `event.context.auth`.
#[derive(Debug, Clone)]
pub struct AuthContext {
    pub kind: &'static str,
    pub subject: Option<Arc<str>>,
}

/// One request handed to a worker.
#[derive(Debug)]
pub struct WorkerRequest {
    pub request_id: Arc<str>,
    pub method: http::Method,
    pub path: String,
    /// Raw query string without `?` (the worker decodes it into `event.query`).
    pub query: Option<String>,
    pub params: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub auth: AuthContext,
    /// `event.client.ip`: the peer the gateway accepted.
    pub client_ip: Option<std::net::IpAddr>,
    /// `event.context`'s per-function fields, shared from the snapshot.
    pub meta: Arc<event::EventMeta>,
}

/// What the handler answered, validated.
#[derive(Debug)]
pub struct WorkerResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("the function's worker crashed")]
    Crashed,
    #[error("the function did not answer within {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    #[error("the function is at capacity, retry later")]
    Overloaded { retry_after_s: u32 },
    #[error("the function raised an error")]
    HandlerError,
    #[error("the function returned an invalid response: {detail}")]
    BadResponse { detail: &'static str },
    #[error("the function is unavailable: {reason}")]
    Unavailable { reason: Arc<str> },
}

impl std::fmt::Debug for PoolSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolSpec")
            .field("function", &self.function)
            .field("runtime", &self.runtime)
            .field("handler", &self.handler)
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("min_workers", &self.min_workers)
            .field("max_workers", &self.max_workers)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// All pools; reload asks it for a pool per function and it reuses unchanged ones.
pub struct PoolRegistry {
    commands: RuntimeCommands,
    launcher: OnceCell<Result<Arc<Launcher>, Arc<str>>>,
    pools: tokio::sync::Mutex<Vec<Arc<Pool>>>,
    serial: Arc<AtomicU64>,
}

impl std::fmt::Debug for PoolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolRegistry").finish_non_exhaustive()
    }
}

impl PoolRegistry {
    pub fn new(commands: RuntimeCommands) -> Self {
        Self {
            commands,
            launcher: OnceCell::new(),
            pools: tokio::sync::Mutex::new(Vec::new()),
            serial: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Returns the running pool for an identical spec, or starts a new one (warm to `min`,
    /// dependencies installed). A failure is represented by a pool answering `Unavailable`.
    pub async fn ensure(&self, spec: PoolSpec) -> Arc<Pool> {
        let mut pools = self.pools.lock().await;
        if let Some(p) = pools.iter().find(|p| p.spec() == &spec && !p.is_retired()) {
            return p.clone();
        }
        let pool = Arc::new(self.start(spec).await);
        pools.push(pool.clone());
        pool
    }

    async fn start(&self, spec: PoolSpec) -> Pool {
        let launcher = self
            .launcher
            .get_or_init(|| async {
                Launcher::new(&self.commands)
                    .await
                    .map(Arc::new)
                    .map_err(|e| {
                        tracing::error!(error = %e, "cannot prepare worker processes");
                        Arc::from("the gateway cannot start workers; see its log")
                    })
            })
            .await;
        let launcher = match launcher {
            Ok(l) => l.clone(),
            Err(reason) => return Pool::unavailable(spec, reason.clone()),
        };
        let interpreter = launcher.interpreter(spec.runtime).to_vec();
        let deps = match deps::ensure(spec.runtime, &spec.dir, &interpreter).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(
                    function = %spec.function,
                    dir = %spec.dir.display(),
                    error = %e,
                    "dependency install failed; this function answers 503 until it is fixed"
                );
                return Pool::unavailable(
                    spec,
                    Arc::from("its dependencies failed to install; see the gateway log"),
                );
            }
        };
        let masker = output::Masker::new(&spec.secrets);
        Pool::start(worker::SpawnCtx {
            spec: Arc::new(spec),
            launcher,
            deps,
            masker,
            serial: self.serial.clone(),
            idle_timeout: self.commands.idle_timeout,
        })
        .await
    }

    /// After a new snapshot is stored: drain and stop the pools not in `live`. In-flight
    /// requests finish on the old workers; the drain runs in the background.
    pub async fn retire_except(&self, live: &[Arc<Pool>]) {
        let mut pools = self.pools.lock().await;
        let (keep, old): (Vec<_>, Vec<_>) = pools
            .drain(..)
            .partition(|p| live.iter().any(|l| Arc::ptr_eq(l, p)));
        *pools = keep;
        for p in old {
            tokio::spawn(async move { p.retire().await });
        }
    }

    /// Graceful shutdown: stop every worker.
    pub async fn shutdown(&self) {
        let pools: Vec<_> = self.pools.lock().await.drain(..).collect();
        let mut all = tokio::task::JoinSet::new();
        for p in pools {
            all.spawn(async move { p.retire().await });
        }
        while all.join_next().await.is_some() {}
        if let Some(Ok(l)) = self.launcher.get() {
            l.cleanup();
        }
    }
}
