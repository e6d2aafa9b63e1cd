//! `/metrics` against the real binary: traffic of known shape moves exactly the right
//! series by exactly the right amounts, the page passes `promtool check metrics`, and
//! no secret value reaches it.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use support::prometheus::{get, parse, promtool, Labels};
use support::{client, tempdir, wait_until, write_tree, Gateway};

const HELLO: &str = "def handler(event):\n    return {\"status\": 200, \"body\": \"hello\"}\n";
const SECRET: &str = "s3cr3t-value-never-in-metrics";

fn scrape(gw: &Gateway) -> String {
    let resp = client().get(gw.admin_url("/metrics")).send().unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    resp.text().unwrap()
}

fn promtool_check(text: &str) {
    promtool(&["check", "metrics"], text.as_bytes(), "validate /metrics");
}

fn send(gw: &Gateway, method: &str, path: &str) -> u16 {
    client()
        .request(method.parse().unwrap(), gw.url(path))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn traffic_moves_counters_exactly_and_page_is_valid() {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("hello/handler.py", HELLO),
            (
                "hello/fn.env.json",
                &format!(r#"{{"TOKEN": {{"value": "{SECRET}", "is_secret": true}}}}"#),
            ),
        ],
    );
    let gw = Gateway::start(dir.path());
    let before = parse(&scrape(&gw));

    // The counters must match what the client saw: five 200s from the worker, and the
    // gateway's own answers, known exactly.
    let mut hello: HashMap<u16, u32> = HashMap::new();
    for _ in 0..5 {
        *hello.entry(send(&gw, "GET", "/hello")).or_default() += 1;
    }
    assert_eq!(hello, HashMap::from([(200, 5)]), "{}", gw.logs());
    for path in ["/nope", "/nope/deeper", "/a/b/c"] {
        assert_eq!(send(&gw, "GET", path), 404);
    }
    assert_eq!(send(&gw, "PURGE", "/nope"), 404);
    // A method the route does not serve is not found (FastFN's answer): unmatched traffic.
    assert_eq!(send(&gw, "DELETE", "/hello"), 404);
    assert_eq!(send(&gw, "DELETE", "/hello"), 404);
    // Gateway endpoints are not function traffic.
    assert_eq!(send(&gw, "GET", "/_fn/health"), 200);

    let text = scrape(&gw);
    promtool_check(&text);
    assert!(!text.contains(SECRET), "a secret value reached /metrics");
    let after = parse(&text);
    let delta = |name: &str, labels: &[(&str, &str)]| {
        get(&after, name, labels) - get(&before, name, labels)
    };

    let req = "edgefn_requests_total";
    let unmatched = |m| {
        delta(
            req,
            &[("function", "_unmatched"), ("method", m), ("status", "404")],
        )
    };
    assert_eq!(unmatched("GET"), 3.0, "{text}");
    assert_eq!(unmatched("OTHER"), 1.0, "{text}");
    let hello_series =
        |m, s: &str| delta(req, &[("function", "hello"), ("method", m), ("status", s)]);
    assert_eq!(hello_series("DELETE", "404"), 0.0, "{text}");
    assert_eq!(
        delta(
            req,
            &[
                ("function", "_unmatched"),
                ("method", "DELETE"),
                ("status", "404")
            ]
        ),
        2.0,
        "{text}"
    );
    for (status, n) in &hello {
        assert_eq!(
            hello_series("GET", &status.to_string()),
            f64::from(*n),
            "{status}: {text}"
        );
    }
    // No other series moved: the totals add up to the 11 function requests sent.
    let total = |page: &[(String, Labels, f64)]| -> f64 {
        page.iter()
            .filter(|(n, _, _)| n == req)
            .map(|(_, _, v)| v)
            .sum()
    };
    assert_eq!(total(&after) - total(&before), 11.0, "{text}");

    let count = "edgefn_request_duration_seconds_count";
    assert_eq!(delta(count, &[("function", "hello")]), 5.0, "{text}");
    assert_eq!(delta(count, &[("function", "_unmatched")]), 6.0, "{text}");
    let inf = delta(
        "edgefn_request_duration_seconds_bucket",
        &[("function", "hello"), ("le", "+Inf")],
    );
    assert_eq!(inf, 5.0, "{text}");
    // The gateway's own 404s (unmatched) are answered in well under 0.25 s.
    let fast = delta(
        "edgefn_request_duration_seconds_bucket",
        &[("function", "_unmatched"), ("le", "0.25")],
    );
    assert_eq!(fast, 6.0, "{text}");

    assert!(
        get(&after, "edgefn_reload_total", &[("result", "ok")]) >= 1.0,
        "{text}"
    );
}

#[test]
fn a_failed_reload_is_counted() {
    let dir = tempdir();
    write_tree(dir.path(), &[("hello/handler.py", HELLO)]);
    let gw = Gateway::start(dir.path());
    let errors = || {
        get(
            &parse(&scrape(&gw)),
            "edgefn_reload_total",
            &[("result", "error")],
        )
    };
    assert_eq!(errors(), 0.0, "the error series exists from the start at 0");
    write_tree(
        dir.path(),
        &[("hello/fn.config.json", r#"{"no_such_key": 1}"#)],
    );
    assert!(
        wait_until(Duration::from_secs(10), || errors() >= 1.0),
        "edgefn_reload_total{{result=\"error\"}} did not move; logs:\n{}",
        gw.logs()
    );
    promtool_check(&scrape(&gw));
}
