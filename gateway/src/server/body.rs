//! Reading a request body, bounded in size and in time, for every protocol hyper serves
//! (HTTP/1 bodies, chunked or not, and h2 streams). Frames are collected until the end of
//! the body, the size limit, or the [`BodyClock`]'s deadline: the whole body within
//! `server.body_read_timeout_ms`, and after the first second at least
//! `server.min_body_bytes_per_s` on average. A stalled or trickled body therefore ends in a
//! 408 (and the connection is closed) instead of holding the connection for ever.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::error::{BodyTimeout, GatewayError};
use crate::metrics::names;

/// `[server] body_read_timeout_ms` and `min_body_bytes_per_s`, compiled.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub timeout: Duration,
    /// 0: no rate check, only the whole-body timeout.
    pub min_bytes_per_s: u64,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            timeout: Duration::from_secs(30),
            min_bytes_per_s: 1024,
        }
    }
}

/// The first second is free: a client's first bytes may follow a TCP slow start.
const GRACE: Duration = Duration::from_secs(1);

/// When a body read must end, given what has arrived; pure, so the rules are tested with
/// no socket and no clock.
#[derive(Debug, Clone, Copy)]
pub struct BodyClock {
    start: Instant,
    limits: BodyLimits,
}

impl BodyClock {
    pub fn new(start: Instant, limits: BodyLimits) -> Self {
        BodyClock { start, limits }
    }

    /// The instant past which `received` bytes are too few (or the whole-body timeout,
    /// whichever comes first). More bytes can only push it later.
    pub fn deadline(&self, received: u64) -> Instant {
        let overall = self.start + self.limits.timeout;
        if self.limits.min_bytes_per_s == 0 {
            return overall;
        }
        let earned = Duration::from_secs_f64(received as f64 / self.limits.min_bytes_per_s as f64);
        (self.start + earned.max(GRACE)).min(overall)
    }

    /// Why a read that reached its deadline at `now` failed.
    pub fn expired(&self, now: Instant) -> BodyTimeout {
        if now >= self.start + self.limits.timeout {
            BodyTimeout::Deadline {
                timeout_ms: self.limits.timeout.as_millis() as u64,
            }
        } else {
            BodyTimeout::TooSlow {
                min_bytes_per_s: self.limits.min_bytes_per_s,
            }
        }
    }
}

/// Both series of `edgefn_body_read_timeouts_total` from the start, so the first 408
/// shows as an increase.
pub fn register_metrics() {
    for why in [
        BodyTimeout::Deadline { timeout_ms: 0 },
        BodyTimeout::TooSlow { min_bytes_per_s: 0 },
    ] {
        metrics::counter!(names::BODY_READ_TIMEOUTS_TOTAL, names::LABEL_REASON => why.reason())
            .absolute(0);
    }
}

/// Collects `body` (at most `limit` bytes) within `limits`.
pub async fn read(body: Incoming, limit: u64, limits: BodyLimits) -> Result<Bytes, GatewayError> {
    let mut body = body;
    let clock = BodyClock::new(Instant::now(), limits);
    let mut received: u64 = 0;
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    let sleep = tokio::time::sleep_until(clock.deadline(0).into());
    tokio::pin!(sleep);
    loop {
        let frame = tokio::select! {
            biased;
            f = body.frame() => f,
            () = &mut sleep => {
                let why = clock.expired(Instant::now());
                metrics::counter!(names::BODY_READ_TIMEOUTS_TOTAL, names::LABEL_REASON => why.reason())
                    .increment(1);
                return Err(GatewayError::BodyTimeout { why });
            }
        };
        let Some(frame) = frame else { break };
        let Ok(data) = frame.map_err(|_| GatewayError::BodyRead)?.into_data() else {
            continue; // trailers
        };
        received += data.len() as u64;
        if received > limit {
            return Err(GatewayError::PayloadTooLarge { limit });
        }
        // One frame (the common small body) is kept as is, without a copy.
        match first.take() {
            None if rest.is_empty() => first = Some(data),
            Some(f) => {
                rest.extend_from_slice(&f);
                rest.extend_from_slice(&data);
            }
            None => rest.extend_from_slice(&data),
        }
        sleep.as_mut().reset(clock.deadline(received).into());
    }
    Ok(first.unwrap_or_else(|| rest.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(timeout_s: u64, rate: u64) -> (Instant, BodyClock) {
        let t0 = Instant::now();
        let limits = BodyLimits {
            timeout: Duration::from_secs(timeout_s),
            min_bytes_per_s: rate,
        };
        (t0, BodyClock::new(t0, limits))
    }

    #[test]
    fn nothing_received_gets_the_first_second() {
        let (t0, c) = clock(30, 1024);
        assert_eq!(c.deadline(0), t0 + GRACE);
        assert_eq!(c.deadline(10), t0 + GRACE);
    }

    #[test]
    fn each_kib_earns_a_second_until_the_whole_body_timeout() {
        let (t0, c) = clock(30, 1024);
        assert_eq!(c.deadline(4096), t0 + Duration::from_secs(4));
        assert_eq!(c.deadline(1 << 30), t0 + Duration::from_secs(30));
    }

    #[test]
    fn rate_zero_leaves_only_the_timeout() {
        let (t0, c) = clock(5, 0);
        assert_eq!(c.deadline(0), t0 + Duration::from_secs(5));
    }

    #[test]
    fn expiry_names_the_rule_that_ended_the_read() {
        let (t0, c) = clock(30, 1024);
        assert_eq!(
            c.expired(t0 + Duration::from_secs(2)),
            BodyTimeout::TooSlow {
                min_bytes_per_s: 1024
            }
        );
        assert_eq!(
            c.expired(t0 + Duration::from_secs(30)),
            BodyTimeout::Deadline { timeout_ms: 30_000 }
        );
    }
}
