//! Warm runtime worker pools.
//!
//! CONTRACT STUB: the runtimes work replaces the body of this module, keeping these names.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

/// Which runtime runs a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    Python,
    Node,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Python => "python",
            Runtime::Node => "node",
        }
    }
}

/// Commands that start each runtime (`[runtimes.*] command` in edgefn.toml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeCommands {
    pub python: Vec<String>,
    pub node: Vec<String>,
}

impl Default for RuntimeCommands {
    fn default() -> Self {
        Self {
            python: vec!["python3".into()],
            node: vec!["node".into()],
        }
    }
}

/// Everything a pool needs about its function, computed at load.
#[derive(Debug, Clone, PartialEq)]
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

/// The pool of one function version.
#[derive(Debug)]
pub struct Pool {
    spec: PoolSpec,
}

impl Pool {
    pub fn spec(&self) -> &PoolSpec {
        &self.spec
    }

    pub async fn dispatch(&self, _req: WorkerRequest) -> Result<WorkerResponse, PoolError> {
        Err(PoolError::Unavailable {
            reason: Arc::from("runtimes not built yet"),
        })
    }
}

/// All pools; reload asks it for a pool per function and it reuses unchanged ones.
#[derive(Debug, Default)]
pub struct PoolRegistry {
    _commands: RuntimeCommands,
}

impl PoolRegistry {
    pub fn new(commands: RuntimeCommands) -> Self {
        Self {
            _commands: commands,
        }
    }

    /// Returns the running pool for an identical spec, or starts a new one (warm to `min`,
    /// dependencies installed). A failure is represented by a pool answering `Unavailable`.
    pub async fn ensure(&self, spec: PoolSpec) -> Arc<Pool> {
        Arc::new(Pool { spec })
    }

    /// After a new snapshot is stored: drain and stop the pools not in `live`.
    pub async fn retire_except(&self, _live: &[Arc<Pool>]) {}

    /// Graceful shutdown: stop every worker.
    pub async fn shutdown(&self) {}
}
