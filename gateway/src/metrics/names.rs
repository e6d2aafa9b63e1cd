//! Every exported metric name and bounded label value, in one place (the contract of
//! ../shared/DESIGN.md). Other modules record through these constants only.

pub const REQUESTS_TOTAL: &str = "edgefn_requests_total";
pub const REQUEST_DURATION_SECONDS: &str = "edgefn_request_duration_seconds";
pub const AUTH_FAILURES_TOTAL: &str = "edgefn_auth_failures_total";
pub const RATE_LIMITED_TOTAL: &str = "edgefn_rate_limited_total";
pub const WORKERS: &str = "edgefn_workers";
pub const WORKER_RESTARTS_TOTAL: &str = "edgefn_worker_restarts_total";
pub const RELOAD_TOTAL: &str = "edgefn_reload_total";
pub const XDP_PACKETS_TOTAL: &str = "edgefn_xdp_packets_total";
pub const XDP_TRACKED_SOURCES: &str = "edgefn_xdp_tracked_sources";
pub const HTTP1_FRONT_TOTAL: &str = "edgefn_http1_front_total";
pub const BODY_READ_TIMEOUTS_TOTAL: &str = "edgefn_body_read_timeouts_total";
pub const LOG_DROPPED_TOTAL: &str = "edgefn_log_dropped_total";
pub const CLUSTER_STORE_ROUND_TRIP_SECONDS: &str = "edgefn_cluster_store_round_trip_seconds";
pub const CLUSTER_STORE_ERRORS_TOTAL: &str = "edgefn_cluster_store_errors_total";
pub const CLUSTER_STORE_FALLBACK: &str = "edgefn_cluster_store_fallback";
pub const ASYNC_QUEUED: &str = "edgefn_async_queued";
pub const ASYNC_CALLS_TOTAL: &str = "edgefn_async_calls_total";
pub const ASYNC_CALLBACKS_TOTAL: &str = "edgefn_async_callbacks_total";
/// FastFN `schedule` runs, by function and result (ok, error, skipped).
pub const SCHEDULE_RUNS_TOTAL: &str = "edgefn_schedule_runs_total";
/// FastFN `keep_warm` pings, by function and result (ok, error, skipped).
pub const KEEP_WARM_PINGS_TOTAL: &str = "edgefn_keep_warm_pings_total";

/// `function` label for requests that matched no route: keeps cardinality bounded.
pub const UNMATCHED: &str = "_unmatched";
/// `method` label for any method outside the standard nine.
pub const OTHER_METHOD: &str = "OTHER";

/// Label keys.
pub const LABEL_FUNCTION: &str = "function";
pub const LABEL_METHOD: &str = "method";
pub const LABEL_STATUS: &str = "status";
pub const LABEL_TYPE: &str = "type";
pub const LABEL_REASON: &str = "reason";
pub const LABEL_LAYER: &str = "layer";
pub const LABEL_RESULT: &str = "result";
pub const LABEL_STATE: &str = "state";
pub const LABEL_CAUSE: &str = "cause";
pub const LABEL_ACTION: &str = "action";
pub const LABEL_OUTCOME: &str = "outcome";
/// Cluster store operation: `rate_limit`, `replay`, `probe`.
pub const LABEL_OP: &str = "op";

/// Every metric with its kind and help text: the exporter describes each once, the
/// dashboard test checks it uses only these names.
pub const ALL: &[(&str, Kind, &str)] = &[
    (
        REQUESTS_TOTAL,
        Kind::Counter,
        "Requests answered, by function, method and status.",
    ),
    (
        REQUEST_DURATION_SECONDS,
        Kind::Histogram,
        "Time from request head to response head, by function.",
    ),
    (
        AUTH_FAILURES_TOTAL,
        Kind::Counter,
        "Requests refused by the gateway's auth check, by function, auth type and reason.",
    ),
    (
        RATE_LIMITED_TOTAL,
        Kind::Counter,
        "Requests or connections refused by a rate limit, by function and layer.",
    ),
    (
        WORKERS,
        Kind::Gauge,
        "Worker processes, by function and state.",
    ),
    (
        WORKER_RESTARTS_TOTAL,
        Kind::Counter,
        "Worker processes replaced, by function and cause.",
    ),
    (
        RELOAD_TOTAL,
        Kind::Counter,
        "Snapshot reloads, by result (ok or error).",
    ),
    (
        XDP_PACKETS_TOTAL,
        Kind::Counter,
        "New-connection packets seen by the XDP program, by action.",
    ),
    (
        XDP_TRACKED_SOURCES,
        Kind::Gauge,
        "Source addresses currently tracked by the connection limiter.",
    ),
    (
        HTTP1_FRONT_TOTAL,
        Kind::Counter,
        "HTTP/1 front: requests it answered itself (outcome=answered), connections it handed to hyper (outcome=handover).",
    ),
    (
        BODY_READ_TIMEOUTS_TOTAL,
        Kind::Counter,
        "Request bodies cut with 408, by reason (deadline: body_read_timeout_ms; too_slow: min_body_bytes_per_s).",
    ),
    (
        LOG_DROPPED_TOTAL,
        Kind::Counter,
        "Log lines (access log, function output, gateway events) dropped because stderr was slower than they arrived.",
    ),
    (
        CLUSTER_STORE_ROUND_TRIP_SECONDS,
        Kind::Histogram,
        "Round trips to the [cluster] store, by op (rate_limit, replay, probe).",
    ),
    (
        CLUSTER_STORE_ERRORS_TOTAL,
        Kind::Counter,
        "Failed or timed-out [cluster] store calls, by op.",
    ),
    (
        CLUSTER_STORE_FALLBACK,
        Kind::Gauge,
        "1 while the [cluster] store is unreachable (per-node limits; replay guards 503 or local), else 0.",
    ),
    (
        ASYNC_QUEUED,
        Kind::Gauge,
        "Async calls queued or running in this node's store view.",
    ),
    (
        ASYNC_CALLS_TOTAL,
        Kind::Counter,
        "Async call attempts ended, by function and result (done, retry, dead).",
    ),
    (
        ASYNC_CALLBACKS_TOTAL,
        Kind::Counter,
        "Callback deliveries, by result (delivered, failed, refused).",
    ),
    (
        SCHEDULE_RUNS_TOTAL,
        Kind::Counter,
        "Scheduled runs (fn.config.json schedule), by function and result: ok, error, or skipped while the previous run was still going.",
    ),
    (
        KEEP_WARM_PINGS_TOTAL,
        Kind::Counter,
        "keep_warm pings (fn.config.json keep_warm), by function and result: ok, error, or skipped while the previous ping was still going.",
    ),
];

/// The Prometheus type of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}
