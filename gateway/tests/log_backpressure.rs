//! The access log never holds a request up: with the gateway's stderr a pipe nobody
//! reads, every request is still answered, and the lines that could not be written are
//! counted in `edgefn_log_dropped_total`.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{metric_in, parse_banner, tempdir, write_tree, BIN};

/// Requests sent: their access lines are several MiB, more than the pipe (64 KiB) and
/// the sink's buffer (1 MiB) hold together.
const REQUESTS: usize = 40_000;
const BATCH: usize = 500;

#[test]
fn lines_dropped_under_back_pressure_are_counted_and_requests_answered() {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            (
                "locked/fn.config.json",
                r#"{"auth":{"type":"api_key","secret":"KEY"}}"#,
            ),
            (
                "locked/fn.env.json",
                r#"{"KEY":{"value":"k-123456789","is_secret":true}}"#,
            ),
            (
                "locked/handler.py",
                "def handler(event):\n    return 'ok'\n",
            ),
        ],
    );
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(["--functions", dir.path().to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // Held, never read until the end: the pipe fills and stays full.
        .stderr(Stdio::piped())
        .spawn()
        .expect("start edgefn");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    while !banner.starts_with("edgefn listening on ") {
        banner.clear();
        assert!(
            stdout.read_line(&mut banner).unwrap() > 0,
            "edgefn exited before its banner"
        );
    }
    let (public, admin, _) = parse_banner(banner.trim());

    let mut conn = TcpStream::connect(public).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let request = format!("GET /locked HTTP/1.1\r\nHost: {public}\r\nx-api-key: wrong\r\n\r\n");
    let batch = request.repeat(BATCH);
    let mut answered = 0;
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    for _ in 0..REQUESTS / BATCH {
        conn.write_all(batch.as_bytes()).unwrap();
        let want = answered + BATCH;
        while answered < want {
            let n = conn.read(&mut buf).expect("every request is answered");
            assert!(
                n > 0,
                "the gateway closed the connection after {answered} answers"
            );
            pending.extend_from_slice(&buf[..n]);
            answered += count_and_trim(&mut pending);
        }
    }
    assert_eq!(answered, REQUESTS);

    let metrics = reqwest::blocking::get(format!("http://{admin}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    let dropped = metric_in(&metrics, "edgefn_log_dropped_total").expect("series exported");
    assert!(dropped > 0.0, "no line counted as dropped:\n{metrics}");
    let refused = metric_in(
        &metrics,
        r#"edgefn_requests_total{function="locked",method="GET",status="401"}"#,
    )
    .unwrap();
    assert_eq!(refused as usize, REQUESTS);

    let _ = child.kill();
    let mut rest = Vec::new();
    let _ = child.stderr.take().unwrap().read_to_end(&mut rest);
    let _ = child.wait();
}

/// Counts complete `401` answers at the front of `pending` and removes them.
fn count_and_trim(pending: &mut Vec<u8>) -> usize {
    let mut n = 0;
    loop {
        let Some(head_end) = find(pending, b"\r\n\r\n") else {
            return n;
        };
        let head = std::str::from_utf8(&pending[..head_end]).unwrap();
        assert!(head.starts_with("HTTP/1.1 401"), "{head}");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .expect("content-length")
            .parse()
            .unwrap();
        let total = head_end + 4 + len;
        if pending.len() < total {
            return n;
        }
        pending.drain(..total);
        n += 1;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
