//! The Go harness (`runtimes/go`) built with a FastFN-shaped handler and driven directly
//! over its Unix socket with protocol v2 frames, no gateway in between: version check,
//! ready, FastFN's event (body, env also via `os.Getenv`, parameters merged where no field
//! has the name), binary bodies, panics and bad responses as `err` frames, cancel of
//! unknown, queued and running requests, `concurrency` goroutines really in flight at
//! once, and an oversized frame refused before it is read.

mod support;

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{json, Value};
use support::worker::{frame, go_worker_binary, Worker};

const HANDLER: &str = r#"package main

import (
	"fmt"
	"os"
	"sync"
)

var (
	lock    sync.Mutex
	cond    = sync.NewCond(&lock)
	arrived int
	release = make(chan struct{})
)

func handler(event map[string]interface{}) interface{} {
	query, _ := event["query"].(map[string]interface{})
	switch query["do"] {
	case "panic":
		panic("boom-from-handler")
	case "bad":
		return map[string]interface{}{"status": "x"}
	case "wait":
		fmt.Fprintln(os.Stderr, "waiting for release")
		<-release
		return "released"
	case "release":
		close(release)
		return "releasing"
	case "barrier":
		// Answers only once four requests are inside the handler at the same time.
		lock.Lock()
		arrived++
		cond.Broadcast()
		for arrived < 4 {
			cond.Wait()
		}
		lock.Unlock()
		return "all four in flight"
	}
	env, _ := event["env"].(map[string]interface{})
	return map[string]interface{}{"status": 200, "body": map[string]interface{}{
		"method": event["method"], "body": event["body"], "body_base64": event["body_base64"],
		"env": env["GREETING"], "getenv": os.Getenv("GREETING"), "slug": event["slug"],
		"id": event["id"], "params": event["params"],
	}}
}
"#;

fn binary() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| go_worker_binary(HANDLER))
}

fn spawn(concurrency: usize) -> Worker {
    let argv = [binary().display().to_string()];
    Worker::spawn_argv("go", &argv, "handler.go", HANDLER, concurrency)
}

fn started(concurrency: usize) -> Worker {
    let mut w = spawn(concurrency);
    w.handshake(json!({"GREETING": "hi"}), None);
    w
}

fn req(id: u64, query: Value) -> Value {
    json!({"type": "req", "id": id, "binary": false, "event": {"method": "POST",
        "id": "request-id", "query": query, "params": {"id": "9", "slug": "a-b"}}})
}

#[test]
fn a_version_mismatch_is_fatal_naming_both_versions() {
    let mut w = spawn(1);
    w.send(&json!({"type": "init", "version": 3, "env": {}}), b"");
    let (h, _) = w.recv();
    assert_eq!(
        h,
        json!({"type": "fatal", "error": "edgefn worker speaks protocol 2; the gateway sent version 3"})
    );
    assert_eq!(w.wait_exit().code(), Some(1));
}

#[test]
fn fastfns_event_reaches_the_handler() {
    let mut w = started(1);
    w.send(&req(1, json!({})), "héllo".as_bytes());
    let (h, body) = w.recv();
    assert_eq!(
        (h["type"].as_str(), h["id"].as_u64(), h["status"].as_u64()),
        (Some("res"), Some(1), Some(200)),
        "{h}"
    );
    assert_eq!(h["headers"], json!([["content-type", "application/json"]]));
    let got: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        got,
        json!({"method": "POST", "body": "héllo", "body_base64": null, "env": "hi",
            "getenv": "hi", "slug": "a-b", "id": "request-id",
            "params": {"id": "9", "slug": "a-b"}}),
        "a parameter is merged only where no field has its name"
    );
    let mut binary = req(2, json!({}));
    binary["binary"] = json!(true);
    w.send(&binary, &[0, 255]);
    let got: Value = serde_json::from_slice(&w.recv().1).unwrap();
    assert_eq!(
        (got["body"].is_null(), got["body_base64"].as_str()),
        (true, Some("AP8="))
    );
    w.send(&req(3, json!({})), b"");
    let got: Value = serde_json::from_slice(&w.recv().1).unwrap();
    assert!(got["body"].is_null(), "an empty body is left out: {got}");
}

#[test]
fn a_panic_and_a_bad_answer_are_err_frames_and_the_worker_lives_on() {
    let mut w = started(1);
    w.send(&req(1, json!({"do": "panic"})), b"");
    assert_eq!(
        w.recv().0,
        json!({"type": "err", "id": 1, "kind": "handler_error", "detail": "go handler panicked"})
    );
    assert!(w.wait_stderr("boom-from-handler"), "{}", w.stderr());
    assert!(
        w.wait_stderr("handler.go:"),
        "the stack names the handler's file: {}",
        w.stderr()
    );
    w.send(&req(2, json!({"do": "bad"})), b"");
    let (h, _) = w.recv();
    assert_eq!(
        (h["kind"].as_str(), h["id"].as_u64()),
        (Some("bad_response"), Some(2)),
        "{h}"
    );
    w.send(&req(3, json!({})), b"");
    assert_eq!(w.recv().0["status"], 200);
}

#[test]
fn cancel_of_unknown_and_queued_requests_is_acknowledged_at_once() {
    let mut w = started(1);
    w.send(&json!({"type": "cancel", "id": 77}), b"");
    assert_eq!(w.recv().0, json!({"type": "cancelled", "id": 77}));
    // Request 1 holds the only slot; 2 (which would release it) waits for the slot and is
    // cancelled there: acknowledged at once, while 1 still runs, and never run (1 stays
    // blocked: the worker is killed when the test ends).
    w.send(&req(1, json!({"do": "wait"})), b"");
    assert!(w.wait_stderr("waiting for release"), "{}", w.stderr());
    w.send(&req(2, json!({"do": "release"})), b"");
    w.send(&json!({"type": "cancel", "id": 2}), b"");
    assert_eq!(w.recv().0, json!({"type": "cancelled", "id": 2}));
}

#[test]
fn concurrency_runs_that_many_handlers_at_once_and_a_running_cancel_waits_for_return() {
    let mut w = started(4);
    let mut all = Vec::new();
    for id in 1..=4 {
        all.extend(frame(&req(id, json!({"do": "barrier"})), b""));
    }
    w.send_raw(&all);
    let mut ids: Vec<u64> = (0..4)
        .map(|_| {
            let (h, body) = w.recv();
            assert_eq!(body, b"all four in flight", "{h}");
            h["id"].as_u64().unwrap()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, [1, 2, 3, 4]);
    // A running request is acknowledged when it returns, its answer dropped; the other
    // slots keep serving meanwhile.
    w.send(&req(5, json!({"do": "wait"})), b"");
    assert!(w.wait_stderr("waiting for release"), "{}", w.stderr());
    w.send(&json!({"type": "cancel", "id": 5}), b"");
    w.send(&req(6, json!({})), b"");
    assert_eq!(w.recv().0["id"], 6);
    w.send(&req(7, json!({"do": "release"})), b"");
    let mut seen = [w.recv().0, w.recv().0];
    seen.sort_by_key(|h| h["id"].as_u64());
    assert_eq!(seen[0], json!({"type": "cancelled", "id": 5}));
    assert_eq!(seen[1]["id"], 7);
}

#[test]
fn an_oversized_frame_is_refused_before_it_is_read() {
    let mut w = started(1);
    let mut head = ((66u32 << 20) + 10).to_be_bytes().to_vec();
    head.extend(2u32.to_be_bytes());
    w.send_raw(&head);
    assert_eq!(w.wait_exit().code(), Some(1));
    assert!(w.wait_stderr("oversized"), "{}", w.stderr());
}
