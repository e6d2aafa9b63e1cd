//! `worker-direct <handler file> [requests] [fresh starts]`: the baseline for the
//! gateway-added latency. It drives the same pool code the gateway uses (framed Unix
//! socket to a warm worker) with no HTTP in between, one request at a time, and prints one
//! JSON line: requests/s and latency percentiles of the direct path, and the ready time
//! of fresh workers.
//!
//! Flow: the runtime follows the handler's extension (as discovery decides it) → a first
//! pool is started and waited for (it resolves the interpreters and, for Rust, builds the
//! handler into the cache: neither is timed) → each fresh start is a new function of the
//! same handler, timed from `PoolRegistry::ensure` until its first worker is ready, then
//! retired → the warm pool answers `requests` requests in a closed loop.
//!
//! Beside each fresh start's wall time it reports the CPU time the new worker process
//! spent until it was ready (`/proc/<pid>/schedstat`, nanoseconds): on a shared machine
//! wall times swing with the load, the child's own CPU time much less.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gateway::config::RuntimeCommands;
use gateway::pool::{AuthContext, Pool, PoolRegistry, PoolSpec, Runtime, WorkerRequest};

/// How often the readiness watcher looks: the resolution of the ready times.
const READY_POLL: Duration = Duration::from_micros(100);
/// The first start may build a Rust handler or install nothing: generous, never a bound
/// on what is measured.
const FIRST_START: Duration = Duration::from_secs(900);
const FRESH_START: Duration = Duration::from_secs(60);

fn spec(handler: &Path, runtime: Runtime, n: u8) -> PoolSpec {
    let mut code_hash = [0u8; 32];
    code_hash[0] = n;
    PoolSpec {
        function: Arc::from(format!("direct-{n}")),
        runtime,
        handler: handler.to_path_buf(),
        dir: handler.parent().expect("handler in a folder").to_path_buf(),
        root: handler
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("/"))
            .to_path_buf(),
        env: Vec::new(),
        secrets: Vec::new(),
        min_workers: 1,
        max_workers: 1,
        concurrency: runtime.default_concurrency(),
        timeout: Duration::from_secs(30),
        code_hash,
        handler_name: None,
        shared_deps: Vec::new(),
        overflow_status: http::StatusCode::TOO_MANY_REQUESTS,
        max_queue: None,
        queue_timeout: None,
        idle_timeout: None,
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
        client_ip: None,
        meta: Arc::default(),
    }
}

/// This process's children (the workers) by pid.
fn children() -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After the `(comm)` field: state, then ppid.
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            rest.split_whitespace().nth(1) == Some(me.to_string().as_str())
        })
        .collect()
}

/// CPU time on record for `pids` (the first field of schedstat).
fn cpu_of(pids: &[u32]) -> Duration {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .sum()
}

/// Waits until `pool` has a serving version. The watcher is an OS thread sleeping
/// between looks, so the wait costs the pinned core almost nothing and the tokio
/// runtime stays free to run the start.
async fn ready(pool: &Arc<Pool>, deadline: Duration) -> Result<Duration, String> {
    let t = Instant::now();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let watched = pool.clone();
    std::thread::spawn(move || {
        while watched.is_pending() && t.elapsed() < deadline {
            std::thread::sleep(READY_POLL);
        }
        let _ = tx.send(t.elapsed());
    });
    let waited = rx
        .await
        .map_err(|_| "the readiness watcher died".to_string())?;
    if pool.is_pending() {
        return Err(format!("no worker ready within {} s", deadline.as_secs()));
    }
    Ok(waited)
}

/// A pool whose worker cannot start still serves (failing requests promptly): one request
/// proves the start was a real one.
async fn answers(pool: &Pool, what: &str) {
    match pool.dispatch(&request(0)).await {
        Ok(r) if r.status == 200 => {}
        Ok(r) => fail(format!(
            "{what}: the handler answered {}, expected 200",
            r.status
        )),
        Err(e) => fail(format!("{what}: the first request failed: {e}")),
    }
}

/// `None` when nothing was measured (`requests` 0: only the fresh starts).
fn pct(sorted: &[Duration], p: f64) -> Option<f64> {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map(|d| d.as_secs_f64() * 1e6)
}

fn fail(msg: String) -> ! {
    eprintln!("worker-direct: {msg}");
    std::process::exit(1)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: worker-direct <handler> [requests] [fresh starts]";
    let handler = PathBuf::from(args.next().unwrap_or_else(|| fail(usage.into())));
    let handler = std::fs::canonicalize(&handler)
        .unwrap_or_else(|e| fail(format!("{}: {e}", handler.display())));
    let n: u64 = args.next().map_or(20_000, |s| s.parse().expect("requests"));
    let fresh: u8 = args.next().map_or(10, |s| s.parse().expect("fresh starts"));
    let runtime = handler
        .extension()
        .and_then(|e| e.to_str())
        .and_then(Runtime::from_extension)
        .unwrap_or_else(|| fail(format!("{}: no runtime for it", handler.display())));
    let registry = PoolRegistry::new(RuntimeCommands::default());
    let pool = registry.ensure(spec(&handler, runtime, 0));
    let first = ready(&pool, FIRST_START).await;
    let first = first.unwrap_or_else(|e| fail(format!("first start: {e}")));
    answers(&pool, "the first start").await;
    let mut ready_ms = Vec::new();
    let mut cpu_ms = Vec::new();
    for i in 1..=fresh {
        let before = children();
        let p = registry.ensure(spec(&handler, runtime, i));
        let took = ready(&p, FRESH_START).await;
        ready_ms.push(took.unwrap_or_else(|e| fail(format!("fresh start {i}: {e}"))));
        let fresh_pids: Vec<u32> = children()
            .into_iter()
            .filter(|c| !before.contains(c))
            .collect();
        cpu_ms.push(cpu_of(&fresh_pids));
        answers(&p, &format!("fresh start {i}")).await;
        registry.retire_except(std::slice::from_ref(&pool)).await;
    }
    for i in 0..n.min(1000) {
        if let Err(e) = pool.dispatch(&request(i)).await {
            fail(format!("warm-up request: {e}"));
        }
    }
    let mut lat = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        let r = pool.dispatch(&request(i)).await;
        lat.push(t.elapsed());
        match r {
            Ok(r) if r.status == 200 => {}
            Ok(r) => fail(format!("the handler answered {}, expected 200", r.status)),
            Err(e) => fail(format!("request {i}: {e}")),
        }
    }
    let total = start.elapsed();
    lat.sort();
    ready_ms.sort();
    cpu_ms.sort();
    let ms = |d: Option<&Duration>| d.map(|d| d.as_secs_f64() * 1e3);
    let out = serde_json::json!({
        "handler": handler,
        "runtime": runtime.as_str(),
        "requests": n,
        "rps": n as f64 / total.as_secs_f64(),
        "p50_us": pct(&lat, 0.50),
        "p90_us": pct(&lat, 0.90),
        "p99_us": pct(&lat, 0.99),
        "first_start_ms": first.as_secs_f64() * 1e3,
        "cold_starts": ready_ms.len(),
        "ready_ms_p50": ms(ready_ms.get(ready_ms.len() / 2)),
        "ready_ms_min": ms(ready_ms.first()),
        "ready_ms_max": ms(ready_ms.last()),
        "ready_cpu_ms_p50": ms(cpu_ms.get(cpu_ms.len() / 2)),
    });
    println!("{out}");
    registry.shutdown().await;
}
