//! How many PBKDF2 derivations (Basic auth) one client address may cause: a small token
//! bucket per address ([`PER_SECOND`], [`BURST`]), process-wide, so a wrong-password
//! flood from one address spends its own budget and then gets 429 before any derivation,
//! instead of holding the few PBKDF2 slots every other client needs. Credentials already
//! verified (the success cache in `auth::basic_cache`) never reach this bucket. Keyed and
//! bounded like the per-function limits (IPv6 by /64, idle buckets swept).

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use super::{RateLimitBy, RateLimitConfig, RateLimiter};

/// Derivations per second one address earns.
pub const PER_SECOND: f64 = 2.0;
/// Derivations an idle address may cause back to back.
pub const BURST: u32 = 5;
/// `Retry-After` of the 429: one token's worth, rounded up to a whole second.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

fn budget() -> &'static RateLimiter {
    static BUDGET: OnceLock<RateLimiter> = OnceLock::new();
    BUDGET.get_or_init(|| {
        RateLimiter::validate(&RateLimitConfig {
            per_second: PER_SECOND,
            burst: Some(BURST),
            by: RateLimitBy::Ip,
        })
        .expect("the PBKDF2 budget constants are in range")
    })
}

/// Whether `peer` has a derivation left, without spending it (checked before waiting for
/// a PBKDF2 slot, so a throttled flood never queues for one).
pub fn has_budget(peer: IpAddr) -> bool {
    budget().would_admit_ip(peer)
}

/// Spends one derivation of `peer`'s budget; `false` when it has none left.
pub fn admit(peer: IpAddr) -> bool {
    budget().check(peer, None).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_spending_its_burst_leaves_the_others_theirs() {
        let flood: IpAddr = "192.0.2.77".parse().unwrap();
        let other: IpAddr = "192.0.2.78".parse().unwrap();
        let admitted = (0..BURST * 4).filter(|_| admit(flood)).count();
        assert!(admitted >= BURST as usize, "{admitted}");
        assert!(admitted < (BURST * 2) as usize, "{admitted}");
        assert!(!admit(flood));
        assert!(!has_budget(flood));
        assert!(has_budget(other));
        assert!(admit(other));
    }
}
