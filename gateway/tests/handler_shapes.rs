//! Handler shapes beyond the conformance table, through the real gateway and real workers:
//! FastFN's lookup (`handler`, else `main`, else `invoke.handler`'s callable), route
//! parameters as keyword arguments, and the OpenFaaS templates' shapes (python3-http
//! `handle(event, context)`, classic `handle(req)`, node `module.exports = async (event,
//! context)` with `context.status().headers().succeed()` / `.fail()`), each with the identity
//! the gateway verified. The fixtures are written from the templates' documented shapes.

mod support;

use serde_json::{json, Value};
use support::worker::{init_frame, Worker, NODE, PYTHON};
use support::{client, serve_tree};

const KEY_CONFIG: &str = r#"{"auth": {"type": "api_key", "secret": "KEY"}}"#;
const KEY_ENV: &str = r#"{"KEY": {"value": "k-123", "is_secret": true}}"#;

const PY_MAIN: &str = "def main(event):\n    return {'status': 200, 'body': 'from main'}\n";
const PY_KWARG: &str = "def handler(event, id):\n    return {'body': {'id': id}}\n";
const PY_KWARGS: &str = "def handler(event, **params):\n    return {'body': params}\n";
const PY_BOTH: &str =
    "def handler(event):\n    return 'handler wins'\n\ndef main(event):\n    return 'main'\n";

const PY_OPENFAAS_HTTP: &str = r#"
def handle(event, context):
    return {
        "statusCode": 201,
        "body": {
            "method": event.method,
            "path": event.path,
            "q": event.query.get("q"),
            "type": event.headers.get("Content-Type"),
            "body": event.body.decode(),
            "is_bytes": isinstance(event.body, bytes),
            "auth": context.auth["type"],
            "hostname": bool(context.hostname),
        },
        "headers": {"x-shape": "python3-http"},
    }
"#;

const PY_OPENFAAS_TEXT: &str = r#"
def handle(event, context):
    return {"statusCode": 200, "body": "text " + event.method}
"#;

const PY_OPENFAAS_CLASSIC: &str = "def handle(req):\n    return 'Hello! You said: ' + req\n";

const JS_OPENFAAS: &str = r#"
'use strict'
module.exports = async (event, context) => {
  if (event.query.mode === 'fail') return context.fail(new Error('nope'));
  if (event.query.mode === 'return') return 'returned ' + event.method;
  return context
    .status(201)
    .headers({ 'x-shape': 'node' })
    .succeed({ got: event.body, method: event.method, path: event.path, auth: context.auth.type });
};
"#;

/// The template's third argument: a Node-style callback.
const JS_OPENFAAS_CALLBACK: &str = r#"
module.exports = (event, context, callback) => {
  callback(undefined, { via: 'callback', query: event.query.x });
};
"#;

fn auth_files(dir: &str) -> [(String, &'static str); 2] {
    [
        (format!("{dir}/fn.config.json"), KEY_CONFIG),
        (format!("{dir}/fn.env.json"), KEY_ENV),
    ]
}

#[test]
fn fastfn_lookup_main_and_route_parameters_as_arguments() {
    let (_dir, gw) = serve_tree(&[
        ("main/handler.py", PY_MAIN),
        ("both/handler.py", PY_BOTH),
        ("kw/[id]/handler.py", PY_KWARG),
        ("kws/[id]/handler.py", PY_KWARGS),
    ]);
    for (path, want) in [
        ("/main", "from main"),
        ("/both", "handler wins"),
        ("/kw/42", r#"{"id":"42"}"#),
        ("/kws/7", r#"{"id":"7"}"#),
    ] {
        let r = client().get(gw.url(path)).send().unwrap();
        assert_eq!(r.status(), 200, "{path}: {}", gw.logs());
        assert_eq!(r.text().unwrap(), want, "{path}");
    }
}

#[test]
fn init_handler_name_picks_the_callable_in_both_runtimes() {
    for (rt, src) in [
        (
            &PYTHON,
            "def handler(e):\n    return 'default'\n\ndef custom(e):\n    return 'custom'\n",
        ),
        (
            &NODE,
            "exports.handler = async () => 'default';\nexports.custom = async () => 'custom';\n",
        ),
    ] {
        let mut w = Worker::spawn(rt, src, 1);
        w.handshake(json!({}), Some("custom"));
        w.send(
            &json!({"type": "req", "id": 1, "binary": false, "event": {"method": "GET", "path": "/",
                    "query": {}, "params": {}, "headers": {}, "context": {}}}),
            b"",
        );
        let (h, body) = w.recv();
        assert_eq!(h["status"], 200, "{rt}: {h}");
        assert_eq!(body, b"custom", "{rt}");

        let mut w = Worker::spawn(rt, src, 1);
        w.send(&init_frame(rt.name, json!({}), Some("absent")), b"");
        let (h, _) = w.recv();
        assert_eq!(h["type"], "fatal", "{rt}");
        assert!(h["error"].as_str().unwrap().contains("`absent`"), "{h}");
    }
}

#[test]
fn openfaas_python_shapes_run_unchanged() {
    let mut files: Vec<(String, &str)> = vec![
        ("of/http/handler.py".into(), PY_OPENFAAS_HTTP),
        ("of/text/handler.py".into(), PY_OPENFAAS_TEXT),
        ("of/classic/handler.py".into(), PY_OPENFAAS_CLASSIC),
    ];
    files.extend(auth_files("of/http"));
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    let (_dir, gw) = serve_tree(&refs);

    let unauth = client().post(gw.url("/of/http")).send().unwrap();
    assert_eq!(unauth.status(), 401);
    let r = client()
        .post(gw.url("/of/http?q=find"))
        .header("x-api-key", "k-123")
        .header("content-type", "text/plain")
        .body("payload")
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{}", gw.logs());
    assert_eq!(r.headers()["x-shape"], "python3-http");
    let v: Value = r.json().unwrap();
    assert_eq!(
        v,
        json!({"method": "POST", "path": "/of/http", "q": "find", "type": "text/plain",
               "body": "payload", "is_bytes": true, "auth": "api_key", "hostname": true})
    );

    let r = client().get(gw.url("/of/text")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(r.text().unwrap(), "text GET");

    let r = client()
        .post(gw.url("/of/classic"))
        .body("hi")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "Hello! You said: hi\n");
}

#[test]
fn openfaas_node_template_shape_runs_unchanged() {
    let mut files: Vec<(String, &str)> = vec![
        ("ofn/handler.js".into(), JS_OPENFAAS),
        ("ofcb/handler.js".into(), JS_OPENFAAS_CALLBACK),
    ];
    files.extend(auth_files("ofn"));
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    let (_dir, gw) = serve_tree(&refs);
    let key = ("x-api-key", "k-123");

    let r = client()
        .post(gw.url("/ofn"))
        .header(key.0, key.1)
        .header("content-type", "application/json")
        .body(r#"{"n": 5}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{}", gw.logs());
    assert_eq!(r.headers()["x-shape"], "node");
    let v: Value = r.json().unwrap();
    assert_eq!(
        v,
        json!({"got": {"n": 5}, "method": "POST", "path": "/ofn", "auth": "api_key"})
    );

    let r = client()
        .get(gw.url("/ofn?mode=fail"))
        .header(key.0, key.1)
        .send()
        .unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.text().unwrap(), "Error: nope");

    let r = client()
        .get(gw.url("/ofn?mode=return"))
        .header(key.0, key.1)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(r.text().unwrap(), "returned GET");

    let r = client().get(gw.url("/ofcb?x=1")).send().unwrap();
    assert_eq!(r.status(), 200, "{}", gw.logs());
    assert_eq!(r.text().unwrap(), r#"{"via":"callback","query":"1"}"#);
}
