//! The fallback when XDP is off or unavailable: the same per-source GCRA, allow and deny
//! semantics as the XDP program, applied in the accept loop. The kernel has already
//! completed the handshake by then, so this protects the request path, not the SYN queue.
//!
//! Memory is bounded: at [`MAX_SOURCES`] entries, sources whose bucket is full again are
//! forgotten (they are indistinguishable from new ones); if none are, a new source is
//! admitted without being remembered, as the XDP LRU does when it cannot insert.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use gateway_common::{gcra, limits, MAX_SOURCES};
use ipnet::IpNet;

use crate::config::xdp::XdpConfig;

/// What the limiter decided for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Allowlisted,
    Drop,
    Denylisted,
}

impl Verdict {
    pub fn admitted(self) -> bool {
        matches!(self, Verdict::Pass | Verdict::Allowlisted)
    }
}

struct Rules {
    interval_ns: u64,
    tolerance_ns: u64,
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

struct Inner {
    rules: Rules,
    /// Source → theoretical arrival time, in ns since `epoch`.
    sources: HashMap<IpAddr, u64>,
}

pub struct UserSpaceLimiter {
    epoch: Instant,
    inner: Mutex<Inner>,
    capacity: usize,
}

impl std::fmt::Debug for UserSpaceLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSpaceLimiter")
            .field("tracked", &self.tracked_sources())
            .finish()
    }
}

fn rules(cfg: &XdpConfig) -> Rules {
    let (interval_ns, tolerance_ns) = limits(cfg.new_connections_per_second, cfg.burst);
    Rules {
        interval_ns,
        tolerance_ns,
        allow: cfg.allow.clone(),
        deny: cfg.deny.clone(),
    }
}

impl UserSpaceLimiter {
    pub fn new(cfg: &XdpConfig) -> UserSpaceLimiter {
        Self::with_capacity(cfg, MAX_SOURCES as usize)
    }

    pub fn with_capacity(cfg: &XdpConfig, capacity: usize) -> UserSpaceLimiter {
        UserSpaceLimiter {
            epoch: Instant::now(),
            inner: Mutex::new(Inner {
                rules: rules(cfg),
                sources: HashMap::new(),
            }),
            capacity: capacity.max(1),
        }
    }

    pub fn reconfigure(&self, cfg: &XdpConfig) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.rules = rules(cfg);
    }

    pub fn tracked_sources(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.sources.len()
    }

    pub fn check(&self, peer: IpAddr) -> Verdict {
        let now = self.epoch.elapsed().as_nanos() as u64;
        self.check_at(peer, now)
    }

    /// [`check`](Self::check) at an explicit time, for tests.
    pub fn check_at(&self, peer: IpAddr, now: u64) -> Verdict {
        // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; lists are written in v4.
        let peer = peer.to_canonical();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner { rules, sources } = &mut *inner;
        if rules.allow.iter().any(|n| n.contains(&peer)) {
            return Verdict::Allowlisted;
        }
        if rules.deny.iter().any(|n| n.contains(&peer)) {
            return Verdict::Denylisted;
        }
        if rules.interval_ns == 0 {
            return Verdict::Pass;
        }
        let (iv, tol) = (rules.interval_ns, rules.tolerance_ns);
        if let Some(tat) = sources.get_mut(&peer) {
            return match gcra(now, *tat, iv, tol) {
                Some(next) => {
                    *tat = next;
                    Verdict::Pass
                }
                None => Verdict::Drop,
            };
        }
        if sources.len() >= self.capacity {
            sources.retain(|_, tat| *tat > now);
        }
        if sources.len() < self.capacity {
            sources.insert(peer, gcra(now, 0, iv, tol).unwrap_or(now));
        }
        Verdict::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn cfg(rate: u32, burst: u32) -> XdpConfig {
        XdpConfig {
            new_connections_per_second: rate,
            burst,
            ..XdpConfig::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn burst_then_drop_per_source() {
        let l = UserSpaceLimiter::new(&cfg(1, 2));
        let a = ip("10.203.0.2");
        assert_eq!(l.check_at(a, S), Verdict::Pass);
        assert_eq!(l.check_at(a, S), Verdict::Pass);
        assert_eq!(l.check_at(a, S), Verdict::Drop);
        assert_eq!(
            l.check_at(ip("10.203.0.3"), S),
            Verdict::Pass,
            "other source"
        );
        assert_eq!(l.check_at(a, 2 * S), Verdict::Pass, "refilled");
    }

    #[test]
    fn v4_mapped_peers_share_the_v4_bucket() {
        let l = UserSpaceLimiter::new(&cfg(1, 1));
        assert_eq!(l.check_at(ip("10.203.0.2"), S), Verdict::Pass);
        assert_eq!(l.check_at(ip("::ffff:10.203.0.2"), S), Verdict::Drop);
    }

    #[test]
    fn allow_bypasses_and_deny_drops() {
        let mut c = cfg(1, 1);
        c.allow = vec!["10.203.1.0/24".parse().unwrap()];
        c.deny = vec![
            "10.203.0.0/16".parse().unwrap(),
            "fd00:203::/64".parse().unwrap(),
        ];
        let l = UserSpaceLimiter::new(&c);
        for _ in 0..10 {
            assert_eq!(l.check_at(ip("10.203.1.9"), S), Verdict::Allowlisted);
        }
        assert_eq!(l.check_at(ip("10.203.2.9"), S), Verdict::Denylisted);
        assert_eq!(l.check_at(ip("fd00:203::7"), S), Verdict::Denylisted);
        assert_eq!(l.check_at(ip("192.0.2.1"), S), Verdict::Pass);
    }

    #[test]
    fn no_rate_means_no_state() {
        let l = UserSpaceLimiter::new(&cfg(0, 0));
        for _ in 0..100 {
            assert!(l.check_at(ip("10.203.0.2"), S).admitted());
        }
        assert_eq!(l.tracked_sources(), 0);
    }

    #[test]
    fn memory_is_bounded() {
        let l = UserSpaceLimiter::with_capacity(&cfg(1, 1), 4);
        for i in 0..100u8 {
            assert_eq!(l.check_at(IpAddr::from([10, 203, 9, i]), S), Verdict::Pass);
        }
        assert_eq!(l.tracked_sources(), 4);
        // Later, idle entries are forgotten to make room.
        assert_eq!(l.check_at(ip("10.203.8.1"), 10 * S), Verdict::Pass);
        assert_eq!(l.tracked_sources(), 1);
    }

    #[test]
    fn reconfigure_changes_limits_live() {
        let l = UserSpaceLimiter::new(&cfg(1, 1));
        let a = ip("10.203.0.2");
        assert_eq!(l.check_at(a, S), Verdict::Pass);
        assert_eq!(l.check_at(a, S), Verdict::Drop);
        l.reconfigure(&cfg(0, 0));
        assert_eq!(l.check_at(a, S), Verdict::Pass);
    }
}
