//! Per-function metric handles, built at reload so the request path only bumps atomics.
//!
//! `edgefn_requests_total{function,method,status}`: a fixed table of
//! `METHODS × STATUSES` slots, each a `OnceLock<Counter>`. A slot registers its counter
//! (one label-set allocation, one registry lookup) the first time that combination is
//! seen; every later request is two array indexes and one atomic load before the
//! increment. The trade-off, chosen deliberately:
//! - Lazily filled slots keep `/metrics` to the series that actually happened (eagerly
//!   registering 10 × 26 zero series per function would bloat every scrape and Prometheus'
//!   index); the cost is that a series appears on its first request, not at reload.
//! - Statuses outside the table (418, 451, ...) register per request through the global
//!   registry (a label allocation and a sharded read lock). They are rare by construction;
//!   the label stays bounded because a status is at most 1000 values.
//!
//! Auth failures and rate-limit layers use a small [`CounterCache`] keyed by their
//! `'static` label values. The duration histogram has one handle per function.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::{Method, StatusCode};
use metrics::{Counter, Histogram, Label, SharedString};

use super::cache::CounterCache;
use super::labels::{method_index, status_slot, METHODS, STATUSES};
use super::names::*;

/// Handles for one function, registered at reload so the hot path never builds labels.
pub struct FunctionMetrics {
    function: SharedString,
    requests: Box<[OnceLock<Counter>]>,
    duration: Histogram,
    auth_failures: CounterCache<(&'static str, &'static str), 16>,
    rate_limited: CounterCache<&'static str, 4>,
}

impl std::fmt::Debug for FunctionMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionMetrics")
            .field("function", &&*self.function)
            .finish_non_exhaustive()
    }
}

impl FunctionMetrics {
    pub fn new(function: &str) -> Self {
        // Shared (Arc) so every label built from it later is a reference-count bump.
        let function = SharedString::from_shared(Arc::<str>::from(function));
        let duration =
            metrics::histogram!(REQUEST_DURATION_SECONDS, LABEL_FUNCTION => function.clone());
        Self {
            requests: (0..METHODS.len() * STATUSES.len())
                .map(|_| OnceLock::new())
                .collect(),
            duration,
            auth_failures: CounterCache::new(),
            rate_limited: CounterCache::new(),
            function,
        }
    }

    /// For requests that matched no route (`function="_unmatched"`).
    pub fn unmatched() -> Self {
        Self::new(UNMATCHED)
    }

    /// One answered request: `edgefn_requests_total` and the duration histogram.
    pub fn request(&self, method: &Method, status: StatusCode, elapsed: Duration) {
        let m = method_index(method);
        match status_slot(status) {
            Some(s) => self.requests[m * STATUSES.len() + s]
                .get_or_init(|| self.requests_counter(METHODS[m], STATUSES[s].1.into()))
                .increment(1),
            None => self
                .requests_counter(METHODS[m], status.as_str().to_owned().into())
                .increment(1),
        }
        self.duration.record(elapsed.as_secs_f64());
    }

    fn requests_counter(&self, method: &'static str, status: SharedString) -> Counter {
        let labels = vec![
            Label::new(LABEL_FUNCTION, self.function.clone()),
            Label::from_static_parts(LABEL_METHOD, method),
            Label::new(LABEL_STATUS, status),
        ];
        metrics::counter!(REQUESTS_TOTAL, labels)
    }

    /// `edgefn_auth_failures_total{function,type,reason}`.
    pub fn auth_failure(&self, auth_type: &'static str, reason: &'static str) {
        let register = || {
            metrics::counter!(AUTH_FAILURES_TOTAL,
                LABEL_FUNCTION => self.function.clone(),
                LABEL_TYPE => auth_type,
                LABEL_REASON => reason)
        };
        match self.auth_failures.get((auth_type, reason), register) {
            Some(c) => c.increment(1),
            None => register().increment(1),
        }
    }

    /// `edgefn_rate_limited_total{function,layer}`; `layer` is `"function"` (L7
    /// per-function limit) or `"connection"`. Connection-level refusals, which happen before
    /// any function is known, are recorded by `xdp::metrics` as `function="_connection"` with
    /// `layer="xdp"` or `"user_space"`.
    pub fn rate_limited(&self, layer: &'static str) {
        let register = || {
            metrics::counter!(RATE_LIMITED_TOTAL,
                LABEL_FUNCTION => self.function.clone(),
                LABEL_LAYER => layer)
        };
        match self.rate_limited.get(layer, register) {
            Some(c) => c.increment(1),
            None => register().increment(1),
        }
    }
}
