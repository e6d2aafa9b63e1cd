//! The two places queued calls live: `embedded` (redb on local disk, group commit) and
//! `redis` (Redis Streams with a consumer group, shared by several nodes). Both answer
//! the same calls; [`Backend`] picks one by `[async] store`.

pub mod embedded;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use super::call::{Call, Record};
use super::machine::{CallState, Progress};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the embedded queue failed: {source}")]
    Embedded { source: Arc<::redb::Error> },
    #[error("cannot open the embedded queue in {path}: {source}")]
    Open {
        path: std::path::PathBuf,
        source: Arc<std::io::Error>,
    },
    #[error("the Redis queue failed: {source}")]
    Redis { source: Arc<::redis::RedisError> },
    #[error("the queue's writer has stopped")]
    Closed,
    #[error("a call with this X-Call-Id is already queued")]
    Duplicate,
}

impl<E: Into<::redb::Error>> From<E> for StoreError {
    fn from(e: E) -> Self {
        StoreError::Embedded {
            source: Arc::new(e.into()),
        }
    }
}

/// A call a dispatcher took: run it, then settle it with the same value.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub call: Call,
    pub progress: Progress,
    /// Redis: the stream entry id to acknowledge; embedded: unused.
    pub entry: Option<String>,
}

/// How a call leaves `running`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Done,
    Dead,
    /// Back in the queue, due at this Unix time (ms).
    RetryAt(u64),
}

pub enum Backend {
    Embedded(embedded::Embedded),
    Redis(redis::RedisStore),
}

impl Backend {
    pub async fn enqueue(&self, call: Call) -> Result<(), StoreError> {
        match self {
            Backend::Embedded(s) => s.enqueue(call).await,
            Backend::Redis(s) => s.enqueue(call).await,
        }
    }

    /// Up to `max` calls due now, marked running (one more attempt).
    pub async fn claim(&self, max: usize) -> Result<Vec<Claimed>, StoreError> {
        match self {
            Backend::Embedded(s) => s.claim(max).await,
            Backend::Redis(s) => s.claim(max).await,
        }
    }

    pub async fn settle(
        &self,
        c: &Claimed,
        progress: Progress,
        how: Settle,
    ) -> Result<(), StoreError> {
        match self {
            Backend::Embedded(s) => s.settle(c, progress, how).await,
            Backend::Redis(s) => s.settle(c, progress, how).await,
        }
    }

    /// How long an idle dispatcher may sleep before it must claim again, unless rung:
    /// the embedded store knows when its next call comes due; Redis is polled (other
    /// nodes queue calls too). At most `cap`.
    pub fn idle_wait(
        &self,
        poll: std::time::Duration,
        cap: std::time::Duration,
    ) -> std::time::Duration {
        match self {
            Backend::Embedded(s) => s.next_due().map_or(cap, |due| {
                Duration::from_millis(due.saturating_sub(now_ms())).min(cap)
            }),
            Backend::Redis(_) => poll,
        }
    }

    /// Keeps a claimed call this node's while the guard lives (Redis; nothing to do for
    /// the embedded store, whose calls no other node can take).
    pub fn hold(&self, c: &Claimed) -> Option<redis::Hold> {
        match (self, &c.entry) {
            (Backend::Redis(s), Some(entry)) => Some(s.hold(entry)),
            _ => None,
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Progress>, StoreError> {
        match self {
            Backend::Embedded(s) => s.get(id).await,
            Backend::Redis(s) => s.get(id).await,
        }
    }

    pub async fn list(
        &self,
        state: CallState,
        limit: usize,
    ) -> Result<Vec<(String, Progress)>, StoreError> {
        match self {
            Backend::Embedded(s) => s.list(state, limit).await,
            Backend::Redis(s) => s.list(state, limit).await,
        }
    }

    /// Calls queued or running, for `max_queued` and the gauge.
    pub async fn pending(&self) -> Result<u64, StoreError> {
        match self {
            Backend::Embedded(s) => Ok(s.pending()),
            Backend::Redis(s) => s.pending().await,
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn record(call: Call) -> Record {
    Record {
        call: Some(call),
        progress: Progress::queued(),
    }
}
