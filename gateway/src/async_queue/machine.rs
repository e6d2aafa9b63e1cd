//! The life of one queued call, without IO: `queued → running → done | queued (retry, with
//! a backoff) | dead`, and the same judgement for callback deliveries. The dispatcher feeds
//! it outcomes and carries out what it returns; unit tests drive every transition.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What `GET /async/<id>` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    Queued,
    Running,
    Done,
    Dead,
}

impl CallState {
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Queued => "queued",
            CallState::Running => "running",
            CallState::Done => "done",
            CallState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<CallState> {
        match s {
            "queued" => Some(CallState::Queued),
            "running" => Some(CallState::Running),
            "done" => Some(CallState::Done),
            "dead" => Some(CallState::Dead),
            _ => None,
        }
    }
}

/// State, attempts and the last status seen: the record `GET /async/<id>` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub state: CallState,
    pub attempts: u32,
    pub last_status: Option<u16>,
}

impl Progress {
    pub fn queued() -> Progress {
        Progress {
            state: CallState::Queued,
            attempts: 0,
            last_status: None,
        }
    }

    /// A dispatcher took the call: one more attempt starts.
    pub fn start(self) -> Progress {
        Progress {
            state: CallState::Running,
            attempts: self.attempts + 1,
            ..self
        }
    }

    /// The attempt ended with `status` (the function's, or the gateway's 502/503/504).
    pub fn finish(self, status: u16, max_attempts: u32) -> (Progress, Next) {
        let next = if !retryable(status) {
            Next::Done
        } else if self.attempts >= max_attempts {
            Next::Dead
        } else {
            Next::Retry {
                after: backoff(self.attempts),
            }
        };
        let state = match next {
            Next::Done => CallState::Done,
            Next::Dead => CallState::Dead,
            Next::Retry { .. } => CallState::Queued,
        };
        let p = Progress {
            state,
            attempts: self.attempts,
            last_status: Some(status),
        };
        (p, next)
    }
}

/// What the dispatcher does after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Final answer: deliver the callback, mark done.
    Done,
    /// Requeue, due after `after`.
    Retry { after: Duration },
    /// Attempts exhausted: deliver the callback with the last answer, keep as dead letter.
    Dead,
}

/// A crash (502), the function unavailable (503), at capacity (429, FastFN's `worker pool
/// overflow`) or a timeout (504) may pass on a new attempt; any other status is the
/// function's answer.
pub fn retryable(status: u16) -> bool {
    matches!(status, 429 | 502..=504)
}

/// 1 s, 2 s, 4 s ... capped at 60 s.
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

/// One callback delivery's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The receiver answered below 500.
    Accepted,
    /// 5xx or a connection error/timeout.
    Failed,
    /// The URL's addresses are not allowed (SSRF guard); never retried.
    Refused,
}

/// After delivery number `tries` (from 1) ended with `d`: wait and retry, or stop.
pub fn callback_next(d: Delivery, tries: u32, max_tries: u32) -> Option<Duration> {
    match d {
        Delivery::Failed if tries < max_tries => Some(backoff(tries)),
        Delivery::Failed | Delivery::Accepted | Delivery::Refused => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_is_done_first_time() {
        let p = Progress::queued().start();
        assert_eq!(p.state, CallState::Running);
        assert_eq!(p.attempts, 1);
        let (p, next) = p.finish(200, 3);
        assert_eq!(next, Next::Done);
        assert_eq!(p.state, CallState::Done);
        assert_eq!(p.last_status, Some(200));
    }

    #[test]
    fn function_errors_are_answers_not_retries() {
        for status in [400, 404, 500] {
            let (_, next) = Progress::queued().start().finish(status, 3);
            assert_eq!(next, Next::Done, "{status}");
        }
    }

    #[test]
    fn crashes_retry_with_backoff_then_die() {
        let mut p = Progress::queued();
        let mut waits = Vec::new();
        loop {
            let (q, next) = p.start().finish(502, 3);
            p = q;
            match next {
                Next::Retry { after } => {
                    assert_eq!(p.state, CallState::Queued);
                    waits.push(after.as_secs());
                }
                Next::Dead => break,
                Next::Done => panic!("a crash is never done"),
            }
        }
        assert_eq!(waits, [1, 2]);
        assert_eq!(p.state, CallState::Dead);
        assert_eq!(p.attempts, 3);
        assert_eq!(p.last_status, Some(502));
    }

    #[test]
    fn a_retry_that_passes_is_done() {
        let (p, _) = Progress::queued().start().finish(504, 5);
        let (p, next) = p.start().finish(201, 5);
        assert_eq!((next, p.attempts), (Next::Done, 2));
    }

    #[test]
    fn backoff_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(50), Duration::from_secs(60));
    }

    #[test]
    fn callbacks_retry_only_failures() {
        assert_eq!(callback_next(Delivery::Accepted, 1, 5), None);
        assert_eq!(callback_next(Delivery::Refused, 1, 5), None);
        assert_eq!(
            callback_next(Delivery::Failed, 1, 5),
            Some(Duration::from_secs(1))
        );
        assert_eq!(callback_next(Delivery::Failed, 5, 5), None);
    }

    #[test]
    fn states_round_trip() {
        for s in [
            CallState::Queued,
            CallState::Running,
            CallState::Done,
            CallState::Dead,
        ] {
            assert_eq!(CallState::parse(s.as_str()), Some(s));
        }
        assert_eq!(CallState::parse("x"), None);
    }
}
