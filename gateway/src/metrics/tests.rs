//! Unit tests against the real global recorder: record through the public handles, render,
//! and read the numbers back out of the exposition text.

use std::collections::BTreeMap;
use std::time::Duration;

use http::{Method, StatusCode};

use super::*;

/// `(name, labels) -> value` for every sample line of a rendering.
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("sample has a value");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').expect("label has =");
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            (
                name.to_owned(),
                labels,
                value.parse().expect("numeric value"),
            )
        })
        .collect()
}

fn value(text: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    samples(text)
        .into_iter()
        .find(|(n, labels, _)| {
            n == name
                && labels.len() == want.len()
                && want
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
}

#[test]
fn requests_are_counted_per_function_method_and_status() {
    let exporter = Exporter::install();
    let m = FunctionMetrics::new("unit-requests");
    for _ in 0..3 {
        m.request(&Method::GET, StatusCode::OK, Duration::from_micros(30));
    }
    m.request(
        &Method::POST,
        StatusCode::NOT_FOUND,
        Duration::from_millis(2),
    );
    m.request(
        &Method::from_bytes(b"PURGE").unwrap(),
        StatusCode::IM_A_TEAPOT,
        Duration::from_secs(40),
    );
    // A second set of handles for the same function (a reload) continues the same series.
    FunctionMetrics::new("unit-requests").request(&Method::GET, StatusCode::OK, Duration::ZERO);

    let text = exporter.render();
    let req = |method, status| {
        value(
            &text,
            names::REQUESTS_TOTAL,
            &[
                ("function", "unit-requests"),
                ("method", method),
                ("status", status),
            ],
        )
    };
    assert_eq!(req("GET", "200"), Some(4.0), "{text}");
    assert_eq!(req("POST", "404"), Some(1.0));
    assert_eq!(req("OTHER", "418"), Some(1.0));
    assert_eq!(
        req("PURGE", "418"),
        None,
        "extension methods never become labels"
    );
    assert_eq!(req("POST", "200"), None, "untouched slots are not rendered");

    let dur = |suffix: &str, extra: &[(&str, &str)]| {
        let mut l = vec![("function", "unit-requests")];
        l.extend_from_slice(extra);
        value(
            &text,
            &format!("{}{suffix}", names::REQUEST_DURATION_SECONDS),
            &l,
        )
    };
    assert_eq!(dur("_count", &[]), Some(6.0), "{text}");
    assert_eq!(dur("_bucket", &[("le", "0.00005")]), Some(4.0), "{text}");
    assert_eq!(dur("_bucket", &[("le", "0.0025")]), Some(5.0));
    assert_eq!(
        dur("_bucket", &[("le", "30")]),
        Some(5.0),
        "40 s is above the top bucket"
    );
    assert_eq!(dur("_bucket", &[("le", "+Inf")]), Some(6.0));
}

#[test]
fn every_bucket_is_rendered() {
    let exporter = Exporter::install();
    FunctionMetrics::new("unit-buckets").request(&Method::GET, StatusCode::OK, Duration::ZERO);
    let text = exporter.render();
    let les: Vec<f64> = samples(&text)
        .into_iter()
        .filter(|(n, l, _)| {
            n == "edgefn_request_duration_seconds_bucket"
                && l.get("function").map(String::as_str) == Some("unit-buckets")
        })
        .filter_map(|(_, l, _)| l["le"].parse().ok())
        .filter(|le: &f64| le.is_finite())
        .collect();
    assert_eq!(les, exporter::DURATION_BUCKETS, "{text}");
}

#[test]
fn auth_failures_rate_limits_and_reloads_have_their_labels() {
    let exporter = Exporter::install();
    let m = FunctionMetrics::new("unit-auth");
    m.auth_failure("api_key", "missing");
    m.auth_failure("api_key", "missing");
    m.auth_failure("api_key", "unknown_key");
    // More distinct reasons than cache slots still count correctly (fallback path).
    let reasons: Vec<&'static str> = (0..20)
        .map(|i| &*Box::leak(format!("r{i}").into_boxed_str()))
        .collect();
    for r in &reasons {
        m.auth_failure("hmac", r);
    }
    m.rate_limited("function");
    m.rate_limited("function");
    m.rate_limited("connection");
    let before = value(
        &exporter.render(),
        names::RELOAD_TOTAL,
        &[("result", "error")],
    )
    .unwrap_or(0.0);
    reload("error");

    let text = exporter.render();
    let auth = |t, r| {
        value(
            &text,
            names::AUTH_FAILURES_TOTAL,
            &[("function", "unit-auth"), ("type", t), ("reason", r)],
        )
    };
    assert_eq!(auth("api_key", "missing"), Some(2.0), "{text}");
    assert_eq!(auth("api_key", "unknown_key"), Some(1.0));
    for r in &reasons {
        assert_eq!(auth("hmac", r), Some(1.0), "{r}");
    }
    let rl = |layer| {
        value(
            &text,
            names::RATE_LIMITED_TOTAL,
            &[("function", "unit-auth"), ("layer", layer)],
        )
    };
    assert_eq!(rl("function"), Some(2.0));
    assert_eq!(rl("connection"), Some(1.0));
    assert!(value(&text, names::RELOAD_TOTAL, &[("result", "error")]).unwrap() >= before + 1.0);
    assert!(
        value(&text, names::RELOAD_TOTAL, &[("result", "ok")]).is_some(),
        "pre-registered at install"
    );
}

#[test]
fn every_metric_is_described_once() {
    let exporter = Exporter::install();
    // Touch the pool and XDP series the way their modules do, so they render.
    metrics::gauge!(names::WORKERS, "function" => "unit-desc", "state" => "idle").set(1.0);
    metrics::counter!(names::WORKER_RESTARTS_TOTAL, "function" => "unit-desc", "cause" => "crash")
        .increment(1);
    metrics::counter!(names::XDP_PACKETS_TOTAL, "action" => "drop").increment(1);
    metrics::gauge!(names::XDP_TRACKED_SOURCES).set(0.0);
    metrics::counter!(names::SCHEDULE_RUNS_TOTAL, "function" => "unit-desc", "result" => "ok")
        .increment(1);
    metrics::counter!(names::KEEP_WARM_PINGS_TOTAL, "function" => "unit-desc", "result" => "ok")
        .increment(1);
    FunctionMetrics::new("unit-desc").auth_failure("basic", "missing");
    FunctionMetrics::new("unit-desc").rate_limited("function");
    FunctionMetrics::new("unit-desc").request(&Method::GET, StatusCode::OK, Duration::ZERO);
    super::FrontMetrics::register().answered.increment(1);
    crate::server::body::register_metrics();
    // The cluster store's series, as `cluster::store` records them.
    metrics::histogram!(names::CLUSTER_STORE_ROUND_TRIP_SECONDS, names::LABEL_OP => "probe")
        .record(0.000_1);
    metrics::counter!(names::CLUSTER_STORE_ERRORS_TOTAL, names::LABEL_OP => "probe").increment(1);
    metrics::gauge!(names::CLUSTER_STORE_FALLBACK).set(0.0);
    crate::async_queue::metrics::queued(0);
    crate::async_queue::metrics::call("unit-desc", crate::async_queue::machine::Next::Done);
    crate::async_queue::metrics::callback(crate::async_queue::machine::Delivery::Accepted);
    let text = exporter.render();
    for (name, kind, _) in names::ALL {
        let help = format!("# HELP {name} ");
        assert_eq!(text.matches(&help).count(), 1, "{name} HELP in\n{text}");
        let ty = match kind {
            names::Kind::Counter => "counter",
            names::Kind::Gauge => "gauge",
            names::Kind::Histogram => "histogram",
        };
        assert!(
            text.contains(&format!("# TYPE {name} {ty}\n")),
            "{name} TYPE in\n{text}"
        );
    }
}

#[test]
fn install_is_idempotent() {
    let a = Exporter::install();
    let b = Exporter::install();
    FunctionMetrics::new("unit-idem").request(
        &Method::HEAD,
        StatusCode::NO_CONTENT,
        Duration::ZERO,
    );
    assert!(a.render().contains(r#"function="unit-idem""#));
    assert!(b.render().contains(r#"function="unit-idem""#));
}
