//! `fn.config.json`: raw serde shape (unknown keys refused) → [`FnPolicy`], validated with
//! every problem collected so `edgefn check` can print them all at once.

use std::time::Duration;

use http::Method;
use serde::Deserialize;

use super::discover::Segment;
use super::fastfn_keys::{self, RawInvoke, RawWorkerPool};
use super::runtime::Runtime;
use crate::auth::AuthConfig;
use crate::limits::RateLimitConfig;

pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_MAX_BODY: u64 = 1 << 20;
/// Hard ceilings: outside input must never configure an unbounded resource.
pub const MAX_TIMEOUT_MS: u64 = 15 * 60 * 1000;
pub const MAX_BODY_CEILING: u64 = 64 << 20;
pub const MAX_WORKERS: usize = 64;
pub const MAX_CONCURRENCY: usize = 1024;
/// The ceiling of `worker_pool.idle_ttl_seconds`, the same day as
/// `[runtimes] worker_idle_timeout_ms`'s.
pub const MAX_IDLE_TTL_SECONDS: u64 = 86_400;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawFnConfig {
    pub methods: Option<Vec<String>>,
    pub timeout_ms: Option<u64>,
    pub max_body_bytes: Option<u64>,
    pub workers: Option<RawWorkers>,
    pub concurrency: Option<usize>,
    pub auth: Option<AuthConfig>,
    pub rate_limit: Option<RateLimitConfig>,
    pub summary: Option<String>,
    // FastFN's keys (catalog/fastfn_keys.rs); the unimplemented ones warn at load.
    pub invoke: Option<RawInvoke>,
    pub max_concurrency: Option<usize>,
    pub worker_pool: Option<RawWorkerPool>,
    pub keep_warm: Option<serde_json::Value>,
    /// Read by discovery (`declared_name.rs`); any JSON value, as FastFN ignores a non-text one.
    pub name: Option<serde_json::Value>,
    pub group: Option<String>,
    pub runtime: Option<String>,
    pub entrypoint: Option<String>,
    pub include_debug_headers: Option<bool>,
    pub response: Option<serde_json::Value>,
    pub schedule: Option<serde_json::Value>,
    pub assets: Option<serde_json::Value>,
    pub edge: Option<crate::edge::RawEdge>,
    pub shared_deps: Option<serde_json::Value>,
    pub home: Option<serde_json::Value>,
    #[serde(rename = "force-url", alias = "force_url", alias = "forceUrl")]
    pub force_url: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkers {
    pub min: Option<usize>,
    pub max: Option<usize>,
}

/// The validated, non-auth part of a function's policy.
#[derive(Debug, Clone, PartialEq)]
pub struct FnPolicy {
    pub methods: Vec<Method>,
    pub timeout: Duration,
    pub max_body_bytes: u64,
    pub min_workers: usize,
    pub max_workers: usize,
    pub concurrency: usize,
    pub summary: Option<String>,
    /// `invoke.routes`, replacing the discovered route when set.
    pub routes: Option<Vec<Vec<Segment>>>,
    /// `invoke.handler`: the callable to run instead of `handler`.
    pub handler_name: Option<String>,
    /// `group`: the OpenAPI tag.
    pub group: Option<String>,
    /// `edge`: where a `{"proxy": {...}}` answer may send the gateway (none: refused).
    pub edge: Option<std::sync::Arc<crate::edge::EdgeConfig>>,
    /// FastFN's `include_debug_headers` / `response.include_debug_headers`: answers carry
    /// `X-Fn-Runtime`, `X-Fn-Function`, ... (`server/debug_headers.rs`).
    pub debug_headers: bool,
    /// FastFN's `worker_pool.overflow_status`: the status of a request refused because the
    /// function's queue is full or its wait ran out (429, its default, or 503).
    pub overflow_status: http::StatusCode,
    /// FastFN's `worker_pool.max_queue`: requests that may wait for a worker (default
    /// `max·concurrency·8`, at least 32).
    pub max_queue: Option<usize>,
    /// FastFN's `worker_pool.queue_timeout_ms`: the longest wait for a worker (default
    /// `timeout_ms`).
    pub queue_timeout: Option<Duration>,
    /// FastFN's `worker_pool.idle_ttl_seconds`: how long a worker above `min_workers` may
    /// idle before it is stopped (None: `[runtimes] worker_idle_timeout_ms`).
    pub idle_timeout: Option<Duration>,
}

const KNOWN_METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Validates the plain fields; returns `(field, message)` pairs on failure.
pub fn validate(
    raw: &RawFnConfig,
    runtime: Runtime,
    file_method: Option<Method>,
) -> Result<FnPolicy, Vec<(String, String)>> {
    let mut errors: Vec<(String, String)> = Vec::new();
    let invoke = raw.invoke.as_ref();
    let configured = match (&raw.methods, invoke.and_then(|i| i.methods.as_ref())) {
        (Some(_), Some(_)) => {
            errors.push((
                "invoke.methods".into(),
                "is set together with methods; keep one of them".into(),
            ));
            None
        }
        (m, i) => m.as_ref().or(i),
    };
    let mut methods = Vec::new();
    match (file_method, configured) {
        // A file's method prefix is the only method it serves, as in FastFN.
        (Some(m), _) => methods.push(m),
        (None, None) => methods = vec![Method::GET, Method::POST],
        (None, Some(list)) if list.is_empty() => errors.push((
            "methods".into(),
            "is empty; list at least one method, e.g. [\"GET\"]".into(),
        )),
        (None, Some(list)) => match fastfn_keys::parse_methods(list, &KNOWN_METHODS) {
            Ok(m) => methods = m,
            Err(bad) => errors.extend(bad.into_iter().map(|b| ("methods".to_owned(), b))),
        },
    }
    let timeout_ms = raw.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS {
        errors.push((
            "timeout_ms".into(),
            format!("{timeout_ms} is out of range; use 1 to {MAX_TIMEOUT_MS}"),
        ));
    }
    let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY);
    if max_body_bytes > MAX_BODY_CEILING {
        errors.push((
            "max_body_bytes".into(),
            format!("{max_body_bytes} is over the {MAX_BODY_CEILING}-byte ceiling"),
        ));
    }
    // What FastFN's `normalize_worker_pool` keeps of the block (`fastfn_keys::pool_reading`).
    let reading = fastfn_keys::pool_reading(raw);
    let pool = raw.worker_pool.as_ref().filter(|_| reading.kept);
    let (mut min_workers, mut max_workers) = match &raw.workers {
        None => (
            // Pool-based execution starts from FastFN's `min_warm` default, 0; without it
            // the function keeps edgefn's one warm worker, as FastFN's daemon stays up.
            if reading.pooled {
                pool.and_then(|p| p.min_warm).unwrap_or(0)
            } else {
                1
            },
            pool.and_then(|p| p.max_workers).unwrap_or(4),
        ),
        Some(w) => (w.min.unwrap_or(1), w.max.unwrap_or(4)),
    };
    let idle_timeout = match reading.idle_ttl_seconds {
        Some(s) if s > MAX_IDLE_TTL_SECONDS => {
            errors.push((
                "worker_pool.idle_ttl_seconds".into(),
                format!("{s} is out of range; use 1 to {MAX_IDLE_TTL_SECONDS} (one day)"),
            ));
            None
        }
        s => s.map(Duration::from_secs),
    };
    if max_workers == 0 || max_workers > MAX_WORKERS {
        errors.push((
            "workers.max".into(),
            format!("{max_workers} is out of range; use 1 to {MAX_WORKERS}"),
        ));
    }
    if min_workers > max_workers {
        errors.push((
            "workers.min".into(),
            format!("{min_workers} is larger than workers.max ({max_workers})"),
        ));
    }
    let mut concurrency = raw.concurrency.unwrap_or(runtime.default_concurrency());
    // FastFN's `max_concurrency` caps in-flight calls of the function (0: no cap): it
    // only ever lowers the pool's reach (`workers.max` × `concurrency`).
    if let Some(cap) = raw.max_concurrency.filter(|c| *c > 0) {
        concurrency = concurrency.min(cap);
        max_workers = max_workers.min((cap / concurrency).max(1));
        min_workers = min_workers.min(max_workers);
    }
    if concurrency == 0 || concurrency > MAX_CONCURRENCY {
        errors.push((
            "concurrency".into(),
            format!("{concurrency} is out of range; use 1 to {MAX_CONCURRENCY}"),
        ));
    }
    let summary = match (&raw.summary, invoke.and_then(|i| i.summary.as_ref())) {
        (Some(s), _) | (None, Some(s)) => Some(s.clone()),
        (None, None) => None,
    };
    if let Some(s) = &summary {
        if s.len() > 1024 {
            errors.push((
                "summary".into(),
                "is longer than 1024 bytes; keep it to one sentence".into(),
            ));
        }
    }
    let mut routes = None;
    if let Some(list) = invoke.and_then(|i| i.routes.as_ref()) {
        let mut parsed = Vec::new();
        for r in list {
            match fastfn_keys::parse_route(r) {
                Ok(segs) => parsed.push(segs),
                Err(msg) => errors.push(("invoke.routes".into(), msg)),
            }
        }
        if !parsed.is_empty() {
            routes = Some(parsed);
        }
    }
    let handler_name = invoke.and_then(|i| i.handler.clone());
    if let Some(h) = &handler_name {
        if !fastfn_keys::valid_handler_name(h) {
            errors.push((
                "invoke.handler".into(),
                format!("{h:?} is not a function name; use letters, digits and _"),
            ));
        }
    }
    if let Some(rt) = &raw.runtime {
        let same = rt.trim() == runtime.as_str()
            || (runtime == Runtime::TypeScript && rt.trim() == "node");
        if !same {
            errors.push((
                "runtime".into(),
                format!(
                    "{rt:?} does not match the handler file, which is {}; rename the file or fix the key",
                    runtime.as_str()
                ),
            ));
        }
    }
    let edge = match raw.edge.as_ref().map(crate::edge::config::compile) {
        None => None,
        Some(Ok(e)) => Some(std::sync::Arc::new(e)),
        Some(Err(e)) => {
            errors.extend(e);
            None
        }
    };
    let overflow_status = match pool.and_then(|p| p.overflow_status.as_ref()) {
        None => http::StatusCode::TOO_MANY_REQUESTS,
        Some(v) => match v.as_u64() {
            Some(429) => http::StatusCode::TOO_MANY_REQUESTS,
            Some(503) => http::StatusCode::SERVICE_UNAVAILABLE,
            _ => {
                errors.push((
                    "worker_pool.overflow_status".into(),
                    format!("{v} is not a status FastFN allows here; use 429 or 503"),
                ));
                http::StatusCode::TOO_MANY_REQUESTS
            }
        },
    };
    let mut whole = |key: &str, v: Option<&serde_json::Value>, max: u64| match v {
        None => None,
        Some(v) => match v.as_u64().filter(|n| *n <= max) {
            Some(n) => Some(n),
            None => {
                errors.push((
                    format!("worker_pool.{key}"),
                    format!("{v} is not a whole number from 0 to {max}"),
                ));
                None
            }
        },
    };
    let max_queue = whole(
        "max_queue",
        pool.and_then(|p| p.max_queue.as_ref()),
        1_000_000,
    )
    .map(|n| n as usize);
    let queue_timeout = whole(
        "queue_timeout_ms",
        pool.and_then(|p| p.queue_timeout_ms.as_ref()),
        3_600_000,
    )
    .map(|ms| Duration::from_millis(ms.min(timeout_ms)));
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(FnPolicy {
        methods,
        timeout: Duration::from_millis(timeout_ms),
        max_body_bytes,
        min_workers,
        max_workers,
        concurrency,
        summary,
        routes,
        handler_name,
        group: raw.group.clone(),
        edge,
        debug_headers: raw.include_debug_headers == Some(true)
            || raw
                .response
                .as_ref()
                .and_then(|r| r.get("include_debug_headers"))
                == Some(&serde_json::Value::Bool(true)),
        overflow_status,
        max_queue,
        queue_timeout,
        idle_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RawFnConfig, serde_json::Error> {
        serde_json::from_str(s)
    }

    #[test]
    fn defaults() {
        let p = validate(&parse("{}").unwrap(), Runtime::Node, None).unwrap();
        assert_eq!(p.methods, [Method::GET, Method::POST]);
        assert_eq!(p.timeout, Duration::from_secs(30));
        assert_eq!(p.max_body_bytes, 1 << 20);
        assert_eq!((p.min_workers, p.max_workers, p.concurrency), (1, 4, 16));
    }

    #[test]
    fn unknown_key_named() {
        let e = parse(r#"{"timeout": 5}"#).unwrap_err().to_string();
        assert!(e.contains("unknown field `timeout`"), "{e}");
    }

    #[test]
    fn all_errors_collected() {
        let raw =
            parse(r#"{"methods":["FETCH"],"timeout_ms":0,"workers":{"min":5,"max":2}}"#).unwrap();
        let e = validate(&raw, Runtime::Python, None).unwrap_err();
        let fields: Vec<_> = e.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["methods", "timeout_ms", "workers.min"]);
    }

    #[test]
    fn worker_pool_queue_bounds_are_whole_numbers_and_the_wait_is_capped_at_the_timeout() {
        let raw = parse(
            r#"{"timeout_ms": 1000, "worker_pool": {"max_queue": 3, "queue_timeout_ms": 5000}}"#,
        )
        .unwrap();
        let p = validate(&raw, Runtime::Python, None).unwrap();
        assert_eq!(p.max_queue, Some(3));
        assert_eq!(p.queue_timeout, Some(Duration::from_millis(1000)));
        let raw = parse(r#"{"worker_pool": {"max_queue": -1, "queue_timeout_ms": "9"}}"#).unwrap();
        let e = validate(&raw, Runtime::Python, None).unwrap_err();
        let fields: Vec<_> = e.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            ["worker_pool.max_queue", "worker_pool.queue_timeout_ms"]
        );
    }

    #[test]
    fn fastfn_keys_mean_what_they_mean_there() {
        let raw = parse(
            r#"{"invoke": {"methods": ["get", "post"], "handler": "main", "summary": "S",
                "routes": ["/a/:id", "/b/*"], "query": {"n": 1}, "body": "", "content_type": "x"},
                "max_concurrency": 6, "worker_pool": {"min_warm": 2, "max_workers": 8},
                "group": "g", "runtime": "python"}"#,
        )
        .unwrap();
        let p = validate(&raw, Runtime::Python, None).unwrap();
        assert_eq!(p.methods, [Method::GET, Method::POST]);
        assert_eq!(p.handler_name.as_deref(), Some("main"));
        assert_eq!(p.summary.as_deref(), Some("S"));
        assert_eq!(p.routes.as_ref().map(Vec::len), Some(2));
        assert_eq!(p.group.as_deref(), Some("g"));
        // max_concurrency caps the pool's reach: 1 per worker × 6 workers.
        assert_eq!((p.min_workers, p.max_workers, p.concurrency), (2, 6, 1));
        let node = validate(
            &parse(r#"{"max_concurrency": 10}"#).unwrap(),
            Runtime::Node,
            None,
        );
        let node = node.unwrap();
        assert_eq!((node.max_workers, node.concurrency), (1, 10));
    }

    #[test]
    fn worker_pool_idle_ttl_seconds_is_the_pools_idle_timeout_read_as_fastfn_reads_it() {
        let policy = |cfg: &str| validate(&parse(cfg).unwrap(), Runtime::Python, None);
        let p = policy(r#"{"worker_pool": {"idle_ttl_seconds": 1.9, "max_workers": 2}}"#).unwrap();
        assert_eq!(p.idle_timeout, Some(Duration::from_secs(1)));
        // Pool-based execution keeps FastFN's `min_warm` default: none.
        assert_eq!(p.min_workers, 0);
        let p = policy(
            r#"{"max_concurrency": 3, "worker_pool": {"idle_ttl_seconds": "5", "min_warm": 2}}"#,
        )
        .unwrap();
        assert_eq!(
            (p.idle_timeout, p.min_workers),
            (Some(Duration::from_secs(5)), 2)
        );
        for ignored in ["0", "-3", "0.5", "\"soon\"", "null"] {
            let cfg = format!(
                r#"{{"worker_pool": {{"max_workers": 2, "idle_ttl_seconds": {ignored}}}}}"#
            );
            assert_eq!(policy(&cfg).unwrap().idle_timeout, None, "{cfg}");
        }
        // No positive max_workers nor max_concurrency: FastFN's runtime runs it unpooled.
        let p = policy(r#"{"worker_pool": {"idle_ttl_seconds": 5, "min_warm": 2}}"#).unwrap();
        assert_eq!((p.idle_timeout, p.min_workers), (None, 1));
        let e = policy(r#"{"worker_pool": {"idle_ttl_seconds": 86401, "max_workers": 1}}"#)
            .unwrap_err();
        assert_eq!(e[0].0, "worker_pool.idle_ttl_seconds");
        // No block: edgefn's warm worker and `[runtimes]`'s idle timeout.
        let p = policy("{}").unwrap();
        assert_eq!((p.min_workers, p.idle_timeout), (1, None));
    }

    #[test]
    fn worker_pool_enabled_false_leaves_warm_workers_to_the_runtime_and_keeps_admission() {
        let policy = |cfg: &str| validate(&parse(cfg).unwrap(), Runtime::Python, None).unwrap();
        let p = policy(
            r#"{"worker_pool": {"enabled": false, "min_warm": 3, "idle_ttl_seconds": 5,
                "max_workers": 2, "max_queue": 1, "overflow_status": 503}}"#,
        );
        assert_eq!((p.min_workers, p.max_workers, p.idle_timeout), (1, 2, None));
        assert_eq!(p.max_queue, Some(1));
        assert_eq!(p.overflow_status, http::StatusCode::SERVICE_UNAVAILABLE);
        // Neither max_workers, max_queue nor max_concurrency: FastFN drops the block.
        let p = policy(
            r#"{"worker_pool": {"enabled": false, "overflow_status": 503, "queue_timeout_ms": 10}}"#,
        );
        assert_eq!(p.overflow_status, http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            (p.queue_timeout, p.max_queue, p.min_workers),
            (None, None, 1)
        );
        let p = policy(r#"{"worker_pool": {"enabled": true, "max_workers": 3}}"#);
        assert_eq!((p.min_workers, p.max_workers), (0, 3));
    }

    #[test]
    fn worker_pool_overflow_status_is_429_or_503() {
        let status = |cfg: &str| validate(&parse(cfg).unwrap(), Runtime::Python, None);
        assert_eq!(
            status("{}").unwrap().overflow_status,
            http::StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            status(r#"{"worker_pool": {"overflow_status": 503}}"#)
                .unwrap()
                .overflow_status,
            http::StatusCode::SERVICE_UNAVAILABLE
        );
        let e = status(r#"{"worker_pool": {"overflow_status": 500}}"#).unwrap_err();
        assert_eq!(e[0].0, "worker_pool.overflow_status");
    }

    #[test]
    fn a_method_prefix_wins_and_conflicting_keys_are_named() {
        let raw = parse(r#"{"invoke": {"methods": ["GET"]}}"#).unwrap();
        let p = validate(&raw, Runtime::Node, Some(Method::DELETE)).unwrap();
        assert_eq!(p.methods, [Method::DELETE]);
        let raw = parse(
            r#"{"methods": ["GET"], "invoke": {"methods": ["POST"], "handler": "a.b"}, "runtime": "node"}"#,
        )
        .unwrap();
        let e = validate(&raw, Runtime::Python, None).unwrap_err();
        let fields: Vec<_> = e.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["invoke.methods", "invoke.handler", "runtime"]);
        let ts = parse(r#"{"runtime": "node"}"#).unwrap();
        assert!(validate(&ts, Runtime::TypeScript, None).is_ok());
    }
}
