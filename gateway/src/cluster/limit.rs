//! A rate-limited request with a cluster store: a leased token when this node holds one
//! (`lease`), else the shared bucket when the store is in use (one script call, which may
//! lease more), else this node's share of the limit (`limit / nodes_hint`, kept in the
//! function's limiter). Without a store the caller checks the local limiter and never
//! comes here.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        let lease = store.lease_tokens > 1;
        if lease && store.leases.spend(&key, Instant::now()) {
            return Ok(());
        }
        let (interval_us, tolerance_us) = limiter.gcra_us();
        match store
            .take(&key, interval_us, tolerance_us, store.lease_tokens)
            .await
        {
            Ok(Ok(granted)) => {
                if lease {
                    let left = granted - 1;
                    store
                        .leases
                        .keep(key, left, Instant::now(), store.lease_window);
                }
                return Ok(());
            }
            Ok(Err(retry_after)) => return Err(retry_after),
            Err(_) => {}
        }
    }
    limiter.node_share(store.nodes_hint).check(ip, subject)
}
