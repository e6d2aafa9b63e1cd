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

const ECHO: &str =
    "def handler(event):\n    return {'status': 200, 'body': str(len(event['body']))}\n";

/// A POST-able function, served with short timeouts so the cases finish quickly.
fn timed_gateway(fast_path: bool, rate: u64) -> (tempfile::TempDir, Gateway) {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("echo/handler.py", ECHO),
            ("echo/fn.config.json", r#"{"methods": ["POST"]}"#),
        ],
    );
    let gw = start(
        dir.path(),
        &format!(
            "http1_fast_path = {fast_path}\nheader_read_timeout_ms = 2000\nidle_timeout_ms = 120000\nbody_read_timeout_ms = 4000\nmin_body_bytes_per_s = {rate}"
        ),
    );
    (dir, gw)
}

/// The whole answer the gateway sends before it closes the connection, and how long
/// the close took from `since`.
fn answer_then_eof(s: &mut TcpStream, since: Instant) -> (String, Duration) {
    let mut all = Vec::new();
    s.read_to_end(&mut all)
        .expect("the gateway closes the connection");
    (String::from_utf8_lossy(&all).into_owned(), since.elapsed())
}

fn assert_408(text: &str, case: &str) {
    assert!(text.starts_with("HTTP/1.1 408"), "{case}: {text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{case}: {text}"
    );
    assert!(text.contains("did not arrive in time"), "{case}: {text}");
}

/// A declared body of 1000 bytes of which 10 arrive, a chunked body that stalls after one
/// chunk, and a body trickled at 5 bytes/s: each gets 408 + `Connection: close` within
/// the timeout, with the front on and off; a body sent at once still gets 200.
fn stalled_and_trickled_bodies_get_408(fast_path: bool) {
    let (_dir, gw) = timed_gateway(fast_path, 1024);
    let ok = client()
        .post(gw.url("/echo"))
        .body(vec![b'a'; 200_000])
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().unwrap(), "200000");

    let head = "POST /echo HTTP/1.1\r\nHost: t\r\n";
    let cases: [(&str, String); 2] = [
        (
            "declared 1000, sent 10",
            format!("{head}Content-Length: 1000\r\n\r\n0123456789"),
        ),
        (
            "chunked, stalls",
            format!("{head}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
        ),
    ];
    for (case, bytes) in cases {
        let mut s = connect(&gw);
        let t0 = Instant::now();
        s.write_all(bytes.as_bytes()).unwrap();
        let (text, took) = answer_then_eof(&mut s, t0);
        assert_408(&text, case);
        assert!(
            took < Duration::from_secs(30),
            "{case}: closed after {took:?}"
        );
    }

    // Trickled: one byte every 200 ms, from a thread, until the gateway closes.
    let mut s = connect(&gw);
    let t0 = Instant::now();
    s.write_all(format!("{head}Content-Length: 100000\r\n\r\n").as_bytes())
        .unwrap();
    let mut writer = s.try_clone().unwrap();
    let trickler = std::thread::spawn(move || {
        for _ in 0..300 {
            if writer.write_all(b"x").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let (text, took) = answer_then_eof(&mut s, t0);
    assert_408(&text, "trickled");
    assert!(
        took < Duration::from_secs(30),
        "trickled: closed after {took:?}"
    );
    drop(s);
    trickler.join().unwrap();

    let m = gw.metrics();
    let too_slow = metric_in(&m, "edgefn_body_read_timeouts_total{reason=\"too_slow\"}");
    assert_eq!(too_slow, Some(3.0), "{m}");
}

#[test]
fn stalled_and_trickled_bodies_get_408_front() {
    stalled_and_trickled_bodies_get_408(true);
}

#[test]
fn stalled_and_trickled_bodies_get_408_hyper() {
    stalled_and_trickled_bodies_get_408(false);
}

/// With no rate check, a body that keeps coming but never ends is cut at
/// `body_read_timeout_ms` (reason `deadline`).
#[test]
fn a_body_that_never_ends_is_cut_at_the_body_read_timeout() {
    let (_dir, gw) = timed_gateway(true, 0);
    let mut s = connect(&gw);
    let t0 = Instant::now();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nabc")
        .unwrap();
    let (text, took) = answer_then_eof(&mut s, t0);
    assert_408(&text, "never ends");
    assert!(took >= Duration::from_millis(3900), "cut early: {took:?}");
    assert!(took < Duration::from_secs(30), "closed after {took:?}");
    let series = "edgefn_body_read_timeouts_total{reason=\"deadline\"}";
    assert_eq!(gw.metric(series), Some(1.0));
}

/// A connection that sends nothing is closed at `header_read_timeout_ms` (2 s here), long
/// before the idle timeout (120 s); front on and off.
#[test]
fn a_silent_connection_is_closed_at_the_header_read_timeout() {
    for fast_path in [true, false] {
        let (_dir, gw) = timed_gateway(fast_path, 1024);
        let mut s = connect(&gw);
        let t0 = Instant::now();
        let (text, took) = answer_then_eof(&mut s, t0);
        assert_eq!(text, "", "nothing is sent to a silent client");
        assert!(
            took >= Duration::from_millis(1900),
            "closed early: {took:?}"
        );
        assert!(took < Duration::from_secs(60), "closed after {took:?}");
    }
}

/// One h2 frame: 9-byte header then the payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An h2 (prior knowledge) stream whose body stalls after 10 bytes gets 408, written by
/// hand (frames and literal HPACK) so the client really stalls: the error body arrives on
/// the stream and the 408 is counted.
#[test]
fn a_stalled_h2_body_gets_408() {
    let (_dir, gw) = timed_gateway(true, 1024);
    let mut s = connect(&gw);
    // :method POST (static 3), :scheme http (6), :path "/echo" and :authority "t"
    // as literals with indexed names (4, 1).
    let mut block = vec![0x83, 0x86, 0x44, 5];
    block.extend_from_slice(b"/echo");
    block.extend_from_slice(&[0x41, 1, b't']);
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(h2_frame(4, 0, 0, &[]));
    out.extend(h2_frame(1, 0x4, 1, &block));
    out.extend(h2_frame(0, 0, 1, b"0123456789"));
    let t0 = Instant::now();
    s.write_all(&out).unwrap();
    let mut buf = Vec::new();
    let mut body = Vec::new();
    loop {
        while buf.len() < 9 {
            assert!(fill(&mut s, &mut buf) > 0, "closed before the 408 body");
        }
        let len = (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
        while buf.len() < 9 + len {
            assert!(fill(&mut s, &mut buf) > 0, "closed inside a frame");
        }
        let (kind, flags) = (buf[3], buf[4]);
        let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
        if kind == 4 && flags & 1 == 0 {
            s.write_all(&h2_frame(4, 1, 0, &[])).unwrap();
        }
        if kind == 0 && stream == 1 {
            body.extend_from_slice(&buf[9..9 + len]);
            if flags & 1 == 1 {
                break;
            }
        }
        buf.drain(..9 + len);
    }
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("did not arrive in time"), "{text}");
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    let series = "edgefn_body_read_timeouts_total{reason=\"too_slow\"}";
    assert_eq!(gw.metric(series), Some(1.0));
    let m = gw.metrics();
    assert!(
        m.lines()
            .any(|l| l.starts_with("edgefn_requests_total") && l.contains("status=\"408\"")),
        "{m}"
    );
}
