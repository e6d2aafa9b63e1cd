//! Test support for the OpenFaaS tests: a loopback HTTP/1.1 server that records every
//! callback it receives (keep-alive, bounded reads), and the fixture handlers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Echoes what the function saw; appends its call id to `$MARK` when set; sleeps
/// `$SLEEP_MS` first.
pub const ECHO_PY: &str = r#"import json, os, time
def handler(event):
    env = event["env"]
    if env.get("SLEEP_MS"):
        time.sleep(int(env["SLEEP_MS"]) / 1000)
    if env.get("MARK"):
        with open(env["MARK"], "a") as f:
            f.write((event["headers"].get("x-call-id") or "-") + "\n")
    return {"status": 200, "headers": {"x-fn": "echo"}, "body": {
        "path": event["path"], "query": event["query"], "params": event["params"],
        "body": event["body"], "call_id": event["headers"].get("x-call-id"),
        "auth": event["context"]["auth"]}}
"#;

pub const CRASH_PY: &str = "import os\ndef handler(event):\n    os._exit(3)\n";

/// One request the callback server received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

pub struct CallbackServer {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<Received>>>,
}

impl CallbackServer {
    /// Answers `status` to every request.
    pub fn start(status: u16) -> CallbackServer {
        Self::start_with(Behaviour {
            status,
            fail_first: 0,
            reply_bytes: 0,
        })
    }

    pub fn start_with(b: Behaviour) -> CallbackServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let g = g.clone();
                std::thread::spawn(move || serve(stream, g, b));
            }
        });
        CallbackServer { addr, got }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }
}

/// How the callback server answers.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    pub status: u16,
    /// The first this-many requests get a 503.
    pub fail_first: usize,
    /// Body bytes sent with each answer (its content-length says so).
    pub reply_bytes: usize,
}

fn serve(stream: TcpStream, got: Arc<Mutex<Vec<Received>>>, b: Behaviour) {
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(len <= 1 << 20, "callback body too large");
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let n = {
            let mut g = got.lock().unwrap();
            g.push(Received {
                path,
                headers,
                body,
            });
            g.len()
        };
        let status = if n <= b.fail_first { 503 } else { b.status };
        let answer = format!(
            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n",
            b.reply_bytes
        );
        if w.write_all(answer.as_bytes()).is_err() {
            return;
        }
        let chunk = vec![b'z'; 64 << 10];
        let mut left = b.reply_bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            if w.write_all(&chunk[..n]).is_err() {
                return;
            }
            left -= n;
        }
    }
}

/// The call ids a `$MARK` file lists (one per function run).
pub use crate::support::recording::lines as marks;
