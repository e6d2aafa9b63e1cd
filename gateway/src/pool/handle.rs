//! [`Pool`]: what a snapshot holds for one function, across its versions. Requests go to
//! the version that serves now; a new version (changed code, env or policy) starts
//! beside it and replaces it only once its first workers are ready. Until a brand-new
//! function's first version is up it answers 503 with `Retry-After`.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::Notify;

use super::function_pool::FunctionPool;
use super::{PoolError, WorkerRequest, WorkerResponse};

/// What serves a function's requests right now.
pub(super) enum Serving {
    /// Its dependencies install or its first workers start.
    Starting,
    Live(Arc<FunctionPool>),
    /// It cannot run (its dependencies failed to install); the reason is client-safe.
    Unavailable(Arc<str>),
}

/// One function's pool handle; the same value across reloads while the function exists.
pub struct Pool {
    function: Arc<str>,
    serving: ArcSwap<Serving>,
    swapped: Notify,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("function", &self.function)
            .field("pending", &self.is_pending())
            .finish_non_exhaustive()
    }
}

impl Pool {
    pub(super) fn new(function: Arc<str>) -> Pool {
        Pool {
            function,
            serving: ArcSwap::from_pointee(Serving::Starting),
            swapped: Notify::new(),
        }
    }

    pub fn function(&self) -> &str {
        &self.function
    }

    /// No version serves yet (listed by `/readyz`).
    pub fn is_pending(&self) -> bool {
        matches!(**self.serving.load(), Serving::Starting)
    }

    /// Waits until a first version serves (or the function is known not to run).
    pub async fn wait_started(&self) {
        loop {
            let swapped = self.swapped.notified();
            tokio::pin!(swapped);
            swapped.as_mut().enable();
            if !self.is_pending() {
                return;
            }
            swapped.await;
        }
    }

    pub async fn dispatch(&self, req: &WorkerRequest) -> Result<WorkerResponse, PoolError> {
        let serving = self.serving.load_full();
        match &*serving {
            Serving::Starting => Err(PoolError::Starting { retry_after_s: 1 }),
            Serving::Live(p) => p.dispatch(req).await,
            Serving::Unavailable(reason) => Err(PoolError::Unavailable {
                reason: reason.clone(),
            }),
        }
    }

    /// The version serving now, if any.
    pub(super) fn live(&self) -> Option<Arc<FunctionPool>> {
        match &**self.serving.load() {
            Serving::Live(p) => Some(p.clone()),
            Serving::Starting | Serving::Unavailable(_) => None,
        }
    }

    /// Serves `next` from now on; returns the version it replaced.
    pub(super) fn swap(&self, next: Serving) -> Option<Arc<FunctionPool>> {
        let old = self.serving.swap(Arc::new(next));
        self.swapped.notify_waiters();
        match &*old {
            Serving::Live(p) => Some(p.clone()),
            Serving::Starting | Serving::Unavailable(_) => None,
        }
    }
}
