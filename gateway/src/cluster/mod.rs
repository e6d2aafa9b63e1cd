//! Shared state for several edgefn nodes behind one balancer (`[cluster]` in edgefn.toml).
//!
//! Off by default: a single node keeps its in-memory limits and replay guards. With
//! `store = "redis://..."` the request path of a rate-limited or replay-guarded function
//! asks Redis (at most one round trip, on one multiplexed connection); every other
//! function never touches it. Flow: `config` is validated at start → `store::ClusterStore`
//! owns the connection and its `health` (shared or fallback) → `limit` (GCRA by a
//! server-side Lua script, or the node's share when Redis is down) and `replay` (`SET NX`
//! with expiry, or 503 / the local guard when it is down) are what the pipeline awaits;
//! `batch` combines concurrent requests' limit calls into one script call, and `lease`
//! remembers leased tokens and refusals so that many requests need no round trip at all.

pub mod batch;
pub mod config;
pub mod health;
pub mod lease;
pub mod limit;
pub mod replay;
pub mod store;

pub use config::ClusterConfig;
pub use store::ClusterStore;

/// The store could not answer (unreachable, timed out, or in fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cluster store is unavailable")]
pub struct StoreDown;
