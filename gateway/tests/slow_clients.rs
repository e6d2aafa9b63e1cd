//! Clients that hold the gateway's memory or connections, against the real binary over raw
//! TCP: a pipelined burst from clients that never read (the HTTP/1 front and hyper), a
//! silent connection, and request bodies that stall or trickle (`body_read_timeout_ms`,
//! `min_body_bytes_per_s`), each with the front on and off.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

const OPENAPI: &str = "GET /_fn/openapi.json HTTP/1.1\r\nHost: t\r\n\r\n";
const BURST: usize = 481;
const CONNS: usize = 100;

/// A tree whose OpenAPI document is tens of KiB (many routes with summaries), so each
/// pipelined answer is large; `workers.min = 0` keeps it from starting forty workers.
fn wide_tree(root: &std::path::Path) {
    let mut files: Vec<(String, String)> = Vec::new();
    for i in 0..40 {
        let summary = format!(
            "Function number {i} of the burst fixture; {}",
            "x".repeat(160)
        );
        files.push((
            format!("f{i}/fn.config.json"),
            json!({"workers": {"min": 0, "max": 1}, "summary": summary}).to_string(),
        ));
        files.push((
            format!("f{i}/handler.py"),
            "def handler(event):\n    return {'status': 200, 'body': 'ok'}\n".into(),
        ));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    write_tree(root, &refs);
}

fn start(root: &std::path::Path, server_toml: &str) -> Gateway {
    let config = root.with_extension("toml");
    std::fs::write(&config, format!("[server]\n{server_toml}\n")).unwrap();
    Gateway::start_with_config(&config, root)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// The highest RSS seen until it has stayed within 256 KiB for two seconds of samples
/// (the gateway has stopped taking in the burst), within a generous deadline.
fn settled_peak_rss(pid: u32) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut peak, mut last, mut steady) = (0u64, 0u64, 0u32);
    while Instant::now() < deadline && steady < 8 {
        let now = rss_kib(pid);
        peak = peak.max(now);
        steady = if now.abs_diff(last) <= 256 {
            steady + 1
        } else {
            0
        };
        last = now;
        std::thread::sleep(Duration::from_millis(250));
    }
    peak
}

/// Reads one HTTP/1.1 answer with a Content-Length body; `None` at EOF.
fn read_answer(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<u16> {
    loop {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut fields);
        if let httparse::Status::Complete(n) = resp.parse(buf).unwrap() {
            let len: usize = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map_or(0, |h| {
                    std::str::from_utf8(h.value).unwrap().parse().unwrap()
                });
            let code = resp.code.unwrap();
            while buf.len() < n + len {
                if fill(s, buf) == 0 {
                    return None;
                }
            }
            buf.drain(..n + len);
            return Some(code);
        }
        if fill(s, buf) == 0 {
            return None;
        }
    }
}

fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> usize {
    let mut chunk = [0u8; 65536];
    let n = s.read(&mut chunk).unwrap_or(0);
    buf.extend_from_slice(&chunk[..n]);
    n
}

fn connect(gw: &Gateway) -> TcpStream {
    let s = TcpStream::connect(gw.public).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

/// 100 connections each pipeline 481 requests for the OpenAPI document in one write and
/// never read: the gateway's RSS grows by less than 1 MB per connection. One connection
/// then reads: every answer arrives, in order (the front resumes after each flush).
fn pipelined_burst_is_bounded(server_toml: &str) {
    let dir = tempdir();
    wide_tree(dir.path());
    let gw = start(dir.path(), server_toml);
    let doc_len = client()
        .get(gw.url("/_fn/openapi.json"))
        .send()
        .unwrap()
        .bytes()
        .unwrap()
        .len();
    assert!(doc_len > 8 * 1024, "OpenAPI document is {doc_len} bytes");
    // Warm up: every connection slot once, so the baseline includes per-connection costs
    // that are not the burst's.
    let warm: Vec<TcpStream> = (0..CONNS)
        .map(|_| {
            let mut s = connect(&gw);
            s.write_all(OPENAPI.as_bytes()).unwrap();
            assert_eq!(read_answer(&mut s, &mut Vec::new()), Some(200));
            s
        })
        .collect();
    drop(warm);
    let base = settled_peak_rss(gw.pid());
    let burst = OPENAPI.repeat(BURST);
    let mut conns: Vec<TcpStream> = (0..CONNS)
        .map(|_| {
            let mut s = connect(&gw);
            s.write_all(burst.as_bytes()).unwrap();
            s
        })
        .collect();
    let peak = settled_peak_rss(gw.pid());
    let growth_kib = peak.saturating_sub(base);
    eprintln!(
        "[{server_toml}] doc {doc_len} B; RSS {base} KiB -> peak {peak} KiB: +{} KiB per connection",
        growth_kib / CONNS as u64
    );
    assert!(
        growth_kib < 1024 * CONNS as u64,
        "RSS grew {growth_kib} KiB for {CONNS} connections ({server_toml})"
    );
    let mut buf = Vec::new();
    let first = &mut conns[0];
    for i in 0..BURST {
        assert_eq!(read_answer(first, &mut buf), Some(200), "answer {i}");
    }
}

#[test]
fn pipelined_burst_to_a_client_that_never_reads_is_bounded_front() {
    pipelined_burst_is_bounded("http1_fast_path = true");
}

#[test]
fn pipelined_burst_to_a_client_that_never_reads_is_bounded_hyper() {
    pipelined_burst_is_bounded("http1_fast_path = false");
}
