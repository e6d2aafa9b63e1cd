//! FastFN's `fn.config.json` keys (fastfn.dev's fn.config.json reference, `routes.lua`'s
//! `normalize_policy`): their raw shapes, what edgefn makes of the ones it implements,
//! and a warning for each one it does not implement yet — never a silent drop, never a
//! refused tree. Keys neither project knows stay serde errors, with a "did you mean".

use http::Method;
use serde::Deserialize;
use serde_json::Value;

use super::discover::{parse_segment, Segment, WILDCARD};

/// `invoke{...}`: how the function is called, and the console's example request.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawInvoke {
    pub methods: Option<Vec<String>>,
    /// The callable to run instead of `handler` (`main`, `run`, ...).
    pub handler: Option<String>,
    pub routes: Option<Vec<String>>,
    pub summary: Option<String>,
    /// Example query, body and content type: documentation only, in FastFN as here.
    pub query: Option<Value>,
    pub body: Option<Value>,
    pub content_type: Option<String>,
    pub allow_hosts: Option<Value>,
    #[serde(rename = "force-url", alias = "force_url", alias = "forceUrl")]
    pub force_url: Option<Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawWorkerPool {
    pub enabled: Option<bool>,
    pub min_warm: Option<usize>,
    pub max_workers: Option<usize>,
    pub max_queue: Option<Value>,
    pub queue_timeout_ms: Option<Value>,
    pub queue_poll_ms: Option<Value>,
    pub idle_ttl_seconds: Option<Value>,
    pub overflow_status: Option<Value>,
}

/// FastFN keys accepted and not implemented yet: (key, what it would do).
pub fn unimplemented(raw: &super::fn_config::RawFnConfig) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut warn = |key: &str, present: bool, note: &str| {
        if present {
            out.push((
                key.to_owned(),
                format!("is a FastFN key edgefn does not implement yet; it has no effect{note}"),
            ));
        }
    };
    // `response` holds one key FastFN reads, `include_debug_headers` (implemented).
    if let Some(obj) = raw.response.as_ref().and_then(|r| r.as_object()) {
        for k in obj.keys().filter(|k| *k != "include_debug_headers") {
            warn(&format!("response.{k}"), true, "");
        }
    }
    warn("assets", raw.assets.is_some(), "");
    warn("home", raw.home.is_some(), "");
    warn("force-url", raw.force_url.is_some(), "");
    if let Some(i) = &raw.invoke {
        warn("invoke.allow_hosts", i.allow_hosts.is_some(), "");
        warn("invoke.force-url", i.force_url.is_some(), "");
    }
    if let Some(p) = &raw.worker_pool {
        warn("worker_pool.queue_poll_ms", p.queue_poll_ms.is_some(), "");
        out.extend(pool_warnings(raw, p));
    }
    if let Some(v) = raw.name.as_ref().filter(|v| !v.is_string()) {
        out.push((
            "name".into(),
            format!("{v} is not text; FastFN ignores it, and so does edgefn"),
        ));
    }
    out
}

/// What FastFN's `normalize_worker_pool` makes of a function's `worker_pool` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolReading {
    /// The block is kept: FastFN drops one with `enabled: false` and neither `max_workers`,
    /// `max_queue` nor `max_concurrency`, so its other keys have no effect either.
    pub kept: bool,
    /// Pool-based execution: `enabled` not `false` and a positive `max_workers` (or
    /// `max_concurrency`, its fallback). FastFN's runtimes then start `min_warm` workers
    /// (default 0) and stop idle ones after `idle_ttl_seconds`; otherwise they run the
    /// function outside their pool and both keys are left to the runtime's defaults.
    pub pooled: bool,
    /// `idle_ttl_seconds` when pooled and FastFN reads it as set.
    pub idle_ttl_seconds: Option<u64>,
}

pub fn pool_reading(raw: &super::fn_config::RawFnConfig) -> PoolReading {
    let Some(p) = &raw.worker_pool else {
        return PoolReading {
            kept: false,
            pooled: false,
            idle_ttl_seconds: None,
        };
    };
    let enabled = p.enabled != Some(false);
    let sized = p.max_workers.or(raw.max_concurrency).is_some_and(|n| n > 0);
    let pooled = enabled && sized;
    PoolReading {
        kept: enabled
            || p.max_workers.is_some()
            || p.max_queue.is_some()
            || raw.max_concurrency.is_some(),
        pooled,
        idle_ttl_seconds: p
            .idle_ttl_seconds
            .as_ref()
            .and_then(whole_seconds)
            .filter(|_| pooled),
    }
}

/// A seconds value as FastFN's `tonumber` + `math.floor` read it: a number or numeric text,
/// floored; zero, negative or not a number is unset.
pub fn whole_seconds(v: &Value) -> Option<u64> {
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    let n = n.floor();
    // `as` saturates: a huge value stays huge and meets the caller's ceiling.
    (n.is_finite() && n >= 1.0).then_some(n as u64)
}

/// The `worker_pool` keys FastFN accepts and then ignores, each named with why.
fn pool_warnings(raw: &super::fn_config::RawFnConfig, p: &RawWorkerPool) -> Vec<(String, String)> {
    let reading = pool_reading(raw);
    let mut out = Vec::new();
    let mut note = |key: &str, present: bool, why: &str| {
        if present {
            out.push((
                format!("worker_pool.{key}"),
                format!("has no effect: {why}"),
            ));
        }
    };
    if !reading.kept {
        let why = "with enabled false and neither max_workers, max_queue nor max_concurrency, FastFN ignores the whole worker_pool block";
        note("min_warm", p.min_warm.is_some(), why);
        note("idle_ttl_seconds", p.idle_ttl_seconds.is_some(), why);
        note("queue_timeout_ms", p.queue_timeout_ms.is_some(), why);
        note("overflow_status", p.overflow_status.is_some(), why);
        return out;
    }
    if !reading.pooled {
        let why = if p.enabled == Some(false) {
            "worker_pool.enabled is false, so the function runs on the runtime's defaults (workers.min 1, [runtimes] worker_idle_timeout_ms), as in FastFN"
        } else {
            "without a positive max_workers (or max_concurrency) FastFN runs the function outside its worker pool, on the runtime's defaults (workers.min 1, [runtimes] worker_idle_timeout_ms)"
        };
        note("min_warm", p.min_warm.is_some(), why);
        note("idle_ttl_seconds", p.idle_ttl_seconds.is_some(), why);
        return out;
    }
    if let Some(v) = &p.idle_ttl_seconds {
        note(
            "idle_ttl_seconds",
            whole_seconds(v).is_none(),
            &format!("{v} is not a number of seconds of at least 1; FastFN ignores it, so [runtimes] worker_idle_timeout_ms applies"),
        );
    }
    out
}

/// `invoke.routes`: FastFN's route syntax (`/a/:id`, `/files/:path*`, `/x/*`).
pub fn parse_route(route: &str) -> Result<Vec<Segment>, String> {
    let rest = route
        .strip_prefix('/')
        .ok_or_else(|| format!("{route:?} must start with /"))?;
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err(format!("{route:?} is the site root; name a path"));
    }
    let mut out = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let seg = if *p == "*" {
            Segment::CatchAll(WILDCARD.into())
        } else if let Some(name) = p.strip_prefix(':') {
            match name.strip_suffix('*') {
                Some(n) => parse_segment(&format!("[...{n}]"))?,
                None => parse_segment(&format!("[{name}]"))?,
            }
        } else {
            parse_segment(p)?
        };
        if matches!(seg, Segment::CatchAll(_)) && !last {
            return Err(format!("{route:?}: a catch-all must be the last segment"));
        }
        out.push(seg);
    }
    Ok(out)
}

/// `invoke.handler` names a callable: an identifier, nothing else.
pub fn valid_handler_name(name: &str) -> bool {
    let mut c = name.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == '$')
        && c.all(|f| f.is_ascii_alphanumeric() || f == '_' || f == '$')
        && name.len() <= 128
}

/// Methods as FastFN parses them (case-insensitive, duplicates dropped).
pub fn parse_methods(list: &[String], known: &[&str]) -> Result<Vec<Method>, Vec<String>> {
    let mut methods = Vec::new();
    let mut bad = Vec::new();
    for m in list {
        let upper = m.trim().to_ascii_uppercase();
        if !known.contains(&upper.as_str()) {
            bad.push(format!("{m:?} is not supported; use any of {known:?}"));
            continue;
        }
        let method = Method::from_bytes(upper.as_bytes()).expect("known method parses");
        if !methods.contains(&method) {
            methods.push(method);
        }
    }
    if bad.is_empty() {
        Ok(methods)
    } else {
        Err(bad)
    }
}

/// Appends "did you mean `x`?" to serde's unknown-field message when the name is a near
/// miss of an expected one (`auht` → `auth`).
pub fn did_you_mean(message: &str) -> Option<String> {
    let start = message.find("unknown field `")? + "unknown field `".len();
    let field = &message[start..start + message[start..].find('`')?];
    let expected = &message[message.find("expected")?..];
    let best = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|k| {
            let d = if k.starts_with(field) && field.len() >= 3 {
                1
            } else {
                distance(field, k)
            };
            (d, k)
        })
        .min()?;
    let limit = (field.len() / 3).max(2);
    (best.0 <= limit).then(|| format!("did you mean `{}`?", best.1))
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let swap = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + swap).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            parse_route("/hello-demo/:name").unwrap(),
            [
                Segment::Static("hello-demo".into()),
                Segment::Param("name".into())
            ]
        );
        assert_eq!(
            parse_route("/f/*").unwrap()[1],
            Segment::CatchAll(WILDCARD.into())
        );
        assert_eq!(
            parse_route("/f/:rest*").unwrap()[1],
            Segment::CatchAll("rest".into())
        );
        assert!(parse_route("nope").is_err());
        assert!(parse_route("/").is_err());
        assert!(parse_route("/*/x").is_err());
    }

    #[test]
    fn near_misses() {
        let msg = "unknown field `auht`, expected one of `methods`, `auth`, `timeout_ms`";
        assert_eq!(did_you_mean(msg).as_deref(), Some("did you mean `auth`?"));
        let msg = "unknown field `zzzzzz`, expected one of `methods`, `auth`";
        assert_eq!(did_you_mean(msg), None);
        let msg = "unknown field `timeout`, expected one of `methods`, `timeout_ms`";
        assert_eq!(
            did_you_mean(msg).as_deref(),
            Some("did you mean `timeout_ms`?")
        );
    }

    fn warnings(cfg: &str) -> Vec<(String, String)> {
        unimplemented(&serde_json::from_str(cfg).unwrap())
    }

    #[test]
    fn worker_pool_keys_warn_only_where_fastfn_ignores_them() {
        assert!(warnings(
            r#"{"worker_pool": {"enabled": true, "idle_ttl_seconds": 5, "max_workers": 2}}"#
        )
        .is_empty());
        let w = warnings(r#"{"max_concurrency": 4, "worker_pool": {"idle_ttl_seconds": 0}}"#);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].0, "worker_pool.idle_ttl_seconds");
        assert!(w[0].1.contains("has no effect") && w[0].1.contains("FastFN ignores it"));
        let w = warnings(
            r#"{"worker_pool": {"enabled": false, "min_warm": 1, "idle_ttl_seconds": 9, "max_workers": 2}}"#,
        );
        let keys: Vec<_> = w.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["worker_pool.min_warm", "worker_pool.idle_ttl_seconds"]
        );
        assert!(w[0].1.contains("enabled is false"), "{w:?}");
        let w = warnings(r#"{"worker_pool": {"min_warm": 2}}"#);
        assert_eq!(w[0].0, "worker_pool.min_warm");
        assert!(w[0].1.contains("without a positive max_workers"), "{w:?}");
        let w = warnings(r#"{"worker_pool": {"enabled": false, "overflow_status": 503}}"#);
        assert_eq!(w[0].0, "worker_pool.overflow_status");
        assert!(
            w[0].1.contains("ignores the whole worker_pool block"),
            "{w:?}"
        );
    }

    #[test]
    fn a_name_that_is_not_text_is_warned() {
        let w = warnings(r#"{"name": 5}"#);
        assert_eq!(w[0].0, "name");
        assert!(w[0].1.contains("not text"), "{w:?}");
        assert!(warnings(r#"{"name": "x"}"#).is_empty());
    }

    #[test]
    fn whole_seconds_floor_as_lua_does() {
        let s = |v: Value| whole_seconds(&v);
        assert_eq!(s(serde_json::json!(2.7)), Some(2));
        assert_eq!(s(serde_json::json!(" 3 ")), Some(3));
        assert_eq!(s(serde_json::json!(0.99)), None);
        assert_eq!(s(serde_json::json!(-1)), None);
        assert_eq!(s(serde_json::json!(true)), None);
        assert_eq!(s(serde_json::json!(1e300)), Some(u64::MAX));
    }

    #[test]
    fn handler_names() {
        assert!(valid_handler_name("main"));
        assert!(!valid_handler_name("os.system"));
        assert!(!valid_handler_name(""));
    }
}
