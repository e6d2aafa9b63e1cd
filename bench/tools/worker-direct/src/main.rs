//! `worker-direct <handler file> [requests] [cold starts]`: the baseline for the
//! gateway-added latency. It drives the same pool code the gateway uses (framed Unix
//! socket to a warm worker) with no HTTP in between, one request at a time, and prints one
//! JSON line: requests/s and latency percentiles of the direct path, and the ready time
//! of fresh workers (spawn → handler imported → ready frame).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gateway::pool::{AuthContext, PoolRegistry, PoolSpec, Runtime, RuntimeCommands, WorkerRequest};

fn spec(handler: &std::path::Path, name: &str, salt: u8) -> PoolSpec {
    let runtime = if handler.extension().is_some_and(|e| e == "py") {
        Runtime::Python
    } else {
        Runtime::Node
    };
    let mut code_hash = [0u8; 32];
    code_hash[0] = salt;
    PoolSpec {
        function: Arc::from(name),
        runtime,
        handler: handler.to_path_buf(),
        dir: handler.parent().expect("handler in a folder").to_path_buf(),
        env: Vec::new(),
        secrets: Vec::new(),
        min_workers: 1,
        max_workers: 1,
        concurrency: if runtime == Runtime::Node { 16 } else { 1 },
        timeout: Duration::from_secs(30),
        code_hash,
        handler_name: None,
    }
}

fn request(i: u64) -> WorkerRequest {
    WorkerRequest {
        request_id: Arc::from(format!("direct-{i}")),
        method: http::Method::GET,
        path: "/hello".into(),
        query: None,
        params: Vec::new(),
        headers: http::HeaderMap::new(),
        body: Bytes::new(),
        auth: AuthContext {
            kind: "none",
            subject: None,
            claims: None,
        },
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let handler = PathBuf::from(
        args.next()
            .expect("usage: worker-direct <handler> [n] [cold]"),
    );
    let handler = std::fs::canonicalize(&handler).expect("handler file exists");
    let n: u64 = args.next().map_or(20_000, |s| s.parse().expect("n"));
    let cold: u8 = args.next().map_or(10, |s| s.parse().expect("cold"));
    let registry = PoolRegistry::new(RuntimeCommands::default());
    // The first start also resolves the interpreter; it is not counted as a cold start.
    let pool = registry.ensure(spec(&handler, "direct", 0));
    pool.wait_started().await;
    let mut ready_ms = Vec::new();
    for salt in 1..=cold {
        // A new function each time: it serves once its first worker is ready.
        let t = Instant::now();
        let p = registry.ensure(spec(&handler, &format!("cold-{salt}"), salt));
        p.wait_started().await;
        ready_ms.push(t.elapsed().as_secs_f64() * 1e3);
        registry.retire_except(std::slice::from_ref(&pool)).await;
    }
    for i in 0..1000 {
        pool.dispatch(request(i)).await.expect("warm-up request");
    }
    let mut lat = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        let r = pool.dispatch(request(i)).await.expect("request");
        lat.push(t.elapsed());
        assert_eq!(r.status, 200, "the handler must answer 200");
    }
    let total = start.elapsed();
    lat.sort();
    ready_ms.sort_by(f64::total_cmp);
    let out = serde_json::json!({
        "handler": handler,
        "requests": n,
        "rps": n as f64 / total.as_secs_f64(),
        "p50_us": pct(&lat, 0.50),
        "p90_us": pct(&lat, 0.90),
        "p99_us": pct(&lat, 0.99),
        "cold_starts": ready_ms.len(),
        "ready_ms_p50": ready_ms.get(ready_ms.len() / 2).copied(),
        "ready_ms_max": ready_ms.last().copied(),
    });
    println!("{out}");
    registry.shutdown().await;
}
