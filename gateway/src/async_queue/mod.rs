//! Durable asynchronous invocation. Flow: the pipeline admits a `POST /async-function/...`
//! exactly like a synchronous call (route, method, auth, rate limit, body limit), checks
//! its `X-Callback-Url` against the SSRF guard, and [`AsyncQueue::enqueue`]s it; the 202
//! goes out once the store holds the call. The `dispatcher` takes due calls from the store,
//! runs them on the function's warm pool within a bounded share of its workers, and
//! settles each as the `machine` decides (done, retry later, dead), POSTing the answer to
//! the callback URL through `callback`. `store` holds the calls (embedded or Redis).

pub mod call;
pub mod callback;
pub mod dispatcher;
pub mod machine;
pub mod metrics;
pub mod ssrf;
pub mod store;

use std::sync::Arc;

use tokio::sync::Notify;

use crate::config::openfaas::{AsyncConfig, StoreKind};
use call::Call;
use machine::{CallState, Progress};
use ssrf::{Guard, UrlRefusal};
use store::{Backend, StoreError};

/// Why an async call was not queued.
#[derive(Debug, thiserror::Error)]
pub enum AsyncError {
    #[error("the async queue is full; retry later")]
    Full,
    #[error("the async queue is unavailable; retry later")]
    Unavailable { source: StoreError },
    #[error("{refusal}")]
    Callback { refusal: UrlRefusal },
    #[error("a call with this X-Call-Id is already queued")]
    Duplicate,
}

impl From<StoreError> for AsyncError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate => AsyncError::Duplicate,
            other => AsyncError::Unavailable { source: other },
        }
    }
}

pub struct AsyncQueue {
    backend: Backend,
    cfg: AsyncConfig,
    guard: Arc<Guard>,
    callbacks: callback::Callbacks,
    /// Rung at every enqueue so an idle dispatcher looks again at once.
    wake: Notify,
}

impl AsyncQueue {
    /// Opens the configured store: an unusable data_dir or an unreachable Redis is an
    /// error here, at start.
    pub async fn open(cfg: &AsyncConfig) -> Result<Arc<AsyncQueue>, StoreError> {
        let backend = match &cfg.store {
            StoreKind::Embedded => {
                let dir = cfg.data_dir.clone();
                let s = tokio::task::spawn_blocking(move || {
                    store::embedded::sweep_ephemeral(&dir);
                    store::embedded::Embedded::open(&dir)
                })
                .await
                .map_err(|_| StoreError::Closed)??;
                Backend::Embedded(s)
            }
            StoreKind::Redis { url } => Backend::Redis(
                store::redis::RedisStore::connect(url, cfg.visibility_timeout).await?,
            ),
        };
        let guard = Arc::new(Guard::new(&cfg.callback_allow));
        let q = Arc::new(AsyncQueue {
            backend,
            cfg: cfg.clone(),
            callbacks: callback::Callbacks::new(guard.clone()),
            guard,
            wake: Notify::new(),
        });
        if let Ok(n) = q.backend.pending().await {
            metrics::queued(n);
        }
        Ok(q)
    }

    /// The enqueue-time check of `X-Callback-Url`; the URL as it will be called.
    pub async fn check_callback(&self, raw: &[u8]) -> Result<String, AsyncError> {
        self.guard
            .check(raw)
            .await
            .map(String::from)
            .map_err(|refusal| AsyncError::Callback { refusal })
    }

    /// Stores the call durably (or fails); `max_queued` bounds what is queued or running.
    pub async fn enqueue(&self, call: Call) -> Result<(), AsyncError> {
        let pending = self.backend.pending().await?;
        if pending >= self.cfg.max_queued {
            return Err(AsyncError::Full);
        }
        self.backend.enqueue(call).await?;
        metrics::queued(pending + 1);
        self.wake.notify_one();
        Ok(())
    }

    pub async fn status(&self, id: &str) -> Result<Option<Progress>, StoreError> {
        self.backend.get(id).await
    }

    pub async fn list(
        &self,
        state: CallState,
        limit: usize,
    ) -> Result<Vec<(String, Progress)>, StoreError> {
        self.backend.list(state, limit).await
    }
}
