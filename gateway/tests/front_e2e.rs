//! The HTTP/1 front (`server/front.rs`) against the real binary over raw TCP: refusals
//! answered from the read buffer and admitted requests served by real workers, in order,
//! pipelined, with everything hyper answers after a handover on the same connection; heads
//! arriving in pieces; `Connection: close`; HEAD; shutdown while a worker answers; what
//! the front leaves to hyper (bodies still arriving or too large, HTTP/1.0, malformed or
//! oversized heads); and byte-for-byte the same answers as hyper's path
//! (`server.http1_fast_path = false`).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const KEY: &str = "front-key-aaaaaaaaaaaaaaaaaaaaaaaaaa";
const RECORDING: &str = r#"
def handler(event):
    with open(event["env"]["CALLS"], "a") as f:
        f.write(event["method"] + " " + event["path"] + "\n")
    return {"status": 200, "body": "ok"}
"#;

struct Env {
    _dir: tempfile::TempDir,
    _calls_dir: tempfile::TempDir,
    calls: std::path::PathBuf,
    root: std::path::PathBuf,
}

impl Env {
    fn new() -> Env {
        let calls_dir = tempdir();
        let calls = calls_dir.path().join("calls.log");
        let c = calls.to_str().unwrap();
        let secret = |v: &str| json!({"value": v, "is_secret": true});
        let hash =
            gateway::auth::hash_key::basic_hash(b"pw", gateway::auth::hash_key::MIN_ITERATIONS);
        let files: Vec<(String, String)> = vec![
            ("keyed/fn.config.json".into(), json!({"methods": ["GET", "HEAD", "POST"], "auth": {"type": "api_key", "secret": "API_KEY"}}).to_string()),
            ("keyed/fn.env.json".into(), json!({"CALLS": c, "API_KEY": secret(KEY)}).to_string()),
            ("bearer/fn.config.json".into(), json!({"auth": {"type": "bearer", "secret": "TOKEN"}}).to_string()),
            ("bearer/fn.env.json".into(), json!({"CALLS": c, "TOKEN": secret("tok-ccccccccccccccccccccccccccccc")}).to_string()),
            ("staff/fn.config.json".into(), json!({"auth": {"type": "basic", "users": "USERS", "realm": "Staff"}}).to_string()),
            ("staff/fn.env.json".into(), json!({"CALLS": c, "USERS": secret(&format!("ops:{hash}\n"))}).to_string()),
        ];
        let dir = tempdir();
        let mut all: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        all.extend([
            ("keyed/handler.py", RECORDING),
            ("bearer/handler.py", RECORDING),
            ("staff/handler.py", RECORDING),
        ]);
        write_tree(dir.path(), &all);
        Env {
            root: dir.path().to_path_buf(),
            _dir: dir,
            _calls_dir: calls_dir,
            calls,
        }
    }

    fn start(&self, fast_path: bool) -> Gateway {
        self.start_with(fast_path, "")
    }

    /// With more config after the `[server]` table (its own tables).
    fn start_with(&self, fast_path: bool, more: &str) -> Gateway {
        let config = self
            .calls
            .with_file_name(format!("edgefn-{fast_path}.toml"));
        std::fs::write(
            &config,
            format!("[server]\nhttp1_fast_path = {fast_path}\n{more}"),
        )
        .unwrap();
        Gateway::start_with_config(&config, &self.root)
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.calls)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    /// Lower-cased names, in order, without `date` (its value changes each second).
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// One connection and the bytes it has read but not yet parsed.
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(gw: &Gateway) -> Conn {
        let s = TcpStream::connect(gw.public).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Conn { s, buf: Vec::new() }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16384];
        let n = self.s.read(&mut chunk).unwrap();
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// The next response; `head_only` for the answer to a HEAD request.
    fn answer(&mut self, head_only: bool) -> Answer {
        loop {
            let mut fields = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut fields);
            if let httparse::Status::Complete(n) = resp.parse(&self.buf).unwrap() {
                let headers: Vec<(String, String)> = resp
                    .headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8(h.value.to_vec()).unwrap();
                        (h.name.to_ascii_lowercase(), value)
                    })
                    .collect();
                let status = resp.code.unwrap();
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .map_or(0, |(_, v)| v.parse().unwrap());
                assert!(
                    headers.iter().any(|(k, _)| k == "date"),
                    "every answer carries a Date"
                );
                let body_len = if head_only { 0 } else { len };
                while self.buf.len() < n + body_len {
                    assert!(self.fill() > 0, "connection closed inside a body");
                }
                let body = self.buf[n..n + body_len].to_vec();
                self.buf.drain(..n + body_len);
                let headers = headers.into_iter().filter(|(k, _)| k != "date").collect();
                return Answer {
                    status,
                    headers,
                    body,
                };
            }
            assert!(self.fill() > 0, "connection closed before a full answer");
        }
    }

    /// True once the server has closed the connection (EOF), with nothing more sent.
    fn closed(&mut self) -> bool {
        self.buf.is_empty() && self.fill() == 0
    }
}

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n")
}

fn metric0(gw: &Gateway, series: &str) -> f64 {
    gw.metric(series).unwrap_or(0.0)
}

const ANSWERED: &str = r#"edgefn_http1_front_total{outcome="answered"}"#;
const SERVED: &str = r#"edgefn_http1_front_total{outcome="served"}"#;
const HANDOVER: &str = r#"edgefn_http1_front_total{outcome="handover"}"#;

#[test]
fn pipelined_refusals_and_a_served_request_answer_in_order() {
    let env = Env::new();
    let gw = env.start(true);
    let mut c = Conn::open(&gw);
    let good = format!("x-api-key: {KEY}\r\n");
    // One write: three refusals, an admitted request (a worker answers it through the
    // front), two more refusals the front answers after it on the same connection.
    let batch = [
        get("/keyed", ""),
        get("/nowhere", ""),
        get(
            "/keyed",
            "x-api-key: wrong\r\nx-request-id: caller-id-1\r\n",
        ),
        get("/keyed?x=1", &good),
        get("/keyed", ""),
        "HEAD /keyed HTTP/1.1\r\nHost: t\r\n\r\n".to_string(),
    ]
    .concat();
    c.send(batch.as_bytes());
    let statuses: Vec<u16> = [false, false, false, false, false]
        .iter()
        .map(|head| {
            let a = c.answer(*head);
            if a.status == 200 {
                assert_eq!(a.body, b"ok");
            } else {
                assert_eq!(a.header("content-type"), Some("application/json"));
                let v = a.json();
                assert_eq!(v["request_id"], a.header("x-request-id").unwrap());
            }
            if a.status == 401 && a.header("x-request-id") == Some("caller-id-1") {
                assert_eq!(a.json()["request_id"], "caller-id-1");
            }
            a.status
        })
        .collect();
    assert_eq!(statuses, [401, 404, 401, 200, 401]);
    let head = c.answer(true);
    assert_eq!(head.status, 401);
    assert!(
        head.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 0
    );
    assert!(head.body.is_empty());
    // Only the admitted request reached the worker.
    assert_eq!(env.calls(), ["GET /keyed"]);
    // The front answered every refusal and served the admitted request: no handover.
    assert_eq!(metric0(&gw, ANSWERED), 5.0);
    assert_eq!(metric0(&gw, SERVED), 1.0);
    assert_eq!(metric0(&gw, HANDOVER), 0.0);
    // Refusals are counted once each, by whichever path answered them.
    assert_eq!(
        gw.metric(r#"edgefn_requests_total{function="keyed",method="GET",status="401"}"#),
        Some(3.0)
    );
    assert_eq!(
        gw.metric(
            r#"edgefn_auth_failures_total{function="keyed",type="api_key",reason="missing"}"#
        ),
        Some(3.0)
    );
}

#[test]
fn a_head_arriving_byte_by_byte_is_answered() {
    let env = Env::new();
    let gw = env.start(true);
    let mut c = Conn::open(&gw);
    for b in get("/keyed", "x-api-key: nope\r\n").bytes() {
        c.send(&[b]);
    }
    assert_eq!(c.answer(false).status, 401);
    // The connection is still good for the next request.
    c.send(get("/keyed", "").as_bytes());
    assert_eq!(c.answer(false).status, 401);
    assert_eq!(
        gw.metric(r#"edgefn_http1_front_total{outcome="answered"}"#),
        Some(2.0)
    );
}

#[test]
fn connection_close_is_honoured() {
    let env = Env::new();
    let gw = env.start(true);
    let mut c = Conn::open(&gw);
    // A request pipelined after `Connection: close` is not answered.
    c.send(
        format!(
            "{}{}",
            get("/keyed", "Connection: close\r\n"),
            get("/keyed", "")
        )
        .as_bytes(),
    );
    let a = c.answer(false);
    assert_eq!(a.status, 401);
    assert_eq!(a.header("connection"), Some("close"));
    assert!(c.closed());
}

#[test]
fn what_the_front_does_not_take_hyper_answers() {
    let env = Env::new();
    let gw = env.start(true);
    // A chunked body: hyper's, and the same refusal.
    let mut c = Conn::open(&gw);
    c.send(b"POST /keyed HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    assert_eq!(c.answer(false).status, 401);
    // A small body that came with its head: the front reads it and refuses alike.
    let mut c = Conn::open(&gw);
    c.send(b"POST /keyed HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(c.answer(false).status, 401);
    c.send(get("/keyed", "").as_bytes());
    assert_eq!(c.answer(false).status, 401);
    // HTTP/1.0.
    let mut c = Conn::open(&gw);
    c.send(b"GET /keyed HTTP/1.0\r\n\r\n");
    assert_eq!(c.answer(false).status, 401);
    // A head longer than the front buffers (16 KiB), within hyper's limit.
    let mut c = Conn::open(&gw);
    let long = format!("x-filler: {}\r\n", "a".repeat(20_000));
    c.send(get("/keyed", &long).as_bytes());
    assert_eq!(c.answer(false).status, 401);
    // Malformed: hyper's 400.
    let mut c = Conn::open(&gw);
    c.send(b"GET /keyed HTTP/1.1\r\nBad Header\r\n\r\n");
    assert_eq!(c.answer(false).status, 400);
    assert!(c.closed());
    // A target the front does not vouch for goes to hyper too, which routes it.
    let mut c = Conn::open(&gw);
    c.send(get("/keyed?q={x}", "").as_bytes());
    assert_eq!(c.answer(false).status, 401);
    assert!(env.calls().is_empty());
}

#[test]
fn front_and_hyper_answer_alike() {
    let env = Env::new();
    let front = env.start(true);
    let hyper_only = env.start(false);
    let requests = [
        (get("/keyed", "x-request-id: same-1\r\n"), false),
        (
            get("/keyed", "x-api-key: bad\r\nx-request-id: same-2\r\n"),
            false,
        ),
        (
            "HEAD /keyed HTTP/1.1\r\nx-request-id: same-3\r\n\r\n".to_string(),
            true,
        ),
        (
            get(
                "/bearer",
                "Authorization: Bearer nope\r\nx-request-id: same-4\r\n",
            ),
            false,
        ),
        (get("/bearer", "x-request-id: same-5\r\n"), false),
        (
            get(
                "/staff",
                "Authorization: Basic b3BzOndyb25n\r\nx-request-id: same-6\r\n",
            ),
            false,
        ),
        (get("/nowhere", "x-request-id: same-7\r\n"), false),
        (
            "DELETE /keyed HTTP/1.1\r\nx-request-id: same-8\r\n\r\n".to_string(),
            false,
        ),
        (get("/_fn/health", "x-request-id: same-9\r\n"), false),
        (
            "POST /_fn/health HTTP/1.1\r\nContent-Length: 0\r\nx-request-id: same-10\r\n\r\n"
                .to_string(),
            false,
        ),
        (
            get("/keyed", "Connection: close\r\nx-request-id: same-11\r\n"),
            false,
        ),
    ];
    for (raw, head_only) in &requests {
        let ask = |gw: &Gateway| {
            let mut c = Conn::open(gw);
            c.send(raw.as_bytes());
            let mut a = c.answer(*head_only);
            a.headers.sort();
            a
        };
        let (a, b) = (ask(&front), ask(&hyper_only));
        assert_eq!(a, b, "request {raw:?}");
    }
    let answered = r#"edgefn_http1_front_total{outcome="answered"}"#;
    assert_eq!(front.metric(answered), Some(requests.len() as f64));
    assert_eq!(hyper_only.metric(answered).unwrap_or(0.0), 0.0);
    assert!(env.calls().is_empty());
}

/// The front's decision is the only one: an admitted request spends one rate-limit token,
/// whether the front serves it or hands it to hyper (a body past the function's limit:
/// hyper's 413, from the front's decision), the refusal that follows is the front's own
/// answer and the same bytes as hyper's, and the access line names the request id the
/// client sees.
#[test]
fn an_admitted_request_is_decided_once() {
    let calls_dir = tempdir();
    let calls = calls_dir.path().join("calls.log");
    let dir = tempdir();
    let config = json!({"auth": {"type": "api_key", "secret": "API_KEY"},
                        "max_body_bytes": 4,
                        "rate_limit": {"per_second": 0.001, "burst": 2}})
    .to_string();
    let env = json!({"CALLS": calls.to_str().unwrap(),
                     "API_KEY": {"value": KEY, "is_secret": true}})
    .to_string();
    write_tree(
        dir.path(),
        &[
            ("limited/fn.config.json", &config),
            ("limited/fn.env.json", &env),
            ("limited/handler.py", RECORDING),
        ],
    );
    let start = |fast_path: bool| {
        let toml = calls_dir.path().join(format!("edgefn-{fast_path}.toml"));
        std::fs::write(
            &toml,
            format!("[server]\nhttp1_fast_path = {fast_path}\n[log]\naccess = true\n"),
        )
        .unwrap();
        Gateway::start_with_config(&toml, dir.path())
    };
    let (front, hyper_only) = (start(true), start(false));
    let key = format!("x-api-key: {KEY}\r\n");
    let ask = |gw: &Gateway, rid: &str| {
        let mut c = Conn::open(gw);
        c.send(get("/limited", &format!("{key}x-request-id: {rid}\r\n")).as_bytes());
        let mut a = c.answer(false);
        a.headers.sort();
        a
    };
    let too_long = |gw: &Gateway, rid: &str| {
        let mut c = Conn::open(gw);
        let extra = format!("{key}x-request-id: {rid}\r\ncontent-length: 8\r\n");
        c.send(format!("POST /limited HTTP/1.1\r\nHost: t\r\n{extra}\r\n12345678").as_bytes());
        let mut a = c.answer(false);
        a.headers.sort();
        a
    };
    for gw in [&front, &hyper_only] {
        assert_eq!(ask(gw, "once-1").status, 200, "one token per request");
        assert_eq!(
            too_long(gw, "once-2").status,
            413,
            "a token spent, then 413"
        );
    }
    let (a, b) = (ask(&front, "once-3"), ask(&hyper_only, "once-3"));
    assert_eq!(a.status, 429, "the third request finds the bucket empty");
    assert_eq!(a, b, "the front's 429 is hyper's, byte for byte");
    let limited = r#"edgefn_rate_limited_total{function="limited",layer="function"}"#;
    assert_eq!(front.metric(limited), Some(1.0));
    assert_eq!(hyper_only.metric(limited), Some(1.0));
    assert_eq!(metric0(&front, SERVED), 1.0);
    assert_eq!(metric0(&front, HANDOVER), 1.0);
    assert_eq!(metric0(&front, ANSWERED), 1.0);
    for rid in ["once-1", "once-2"] {
        assert!(
            front.wait_log(rid, Duration::from_secs(10)),
            "the access line of a served or handed-over request carries its id: {}",
            front.logs()
        );
    }
}

/// Answers shaped by the query: `status`, an `x-shape` header, and the request body
/// echoed after `say`; every call is recorded (method, path, body).
const SHAPED: &str = r#"
def handler(event):
    q = event.get("query") or {}
    body = event.get("body") or ""
    with open(event["env"]["CALLS"], "a") as f:
        f.write(event["method"] + " " + event["path"] + " " + body + "\n")
    headers = {"x-shape": q.get("shape", "plain"), "cache-control": "no-store"}
    return {"status": int(q.get("status", "200")), "headers": headers,
            "body": q.get("say", "") + body}
"#;

/// A public function answering [`SHAPED`], and one that waits for a file before it
/// answers (it writes `started` first), for requests still in service.
fn shaped_env() -> Env {
    let calls_dir = tempdir();
    let calls = calls_dir.path().join("calls.log");
    let c = calls.to_str().unwrap();
    let cfg = json!({"methods": ["GET", "HEAD", "POST"]}).to_string();
    let env = json!({"CALLS": c}).to_string();
    let gate = calls.with_file_name("go");
    let slow = format!(
        "import os, time\n\ndef handler(event):\n    open({started:?}, 'w').close()\n    while not os.path.exists({gate:?}):\n        time.sleep(0.01)\n    return {{'status': 200, 'body': 'late'}}\n",
        started = calls.with_file_name("started").to_str().unwrap(),
        gate = gate.to_str().unwrap(),
    );
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("shaped/fn.config.json", &cfg),
            ("shaped/fn.env.json", &env),
            ("shaped/handler.py", SHAPED),
            ("slow/handler.py", &slow),
        ],
    );
    Env {
        root: dir.path().to_path_buf(),
        _dir: dir,
        _calls_dir: calls_dir,
        calls,
    }
}

/// An access line from its request id on, the digits of its duration dropped.
fn timeless(line: &str) -> String {
    let from = line.find("request_id").unwrap_or(0);
    let rest = &line[from..];
    let Some(d) = rest.find("duration_us") else {
        return rest.to_owned();
    };
    let (head, tail) = rest.split_at(d + "duration_us".len());
    let tail = tail.trim_start_matches(|c: char| !c.is_ascii_digit());
    let tail = tail.trim_start_matches(|c: char| c.is_ascii_digit());
    format!("{head}{tail}")
}

fn post(path: &str, body: &str, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\ncontent-length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

/// A worker's answers through the front are hyper's: statuses with and without a body
/// (204, 304), the worker's fields in order, HEAD, a body read with its head,
/// `Connection: close`; and the front served them all without a handover.
#[test]
fn front_and_hyper_serve_alike() {
    let env = shaped_env();
    let logged = "[log]\naccess = true\n";
    let front = env.start_with(true, logged);
    let hyper_only = env.start_with(false, logged);
    let rid = |n: usize| format!("x-request-id: served-{n}\r\n");
    let requests = [
        (get("/shaped?say=hi", &rid(1)), false),
        (
            get("/shaped?status=201&shape=made&say=%7B%7D", &rid(2)),
            false,
        ),
        (get("/shaped?status=204", &rid(3)), false),
        (get("/shaped?status=304&say=ignored", &rid(4)), false),
        (get("/shaped?status=404&say=none", &rid(5)), false),
        (get("/shaped", &rid(6)), false),
        (
            format!(
                "HEAD /shaped?say=hidden HTTP/1.1\r\nHost: t\r\n{}\r\n",
                rid(7)
            ),
            true,
        ),
        (post("/shaped?say=echo:", "abc", &rid(8)), false),
        (
            get(
                "/shaped?say=bye",
                &format!("Connection: close\r\n{}", rid(9)),
            ),
            false,
        ),
    ];
    for (raw, head_only) in &requests {
        let ask = |gw: &Gateway| {
            let mut c = Conn::open(gw);
            c.send(raw.as_bytes());
            c.answer(*head_only)
        };
        let (a, b) = (ask(&front), ask(&hyper_only));
        assert_eq!(a, b, "request {raw:?}");
    }
    assert_eq!(metric0(&front, SERVED), requests.len() as f64);
    assert_eq!(metric0(&front, HANDOVER), 0.0);
    assert_eq!(metric0(&hyper_only, SERVED), 0.0);
    // The access lines are the same on both paths (but for the time and the duration).
    for n in 1..=requests.len() {
        let id = format!("served-{n}");
        let line = |gw: &Gateway| {
            assert!(gw.wait_log(&id, Duration::from_secs(10)), "{}", gw.logs());
            let logs = gw.logs();
            let line = logs.lines().find(|l| l.contains(&id)).unwrap().to_owned();
            timeless(&line)
        };
        assert_eq!(line(&front), line(&hyper_only));
    }
    // Each request reached a worker once per gateway, the body with it.
    let calls = env.calls();
    assert_eq!(calls.len(), 2 * requests.len(), "{calls:?}");
    assert_eq!(calls.iter().filter(|c| *c == "POST /shaped abc").count(), 2);
}

/// Refusals and worker requests pipelined in one write are answered in order on one
/// connection that never leaves the front, which stays usable afterwards.
#[test]
fn pipelined_worker_requests_are_served_in_order() {
    let env = shaped_env();
    let gw = env.start(true);
    let mut c = Conn::open(&gw);
    let batch = [
        get("/nowhere", ""),
        get("/shaped?say=one", ""),
        post("/shaped?say=two:", "xy", ""),
        "DELETE /shaped HTTP/1.1\r\nHost: t\r\n\r\n".to_string(),
        "HEAD /shaped?say=three HTTP/1.1\r\nHost: t\r\n\r\n".to_string(),
        get("/shaped?say=four&status=202", ""),
    ]
    .concat();
    c.send(batch.as_bytes());
    let got: Vec<(u16, Vec<u8>)> = [false, false, false, false, true, false]
        .iter()
        .map(|head| {
            let a = c.answer(*head);
            (a.status, a.body)
        })
        .collect();
    let want: Vec<(u16, &[u8])> = vec![
        (404, b""),
        (200, b"one"),
        (200, b"two:xy"),
        (404, b""),
        (200, b""),
        (202, b"four"),
    ];
    for ((status, body), (want_status, want_body)) in got.iter().zip(&want) {
        assert_eq!(status, want_status);
        if *status < 300 {
            assert_eq!(body, want_body);
        }
    }
    assert_eq!(
        env.calls(),
        [
            "GET /shaped ",
            "POST /shaped xy",
            "HEAD /shaped ",
            "GET /shaped "
        ]
    );
    c.send(get("/shaped?say=again", "").as_bytes());
    assert_eq!(c.answer(false).body, b"again");
    assert_eq!(metric0(&gw, SERVED), 5.0);
    assert_eq!(metric0(&gw, ANSWERED), 2.0);
    assert_eq!(metric0(&gw, HANDOVER), 0.0);
}

/// A body not all arrived when the socket runs dry goes to hyper (which reads it under
/// the body-read limits), as does one larger than the front reads itself; both are
/// served whole.
#[test]
fn bodies_the_front_does_not_hold_are_hypers() {
    let env = shaped_env();
    let gw = env.start(true);
    let mut c = Conn::open(&gw);
    c.send(b"POST /shaped HTTP/1.1\r\nHost: t\r\ncontent-length: 6\r\n\r\nabc");
    assert!(
        wait_until(Duration::from_secs(10), || metric0(&gw, HANDOVER) == 1.0),
        "the front handed the request over"
    );
    c.send(b"def");
    let a = c.answer(false);
    assert_eq!((a.status, a.body.as_slice()), (200, &b"abcdef"[..]));

    let big = "b".repeat(20_000);
    let mut c = Conn::open(&gw);
    c.send(post("/shaped", &big, "").as_bytes());
    let a = c.answer(false);
    assert_eq!((a.status, a.body.len()), (200, big.len()));
    assert_eq!(metric0(&gw, HANDOVER), 2.0);
    assert_eq!(metric0(&gw, SERVED), 0.0);
}

/// A connection whose `/slow` request the worker has started (and holds until `go` exists).
fn slow_request_in_service(env: &Env, gw: &Gateway) -> Conn {
    let mut c = Conn::open(gw);
    c.send(get("/slow", "").as_bytes());
    let started = env.calls.with_file_name("started");
    assert!(
        wait_until(Duration::from_secs(20), || started.exists()),
        "the worker got the request"
    );
    c
}

/// Shutdown while a worker answers a request the front serves: the answer still comes,
/// marked `connection: close`, then the connection closes and the gateway exits.
#[test]
fn shutdown_lets_the_served_request_finish() {
    let env = shaped_env();
    let mut gw = env.start(true);
    let mut c = slow_request_in_service(&env, &gw);
    gw.signal("TERM");
    assert!(gw.wait_log("shutting down", Duration::from_secs(5)));
    std::fs::write(env.calls.with_file_name("go"), b"").unwrap();
    let a = c.answer(false);
    assert_eq!((a.status, a.body.as_slice()), (200, &b"late"[..]));
    assert_eq!(a.header("connection"), Some("close"));
    assert!(c.closed());
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("gateway exits");
    assert!(status.success(), "{status:?}");
}

/// A request sent while the one before it is still in service waits for that answer,
/// then gets its own, in order, on the same connection.
#[test]
fn a_request_sent_during_service_is_answered_after_it() {
    let env = shaped_env();
    let gw = env.start(true);
    let mut c = slow_request_in_service(&env, &gw);
    c.send(get("/shaped?say=next", "").as_bytes());
    c.send(get("/nowhere", "").as_bytes());
    std::fs::write(env.calls.with_file_name("go"), b"").unwrap();
    assert_eq!(c.answer(false).body, b"late");
    assert_eq!(c.answer(false).body, b"next");
    assert_eq!(c.answer(false).status, 404);
    assert_eq!(metric0(&gw, SERVED), 2.0);
    assert_eq!(metric0(&gw, HANDOVER), 0.0);
}
