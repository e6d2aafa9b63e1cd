//! FastFN's `keep_warm` (`scheduler.lua`'s `effective_keep_warm`): with `enabled: true` and
//! `min_warm` at least 1, the scheduler pings the function — never warm yet, idle for
//! `idle_ttl_seconds`, or `ping_every_seconds` since the last ping — through the same
//! machinery as `schedule`, so pings obey the same no-overlap rule.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Deserialize;
use serde_json::Value;

use super::config::{Schedule, Trigger, MAX_EVERY_SECONDS};
use crate::catalog::fastfn_keys::{did_you_mean, whole_seconds};

pub const DEFAULT_PING_EVERY_SECONDS: u64 = 45;
pub const DEFAULT_IDLE_TTL_SECONDS: u64 = 300;
/// The query key and header FastFN's pings carry, so a handler can tell them apart.
pub const QUERY: &str = "__fastfn_keep_warm=1";
pub const TRIGGER_HEADER: &str = "x-fastfn-trigger";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeepWarm {
    enabled: Option<Value>,
    min_warm: Option<Value>,
    ping_every_seconds: Option<Value>,
    idle_ttl_seconds: Option<Value>,
}

/// A compiled `keep_warm` that is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepWarm {
    pub ping_every: Duration,
    pub idle_ttl: Duration,
}

/// What a `keep_warm` block makes: `Ok(None)` when it is off, with the reason when a
/// reader could think it on (`enabled` true but `min_warm` below 1).
pub type Compiled = (Option<KeepWarm>, Option<String>);

/// `(field, message)` pairs on failure, fields prefixed `keep_warm.`.
pub fn compile(value: &Value) -> Result<Compiled, Vec<(String, String)>> {
    let raw: RawKeepWarm = match value {
        // FastFN reads only a table; anything else is no keep_warm at all.
        Value::Object(_) => serde_json::from_value(value.clone()).map_err(|e| {
            let hint = did_you_mean(&e.to_string())
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            vec![("keep_warm".to_owned(), format!("{e}{hint}"))]
        })?,
        _ => {
            return Ok((
                None,
                Some(format!("{value} is not an object; keep_warm is off")),
            ))
        }
    };
    if raw.enabled != Some(Value::Bool(true)) {
        return Ok((None, None));
    }
    // `math.floor(tonumber(min_warm) or 1)`: only a number (or numeric text) below 1 turns
    // an enabled keep_warm off.
    let min_warm = raw
        .min_warm
        .as_ref()
        .and_then(lua_number)
        .map_or(1.0, f64::floor);
    if min_warm < 1.0 {
        return Ok((
            None,
            Some(format!(
                "min_warm {} is below 1, so FastFN never pings; keep_warm is off",
                raw.min_warm.unwrap_or_default()
            )),
        ));
    }
    let mut errors = Vec::new();
    let mut seconds = |field: &str, v: &Option<Value>, default: u64| {
        let s = v.as_ref().and_then(whole_seconds).unwrap_or(default);
        if s > MAX_EVERY_SECONDS {
            errors.push((
                format!("keep_warm.{field}"),
                format!("{s} is out of range; use 1 to {MAX_EVERY_SECONDS}"),
            ));
        }
        Duration::from_secs(s.min(MAX_EVERY_SECONDS))
    };
    let ping_every = seconds(
        "ping_every_seconds",
        &raw.ping_every_seconds,
        DEFAULT_PING_EVERY_SECONDS,
    );
    let idle_ttl = seconds(
        "idle_ttl_seconds",
        &raw.idle_ttl_seconds,
        DEFAULT_IDLE_TTL_SECONDS,
    );
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((
        Some(KeepWarm {
            ping_every,
            idle_ttl,
        }),
        None,
    ))
}

impl KeepWarm {
    /// The ping as a schedule entry: FastFN's `pick_policy_method` (GET when the function
    /// takes it, else its first method), its query and header, no body, no retry.
    pub fn schedule(&self, methods: &[Method]) -> Schedule {
        let method = if methods.is_empty() || methods.contains(&Method::GET) {
            Method::GET
        } else {
            methods[0].clone()
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static(TRIGGER_HEADER),
            HeaderValue::from_static("keep_warm"),
        );
        Schedule {
            trigger: Trigger::KeepWarm {
                ping_every: self.ping_every,
                idle_ttl: self.idle_ttl,
            },
            method,
            query: Some(QUERY.to_owned()),
            headers,
            body: bytes::Bytes::new(),
            max_attempts: 1,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        }
    }
}

/// Lua's `tonumber`: a number, or text that reads as one.
fn lua_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn on(v: Value) -> KeepWarm {
        compile(&v).unwrap().0.expect("keep_warm on")
    }

    #[test]
    fn defaults_and_floors_as_fastfn_reads_them() {
        let k = on(json!({"enabled": true}));
        assert_eq!(k.ping_every, Duration::from_secs(45));
        assert_eq!(k.idle_ttl, Duration::from_secs(300));
        let k = on(json!({"enabled": true, "ping_every_seconds": 2.9, "idle_ttl_seconds": "7"}));
        assert_eq!(
            (k.ping_every, k.idle_ttl),
            (Duration::from_secs(2), Duration::from_secs(7))
        );
        // Zero, negative or not a number: the default.
        let k = on(json!({"enabled": true, "ping_every_seconds": 0, "idle_ttl_seconds": -5}));
        assert_eq!(
            (k.ping_every, k.idle_ttl),
            (Duration::from_secs(45), Duration::from_secs(300))
        );
        let k = on(json!({"enabled": true, "ping_every_seconds": "soon", "min_warm": "x"}));
        assert_eq!(k.ping_every, Duration::from_secs(45));
    }

    #[test]
    fn off_unless_enabled_true_and_min_warm_at_least_one() {
        assert_eq!(
            compile(&json!({"ping_every_seconds": 1})).unwrap(),
            (None, None)
        );
        assert_eq!(compile(&json!({"enabled": "true"})).unwrap(), (None, None));
        assert_eq!(compile(&json!({"enabled": false})).unwrap(), (None, None));
        let (k, why) = compile(&json!({"enabled": true, "min_warm": 0.5})).unwrap();
        assert_eq!(k, None);
        assert!(why.unwrap().contains("below 1"));
        assert!(compile(&json!(true))
            .unwrap()
            .1
            .unwrap()
            .contains("not an object"));
    }

    #[test]
    fn unknown_keys_and_huge_values_are_errors() {
        let e = compile(&json!({"enabled": true, "ping_every_second": 1})).unwrap_err();
        assert_eq!(e[0].0, "keep_warm");
        assert!(
            e[0].1.contains("did you mean `ping_every_seconds`?"),
            "{e:?}"
        );
        let e = compile(&json!({"enabled": true, "idle_ttl_seconds": 1e12})).unwrap_err();
        assert_eq!(e[0].0, "keep_warm.idle_ttl_seconds");
    }

    #[test]
    fn the_ping_is_fastfns() {
        let k = on(json!({"enabled": true, "ping_every_seconds": 1}));
        let s = k.schedule(&[Method::POST, Method::GET]);
        assert_eq!(s.method, Method::GET);
        assert_eq!(s.query.as_deref(), Some("__fastfn_keep_warm=1"));
        assert_eq!(s.headers["x-fastfn-trigger"], "keep_warm");
        assert_eq!(s.max_attempts, 1);
        assert_eq!(k.schedule(&[Method::PUT, Method::POST]).method, Method::PUT);
    }
}
