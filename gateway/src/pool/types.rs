//! The values that cross the pool's boundary: what a pool is started from ([`PoolSpec`]),
//! what a request hands a worker ([`WorkerRequest`]) and gets back ([`WorkerResponse`]),
//! and how it fails ([`PoolError`], mapped to statuses in `error.rs`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::catalog::runtime::Runtime;

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
    /// The functions directory: Go's helper files depend on entry files up to it.
    pub root: PathBuf,
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
    /// FastFN's `invoke.handler`: the callable the worker calls instead of its default
    /// lookup (sent in `init`).
    pub handler_name: Option<String>,
    /// FastFN's `shared_deps` pack folders: installed like the function's own manifest,
    /// importable after it.
    pub shared_deps: Vec<PathBuf>,
    /// The status of a request refused for a full queue or a wait that ran out (FastFN's
    /// `worker_pool.overflow_status`: 429 or 503).
    pub overflow_status: StatusCode,
    /// `worker_pool.max_queue` (None: `max·concurrency·8`, at least 32).
    pub max_queue: Option<usize>,
    /// `worker_pool.queue_timeout_ms` (None: the function's timeout).
    pub queue_timeout: Option<Duration>,
    /// `worker_pool.idle_ttl_seconds` (None: `[runtimes] worker_idle_timeout_ms`).
    pub idle_timeout: Option<Duration>,
}

/// Who the gateway let in, for `event.context.auth`.
#[derive(Debug, Clone)]
pub struct AuthContext {
    pub kind: &'static str,
    pub subject: Option<Arc<str>>,
    /// Verified claims the policy forwards (`forward_claims` plus `sub`), when any.
    pub claims: Option<Arc<crate::auth::jwt::ClaimMap>>,
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
    pub meta: Arc<super::event::EventMeta>,
}

/// What the handler answered, validated.
#[derive(Debug)]
pub struct WorkerResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// FastFN's `proxy` answer, for the gateway's `edge` fetch (`crate::edge`).
    pub proxy: Option<Box<serde_json::Value>>,
}

/// The texts are FastFN's (its gateway's `map_runtime_error` and worker-pool answers), so a
/// FastFN client sees the `error` it knows.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The worker's connection closed mid-request, as FastFN's gateway words a runtime
    /// socket that closed.
    #[error("runtime error: closed")]
    Crashed,
    #[error("runtime timeout")]
    Timeout { timeout_ms: u64 },
    /// Every worker busy and the queue full.
    #[error("worker pool overflow")]
    Overloaded {
        retry_after_s: u32,
        status: StatusCode,
    },
    /// Queued, and no worker came free within the function's timeout.
    #[error("worker pool queue timeout")]
    QueueTimeout {
        retry_after_s: u32,
        status: StatusCode,
    },
    /// The handler raised, or returned what its runtime refuses: the status and text
    /// FastFN's runtime daemon answers (the exception's message, secrets masked).
    #[error("{message}")]
    HandlerError {
        status: StatusCode,
        message: Arc<str>,
    },
    /// A frame the gateway cannot serve (status or header out of range); the detail is for
    /// the log.
    #[error("invalid runtime response")]
    BadResponse { detail: &'static str },
    #[error("the function is unavailable: {reason}")]
    Unavailable { reason: Arc<str> },
    #[error("the function is starting, retry shortly")]
    Starting { retry_after_s: u32 },
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
            .field("handler_name", &self.handler_name)
            .finish_non_exhaustive()
    }
}
