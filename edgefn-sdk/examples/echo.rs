//! A worker built on the SDK for the protocol tests (gateway/tests/workers_v2.rs): echoes
//! the event, sleeps on `?sleep=MS` (saying so on stderr first), panics on `?panic`,
//! answers status 700 on `?bad`.

use edgefn_sdk::{Event, Response};
use serde_json::json;

fn handler(event: Event) -> Response {
    if let Some(ms) = event.query("sleep").and_then(|v| v.parse().ok()) {
        eprintln!("sleeping {ms} ms");
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    if event.query("panic").is_some() {
        panic!("boom-from-handler");
    }
    if event.query("bad").is_some() {
        return Response::new(700);
    }
    Response::json(&json!({
        "method": event.method,
        "body": event.body_text(),
        "binary": event.binary,
        "env": event.env("GREETING"),
        "param": event.param("id"),
        "request_id": event.context["request_id"],
    }))
}

fn main() {
    edgefn_sdk::run(handler)
}
