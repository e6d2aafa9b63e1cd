//! Prometheus metrics.
//!
//! CONTRACT STUB: the metrics work replaces the body, keeping these names.

pub mod names;

use std::time::Duration;

use http::{Method, StatusCode};

/// The installed exporter; the admin listener renders it on `/metrics`.
#[derive(Clone)]
pub struct Exporter {
    _private: (),
}

impl Exporter {
    /// Installs the global recorder once and describes every metric.
    pub fn install() -> Exporter {
        Exporter { _private: () }
    }

    pub fn render(&self) -> String {
        String::new()
    }
}

/// Handles for one function, registered at reload so the hot path never builds labels.
#[derive(Debug)]
pub struct FunctionMetrics {
    _function: String,
}

impl FunctionMetrics {
    pub fn new(function: &str) -> Self {
        Self {
            _function: function.to_owned(),
        }
    }

    /// For requests that matched no route (`function="_unmatched"`).
    pub fn unmatched() -> Self {
        Self::new(names::UNMATCHED)
    }

    pub fn request(&self, _method: &Method, _status: StatusCode, _elapsed: Duration) {}

    pub fn auth_failure(&self, _auth_type: &'static str, _reason: &'static str) {}

    /// `layer` is `"function"` (L7 per-function limit) or `"connection"`.
    pub fn rate_limited(&self, _layer: &'static str) {}
}

/// `edgefn_reload_total{result}`; `result` is `"ok"` or `"error"`.
pub fn reload(_result: &'static str) {}
