//! `schedule` in `fn.config.json` (FastFN's keys, `routes.lua`'s `normalize_policy`):
//! raw shape → [`Schedule`], validated at load with every problem named by field, so the
//! runner only reads compiled values.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Deserialize;
use serde_json::Value;

use super::cron::Cron;

/// Shortest interval: a tighter loop is a mistake, not a schedule.
pub const MIN_EVERY_SECONDS: u64 = 1;
pub const MAX_EVERY_SECONDS: u64 = 366 * 24 * 3600;
const MAX_BODY: usize = 64 << 10;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    #[serde(default)]
    pub enabled: bool,
    pub every_seconds: Option<u64>,
    pub cron: Option<String>,
    #[serde(alias = "tz")]
    pub timezone: Option<String>,
    pub method: Option<String>,
    pub query: Option<serde_json::Map<String, Value>>,
    pub headers: Option<serde_json::Map<String, Value>>,
    pub body: Option<Value>,
    /// FastFN hands it to the handler; accepted, not forwarded yet.
    pub context: Option<Value>,
    pub retry: Option<RawRetry>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawRetry {
    On(bool),
    Policy(RawRetryPolicy),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetryPolicy {
    pub enabled: Option<bool>,
    #[serde(alias = "maxAttempts", alias = "attempts")]
    pub max_attempts: Option<u32>,
    #[serde(alias = "baseDelaySeconds", alias = "delay_seconds")]
    pub base_delay_seconds: Option<f64>,
    #[serde(alias = "maxDelaySeconds")]
    pub max_delay_seconds: Option<f64>,
    pub jitter: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Every(Duration),
    /// With the clock's offset east of UTC, in seconds.
    Cron(Cron, i64),
    /// `keep_warm`: due when never warm yet, warm longer ago than `idle_ttl`, or
    /// `ping_every` after the last ping (`keep_warm.rs`).
    KeepWarm {
        ping_every: Duration,
        idle_ttl: Duration,
    },
}

/// A compiled schedule; `None` from [`compile`] when `enabled` is not `true` (FastFN runs
/// only enabled schedules).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub trigger: Trigger,
    pub method: Method,
    /// Encoded, without `?`.
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Attempts per run, 1 without retry.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

/// The keys `compile` reads; FastFN ignores any other key inside `schedule` (its own
/// examples carry a `note`), so edgefn warns about them instead of refusing the tree.
pub const KEYS: [&str; 11] = [
    "enabled",
    "every_seconds",
    "cron",
    "timezone",
    "tz",
    "method",
    "query",
    "headers",
    "body",
    "context",
    "retry",
];

/// Keys of a `schedule` object that neither FastFN nor edgefn reads.
pub fn ignored_keys(value: &Value) -> Vec<String> {
    value
        .as_object()
        .map(|o| {
            o.keys()
                .filter(|k| !KEYS.contains(&k.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// `(field, message)` pairs, fields prefixed `schedule.`; keys from [`ignored_keys`] are
/// left out.
pub fn compile(value: &Value) -> Result<Option<Schedule>, Vec<(String, String)>> {
    let mut value = value.clone();
    if let Some(o) = value.as_object_mut() {
        o.retain(|k, _| KEYS.contains(&k.as_str()));
    }
    let raw: RawSchedule = serde_json::from_value(value).map_err(|e| {
        let hint = crate::catalog::fastfn_keys::did_you_mean(&e.to_string())
            .map(|h| format!("; {h}"))
            .unwrap_or_default();
        vec![("schedule".to_owned(), format!("{e}{hint}"))]
    })?;
    let mut errors = Vec::new();
    let mut err = |f: &str, m: String| errors.push((format!("schedule.{f}"), m));
    let offset = match raw.timezone.as_deref().map(str::trim) {
        None => 0,
        Some(tz) => parse_offset(tz).unwrap_or_else(|| {
            err(
                "timezone",
                format!("{tz:?} is not UTC, Z, local or an offset like -05:00"),
            );
            0
        }),
    };
    let trigger = match (raw.every_seconds, raw.cron.as_deref()) {
        (Some(_), Some(_)) => {
            err(
                "cron",
                "is set together with every_seconds; keep one".into(),
            );
            None
        }
        (Some(s), None) if !(MIN_EVERY_SECONDS..=MAX_EVERY_SECONDS).contains(&s) => {
            err(
                "every_seconds",
                format!("{s} is out of range; use {MIN_EVERY_SECONDS} to {MAX_EVERY_SECONDS}"),
            );
            None
        }
        (Some(s), None) => Some(Trigger::Every(Duration::from_secs(s))),
        (None, Some(expr)) => match Cron::parse(expr) {
            Ok(c) => Some(Trigger::Cron(c, offset)),
            Err(e) => {
                err("cron", format!("{expr:?}: {e}"));
                None
            }
        },
        (None, None) => {
            if raw.enabled {
                err(
                    "every_seconds",
                    "or cron is needed to run the schedule".into(),
                );
            }
            None
        }
    };
    let method = match raw.method.as_deref().map(str::to_ascii_uppercase) {
        None => Method::GET,
        Some(m) => match m.as_str() {
            "GET" | "POST" | "PUT" | "PATCH" | "DELETE" => {
                Method::from_bytes(m.as_bytes()).expect("known method")
            }
            _ => {
                err(
                    "method",
                    format!("{m:?} is not GET, POST, PUT, PATCH or DELETE"),
                );
                Method::GET
            }
        },
    };
    let query = raw.query.as_ref().filter(|q| !q.is_empty()).map(|q| {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in q {
            ser.append_pair(k, &scalar(v));
        }
        ser.finish()
    });
    let mut headers = HeaderMap::new();
    for (k, v) in raw.headers.iter().flatten() {
        match (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&scalar(v)),
        ) {
            (Ok(n), Ok(v)) => {
                headers.append(n, v);
            }
            _ => err("headers", format!("{k:?} is not a valid header")),
        }
    }
    let body = raw.body.as_ref().map(scalar).unwrap_or_default();
    if body.len() > MAX_BODY {
        err("body", format!("is over {MAX_BODY} bytes"));
    }
    let (max_attempts, base, max) = match &raw.retry {
        None | Some(RawRetry::On(false)) => (1, 0.0, 0.0),
        Some(RawRetry::On(true)) => (3, 1.0, 30.0),
        Some(RawRetry::Policy(p)) if p.enabled == Some(false) => (1, 0.0, 0.0),
        Some(RawRetry::Policy(p)) => (
            p.max_attempts.unwrap_or(3).clamp(1, 10),
            p.base_delay_seconds.unwrap_or(1.0).clamp(0.0, 3600.0),
            p.max_delay_seconds.unwrap_or(30.0).clamp(0.0, 3600.0),
        ),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let Some(trigger) = trigger.filter(|_| raw.enabled) else {
        return Ok(None);
    };
    Ok(Some(Schedule {
        trigger,
        method,
        query,
        headers,
        body: Bytes::from(body),
        max_attempts,
        base_delay: Duration::from_secs_f64(base),
        max_delay: Duration::from_secs_f64(max),
    }))
}

/// FastFN's accepted zones: `UTC`, `Z`, `local` (the gateway's clock, which edgefn reads
/// as UTC), `+hh:mm` / `-hhmm`.
fn parse_offset(tz: &str) -> Option<i64> {
    if tz.eq_ignore_ascii_case("utc") || tz == "Z" || tz.eq_ignore_ascii_case("local") {
        return Some(0);
    }
    let (sign, rest) = match tz.as_bytes().first()? {
        b'+' => (1, &tz[1..]),
        b'-' => (-1, &tz[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let h: i64 = digits[..2].parse().ok()?;
    let m: i64 = digits[2..].parse().ok()?;
    (h <= 14 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fastfn_examples_compile() {
        let s = compile(
            &json!({"enabled": true, "cron": "0 9 * * *", "timezone": "-05:00", "method": "GET"}),
        )
        .unwrap()
        .unwrap();
        assert!(matches!(s.trigger, Trigger::Cron(_, -18_000)));
        let s = compile(
            &json!({"enabled": true, "every_seconds": 2, "query": {"a": "x y", "n": 1},
            "headers": {"x-k": "v"}, "body": "tick", "retry": true}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.query.as_deref(), Some("a=x+y&n=1"));
        assert_eq!(s.headers["x-k"], "v");
        assert_eq!(s.max_attempts, 3);
        // FastFN's cron-tick example: disabled, so it never runs.
        let off = json!({"every_seconds": 1, "query": {"action": "inc"}, "headers": {},
            "body": "", "context": {}, "method": "GET", "enabled": false});
        assert_eq!(compile(&off).unwrap(), None);
    }

    #[test]
    fn bad_values_name_their_field() {
        let fields = |v: Value| -> Vec<String> {
            compile(&v)
                .unwrap_err()
                .into_iter()
                .map(|(f, _)| f)
                .collect()
        };
        assert_eq!(
            fields(json!({"enabled": true, "cron": "61 * * * *"})),
            ["schedule.cron"]
        );
        assert_eq!(
            fields(json!({"enabled": true, "every_seconds": 0, "timezone": "Mars/Base"})),
            ["schedule.timezone", "schedule.every_seconds"]
        );
        assert_eq!(fields(json!({"enabled": true})), ["schedule.every_seconds"]);
        // Unknown keys are ignored (and warned about by the catalog), as FastFN does: a
        // misspelt trigger still fails for want of a trigger.
        assert_eq!(
            fields(json!({"enabled": true, "every_sec": 1})),
            ["schedule.every_seconds"]
        );
        assert_eq!(
            ignored_keys(&json!({"note": "x", "cron": "* * * * *"})),
            ["note"]
        );
        assert_eq!(
            fields(json!({"enabled": true, "every_seconds": "5"})),
            ["schedule"]
        );
    }
}
