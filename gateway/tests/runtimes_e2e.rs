//! Warm workers end to end: the real binary, real python3 and node processes. Every event
//! field in both runtimes, binary bodies, handler errors, timeouts, crashes and healing,
//! pool growth, warm reuse, secret masking, bad responses, overload, dependencies and code
//! reloads.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{client, concurrent, serve_tree, tempdir, wait_until, write_tree, Gateway};

const SECRET: &str = "s3cr3t-value-never-logged";

const PY_ECHO: &str = r#"
import os

def handler(event):
    return {"status": 200, "headers": {"x-pid": str(os.getpid())}, "body": event}
"#;

const NODE_ECHO: &str = r#"
exports.handler = async (event) => ({
  status: 200,
  headers: { 'x-pid': String(process.pid) },
  body: event,
});
"#;

/// GET that must answer 200; returns the body.
fn get_ok(url: &str) -> String {
    let r = client().get(url).send().unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.text().unwrap()
}

fn env_json() -> String {
    format!(r#"{{"PLAIN": "visible", "TOKEN": {{"value": "{SECRET}", "is_secret": true}}}}"#)
}

fn echo_tree() -> tempfile::TempDir {
    let dir = tempdir();
    let env = env_json();
    write_tree(
        dir.path(),
        &[
            ("py/echo/[id]/handler.py", PY_ECHO),
            ("py/echo/[id]/fn.env.json", &env),
            ("node/echo/[id]/handler.js", NODE_ECHO),
            ("node/echo/[id]/fn.env.json", &env),
            // An `async def` handler on a concurrency-1 worker.
            (
                "other/handler.py",
                "async def handler(event):\n    return {'status': 200, 'body': event}\n",
            ),
        ],
    );
    dir
}

fn check_event(gw: &Gateway, prefix: &str, function: &str) {
    let resp = client()
        .post(gw.url(&format!("{prefix}/42?a=1&b=x%20y")))
        .header("X-Custom-Header", "Value")
        .body("hello body")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", gw.logs());
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let e: Value = resp.json().unwrap();
    assert_eq!(e["method"], "POST");
    assert_eq!(e["path"], format!("{prefix}/42"));
    assert_eq!(e["query"]["a"], "1");
    assert_eq!(e["query"]["b"], "x y");
    assert_eq!(e["params"]["id"], "42");
    assert_eq!(e["headers"]["x-custom-header"], "Value");
    assert!(e["headers"].get("X-Custom-Header").is_none());
    assert_eq!(e["body"], "hello body");
    assert!(e.get("body_base64").is_none() || e["body_base64"].is_null());
    assert_eq!(e["env"]["PLAIN"], "visible");
    assert_eq!(
        e["env"]["TOKEN"], SECRET,
        "the function itself may read its secret"
    );
    assert_eq!(e["context"]["request_id"], rid);
    assert_eq!(e["context"]["function"], function);
    assert_eq!(e["context"]["auth"]["type"], "none");
    assert!(e["context"]["auth"]["subject"].is_null());
}

#[test]
fn every_event_field_in_both_runtimes_and_env_is_per_function() {
    let dir = echo_tree();
    let gw = Gateway::start(dir.path());
    check_event(&gw, "/py/echo", "py/echo/[id]");
    check_event(&gw, "/node/echo", "node/echo/[id]");
    // Another function does not see this function's env.
    let other: Value = client()
        .get(gw.url("/other"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(other["env"], serde_json::json!({}));
}

/// The Node worker reads its events in the flat encoding, the Python worker in JSON: the
/// same request gives both handlers the same event (but what names the function), with
/// repeated query and header values, cookies, Unicode, and text or binary bodies.
#[test]
fn node_and_python_handlers_see_the_same_event() {
    let dir = echo_tree();
    let gw = Gateway::start(dir.path());
    let event = |prefix: &str, body: &[u8]| {
        let resp = client()
            .post(gw.url(&format!(
                "{prefix}/caf%C3%A9?a=1&a=%E2%9C%93&flag&b=x+y&a=3"
            )))
            .header("x-multi", "one")
            .header("x-multi", "two")
            .header("x-utf8", "caf\u{e9}")
            .header("cookie", "sid=s1; theme=dark")
            .header("user-agent", "probe/1 \"q\"")
            .body(body.to_vec())
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", gw.logs());
        let mut e: Value = resp.json().unwrap();
        // What differs per request or per function.
        assert!(e["ts"].as_u64().unwrap() > 1_700_000_000_000);
        assert_eq!(e["id"], e["context"]["request_id"]);
        for k in ["id", "ts", "path", "raw_path"] {
            e[k] = Value::Null;
        }
        for k in ["request_id", "function", "function_name", "runtime"] {
            e["context"][k] = Value::Null;
        }
        e
    };
    let bodies: [&[u8]; 2] = ["h\u{e9}llo \u{2713} \u{1f600}".as_bytes(), b"\xff\x00bin"];
    for body in bodies {
        let py = event("/py/echo", body);
        let node = event("/node/echo", body);
        assert_eq!(node, py, "Node (flat) vs Python (JSON)");
        assert_eq!(
            node["query"]["a"],
            serde_json::json!(["1", "\u{2713}", "3"])
        );
        assert_eq!(node["query"]["flag"], true);
        assert_eq!(
            node["headers"]["x-multi"],
            serde_json::json!(["one", "two"])
        );
        assert_eq!(node["params"]["id"], "caf\u{e9}");
        assert_eq!(node["session"]["id"], "s1");
        assert_eq!(node["client"]["ua"], "probe/1 \"q\"");
    }
}

#[test]
fn binary_bodies_round_trip_in_both_runtimes() {
    let (_dir, gw) = serve_tree(&[
            (
                "py/handler.py",
                "def handler(event):\n    assert event['body'] is None\n    return {'status': 200, 'body': {'is_base64': True, 'body': event['body_base64']}}\n",
            ),
            (
                "node/handler.js",
                "exports.handler = async (e) => { if (e.body !== null) throw new Error('body'); return {status: 200, body: {is_base64: true, body: e.body_base64}}; };\n",
            ),
    ]);
    let payload: Vec<u8> = (0..=255u8).rev().chain(0..=255u8).collect();
    for path in ["/py", "/node"] {
        let resp = client()
            .post(gw.url(path))
            .body(payload.clone())
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}: {}", gw.logs());
        assert_eq!(
            resp.headers()["content-type"],
            "application/octet-stream",
            "{path}"
        );
        assert_eq!(resp.bytes().unwrap().to_vec(), payload, "{path}");
    }
}

#[test]
fn raising_handler_answers_fastfns_status_and_text_without_trace_logged_with_function() {
    let (_dir, gw) = serve_tree(&[
        (
            "boom/handler.py",
            "def handler(event):\n    raise ValueError('kaboom-detail')\n",
        ),
        (
            "boomjs/handler.js",
            "exports.handler = async () => { throw new Error('kaboom-js'); };\n",
        ),
    ]);
    // FastFN's daemons: the exception's message, 400 for a Python ValueError, else 500.
    for (path, detail, status) in [
        ("/boom", "kaboom-detail", 400),
        ("/boomjs", "kaboom-js", 500),
    ] {
        let resp = client().get(gw.url(path)).send().unwrap();
        assert_eq!(resp.status(), status);
        let body = resp.text().unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(v["request_id"].is_string(), "{body}");
        assert_eq!(v["error"], detail, "{body}");
        assert!(
            !body.contains("Traceback") && !body.contains("at "),
            "{body}"
        );
        assert!(gw.wait_log(detail, Duration::from_secs(5)), "{}", gw.logs());
    }
    let logs = gw.logs();
    for (detail, function) in [("kaboom-detail", "boom"), ("kaboom-js", "boomjs")] {
        let line = logs.lines().find(|l| l.contains(detail)).unwrap();
        assert!(
            line.contains(&format!("function=\"{function}\"")),
            "function name on the captured line: {line}"
        );
    }
    // The worker survives a raised exception: nothing stopped, nothing replaced.
    assert_eq!(logs.matches("worker stopped").count(), 0, "{logs}");
    assert!(!gw.metrics().contains("edgefn_worker_restarts_total{"));
}

#[test]
fn timeout_is_504_and_the_next_request_is_served() {
    let (_dir, gw) = serve_tree(&[
            (
                "slow/handler.py",
                "import time\n\ndef handler(event):\n    if event['query'].get('sleep'):\n        time.sleep(30)\n    return {'status': 200, 'body': 'fast'}\n",
            ),
            (
                "slow/fn.config.json",
                r#"{"timeout_ms": 400, "workers": {"min": 1, "max": 1}}"#,
            ),
    ]);
    let started = Instant::now();
    let resp = client().get(gw.url("/slow?sleep=1")).send().unwrap();
    assert_eq!(resp.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(10));
    let v: Value = resp.json().unwrap();
    assert_eq!(v["error"], "runtime timeout", "FastFN's text");
    // A synchronous Python handler cannot be interrupted: the worker does not acknowledge
    // the cancel, so it is killed once the grace runs out, and replaced.
    assert!(
        wait_until(Duration::from_secs(20), || gw.metric(
            r#"edgefn_worker_restarts_total{function="slow",cause="timeout"}"#
        ) == Some(1.0)),
        "{}",
        gw.logs()
    );
    let next = client().get(gw.url("/slow")).send().unwrap();
    assert_eq!(next.status(), 200);
    assert_eq!(next.text().unwrap(), "fast");
    assert_eq!(
        gw.metric(r#"edgefn_worker_restarts_total{function="slow",cause="timeout"}"#),
        Some(1.0)
    );
}

#[test]
fn exiting_handler_is_502_then_the_pool_heals() {
    let (_dir, gw) = serve_tree(&[
            (
                "die/handler.py",
                "import os\n\ndef handler(event):\n    if event['query'].get('die'):\n        os._exit(3)\n    return {'status': 200, 'body': str(os.getpid())}\n",
            ),
            (
                "diejs/handler.js",
                "exports.handler = async (e) => { if (e.query.die) process.exit(4); return {status: 200, body: String(process.pid)}; };\n",
            ),
    ]);
    for path in ["/die", "/diejs"] {
        let before = client().get(gw.url(path)).send().unwrap().text().unwrap();
        let resp = client()
            .get(gw.url(&format!("{path}?die=1")))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 502, "{path}");
        let after = client().get(gw.url(path)).send().unwrap();
        assert_eq!(after.status(), 200, "{path} healed: {}", gw.logs());
        assert_ne!(
            after.text().unwrap(),
            before,
            "{path}: a new worker process"
        );
    }
}

#[test]
fn secrets_are_masked_in_captured_output_and_absent_elsewhere() {
    let dir = tempdir();
    let env = env_json();
    write_tree(
        dir.path(),
        &[
            (
                "leaky/handler.py",
                "import sys\n\ndef handler(event):\n    print('token is', event['env']['TOKEN'])\n    print('plain is', event['env']['PLAIN'], file=sys.stderr)\n    raise RuntimeError('failed with ' + event['env']['TOKEN'])\n",
            ),
            ("leaky/fn.env.json", &env),
            (
                "leakyjs/handler.js",
                "exports.handler = async (e) => { console.log('js token', e.env.TOKEN); return {status: 200, body: 'ok'}; };\n",
            ),
            ("leakyjs/fn.env.json", &env),
        ],
    );
    let gw = Gateway::start(dir.path());
    let resp = client().get(gw.url("/leaky")).send().unwrap();
    assert_eq!(resp.status(), 500);
    // The exception's text is the answer's `error`, as in FastFN, with the secret masked.
    let body: Value = resp.json().unwrap();
    assert_eq!(body["error"], "failed with ***", "{body}");
    assert_eq!(
        client().get(gw.url("/leakyjs")).send().unwrap().status(),
        200
    );
    assert!(
        gw.wait_log("token is ***", Duration::from_secs(5)),
        "{}",
        gw.logs()
    );
    assert!(gw.wait_log("js token ***", Duration::from_secs(5)));
    assert!(gw.wait_log("failed with ***", Duration::from_secs(5)));
    assert!(gw.wait_log("plain is visible", Duration::from_secs(5)));
    let openapi = client()
        .get(gw.url("/_fn/openapi.json"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let metrics = gw.metrics();
    for (what, text) in [
        ("log", gw.logs()),
        ("openapi", openapi),
        ("metrics", metrics),
    ] {
        assert!(!text.contains(SECRET), "secret leaked into the {what}");
    }
}

#[test]
fn invalid_responses_answer_fastfns_statuses() {
    let (_dir, gw) = serve_tree(&[
            (
                "bad/handler.py",
                "def handler(event):\n    kind = event['query']['kind']\n    if kind == 'status':\n        return {'status': 700, 'body': 'x'}\n    if kind == 'header':\n        return {'status': 200, 'headers': {'x-a': 'a\\nb'}, 'body': 'x'}\n    if kind == 'type':\n        return {'status': 200, 'body': object()}\n    if kind == 'b64':\n        return {'status': 200, 'body': {'is_base64': True, 'body': '%%%'}}\n    return {'status': '200', 'body': 'x'}\n",
            ),
            (
                "badjs/handler.js",
                "exports.handler = async (e) => e.query.kind === 'status' ? {status: 42} : {status: 200, headers: {'bad name': 'v'}};\n",
            ),
    ]);
    // What the runtime refuses is its daemon's answer (Python's ValueError: 400; Node's
    // Error: 500); what only the gateway can refuse is FastFN's 502 `invalid runtime response`.
    let valid = "status must be a valid HTTP code";
    let invalid = "invalid runtime response";
    for (path, status, error) in [
        ("/bad?kind=status", 400, valid),
        ("/bad?kind=header", 502, invalid),
        ("/bad?kind=type", 400, "body of type object cannot be sent"),
        ("/bad?kind=b64", 400, "base64 body is not valid base64"),
        ("/bad?kind=str", 400, valid),
        ("/badjs?kind=status", 500, valid),
        ("/badjs?kind=name", 502, invalid),
    ] {
        let resp = client().get(gw.url(path)).send().unwrap();
        assert_eq!(resp.status(), status, "{path}");
        let v: Value = resp.json().unwrap();
        assert_eq!(v["error"], error, "{path}: {v}");
    }
    // A bad return value is the handler's fault, not the worker's: no worker was stopped
    // or replaced, and the same one keeps answering.
    let ok = client().get(gw.url("/bad?kind=status")).send().unwrap();
    assert_eq!(ok.status(), 400);
    assert_eq!(
        gw.logs().matches("worker stopped").count(),
        0,
        "{}",
        gw.logs()
    );
    assert!(!gw.metrics().contains("edgefn_worker_restarts_total{"));
}

#[test]
fn a_full_queue_answers_429_with_retry_after() {
    let (_dir, gw) = serve_tree(&[
            (
                "busy/handler.py",
                "import time\n\ndef handler(event):\n    time.sleep(0.5)\n    return {'status': 200, 'body': 'ok'}\n",
            ),
            (
                "busy/fn.config.json",
                r#"{"workers": {"min": 1, "max": 1}, "timeout_ms": 60000}"#,
            ),
    ]);
    let url = gw.url("/busy");
    // One slot, 32 queue places: of 40 simultaneous requests some must be refused.
    let results: Vec<(u16, Option<String>)> = concurrent(40, |_| {
        let r = client()
            .get(&url)
            .timeout(Duration::from_secs(60))
            .send()
            .unwrap();
        let ra = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        (r.status().as_u16(), ra)
    });
    // FastFN's `worker pool overflow` status.
    let refused: Vec<_> = results.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!refused.is_empty(), "{results:?}");
    assert!(refused.iter().all(|(_, ra)| ra.as_deref() == Some("1")));
    assert!(results.iter().all(|(s, _)| *s == 200 || *s == 429));
}

#[test]
fn code_change_starts_a_new_pool_while_in_flight_requests_finish_on_the_old() {
    let dir = tempdir();
    let v1 = "import time\n\ndef handler(event):\n    if event['query'].get('slow'):\n        time.sleep(1.5)\n    return {'status': 200, 'body': 'v1'}\n";
    write_tree(dir.path(), &[("ver/handler.py", v1)]);
    let gw = Gateway::start(dir.path());
    let generation = gw.generation();
    let url = gw.url("/ver?slow=1");
    std::thread::scope(|s| {
        let inflight = s.spawn(move || client().get(url).send().unwrap().text().unwrap());
        // The slow request is on the worker once the pool reports it busy.
        assert!(wait_until(Duration::from_secs(5), || gw
            .metric(r#"edgefn_workers{function="ver",state="busy"}"#)
            == Some(1.0)));
        write_tree(
            dir.path(),
            &[("ver/handler.py", &v1.replace("'v1'", "'v2'"))],
        );
        assert!(wait_until(Duration::from_secs(10), || gw.generation() > generation));
        assert_eq!(
            client().get(gw.url("/ver")).send().unwrap().text().unwrap(),
            "v2"
        );
        assert_eq!(inflight.join().unwrap(), "v1");
    });
}

#[test]
fn dependencies_install_once_and_a_failure_only_affects_its_function() {
    let cache = tempdir();
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("withdeps/requirements.txt", "six==1.16.0\n"),
            (
                "withdeps/handler.py",
                "import six\n\ndef handler(event):\n    return {'status': 200, 'body': six.__version__}\n",
            ),
            (
                "nodedeps/package.json",
                r#"{"name": "nodedeps", "version": "1.0.0", "dependencies": {"is-number": "7.0.0"}}"#,
            ),
            (
                "nodedeps/handler.js",
                "const isNumber = require('is-number');\nexports.handler = async () => ({status: 200, body: String(isNumber(5))});\n",
            ),
            ("broken/requirements.txt", "./no-such-local-package\n"),
            ("broken/handler.py", PY_ECHO),
            ("fine/handler.py", PY_ECHO),
        ],
    );
    let cache_path = cache.path().to_str().unwrap();
    let gw = Gateway::start_args(
        &["--functions", dir.path().to_str().unwrap()],
        &[("EDGEFN_CACHE_DIR", cache_path)],
    );
    let r = client().get(gw.url("/withdeps")).send().unwrap();
    assert_eq!(r.status(), 200, "{}", gw.logs());
    assert_eq!(r.text().unwrap(), "1.16.0");
    let r = client().get(gw.url("/nodedeps")).send().unwrap();
    assert_eq!(r.status(), 200, "{}", gw.logs());
    assert_eq!(r.text().unwrap(), "true");
    let r = client().get(gw.url("/broken")).send().unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().unwrap();
    assert!(v["error"].as_str().unwrap().contains("dependencies"), "{v}");
    assert!(gw.wait_log("requirements.txt", Duration::from_secs(10)));
    assert_eq!(client().get(gw.url("/fine")).send().unwrap().status(), 200);
    // Nothing was written into the functions tree.
    assert!(!dir.path().join("withdeps/node_modules").exists());
    assert!(!dir.path().join("nodedeps/node_modules").exists());
    assert!(
        std::fs::read_dir(cache.path().join("python"))
            .unwrap()
            .count()
            >= 1
    );
}

#[test]
fn idle_workers_above_min_are_reaped() {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            (
                "grow/handler.py",
                "import time\n\ndef handler(event):\n    time.sleep(0.3)\n    return {'status': 200, 'body': 'ok'}\n",
            ),
            (
                "grow/fn.config.json",
                r#"{"workers": {"min": 1, "max": 3}}"#,
            ),
        ],
    );
    let config = dir.path().join("edgefn.toml");
    std::fs::write(&config, "[runtimes]\nworker_idle_timeout_ms = 400\n").unwrap();
    let gw = Gateway::start_with_config(&config, dir.path());
    let url = gw.url("/grow");
    concurrent(6, |_| get_ok(&url));
    let gauge = |state: &str| -> f64 {
        gw.metric(&format!(
            r#"edgefn_workers{{function="grow",state="{state}"}}"#
        ))
        .unwrap_or(0.0)
    };
    assert!(
        gw.logs().matches("worker ready").count() >= 2,
        "the pool grew"
    );
    assert!(
        wait_until(Duration::from_secs(10), || gauge("idle") == 1.0
            && gauge("busy") == 0.0),
        "back to workers.min: idle={} busy={}",
        gauge("idle"),
        gauge("busy")
    );
    assert_eq!(client().get(gw.url("/grow")).send().unwrap().status(), 200);
}

#[test]
fn the_gateway_environment_does_not_reach_functions() {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            (
                "envpy/handler.py",
                "import os\n\ndef handler(event):\n    return {'status': 200, 'body': {'op': os.environ.get('OPERATOR_TOKEN'), 'path': bool(os.environ.get('PATH'))}}\n",
            ),
            (
                "envjs/handler.js",
                "exports.handler = async () => ({status: 200, body: {op: process.env.OPERATOR_TOKEN || null, path: !!process.env.PATH}});\n",
            ),
        ],
    );
    let gw = Gateway::start_args(
        &["--functions", dir.path().to_str().unwrap()],
        &[("OPERATOR_TOKEN", "operator-only")],
    );
    for path in ["/envpy", "/envjs"] {
        let v: Value = serde_json::from_str(&get_ok(&gw.url(path))).unwrap();
        assert!(v["op"].is_null(), "{path}: {v}");
        assert_eq!(v["path"], true, "{path}: PATH is passed through");
    }
}

#[test]
fn a_handler_that_cannot_load_is_500_and_a_fix_is_picked_up() {
    let (dir, gw) = serve_tree(&[
        ("broken/handler.py", "def handler(event)\n    return 1\n"),
        ("brokenjs/handler.js", "exports.handler = async () => {;\n"),
        ("fine/handler.py", PY_ECHO),
    ]);
    // FastFN's daemons answer 500 with the runtime's text.
    for path in ["/broken", "/brokenjs"] {
        let started = Instant::now();
        let r = client().get(gw.url(path)).send().unwrap();
        assert_eq!(r.status(), 500, "{path}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{path}: answered promptly"
        );
    }
    assert!(
        gw.wait_log("SyntaxError", Duration::from_secs(5)),
        "{}",
        gw.logs()
    );
    assert!(gw.logs().contains("worker failed to start"));
    assert_eq!(client().get(gw.url("/fine")).send().unwrap().status(), 200);
    let generation = gw.generation();
    write_tree(
        dir.path(),
        &[(
            "broken/handler.py",
            "def handler(event):\n    return {'status': 200, 'body': 'fixed'}\n",
        )],
    );
    assert!(wait_until(Duration::from_secs(10), || gw.generation() > generation));
    // The watcher may see the file mid-write and load a generation that still fails; the
    // finished write brings one more reload, so wait for the answer rather than for one bump.
    let fixed = || {
        client()
            .get(gw.url("/broken"))
            .send()
            .map(|r| r.status() == 200 && r.text().unwrap_or_default() == "fixed")
            .unwrap_or(false)
    };
    assert!(wait_until(Duration::from_secs(20), fixed), "{}", gw.logs());
}

/// `timeout_ms` is the handler's time: a request that waited for the only worker is not
/// charged for the wait (nor is the healthy worker killed for it).
#[test]
fn time_spent_queued_is_not_charged_to_the_worker() {
    let (_dir, gw) = serve_tree(&[
        (
            "slowish/handler.py",
            "import time\n\ndef handler(event):\n    time.sleep(1.0)\n    return {'status': 200, 'body': 'done'}\n",
        ),
        (
            "slowish/fn.config.json",
            r#"{"timeout_ms": 1500, "workers": {"min": 1, "max": 1}}"#,
        ),
    ]);
    let url = gw.url("/slowish");
    // Two at once on one worker: the second waits ~1 s, then runs ~1 s (2 s in all).
    let statuses = concurrent(2, |_| client().get(&url).send().unwrap().status().as_u16());
    assert_eq!(statuses, [200, 200], "{}", gw.logs());
    assert!(!gw.metrics().contains("edgefn_worker_restarts_total{"));
}

/// A large body reaches both runtimes intact (the frame arrives in many socket reads).
#[test]
fn large_bodies_reach_both_runtimes_intact() {
    let config = r#"{"methods": ["POST"], "max_body_bytes": 16777216}"#;
    let (_dir, gw) = serve_tree(&[
        (
            "bigjs/handler.js",
            "exports.handler = async (e) => ({status: 200, body: `${e.body.length}:${e.body.slice(-8)}`});\n",
        ),
        ("bigjs/fn.config.json", config),
        (
            "bigpy/handler.py",
            "def handler(event):\n    b = event['body']\n    return {'status': 200, 'body': f'{len(b)}:{b[-8:]}'}\n",
        ),
        ("bigpy/fn.config.json", config),
    ]);
    let mut body = "x".repeat(12 * 1024 * 1024);
    body.push_str("the-end!");
    for path in ["/bigjs", "/bigpy"] {
        let r = client()
            .post(gw.url(path))
            .body(body.clone())
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{path}: {}", gw.logs());
        assert_eq!(
            r.text().unwrap(),
            format!("{}:the-end!", body.len()),
            "{path}"
        );
    }
}

/// A CA certificate and key (PEM), and a server certificate for 127.0.0.1 signed by it.
fn ca_and_server() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "edgefn test extra CA");
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca = p.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    (ca.pem(), server.pem(), server_key.serialize_pem())
}

/// `NODE_EXTRA_CA_CERTS` keeps its meaning although the launcher moves it out of Node's
/// start-up: a server signed by that CA is trusted by `https` and `fetch`, one signed by
/// another CA is refused, and the handler sees the operator's variable.
#[test]
fn node_extra_ca_certs_are_trusted_without_being_parsed_at_start() {
    let (ca, trusted_cert, trusted_key) = ca_and_server();
    let (_, other_cert, other_key) = ca_and_server();
    let dir = tempdir();
    let ca_file = dir.path().join("extra-ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let handler = r#"
const https = require('https');
const fs = require('fs');
function serve(name) {
  const opts = { cert: fs.readFileSync(name + '.crt'), key: fs.readFileSync(name + '.key') };
  const server = https.createServer(opts, (q, s) => s.end('hello'));
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}
function get(port) {
  return new Promise((ok) => {
    https.get(`https://127.0.0.1:${port}/`, (r) => { r.resume(); r.on('end', () => ok('ok')); })
      .on('error', (e) => ok(e.code || String(e)));
  });
}
exports.handler = async () => {
  const trusted = await serve('trusted');
  const other = await serve('other');
  const url = `https://127.0.0.1:${trusted.address().port}/`;
  const fetched = await fetch(url).then((r) => r.text(), (e) => String(e.cause && e.cause.code || e));
  const body = {
    https: await get(trusted.address().port),
    fetch: fetched,
    untrusted: await get(other.address().port),
    env: process.env.NODE_EXTRA_CA_CERTS || null,
    openssl_store: process.execArgv.includes('--use-openssl-ca'),
  };
  trusted.close();
  other.close();
  return { status: 200, body };
};
"#;
    write_tree(
        dir.path(),
        &[
            ("fns/tls/handler.js", handler),
            ("fns/tls/trusted.crt", &trusted_cert),
            ("fns/tls/trusted.key", &trusted_key),
            ("fns/tls/other.crt", &other_cert),
            ("fns/tls/other.key", &other_key),
        ],
    );
    let fns = dir.path().join("fns");
    let ca_path = ca_file.to_str().unwrap();
    let gw = Gateway::start_args(
        &["--functions", fns.to_str().unwrap()],
        &[("NODE_EXTRA_CA_CERTS", ca_path)],
    );
    let v: Value = serde_json::from_str(&get_ok(&gw.url("/tls"))).unwrap();
    assert_eq!(v["https"], "ok", "{v}");
    assert_eq!(v["fetch"], "hello", "{v}");
    assert_ne!(v["untrusted"], "ok", "{v}");
    assert_eq!(v["env"], ca_path, "{v}");
    assert_eq!(v["openssl_store"], true, "{v}");
}
