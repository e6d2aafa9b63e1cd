//! Per-function L7 rate limits (`"rate_limit"` in fn.config.json).
//!
//! CONTRACT STUB: the auth work replaces the body, keeping these names.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

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

/// A compiled limiter shared by all requests of one function.
#[derive(Debug)]
pub struct RateLimiter {
    _by: RateLimitBy,
}

impl RateLimiter {
    pub fn compile(cfg: &RateLimitConfig) -> Result<RateLimiter, String> {
        Ok(Self { _by: cfg.by })
    }

    pub fn by(&self) -> RateLimitBy {
        self._by
    }

    /// `Err(retry_after)` when over the limit. `subject` is the auth subject for `by: key`.
    pub fn check(&self, _ip: IpAddr, _subject: Option<&str>) -> Result<(), Duration> {
        Ok(())
    }
}
