//! Protocol v2 spoken directly to the real Python and Node workers (no gateway): this file
//! plays the gateway's side of `runtimes/PROTOCOL.md` over a Unix socket. Version check,
//! `ready`, env sent once and present on every event, body bytes intact, `cancel` →
//! `cancelled` for async, sync and unknown requests, late results discarded, oversized frames.

mod support;

use serde_json::{json, Value};
use support::worker::{frame, Runtime, Worker, NODE, PYTHON};

const ECHO_PY: &str = r#"
import binascii

def handler(event):
    if event.get("body_base64") is not None:
        return {"status": 200, "body": binascii.a2b_base64(event["body_base64"])}
    if event["query"].get("raw") == "1":
        return {"status": 200, "body": event["body"]}
    return {"status": 200, "body": {"env": event["env"], "body": event["body"], "same_env": True}}
"#;

const ECHO_JS: &str = r#"
exports.handler = async (event) => {
  if (event.body_base64 != null) return { status: 200, body: Buffer.from(event.body_base64, 'base64') };
  if (event.query.raw === '1') return { status: 200, body: event.body };
  return { status: 200, body: { env: event.env, body: event.body, same_env: true } };
};
"#;

/// A request whose coroutine waits for a second request (`?op=release`); cancellation is
/// recorded in the handler's stderr.
const WAIT_PY: &str = r#"
import asyncio, sys
gate = None

async def handler(event):
    global gate
    if gate is None:
        gate = asyncio.Event()
    if event["query"].get("op") == "release":
        gate.set()
        return "released"
    print("waiting", file=sys.stderr, flush=True)
    try:
        await gate.wait()
    except asyncio.CancelledError:
        print("task was cancelled", file=sys.stderr, flush=True)
        raise
    return "waited"
"#;

const WAIT_JS: &str = r#"
let release;
const gate = new Promise((r) => { release = r; });
exports.handler = async (event) => {
  if (event.query.op === 'release') { release(); return 'released'; }
  await gate;
  return 'waited';
};
"#;

/// A synchronous handler that says it started (stderr, with its request id) and blocks
/// until a file appears.
const BLOCK_PY: &str = r#"
import os, sys, time

def handler(event):
    print("started", event["context"]["request_id"], file=sys.stderr, flush=True)
    flag = event["env"]["FLAG"]
    while not os.path.exists(flag):
        time.sleep(0.01)
    return "done"
"#;

fn req(id: u64, query: Value, body: &[u8], binary: bool) -> (Value, Vec<u8>) {
    let header = json!({"type": "req", "id": id, "binary": binary, "event": {
        "method": "POST", "path": "/t", "query": query, "params": {}, "headers": {},
        "context": {"request_id": format!("r{id}"), "function": "t"}}});
    (header, body.to_vec())
}

fn both() -> [(&'static Runtime, &'static str); 2] {
    [(&PYTHON, ECHO_PY), (&NODE, ECHO_JS)]
}

#[test]
fn a_version_mismatch_is_fatal_naming_both_versions() {
    for (rt, src) in both() {
        for sent in [json!(1), json!(3), Value::Null] {
            let mut w = Worker::spawn(rt, src, 1);
            let mut init = json!({"type": "init", "function": "t", "env": {}});
            if !sent.is_null() {
                init["version"] = sent.clone();
            }
            w.send(&init, b"");
            let (h, _) = w.recv();
            assert_eq!(h["type"], "fatal", "{rt}: {h}");
            assert_eq!(
                h["error"],
                format!("edgefn worker speaks protocol 2; the gateway sent version {sent}"),
                "{rt}"
            );
            let status = w.wait_exit();
            assert_eq!(status.code(), Some(1), "{rt}");
        }
    }
}

#[test]
fn ready_names_the_version_and_env_is_the_init_env_on_every_event() {
    for (rt, src) in both() {
        let mut w = Worker::spawn(rt, src, 1);
        let pid = w.handshake(json!({"A": "one", "B": "two"}), None);
        assert_eq!(pid, w.pid(), "{rt}");
        for id in 1..=3 {
            let (h, b) = req(id, json!({}), b"hi", false);
            w.send(&h, &b);
            let (h, body) = w.recv();
            assert_eq!(h["type"], "res", "{rt}: {h}");
            assert_eq!(h["id"], id);
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["env"], json!({"A": "one", "B": "two"}), "{rt}");
            assert_eq!(v["body"], "hi");
        }
    }
}

#[test]
fn bodies_arrive_intact_text_binary_and_large() {
    let binary: Vec<u8> = (0..=255u8).cycle().take(256 * 1024 + 7).collect();
    let text = "héllo wörld ✓ ".repeat(600_000); // ~9 MiB of UTF-8
    for (rt, src) in both() {
        let mut w = Worker::spawn(rt, src, 1);
        w.handshake(json!({}), None);
        let (h, b) = req(1, json!({}), &binary, true);
        w.send(&h, &b);
        let (h, body) = w.recv();
        assert_eq!(h["status"], 200, "{rt}: {h}");
        assert!(body == binary, "{rt}: binary body changed");
        let (h, b) = req(2, json!({"raw": "1"}), text.as_bytes(), false);
        w.send(&h, &b);
        let (h, body) = w.recv();
        assert_eq!(h["status"], 200, "{rt}: {h}");
        assert_eq!(body.len(), text.len(), "{rt}");
        assert!(body == text.as_bytes(), "{rt}: text body changed");
    }
}

/// Frames written back to back in pieces of every small size (one write each): the worker
/// sees them cut anywhere — inside a length prefix, a header, a body — and several in one
/// read, and answers each whole and in order.
#[test]
fn frames_cut_anywhere_across_reads_are_read_whole() {
    let big = "0123456789".repeat(30_000);
    let bodies: [&[u8]; 4] = [b"", b"abc", big.as_bytes(), "é✓".as_bytes()];
    for (rt, src) in both() {
        let mut w = Worker::spawn(rt, src, 1);
        w.handshake(json!({}), None);
        let mut stream = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            let (h, b) = req(i as u64 + 1, json!({"raw": "1"}), body, false);
            stream.extend(support::worker::frame(&h, &b));
        }
        let (mut at, mut piece) = (0, 1);
        while at < stream.len() {
            let end = (at + piece).min(stream.len());
            w.send_raw(&stream[at..end]);
            at = end;
            piece = if piece >= 13 { 1 } else { piece + 1 };
        }
        for (i, body) in bodies.iter().enumerate() {
            let (h, got) = w.recv();
            assert_eq!(h["id"], i as u64 + 1, "{rt}: {h}");
            assert_eq!(h["status"], 200, "{rt}: {h}");
            assert!(got == *body, "{rt}: body of request {} changed", i + 1);
        }
    }
}

#[test]
fn cancel_of_an_unknown_id_is_acknowledged_at_once() {
    for (rt, src) in both() {
        let mut w = Worker::spawn(rt, src, 1);
        w.handshake(json!({}), None);
        w.send(&json!({"type": "cancel", "id": 77}), b"");
        let (h, _) = w.recv();
        assert_eq!(h, json!({"type": "cancelled", "id": 77}), "{rt}");
        // Still serving.
        let (h, b) = req(1, json!({}), b"x", false);
        w.send(&h, &b);
        assert_eq!(w.recv().0["type"], "res", "{rt}");
    }
}

#[test]
fn cancel_of_a_running_async_request_answers_cancelled_and_drops_its_result() {
    for (rt, src) in [(&PYTHON, WAIT_PY), (&NODE, WAIT_JS)] {
        for concurrency in [1, 2] {
            let mut w = Worker::spawn(rt, src, concurrency);
            w.handshake(json!({}), None);
            let (h, b) = req(1, json!({"op": "wait"}), b"", false);
            w.send(&h, &b);
            if *rt == PYTHON {
                // Cancel a coroutine that is running (awaiting), not one not yet started.
                assert!(w.wait_stderr("waiting"), "{}", w.stderr());
            }
            w.send(&json!({"type": "cancel", "id": 1}), b"");
            let (h, _) = w.recv();
            assert_eq!(
                h,
                json!({"type": "cancelled", "id": 1}),
                "{rt} c={concurrency}"
            );
            if *rt == PYTHON {
                assert!(
                    w.wait_stderr("task was cancelled"),
                    "the asyncio task was not cancelled: {}",
                    w.stderr()
                );
            }
            // Release the waiter: request 1 must not answer (its result is discarded); the
            // next frame after request 2's answer is the reply to a probe cancel.
            let (h, b) = req(2, json!({"op": "release"}), b"", false);
            w.send(&h, &b);
            let (h, body) = w.recv();
            assert_eq!(h["id"], 2, "{rt}: {h}");
            assert_eq!(body, b"released");
            w.send(&json!({"type": "cancel", "id": 99}), b"");
            assert_eq!(w.recv().0, json!({"type": "cancelled", "id": 99}), "{rt}");
        }
    }
}

#[test]
fn cancel_of_a_running_sync_python_request_is_acknowledged_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("release");
    let mut w = Worker::spawn(&PYTHON, BLOCK_PY, 2);
    w.handshake(json!({"FLAG": flag.to_str().unwrap()}), None);
    let (h, b) = req(1, json!({}), b"", false);
    w.send(&h, &b);
    assert!(w.wait_stderr("started r1"), "{}", w.stderr());
    w.send(&json!({"type": "cancel", "id": 1}), b"");
    // While the handler runs, the worker still reads: an unknown id is answered at once,
    // and nothing is said about request 1 yet.
    w.send(&json!({"type": "cancel", "id": 50}), b"");
    assert_eq!(w.recv().0, json!({"type": "cancelled", "id": 50}));
    std::fs::write(&flag, b"").unwrap();
    assert_eq!(w.recv().0, json!({"type": "cancelled", "id": 1}));
    let (h, b) = req(2, json!({}), b"", false);
    w.send(&h, &b);
    let (h, body) = w.recv();
    assert_eq!((h["id"].clone(), body), (json!(2), b"done".to_vec()));
}

/// With `concurrency` 1 a sync handler runs on the thread that reads the socket: its answer
/// goes out first (the gateway counts it as the acknowledgement), then the cancel is read
/// and answered as an unknown id.
#[test]
fn with_concurrency_one_a_sync_python_handler_answers_before_its_cancel_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("release");
    let mut w = Worker::spawn(&PYTHON, BLOCK_PY, 1);
    w.handshake(json!({"FLAG": flag.to_str().unwrap()}), None);
    let (h, b) = req(1, json!({}), b"", false);
    w.send(&h, &b);
    assert!(w.wait_stderr("started r1"), "{}", w.stderr());
    w.send(&json!({"type": "cancel", "id": 1}), b"");
    std::fs::write(&flag, b"").unwrap();
    let (h, body) = w.recv();
    assert_eq!(
        (h["type"].clone(), h["id"].clone()),
        (json!("res"), json!(1))
    );
    assert_eq!(body, b"done");
    assert_eq!(w.recv().0, json!({"type": "cancelled", "id": 1}));
}

fn frames(list: &[(Value, Vec<u8>)]) -> Vec<u8> {
    list.iter().flat_map(|(h, b)| frame(h, b)).collect()
}

/// What the gateway's prefetch hands a busy sync worker: requests beyond its one slot wait
/// in the worker and run in order; a cancel read before a waiting request starts drops it
/// unrun — whether it came with the requests or while the one before ran.
#[test]
fn with_concurrency_one_waiting_requests_run_in_order_and_a_cancelled_one_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("release");
    let mut w = Worker::spawn(&PYTHON, BLOCK_PY, 1);
    w.handshake(json!({"FLAG": flag.to_str().unwrap()}), None);
    let mut batch: Vec<(Value, Vec<u8>)> =
        (1..=4).map(|id| req(id, json!({}), b"", false)).collect();
    batch.push((json!({"type": "cancel", "id": 4}), Vec::new()));
    w.send_raw(&frames(&batch));
    // Request 4's cancel came in the same read: acknowledged while request 1 runs.
    assert_eq!(w.recv().0, json!({"type": "cancelled", "id": 4}));
    assert!(w.wait_stderr("started r1"), "{}", w.stderr());
    // Request 2 waits behind the running request 1: its cancel is read before it starts.
    w.send(&json!({"type": "cancel", "id": 2}), b"");
    std::fs::write(&flag, b"").unwrap();
    let answers: Vec<(String, u64)> = (0..3)
        .map(|_| {
            let h = w.recv().0;
            (
                h["type"].as_str().unwrap().to_owned(),
                h["id"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        answers,
        vec![
            ("res".into(), 1),
            ("cancelled".into(), 2),
            ("res".into(), 3)
        ]
    );
    let log = w.stderr();
    assert!(
        !log.contains("started r2") && !log.contains("started r4"),
        "{log}"
    );
    w.send(&json!({"type": "cancel", "id": 99}), b"");
    assert_eq!(w.recv().0, json!({"type": "cancelled", "id": 99}));
}

/// Coroutines handed beyond `concurrency` wait for a running one to end: with one slot,
/// request 2 (which would release request 1) does not start until request 1 is cancelled;
/// with two slots both run at once.
#[test]
fn python_runs_at_most_concurrency_coroutines_at_once() {
    for concurrency in [1, 2] {
        let mut w = Worker::spawn(&PYTHON, WAIT_PY, concurrency);
        w.handshake(json!({}), None);
        let batch = [
            req(1, json!({"op": "wait"}), b"", false),
            req(2, json!({"op": "release"}), b"", false),
        ];
        w.send_raw(&frames(&batch));
        if concurrency == 1 {
            assert!(w.wait_stderr("waiting"), "{}", w.stderr());
            w.send(&json!({"type": "cancel", "id": 1}), b"");
            assert_eq!(w.recv().0, json!({"type": "cancelled", "id": 1}));
            let (h, body) = w.recv();
            assert_eq!((h["id"].clone(), body), (json!(2), b"released".to_vec()));
        } else {
            let mut got: Vec<(u64, Vec<u8>)> = (0..2)
                .map(|_| {
                    let (h, body) = w.recv();
                    (h["id"].as_u64().unwrap(), body)
                })
                .collect();
            got.sort();
            assert_eq!(
                got,
                vec![(1, b"waited".to_vec()), (2, b"released".to_vec())]
            );
        }
    }
}

#[test]
fn an_oversized_request_frame_stops_the_worker_before_it_allocates() {
    for (rt, src) in both() {
        let mut w = Worker::spawn(rt, src, 1);
        w.handshake(json!({}), None);
        // Claims 65 MiB + 1 of payload; nothing follows.
        w.send_raw(&((65u32 << 20) + 5).to_be_bytes());
        w.send_raw(&2u32.to_be_bytes());
        let status = w.wait_exit();
        assert!(!status.success(), "{rt}");
        assert!(
            w.wait_stderr("oversized or malformed frame"),
            "{rt}: {}",
            w.stderr()
        );
    }
}

#[test]
fn a_handler_that_cannot_load_is_fatal_with_the_reason() {
    for (rt, src) in [
        (&PYTHON, "x = 1\n"),
        (&NODE, "exports.nothing = 1;\n"),
        (&PYTHON, "raise ValueError('boom')\n"),
    ] {
        let mut w = Worker::spawn(rt, src, 1);
        w.send(
            &json!({"type": "init", "version": 2, "function": "t", "env": {}}),
            b"",
        );
        let (h, _) = w.recv();
        assert_eq!(h["type"], "fatal", "{rt}: {h}");
        assert_eq!(w.wait_exit().code(), Some(1));
    }
}

/// The Python worker's fast answer path (`fast_answer`, for plain envelopes) gives exactly
/// the bytes of the general path, or declines, for every combination of the envelope's
/// keys over valid and invalid values.
#[test]
fn python_fast_answer_path_matches_the_general_one_for_every_shape() {
    const CHECK: &str = r#"
import itertools, sys
sys.path.insert(0, sys.argv[1])
import edgefn_worker as w
statuses = [None, 200, 201, 99, 600, True, "200", 404]
headers = [None, {}, {"content-type": "application/json"}, {"Content-Type": "x"},
           {"x-a": "\u00e9\n\"", "b": "1"}, {"x": 1}, {"x": ["a", "b"]}, [], "h",
           {"CONTENT-TYPE": "t", "z": "q"}, {1: "a"}]
bodies = [None, "", "hi", "<html>x", "\u00e9\u2713", {"a": 1}, [1], b"x", 3, True]
fast = 0
for st, hd, bd in itertools.product(statuses, headers, bodies):
    for keys in itertools.product([0, 1], repeat=3):
        r = {k: v for k, v, on in zip(("status", "headers", "body"), (st, hd, bd), keys) if on}
        got = w.fast_answer(7, r)
        if got is None:
            continue
        fast += 1
        h, b = w.answer(7, r)
        assert got == (w.json_compact(h).encode(), bytes(b)), (r, got)
print("fast", fast)
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(CHECK)
        .arg(support::repo_root().join("runtimes/python"))
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fast: usize = stdout
        .trim()
        .strip_prefix("fast ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(fast > 1000, "the fast path took only {fast} shapes");
}

/// What a Node handler can observe of its event: the exact JSON text (key order included),
/// a spread copy, the keys and value types at every level, `in`, and that every field is a
/// plain data property of a plain object.
const OBSERVE_JS: &str = r#"
const shape = (o) => (o !== null && typeof o === 'object'
  ? Object.fromEntries(Object.keys(o).map((k) => [k, shape(o[k])])) : typeof o);
exports.handler = (event) => ({
  status: 200,
  body: {
    json: JSON.stringify(event),
    spread: JSON.stringify({ ...event, context: { ...event.context } }),
    keys: Object.keys(event),
    shape: shape(event),
    has: ['body', 'body_base64', 'query', 'headers', 'session', 'context', 'env', 'nope'].map((k) => k in event),
    plain: Object.getPrototypeOf(event) === Object.prototype
      && Object.values(Object.getOwnPropertyDescriptors(event)).every((d) => 'value' in d && d.writable && d.enumerable),
    fresh: (() => { event.query.mine = 1; event.headers = 'replaced'; return event.headers; })(),
  },
});
"#;

mod flat {
    use std::sync::Arc;

    use bytes::Bytes;
    use gateway::pool::event::EventMeta;
    use gateway::pool::protocol::{encode_request, Encoding};
    use gateway::pool::{AuthContext, WorkerRequest};
    use http::{HeaderMap, HeaderValue};

    pub fn request(
        body: &'static [u8],
        query: Option<&str>,
        headers: &[(&'static str, &[u8])],
        auth: AuthContext,
    ) -> WorkerRequest {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, HeaderValue::from_bytes(v).unwrap());
        }
        WorkerRequest {
            request_id: Arc::from("0123456789abcdef"),
            method: http::Method::POST,
            path: "/caf\u{e9}/7".into(),
            query: query.map(str::to_owned),
            params: vec![
                ("id".into(), "7".into()),
                ("name".into(), "\u{2713}\"x".into()),
            ],
            headers: map,
            body: Bytes::from_static(body),
            auth,
            client_ip: Some("10.1.2.3".parse().unwrap()),
            meta: Arc::new(EventMeta {
                function_name: Arc::from("caf\u{e9}"),
                runtime: "node",
                version: Arc::from("v2"),
                timeout_ms: 2500,
                max_body_bytes: 1 << 20,
                debug: true,
                ..EventMeta::default()
            }),
        }
    }

    pub fn frame(req: &WorkerRequest, id: u64, encoding: Encoding) -> Vec<u8> {
        let mut out = Vec::new();
        encode_request(&mut out, id, "caf\u{e9}", req, encoding);
        out.extend_from_slice(&req.body);
        out
    }

    pub fn none() -> AuthContext {
        AuthContext {
            kind: "none",
            subject: None,
            claims: None,
        }
    }
}

/// The Node worker asks for the flat request encoding, and its handler's event is the same
/// object as under the JSON encoding: same JSON text (but `ts`, taken when each frame was
/// written), same keys in the same order, plain data properties, for repeated query and
/// header values, bare query flags, cookies, a binary body, Unicode everywhere, verified
/// claims and an IPv6 client.
#[test]
fn node_events_are_identical_under_the_flat_and_json_encodings() {
    use gateway::pool::protocol::Encoding;
    let mut w = Worker::spawn(&NODE, OBSERVE_JS, 4);
    w.send(
        &support::worker::init_frame("node", json!({"K": "v"}), None),
        b"",
    );
    let (ready, _) = w.recv();
    assert_eq!(ready["type"], "ready", "{ready}");
    assert_eq!(ready["request_encoding"], "flat1", "{ready}");

    let claims = serde_json::from_str(r#"{"sub":"u\"1","roles":["a","b"],"n":1.5}"#).unwrap();
    let mut requests = [
        flat::request(b"", None, &[("host", b"h")], flat::none()),
        flat::request(
            "h\u{e9}llo \u{2713} \u{1f600}".as_bytes(),
            Some("a=1&b=x%20y+z&a=3&flag&e=&u=%E2%9C%93&a=%22q%22"),
            &[
                ("x-a", b"1"),
                ("x-a", b"2"),
                ("x-b", "caf\u{e9}".as_bytes()),
                ("x-q", br#"say "hi" \o/"#),
                ("x-bin", b"caf\xe9\tok"),
                ("user-agent", b"curl/8 \"x\""),
                ("cookie", b"sid=abc; theme=dark"),
                ("cookie", b"theme=light"),
            ],
            gateway::pool::AuthContext {
                kind: "bearer",
                subject: Some(std::sync::Arc::from("u\"1")),
                claims: Some(std::sync::Arc::new(claims)),
            },
        ),
        flat::request(
            b"\xff\x00\x01binary",
            Some(""),
            &[("user-agent", b"")],
            gateway::pool::AuthContext {
                kind: "api_key",
                subject: Some(std::sync::Arc::from("k1")),
                claims: None,
            },
        ),
    ];
    requests[2].client_ip = Some("::ffff:10.0.0.1".parse().unwrap());
    requests[1].client_ip = None;

    for (i, req) in requests.iter().enumerate() {
        let mut seen = Vec::new();
        for (n, encoding) in [Encoding::Json, Encoding::Flat].into_iter().enumerate() {
            let id = 10 * i as u64 + n as u64;
            w.send_raw(&flat::frame(req, id, encoding));
            let (h, body) = w.recv();
            assert_eq!(h["type"], "res", "{h}; stderr: {}", w.stderr());
            assert_eq!(h["id"], id);
            let mut v: Value = serde_json::from_slice(&body).unwrap();
            for text in ["json", "spread"] {
                let mut event: Value = serde_json::from_str(v[text].as_str().unwrap()).unwrap();
                assert!(event["ts"].as_u64().unwrap() > 1_700_000_000_000, "{event}");
                event["ts"] = json!(0);
                v[text] = event;
            }
            assert_eq!(v["plain"], true, "{encoding:?}: {v}");
            assert_eq!(v["fresh"], "replaced");
            seen.push(v);
        }
        assert_eq!(seen[0], seen[1], "request {i}: JSON vs flat");
    }

    // What the events hold (the JSON encoding's meaning, covered in event_tests.rs, is
    // spot-checked here on what the flat one delivered).
    let mut event = |i: u64| {
        let req = &requests[i as usize];
        w.send_raw(&flat::frame(req, 100 + i, Encoding::Flat));
        let (_, body) = w.recv();
        let v: Value = serde_json::from_slice(&body).unwrap();
        serde_json::from_str::<Value>(v["json"].as_str().unwrap()).unwrap()
    };
    let e = event(1);
    assert_eq!(e["query"]["a"], json!(["1", "3", "\"q\""]));
    assert_eq!(e["query"]["flag"], true);
    assert_eq!(e["query"]["u"], "\u{2713}");
    assert_eq!(e["headers"]["x-a"], json!(["1", "2"]));
    assert_eq!(e["headers"]["x-b"], "caf\u{e9}");
    assert_eq!(e["headers"]["x-bin"], "caf\u{fffd}\tok");
    assert_eq!(e["client"], json!({"ip": null, "ua": "curl/8 \"x\""}));
    assert_eq!(e["session"]["cookies"]["theme"], "light");
    assert_eq!(e["body"], "h\u{e9}llo \u{2713} \u{1f600}");
    assert_eq!(e["params"], json!({"id": "7", "name": "\u{2713}\"x"}));
    assert_eq!(
        e["context"]["user"],
        json!({"id": "u\"1", "auth": "bearer"})
    );
    assert_eq!(e["context"]["auth"]["claims"]["roles"], json!(["a", "b"]));
    assert_eq!(e["env"], json!({"K": "v"}));
    let e = event(2);
    assert_eq!(e["body"], Value::Null);
    assert_eq!(e["body_base64"], "/wABYmluYXJ5");
    assert_eq!(e["raw_path"], "/caf\u{e9}/7?");
    assert_eq!(e["client"], json!({"ip": "::ffff:10.0.0.1", "ua": ""}));
    let e = event(0);
    assert!(e.get("body").is_none(), "{e}");
    assert_eq!(e["raw_path"], "/caf\u{e9}/7");
    assert_eq!(e["context"]["user"], Value::Null);
    assert_eq!(e["context"]["debug"], json!({"enabled": true}));
}
