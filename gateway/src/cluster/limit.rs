//! A rate-limited request with a cluster store: the shared bucket when the store is in
//! use (one script call), else this node's share of the limit (`limit / nodes_hint`, kept
//! in the function's limiter). Without a store the caller checks the local limiter and
//! never comes here.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::store::ClusterStore;
use crate::limits::RateLimiter;

/// `Err(retry_after)` when over the limit.
pub async fn check(
    store: &Arc<ClusterStore>,
    function: &str,
    limiter: &RateLimiter,
    ip: IpAddr,
    subject: Option<&str>,
) -> Result<(), Duration> {
    if store.is_shared() {
        let key = format!("edgefn:rl:{function}:{}", limiter.client_key(ip, subject));
        let (interval_us, tolerance_us) = limiter.gcra_us();
        if let Ok(outcome) = store.take(&key, interval_us, tolerance_us).await {
            return outcome;
        }
    }
    limiter.node_share(store.nodes_hint).check(ip, subject)
}
