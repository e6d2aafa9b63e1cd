//! `fn.config.json`: raw serde shape (unknown keys refused) → [`FnPolicy`], validated with
//! every problem collected so `edgefn check` can print them all at once.

use std::time::Duration;

use http::Method;
use serde::Deserialize;

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
}

const KNOWN_METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Validates the plain fields; returns `(field, message)` pairs on failure.
pub fn validate(raw: &RawFnConfig, runtime: Runtime) -> Result<FnPolicy, Vec<(String, String)>> {
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut methods = Vec::new();
    match &raw.methods {
        None => methods = vec![Method::GET, Method::POST],
        Some(list) if list.is_empty() => errors.push((
            "methods".into(),
            "is empty; list at least one method, e.g. [\"GET\"]".into(),
        )),
        Some(list) => {
            for m in list {
                let upper = m.to_ascii_uppercase();
                if !KNOWN_METHODS.contains(&upper.as_str()) {
                    errors.push((
                        "methods".into(),
                        format!("{m:?} is not supported; use any of {KNOWN_METHODS:?}"),
                    ));
                    continue;
                }
                let method = Method::from_bytes(upper.as_bytes()).expect("known method parses");
                if !methods.contains(&method) {
                    methods.push(method);
                }
            }
        }
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
    let (min_workers, max_workers) = match &raw.workers {
        None => (1, 4),
        Some(w) => (w.min.unwrap_or(1), w.max.unwrap_or(4)),
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
    let concurrency = raw.concurrency.unwrap_or(runtime.default_concurrency());
    if concurrency == 0 || concurrency > MAX_CONCURRENCY {
        errors.push((
            "concurrency".into(),
            format!("{concurrency} is out of range; use 1 to {MAX_CONCURRENCY}"),
        ));
    }
    if let Some(s) = &raw.summary {
        if s.len() > 1024 {
            errors.push((
                "summary".into(),
                "is longer than 1024 bytes; keep it to one sentence".into(),
            ));
        }
    }
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
        summary: raw.summary.clone(),
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
        let p = validate(&parse("{}").unwrap(), Runtime::Node).unwrap();
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
        let e = validate(&raw, Runtime::Python).unwrap_err();
        let fields: Vec<_> = e.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["methods", "timeout_ms", "workers.min"]);
    }
}
