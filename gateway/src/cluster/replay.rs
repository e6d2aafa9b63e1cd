//! A replay-guarded webhook with a cluster store: the message digest is claimed with
//! `SET NX` (expiring with its tolerance window), so a message accepted by one node is
//! `replayed` on every other. When the store cannot answer the request is refused with 503
//! (a sender retries later) unless `replay_fail_open`, when the node's own guard decides.

use std::sync::Arc;

use super::store::ClusterStore;
use super::StoreDown;
use crate::auth::replay::ReplayClaim;
use crate::auth::Policy;

pub enum Verdict {
    First,
    Replayed,
}

pub async fn check(
    store: &Arc<ClusterStore>,
    function: &str,
    policy: &Policy,
    claim: &ReplayClaim,
    now_unix: u64,
) -> Result<Verdict, StoreDown> {
    let local = || {
        if policy.claim_locally(claim, now_unix) {
            Verdict::First
        } else {
            Verdict::Replayed
        }
    };
    if !store.is_shared() {
        return if store.replay_fail_open {
            Ok(local())
        } else {
            Err(StoreDown)
        };
    }
    let key = format!("edgefn:replay:{function}:{}", hex::encode(claim.digest));
    let ttl = claim.expires_unix.saturating_sub(now_unix).max(1);
    match store.claim(&key, ttl).await {
        Ok(true) => Ok(Verdict::First),
        Ok(false) => Ok(Verdict::Replayed),
        Err(StoreDown) if store.replay_fail_open => Ok(local()),
        Err(e) => Err(e),
    }
}
