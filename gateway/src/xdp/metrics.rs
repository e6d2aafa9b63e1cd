//! Connection-limit metrics. XDP counters live in per-CPU kernel maps, so a poller copies
//! their totals into `edgefn_xdp_packets_total{action}` (absolute values) once per
//! [`POLL_INTERVAL`], and the number of entries in the LRU source table into
//! `edgefn_xdp_tracked_sources` every [`TRACKED_EVERY`] polls. The
//! user-space limiter records directly. Refusals by either layer also appear in
//! `edgefn_rate_limited_total{function="_connection",layer}` so one query covers both.

use std::time::Duration;

use gateway_common::counter;

use crate::metrics::names::{
    LABEL_ACTION, LABEL_FUNCTION, LABEL_LAYER, RATE_LIMITED_TOTAL, XDP_PACKETS_TOTAL,
    XDP_TRACKED_SOURCES,
};

/// How often the XDP maps are read.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Polls between two walks of the source table (the walk costs one syscall per source).
pub const TRACKED_EVERY: u64 = 5;
/// `function` label of connection-level refusals (no function is known before a request).
pub const CONNECTION_FUNCTION: &str = "_connection";
pub const LAYER_XDP: &str = "xdp";
pub const LAYER_USER_SPACE: &str = "user_space";

/// Publishes a snapshot of the XDP counters.
pub fn publish_xdp(totals: &super::maps::Counters, tracked: usize) {
    for (label, value) in counter::LABELS.iter().zip(totals.iter()) {
        metrics::counter!(XDP_PACKETS_TOTAL, LABEL_ACTION => *label).absolute(*value);
    }
    let refused = totals[counter::DROP as usize] + totals[counter::DENYLISTED as usize];
    metrics::counter!(RATE_LIMITED_TOTAL,
        LABEL_FUNCTION => CONNECTION_FUNCTION, LABEL_LAYER => LAYER_XDP)
    .absolute(refused);
    metrics::gauge!(XDP_TRACKED_SOURCES).set(tracked as f64);
}

/// Counts one connection refused by the user-space limiter.
pub fn user_space_refused() {
    metrics::counter!(RATE_LIMITED_TOTAL,
        LABEL_FUNCTION => CONNECTION_FUNCTION, LABEL_LAYER => LAYER_USER_SPACE)
    .increment(1);
}

/// Sets the tracked-sources gauge from the user-space table.
pub fn user_space_tracked(tracked: usize) {
    metrics::gauge!(XDP_TRACKED_SOURCES).set(tracked as f64);
}
