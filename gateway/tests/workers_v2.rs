//! The PHP and Lua workers and the Rust SDK (its echo example) driven directly over their Unix
//! socket with protocol v2 frames, no gateway in between: version check, ready, events,
//! binary bodies, env sent once, handler errors, bad responses, `invoke.handler`, cancel of
//! unknown and queued requests, oversized frames, and load failures.

mod support;

use serde_json::{json, Value};
use support::worker::{frame, init_frame, Runtime, Worker, LUA, PHP};

/// One runtime's fixture handlers. `echo` returns the event with `getenv("GREETING")` and
/// its second argument's `id`, or with `?form=` one response form or failure each;
/// `custom_entry` is the callable `invoke.handler` names. `broken` fails as it loads.
struct Handlers {
    echo: &'static str,
    broken: &'static str,
}

const PHP_HANDLERS: Handlers = Handlers {
    echo: r#"<?php
function handler(array $event, array $params)
{
    switch ($event['query']['form'] ?? '') {
        case 'b64': return ['status' => 201, 'is_base64' => true, 'body' => base64_encode("\x01\x02\xff")];
        case 'json': return ['body' => ['ok' => true, 'n' => 3]];
        case 'text': return ['headers' => ['x-num' => 42], 'body' => 'plain'];
        case 'nil': return null;
        case 'multi': return ['headers' => ['set-cookie' => ['a=1', 'b=2']], 'body' => ''];
        case 'raise': throw new RuntimeException('boom-from-handler');
        case 'badstatus': return ['status' => 'x', 'body' => ''];
        case 'badb64': return ['is_base64' => true, 'body' => '***'];
    }
    $out = $event;
    $out['getenv'] = getenv('GREETING');
    $out['second_arg'] = $params['id'] ?? null;
    return ['status' => 200, 'body' => $out];
}

function custom_entry(array $event): string
{
    return 'custom';
}
"#,
    broken: "<?php\nthrow new RuntimeException('broken-on-load');\n",
};

const LUA_HANDLERS: Handlers = Handlers {
    echo: r#"
local M = {}

function M.handler(event, params)
  local form = event.query and event.query.form
  if form == "b64" then return { status = 201, is_base64 = true, body = "AQL/" } end
  if form == "json" then return { body = { ok = true, n = 3 } } end
  if form == "text" then return { headers = { ["x-num"] = 42 }, body = "plain" } end
  if form == "nil" then return nil end
  if form == "multi" then return { headers = { ["set-cookie"] = { "a=1", "b=2" } }, body = "" } end
  if form == "raise" then error("boom-from-handler") end
  if form == "badstatus" then return { status = "x" } end
  if form == "badb64" then return { is_base64 = true, body = "***" } end
  local out = {}
  for k, v in pairs(event) do out[k] = v end
  out.getenv = os.getenv("GREETING")
  out.second_arg = params and params.id
  return { status = 200, body = out }
end

function custom_entry(event)
  return "custom"
end

return M
"#,
    broken: "error('broken-on-load')\n",
};

fn echo(rt: &Runtime, fx: &Handlers) -> Worker {
    Worker::start(rt, fx.echo, json!({"GREETING": "hi", "TOKEN": "t0k"}), None)
}

fn each(f: impl Fn(&Runtime, &Handlers)) {
    for (rt, fx) in [(&PHP, &PHP_HANDLERS), (&LUA, &LUA_HANDLERS)] {
        f(rt, fx);
    }
}

#[test]
fn version_mismatch_is_a_fatal_naming_both_versions() {
    each(|rt, fx| {
        let mut d = Worker::spawn(rt, fx.echo, 1);
        d.send(&json!({"type": "init", "version": 1, "function": "f", "runtime": rt.name, "env": {}, "handler_name": null}), b"");
        let (h, _) = d.recv();
        assert_eq!(h["type"], "fatal", "{}: {h}", rt.name);
        assert_eq!(
            h["error"], "edgefn worker speaks protocol 2; the gateway sent version 1",
            "{}",
            rt.name
        );
        assert_eq!(d.wait_exit().code(), Some(1), "{}", rt.name);
    });
}

#[test]
fn ready_then_text_request_sees_event_body_and_env() {
    each(|rt, fx| {
        let mut d = echo(rt, fx);
        let event = json!({"method": "POST", "path": "/f", "query": {"a": "1"}, "params": {"id": "7"},
            "headers": {"x-h": "v"}, "context": {"request_id": "r1"}});
        d.send(
            &json!({"type": "req", "id": 1, "binary": false, "event": event}),
            "héllo".as_bytes(),
        );
        let (h, body) = d.recv();
        assert_eq!(h["type"], "res", "{}: {h}", rt.name);
        assert_eq!(h["id"], 1);
        assert_eq!(h["status"], 200);
        let got: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(got["method"], "POST", "{}", rt.name);
        assert_eq!(got["body"], "héllo", "{}", rt.name);
        assert_eq!(got["query"]["a"], "1");
        assert_eq!(got["params"]["id"], "7");
        assert_eq!(got["headers"]["x-h"], "v");
        assert_eq!(got["context"]["request_id"], "r1");
        assert_eq!(got["env"]["GREETING"], "hi", "{}", rt.name);
        assert_eq!(got["getenv"], "hi", "{}: env also reaches getenv", rt.name);
        assert_eq!(
            got["second_arg"], "7",
            "{}: params as second argument",
            rt.name
        );
        // The worker stays up: a second request on the same process.
        d.send(&json!({"type": "req", "id": 2, "binary": false, "event": {"method": "GET", "params": {}}}), b"");
        let (h, _) = d.recv();
        assert_eq!(
            (h["type"].as_str(), h["id"].as_u64()),
            (Some("res"), Some(2))
        );
    });
}

#[test]
fn binary_request_body_arrives_as_base64() {
    each(|rt, fx| {
        let mut d = echo(rt, fx);
        let bytes = [0u8, 159, 146, 150, 255, b'\n'];
        d.send(&json!({"type": "req", "id": 5, "binary": true, "event": {"method": "POST", "params": {}}}), &bytes);
        let (h, body) = d.recv();
        assert_eq!(h["status"], 200, "{}: {h}", rt.name);
        let got: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(got["body_base64"], "AJ+Slv8K", "{}", rt.name);
        assert!(got["body"].is_null(), "{}", rt.name);
    });
}

#[test]
fn response_forms_status_headers_base64_and_json() {
    each(|rt, fx| {
        let mut d = echo(rt, fx);
        for (id, form) in ["b64", "json", "text", "nil", "multi"].iter().enumerate() {
            let event = json!({"method": "GET", "query": {"form": form}, "params": {}});
            d.send(
                &json!({"type": "req", "id": id + 10, "binary": false, "event": event}),
                b"",
            );
            let (h, body) = d.recv();
            let ctx = format!("{} {form}: {h}", rt.name);
            assert_eq!(h["type"], "res", "{ctx}");
            let header = |n: &str| {
                h["headers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p[0].as_str().unwrap().eq_ignore_ascii_case(n))
                    .map(|p| p[1].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            };
            match *form {
                "b64" => {
                    assert_eq!(h["status"], 201, "{ctx}");
                    assert_eq!(body, [1u8, 2, 255], "{ctx}");
                    assert_eq!(
                        header("content-type"),
                        ["application/octet-stream"],
                        "{ctx}"
                    );
                }
                "json" => {
                    assert_eq!(
                        serde_json::from_slice::<Value>(&body).unwrap(),
                        json!({"ok": true, "n": 3}),
                        "{ctx}"
                    );
                    assert_eq!(header("content-type"), ["application/json"], "{ctx}");
                }
                "text" => {
                    assert_eq!(body, b"plain", "{ctx}");
                    assert_eq!(
                        header("content-type"),
                        ["text/plain; charset=utf-8"],
                        "{ctx}"
                    );
                    assert_eq!(header("x-num"), ["42"], "{ctx}");
                }
                "nil" => {
                    assert_eq!(h["status"], 200, "{ctx}");
                    assert!(body.is_empty(), "{ctx}");
                }
                _ => assert_eq!(header("set-cookie"), ["a=1", "b=2"], "{ctx}"),
            }
        }
    });
}

#[test]
fn handler_error_and_bad_response_are_err_frames_and_the_worker_lives_on() {
    each(|rt, fx| {
        let mut d = echo(rt, fx);
        for (id, form, kind) in [
            (1, "raise", "handler_error"),
            (2, "badstatus", "bad_response"),
            (3, "badb64", "bad_response"),
        ] {
            let event = json!({"method": "GET", "query": {"form": form}, "params": {}});
            d.send(
                &json!({"type": "req", "id": id, "binary": false, "event": event}),
                b"",
            );
            let (h, _) = d.recv();
            assert_eq!(h["type"], "err", "{} {form}: {h}", rt.name);
            assert_eq!(h["id"], id);
            assert_eq!(h["kind"], kind, "{} {form}", rt.name);
        }
        assert!(
            d.wait_stderr("boom-from-handler"),
            "{}: the error reaches stderr",
            rt.name
        );
        d.send(&json!({"type": "req", "id": 9, "binary": false, "event": {"method": "GET", "params": {}}}), b"");
        assert_eq!(d.recv().0["status"], 200, "{}", rt.name);
    });
}

#[test]
fn cancel_of_an_unknown_id_is_acknowledged_at_once() {
    each(|rt, fx| {
        let mut d = echo(rt, fx);
        d.send(&json!({"type": "cancel", "id": 77}), b"");
        assert_eq!(
            d.recv().0,
            json!({"type": "cancelled", "id": 77}),
            "{}",
            rt.name
        );
    });
}

#[test]
fn cancel_of_a_queued_request_drops_it_unrun() {
    each(|rt, fx| {
        let mut d = echo(rt, fx);
        // Three frames in one write: the worker reads them together, so request 2 is still
        // queued when its cancel is read.
        let mut all = Vec::new();
        for id in [1, 2] {
            let event = json!({"method": "GET", "query": {"form": "text"}, "params": {}});
            all.extend(frame(
                &json!({"type": "req", "id": id, "binary": false, "event": event}),
                b"",
            ));
        }
        all.extend(frame(&json!({"type": "cancel", "id": 2}), b""));
        d.send_raw(&all);
        let mut seen = [d.recv().0, d.recv().0];
        seen.sort_by_key(|h| h["type"].as_str().unwrap().to_owned());
        assert_eq!(
            seen[0],
            json!({"type": "cancelled", "id": 2}),
            "{}",
            rt.name
        );
        assert_eq!(
            (seen[1]["type"].as_str(), seen[1]["id"].as_u64()),
            (Some("res"), Some(1)),
            "{}",
            rt.name
        );
        // Nothing more for id 2: the next answer is for the next request.
        d.send(&json!({"type": "req", "id": 3, "binary": false, "event": {"method": "GET", "params": {}}}), b"");
        assert_eq!(d.recv().0["id"], 3, "{}", rt.name);
    });
}

#[test]
fn invoke_handler_name_selects_the_callable() {
    each(|rt, fx| {
        let mut d = Worker::start(rt, fx.echo, json!({}), Some("custom_entry"));
        d.send(&json!({"type": "req", "id": 1, "binary": false, "event": {"method": "GET", "params": {}}}), b"");
        let (h, body) = d.recv();
        assert_eq!(h["status"], 200, "{}: {h}", rt.name);
        assert_eq!(body, b"custom", "{}", rt.name);
    });
}

#[test]
fn a_handler_that_cannot_load_is_a_fatal_and_exit() {
    each(|rt, fx| {
        let mut d = Worker::spawn(rt, fx.broken, 1);
        d.send(&init_frame(rt.name, json!({}), None), b"");
        let (h, _) = d.recv();
        assert_eq!(h["type"], "fatal", "{}: {h}", rt.name);
        assert_eq!(d.wait_exit().code(), Some(1), "{}", rt.name);
        assert!(
            d.wait_stderr("broken-on-load"),
            "{}: the cause reaches stderr",
            rt.name
        );
    });
}

#[test]
fn an_oversized_frame_is_refused_before_reading_it() {
    each(|rt, fx| {
        let mut d = echo(rt, fx);
        let total: u32 = (66 << 20) + 10;
        let mut head = total.to_be_bytes().to_vec();
        head.extend(2u32.to_be_bytes());
        d.send_raw(&head);
        let code = d.wait_exit().code();
        assert!(
            matches!(code, Some(c) if c != 0),
            "{}: exit {code:?}",
            rt.name
        );
        assert!(d.wait_stderr("oversized"), "{}", rt.name);
    });
}

fn req(id: u64, query: Value) -> Value {
    json!({"type": "req", "id": id, "binary": false,
        "event": {"method": "POST", "query": query, "params": {"id": "9"}, "context": {"request_id": "r9"}}})
}

#[test]
fn rust_sdk_worker_checks_the_version_and_serves_events() {
    let mut d = Worker::spawn_sdk(1);
    d.send(&json!({"type": "init", "version": 3, "env": {}}), b"");
    let (h, _) = d.recv();
    assert_eq!(
        h["error"],
        "edgefn worker speaks protocol 2; the gateway sent version 3"
    );
    assert_eq!(d.wait_exit().code(), Some(1));

    let mut d = Worker::spawn_sdk(1);
    d.handshake(json!({"GREETING": "hi"}), None);
    d.send(&req(1, json!({})), "héllo".as_bytes());
    let (h, body) = d.recv();
    assert_eq!(
        (h["type"].as_str(), h["id"].as_u64(), h["status"].as_u64()),
        (Some("res"), Some(1), Some(200))
    );
    let got: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        got,
        json!({"method": "POST", "body": "héllo", "binary": false, "env": "hi", "param": "9", "request_id": "r9"})
    );
    let mut binary = req(2, json!({}));
    binary["binary"] = json!(true);
    d.send(&binary, &[0, 255]);
    let got: Value = serde_json::from_slice(&d.recv().1).unwrap();
    assert_eq!(
        (got["binary"].as_bool(), got["body"].is_null()),
        (Some(true), true)
    );
    d.send(&req(3, json!({"panic": "1"})), b"");
    assert_eq!(
        d.recv().0,
        json!({"type": "err", "id": 3, "kind": "handler_error", "status": 500, "detail": "rust handler panicked"})
    );
    assert!(d.wait_stderr("boom-from-handler"));
    d.send(&req(4, json!({"bad": "1"})), b"");
    let (h, _) = d.recv();
    assert_eq!(
        (h["kind"].as_str(), h["id"].as_u64()),
        (Some("bad_response"), Some(4))
    );
    d.send(&json!({"type": "cancel", "id": 99}), b"");
    assert_eq!(d.recv().0, json!({"type": "cancelled", "id": 99}));
}

/// A running handler cannot be interrupted: its cancel is acknowledged when it returns, its
/// result is dropped, and the worker's other request is answered meanwhile.
#[test]
fn rust_sdk_worker_acknowledges_a_running_cancel_when_the_handler_returns() {
    let mut d = Worker::spawn_sdk(2);
    d.handshake(json!({}), None);
    d.send(&req(1, json!({"sleep": "5000"})), b"");
    // Cancelled only once it runs (a queued request would be dropped and acknowledged at once).
    assert!(d.wait_stderr("sleeping 5000 ms"), "{}", d.stderr());
    d.send(&json!({"type": "cancel", "id": 1}), b"");
    d.send(&req(2, json!({})), b"");
    let (first, _) = d.recv();
    assert_eq!(
        (first["type"].as_str(), first["id"].as_u64()),
        (Some("res"), Some(2)),
        "{first}"
    );
    assert_eq!(d.recv().0, json!({"type": "cancelled", "id": 1}));
    d.send(&req(3, json!({})), b"");
    let (next, _) = d.recv();
    assert_eq!(
        next["id"], 3,
        "nothing more was sent for the cancelled request: {next}"
    );
}

#[test]
fn rust_sdk_worker_refuses_an_oversized_frame() {
    let mut d = Worker::spawn_sdk(1);
    d.handshake(json!({}), None);
    let mut head = ((66u32 << 20) + 10).to_be_bytes().to_vec();
    head.extend(2u32.to_be_bytes());
    d.send_raw(&head);
    assert_eq!(d.wait_exit().code(), Some(1));
    assert!(d.wait_stderr("oversized"), "{}", d.stderr());
}
