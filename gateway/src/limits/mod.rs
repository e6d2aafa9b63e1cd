//! Per-function L7 rate limits (`"rate_limit"` in fn.config.json).
//!
//! Raw config → validated [`RateLimiter`] at reload; on the request path one map lookup and
//! one CAS ([`bucket::Gcra`]). Buckets are keyed by client IP (IPv6 by its /64, so one host
//! cannot rotate through its own prefix) or, with `"by": "key"`, by the authenticated
//! subject (falling back to the IP for anonymous requests). Memory is bounded: at
//! [`MAX_ENTRIES`] idle buckets are swept (losslessly, see `bucket`), and when every bucket
//! is live, new clients share one overflow bucket instead of growing the table.

pub mod bucket;
pub mod pbkdf2_budget;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde::Deserialize;

use bucket::Gcra;

/// Ceiling on `per_second`.
pub const MAX_PER_SECOND: f64 = 1_000_000.0;
/// Floor on `per_second` (one request per ~17 minutes).
pub const MIN_PER_SECOND: f64 = 0.001;
pub const MAX_BURST: u32 = 100_000;
/// Buckets kept per function before idle ones are swept.
pub const MAX_ENTRIES: usize = 100_000;
/// Minimum time between two sweeps of a full table.
const SWEEP_EVERY_NS: u64 = 100_000_000;

/// Raw `"rate_limit"` object.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub per_second: f64,
    pub burst: Option<u32>,
    #[serde(default)]
    pub by: RateLimitBy,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitBy {
    Key,
    #[default]
    Ip,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RateLimitError {
    #[error("per_second: {value} is out of range; use a number from {MIN_PER_SECOND} to {MAX_PER_SECOND}")]
    PerSecond { value: f64 },
    #[error("burst: {value} is out of range; use 1 to {MAX_BURST}")]
    Burst { value: u32 },
}

/// A compiled limiter shared by all requests of one function.
#[derive(Debug)]
pub struct RateLimiter {
    by: RateLimitBy,
    gcra: Gcra,
    start: Instant,
    ips: DashMap<IpAddr, AtomicU64>,
    subjects: DashMap<Box<str>, AtomicU64>,
    overflow: AtomicU64,
    last_sweep: AtomicU64,
    /// This node's share while the cluster store is unreachable (built on first use).
    share: OnceLock<Box<RateLimiter>>,
}

impl RateLimiter {
    pub fn compile(cfg: &RateLimitConfig) -> Result<RateLimiter, String> {
        Self::validate(cfg).map_err(|e| e.to_string())
    }

    /// [`RateLimiter::compile`] with a typed error.
    pub fn validate(cfg: &RateLimitConfig) -> Result<RateLimiter, RateLimitError> {
        let ps = cfg.per_second;
        if !ps.is_finite() || !(MIN_PER_SECOND..=MAX_PER_SECOND).contains(&ps) {
            return Err(RateLimitError::PerSecond { value: ps });
        }
        // Default burst: one second's worth of requests, within the burst limit (a value
        // the user did not write must not be the one refused).
        let burst = cfg.burst.unwrap_or((ps.ceil() as u32).clamp(1, MAX_BURST));
        if burst == 0 || burst > MAX_BURST {
            return Err(RateLimitError::Burst { value: burst });
        }
        Ok(RateLimiter {
            by: cfg.by,
            gcra: Gcra::new(ps, burst),
            start: Instant::now(),
            ips: DashMap::new(),
            subjects: DashMap::new(),
            overflow: AtomicU64::new(0),
            last_sweep: AtomicU64::new(0),
            share: OnceLock::new(),
        })
    }

    /// The limiter of one node out of `nodes`: rate and burst divided, rounded up (so
    /// during a store outage a client gets at most about its limit across the nodes).
    pub fn node_share(&self, nodes: u32) -> &RateLimiter {
        if nodes <= 1 {
            return self;
        }
        self.share.get_or_init(|| {
            let n = u64::from(nodes);
            let interval = self.gcra.interval_ns();
            let burst = self.gcra.tolerance_ns() / interval + 1;
            let share_burst = burst.div_ceil(n) as u32;
            let mut share = RateLimiter::validate(&RateLimitConfig {
                per_second: 1.0,
                burst: Some(share_burst),
                by: self.by,
            })
            .expect("a share of a valid limit is valid");
            share.gcra = Gcra::from_parts(interval.saturating_mul(n), share_burst);
            Box::new(share)
        })
    }

    /// The bucket key of a client (what `check` keys on), for the cluster store: the IP
    /// (IPv6 by /64) or a digest of the subject (bounded length, no identity in Redis).
    pub fn client_key(&self, ip: IpAddr, subject: Option<&str>) -> String {
        match (self.by, subject) {
            (RateLimitBy::Key, Some(s)) => {
                let d = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
                format!("k:{}", hex::encode(&d.as_ref()[..16]))
            }
            _ => format!("ip:{}", prefix(ip)),
        }
    }

    /// Emission interval and burst tolerance in microseconds, for the store's script.
    pub fn gcra_us(&self) -> (u64, u64) {
        (
            self.gcra.interval_ns().div_ceil(1000).max(1),
            self.gcra.tolerance_ns() / 1000,
        )
    }

    pub fn by(&self) -> RateLimitBy {
        self.by
    }

    /// `Err(retry_after)` when over the limit. `subject` is the auth subject for `by: key`.
    pub fn check(&self, ip: IpAddr, subject: Option<&str>) -> Result<(), Duration> {
        self.check_at(ip, subject, self.now_ns())
    }

    /// Whether [`RateLimiter::check`] would admit `ip` (by address) now, spending nothing:
    /// for callers that may fail to use the token for reasons of their own.
    pub fn would_admit_ip(&self, ip: IpAddr) -> bool {
        let now = self.now_ns();
        self.ips
            .get(&prefix(ip))
            .is_none_or(|tat| self.gcra.would_admit(&tat, now))
    }

    fn now_ns(&self) -> u64 {
        // Offset by one interval so a fresh bucket (TAT 0) is never "in the future".
        self.start.elapsed().as_nanos() as u64 + self.gcra.interval_ns()
    }

    fn check_at(&self, ip: IpAddr, subject: Option<&str>, now: u64) -> Result<(), Duration> {
        let result = match (self.by, subject) {
            (RateLimitBy::Key, Some(s)) => self.check_in(&self.subjects, s, || s.into(), now),
            _ => {
                let ip = prefix(ip);
                self.check_in(&self.ips, &ip, || ip, now)
            }
        };
        result.map_err(Duration::from_nanos)
    }

    fn check_in<K, Q>(
        &self,
        map: &DashMap<K, AtomicU64>,
        key: &Q,
        owned: impl FnOnce() -> K,
        now: u64,
    ) -> Result<(), u64>
    where
        K: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        if let Some(tat) = map.get(key) {
            return self.gcra.check(&tat, now);
        }
        if map.len() >= MAX_ENTRIES {
            self.sweep(map, now);
            if map.len() >= MAX_ENTRIES {
                return self.gcra.check(&self.overflow, now);
            }
        }
        let tat = map.entry(owned()).or_insert_with(|| AtomicU64::new(0));
        self.gcra.check(&tat, now)
    }

    fn sweep<K: std::hash::Hash + Eq>(&self, map: &DashMap<K, AtomicU64>, now: u64) {
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.saturating_sub(last) < SWEEP_EVERY_NS
            || self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        map.retain(|_, tat| !Gcra::is_idle(tat, now));
    }

    /// Buckets currently held (for tests and debugging).
    pub fn len(&self) -> usize {
        self.ips.len() + self.subjects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// IPv6 clients are limited per /64 (what one subscriber usually gets).
fn prefix(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests;
