//! The benchmark ceiling: the least a Rust server can do to answer an API-key check.
//! Accept, parse HTTP/1.1 (or h2c) with hyper, compare `x-api-key` with one key in
//! constant time, answer 401 JSON or 200. No routing, no request id, no metrics, no log.
//!
//! Usage: `hyper-header LISTEN_ADDR KEY` (e.g. `127.0.0.1:18081 bench-key`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;

static DENIED: &[u8] = br#"{"error":"unauthorized"}"#;
static OK: &[u8] = br#"{"ok":true}"#;

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn answer(key: &[u8], req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let presented = req.headers().get("x-api-key").map(|v| v.as_bytes());
    let ok = presented.is_some_and(|p| constant_time_eq(p, key));
    let (status, body) = if ok {
        (StatusCode::OK, OK)
    } else {
        (StatusCode::UNAUTHORIZED, DENIED)
    };
    let mut resp = Response::new(Full::new(Bytes::from_static(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(key)) = (args.next(), args.next()) else {
        eprintln!("usage: hyper-header LISTEN_ADDR KEY");
        std::process::exit(2);
    };
    let addr: SocketAddr = addr.parse().unwrap_or_else(|e| {
        eprintln!("hyper-header: bad address {addr}: {e}");
        std::process::exit(2);
    });
    let key: Arc<[u8]> = Arc::from(key.into_bytes());
    let listener = TcpListener::bind(addr).await.unwrap_or_else(|e| {
        eprintln!("hyper-header: cannot bind {addr}: {e}");
        std::process::exit(1);
    });
    println!(
        "hyper-header listening on {}",
        listener.local_addr().map_or(addr, |a| a)
    );
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let key = key.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let resp = answer(&key, &req);
                async move { Ok::<_, Infallible>(resp) }
            });
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
