//! Prometheus metrics: names in [`names`], the global recorder in [`exporter`], and the
//! per-function handles the request path records into in [`function`].
//!
//! Flow: the server calls [`Exporter::install`] once at start-up; every reload builds a
//! [`FunctionMetrics`] per function (handles resolved once, off the request path); the
//! request path calls `request` / `auth_failure` / `rate_limited` on those handles, which
//! touch only atomics; the admin listener calls [`Exporter::render`] on `/metrics`.
//! Other modules (pool, XDP) record their own series with the `metrics` macros and the
//! names of [`names`]. No label value ever comes from a secret or unbounded client input:
//! functions come from the catalog, methods and statuses from fixed tables.

mod cache;
pub mod exporter;
pub mod function;
pub mod labels;
pub mod names;

pub use exporter::Exporter;
pub use function::FunctionMetrics;

/// `edgefn_http1_front_total{outcome}`: handles resolved once at start-up, so the front
/// pays one atomic add per answer.
#[derive(Clone)]
pub struct FrontMetrics {
    pub answered: metrics::Counter,
    /// Admitted requests the front served itself (a worker or the assets answered).
    pub served: metrics::Counter,
    pub handover: metrics::Counter,
}

impl FrontMetrics {
    /// Registers both series with the installed recorder (call after `Exporter::install`).
    pub fn register() -> FrontMetrics {
        let c = |outcome: &'static str| metrics::counter!(names::HTTP1_FRONT_TOTAL, names::LABEL_OUTCOME => outcome);
        FrontMetrics {
            answered: c("answered"),
            served: c("served"),
            handover: c("handover"),
        }
    }
}

/// `edgefn_reload_total{result}`; `result` is `"ok"` or `"error"`.
pub fn reload(result: &'static str) {
    metrics::counter!(names::RELOAD_TOTAL, names::LABEL_RESULT => result).increment(1);
}

#[cfg(test)]
mod tests;
