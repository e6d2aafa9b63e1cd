//! The IO edge of a pool: how a worker is started ([`Spawn`]) and talked to
//! ([`Channel`]). `worker.rs` implements both over real processes; the pool's tests
//! implement them with in-memory fakes. A worker reports back through [`Events`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::machine::{ExitCause, RequestId, WorkerId};
use super::worker::StartError;
use super::{PoolError, WorkerRequest, WorkerResponse};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub type Reply = Result<WorkerResponse, PoolError>;

/// What a worker tells its pool after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerEvent {
    /// The worker no longer runs a cancelled request (it said so, or answered it late).
    CancelAcked(RequestId),
    /// The process is gone; every request still waiting on it was answered.
    Exited(ExitCause),
}

/// Called by the worker's supervisor, never while the pool's lock is held.
pub type Events = Arc<dyn Fn(WorkerEvent) + Send + Sync>;

/// Starts one worker and waits until its handler is loaded.
pub trait Spawn: Send + Sync + 'static {
    fn spawn(
        &self,
        id: WorkerId,
        events: Events,
    ) -> BoxFuture<'static, Result<Arc<dyn Channel>, StartError>>;
}

/// A ready worker.
pub trait Channel: Send + Sync + 'static {
    /// Sends one request; the receiver gets its reply (or an error when the worker dies).
    fn send<'a>(
        &'a self,
        req: &'a WorkerRequest,
    ) -> BoxFuture<'a, Result<(RequestId, oneshot::Receiver<Reply>), PoolError>>;
    /// Asks the worker to drop `req`; [`WorkerEvent::CancelAcked`] follows (at once when
    /// `req` already finished).
    fn cancel(&self, req: RequestId);
    /// Stops the process; the first cause given wins; [`WorkerEvent::Exited`] follows.
    fn kill(&self, cause: ExitCause);
}
