//! The queue's metrics, recorded through the names in `metrics/names.rs`; the labels are
//! bounded (function names come from the catalog, results from fixed lists).

use crate::metrics::names::{
    ASYNC_CALLBACKS_TOTAL, ASYNC_CALLS_TOTAL, ASYNC_QUEUED, LABEL_FUNCTION, LABEL_RESULT,
};

use super::machine::{Delivery, Next};

pub fn queued(n: u64) {
    metrics::gauge!(ASYNC_QUEUED).set(n as f64);
}

pub fn call(function: &str, next: Next) {
    let result = match next {
        Next::Done => "done",
        Next::Retry { .. } => "retry",
        Next::Dead => "dead",
    };
    metrics::counter!(ASYNC_CALLS_TOTAL, LABEL_FUNCTION => function.to_owned(), LABEL_RESULT => result)
        .increment(1);
}

pub fn callback(d: Delivery) {
    let result = match d {
        Delivery::Accepted => "delivered",
        Delivery::Failed => "failed",
        Delivery::Refused => "refused",
    };
    metrics::counter!(ASYNC_CALLBACKS_TOTAL, LABEL_RESULT => result).increment(1);
}
