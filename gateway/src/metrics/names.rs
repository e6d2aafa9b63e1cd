//! Every exported metric name, in one place (the contract of ../shared/DESIGN.md).

pub const REQUESTS_TOTAL: &str = "edgefn_requests_total";
pub const REQUEST_DURATION_SECONDS: &str = "edgefn_request_duration_seconds";
pub const AUTH_FAILURES_TOTAL: &str = "edgefn_auth_failures_total";
pub const RATE_LIMITED_TOTAL: &str = "edgefn_rate_limited_total";
pub const WORKERS: &str = "edgefn_workers";
pub const WORKER_RESTARTS_TOTAL: &str = "edgefn_worker_restarts_total";
pub const RELOAD_TOTAL: &str = "edgefn_reload_total";
pub const XDP_PACKETS_TOTAL: &str = "edgefn_xdp_packets_total";
pub const XDP_TRACKED_SOURCES: &str = "edgefn_xdp_tracked_sources";

/// `function` label for requests that matched no route: keeps cardinality bounded.
pub const UNMATCHED: &str = "_unmatched";
