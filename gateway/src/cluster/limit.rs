//! A rate-limited request with a cluster store: what the node already knows (a leased
//! token, or a refusal still in force: `lease`), else the shared bucket when the store is
//! in use (one script call, combined with concurrent requests by `batch`), else this
//! node's share of the limit (`limit / nodes_hint`, kept in the function's limiter).
//! Without a store the caller checks the local limiter and never comes here.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::lease::Local;
use super::store::ClusterStore;
use crate::limits::RateLimiter;

/// The store's key of a client's bucket for `function`.
fn key(function: &str, limiter: &RateLimiter, ip: IpAddr, subject: Option<&str>) -> String {
    format!("edgefn:rl:{function}:{}", limiter.client_key(ip, subject))
}

/// The verdict when the node can give it without IO (a leased token is spent), `None`
/// when only the store (or the fallback) can: the synchronous part of [`check`].
pub fn known(
    store: &ClusterStore,
    function: &str,
    limiter: &RateLimiter,
    ip: IpAddr,
    subject: Option<&str>,
) -> Option<Result<(), Duration>> {
    if !store.is_shared() {
        return None;
    }
    match store
        .leases
        .check(&key(function, limiter, ip, subject), Instant::now())
    {
        Local::Admit => Some(Ok(())),
        Local::Refuse(retry_after) => Some(Err(retry_after)),
        Local::Ask => None,
    }
}

/// `Err(retry_after)` when over the limit.
pub async fn check(
    store: &Arc<ClusterStore>,
    function: &str,
    limiter: &RateLimiter,
    ip: IpAddr,
    subject: Option<&str>,
) -> Result<(), Duration> {
    if store.is_shared() {
        let key = key(function, limiter, ip, subject);
        match store.leases.check(&key, Instant::now()) {
            Local::Admit => return Ok(()),
            Local::Refuse(retry_after) => return Err(retry_after),
            Local::Ask => {}
        }
        if let Ok(verdict) = store.batcher.take(store, &key, limiter.gcra_us()).await {
            return verdict;
        }
    }
    limiter.node_share(store.nodes_hint).check(ip, subject)
}
