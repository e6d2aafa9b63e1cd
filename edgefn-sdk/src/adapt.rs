//! What [`crate::run`] accepts: a handler taking [`Event`] or FastFN's `serde_json::Value`
//! event, returning [`Response`] or a `Value` answer. A `Value` answer follows the contract
//! every edgefn runtime follows (runtimes/PROTOCOL.md): an object with `status` /
//! `statusCode` / `headers` / `body` / `is_base64` (`isBase64Encoded`, `body_base64`) is an
//! envelope; otherwise a string is text (HTML when it starts like HTML), `null` an empty 200,
//! a number or boolean text, an object or array JSON.

use serde_json::{Map, Value};

use crate::{base64, Event, Response};

/// A handler's argument, built from the request.
pub trait FromEvent {
    fn from_event(event: Event) -> Self;
}

/// A handler's answer; `Err` names why it cannot be sent (a 502 for the client).
pub trait IntoResponse {
    fn into_response(self) -> Result<Response, String>;
}

impl FromEvent for Event {
    fn from_event(event: Event) -> Self {
        event
    }
}

/// FastFN's Rust event: the gateway's event object with `body` (text, or null and
/// `body_base64` for binary), `env`, and the route parameters also at the top level
/// (`event["id"]`) where no field of that name exists.
impl FromEvent for Value {
    fn from_event(e: Event) -> Self {
        let mut m = e.raw;
        m.insert("context".into(), e.context);
        if e.binary {
            m.insert("body".into(), Value::Null);
            m.insert("body_base64".into(), Value::String(base64::encode(&e.body)));
        } else {
            let text = String::from_utf8(e.body).unwrap_or_default();
            m.insert("body".into(), Value::String(text));
        }
        let env: Map<String, Value> = e
            .env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        m.insert("env".into(), Value::Object(env));
        for (k, v) in e.params {
            m.entry(k).or_insert(Value::String(v));
        }
        Value::Object(m)
    }
}

impl IntoResponse for Response {
    fn into_response(self) -> Result<Response, String> {
        Ok(self)
    }
}

const ENVELOPE: [&str; 8] = [
    "status",
    "statusCode",
    "headers",
    "body",
    "is_base64",
    "isBase64Encoded",
    "body_base64",
    "proxy",
];

impl IntoResponse for Value {
    fn into_response(self) -> Result<Response, String> {
        let envelope =
            matches!(&self, Value::Object(m) if ENVELOPE.iter().any(|k| m.contains_key(*k)));
        if !envelope {
            return Ok(bare(self));
        }
        let Value::Object(mut m) = self else {
            unreachable!("an envelope is an object")
        };
        let status = match m.get("status").or_else(|| m.get("statusCode")) {
            None => 200,
            Some(v) => v
                .as_u64()
                .filter(|s| (100..=599).contains(s))
                .ok_or("status must be a valid HTTP code")? as u16,
        };
        let mut r = Response::new(status);
        match m.remove("proxy") {
            None | Some(Value::Null) => {}
            Some(p @ Value::Object(_)) => r.proxy = Some(p),
            Some(_) => return Err("proxy must be an object when provided".into()),
        }
        let mut typed = false;
        match m.remove("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                for (name, value) in h {
                    let values = match value {
                        Value::Array(items) => items,
                        one => vec![one],
                    };
                    for v in values {
                        let text = match v {
                            Value::String(s) => s,
                            Value::Number(n) => n.to_string(),
                            _ => {
                                return Err(format!(
                                    "header {name} is not a string, a number or a list of them"
                                ))
                            }
                        };
                        typed |= name.eq_ignore_ascii_case("content-type");
                        r.headers.push((name.clone(), text));
                    }
                }
            }
            Some(_) => return Err("headers must be an object".into()),
        }
        let flag = |k: &str| m.get(k).and_then(Value::as_bool) == Some(true);
        let (body, default) = if flag("is_base64") || flag("isBase64Encoded") {
            let text = m
                .get("body_base64")
                .or_else(|| m.get("body"))
                .and_then(Value::as_str)
                .unwrap_or("");
            (decode(text)?, "application/octet-stream")
        } else {
            match m.remove("body") {
                None | Some(Value::Null) => (Vec::new(), ""),
                Some(Value::String(s)) => (s.into_bytes(), "text/plain; charset=utf-8"),
                Some(Value::Object(b))
                    if b.get("is_base64").and_then(Value::as_bool) == Some(true) =>
                {
                    (
                        decode(b.get("body").and_then(Value::as_str).unwrap_or(""))?,
                        "application/octet-stream",
                    )
                }
                Some(v) => (v.to_string().into_bytes(), "application/json"),
            }
        };
        if !typed && !default.is_empty() {
            r.headers.push(("content-type".into(), default.into()));
        }
        r.body = body;
        Ok(r)
    }
}

fn decode(text: &str) -> Result<Vec<u8>, String> {
    base64::decode(text).ok_or_else(|| "is_base64 body is not valid base64".to_owned())
}

fn bare(v: Value) -> Response {
    match v {
        Value::Null => Response::new(200),
        Value::String(s) => {
            let head = s
                .trim_start()
                .get(..15)
                .unwrap_or(s.trim_start())
                .to_ascii_lowercase();
            let html = head.starts_with("<!doctype html") || head.starts_with("<html");
            let r = Response::text(s);
            if html {
                r.header("content-type", "text/html; charset=utf-8")
            } else {
                r
            }
        }
        Value::Number(_) | Value::Bool(_) => Response::text(v.to_string()),
        other => Response::json(&other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ct(r: &Response) -> Vec<&str> {
        r.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn envelopes_follow_the_contract() {
        let r = json!({"status": 201, "headers": {"X-A": 7, "set-cookie": ["a", "b"]}, "body": {"k": 1}})
            .into_response()
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (201, &br#"{"k":1}"#[..]));
        assert_eq!(
            r.headers[..2],
            [
                ("X-A".into(), "7".into()),
                ("set-cookie".into(), "a".into())
            ]
        );
        assert_eq!(ct(&r), ["application/json"]);
        let r = json!({"statusCode": 200, "isBase64Encoded": true, "body": "AAEC//4="})
            .into_response()
            .unwrap();
        assert_eq!(ct(&r), ["application/octet-stream"]);
        assert_eq!(r.body, [0, 1, 2, 255, 254]);
        let r = json!({"body": "x", "headers": {"content-type": "text/csv"}})
            .into_response()
            .unwrap();
        assert_eq!(ct(&r), ["text/csv"]);
    }

    #[test]
    fn a_proxy_answer_is_handed_to_the_gateway() {
        let r = json!({"proxy": {"path": "/echo", "method": "PUT"}})
            .into_response()
            .unwrap();
        assert_eq!(r.proxy, Some(json!({"path": "/echo", "method": "PUT"})));
        assert!(json!({"proxy": ["not", "an", "object"]})
            .into_response()
            .is_err());
        assert_eq!(json!({"body": "x"}).into_response().unwrap().proxy, None);
    }

    #[test]
    fn bare_values_and_refusals() {
        assert_eq!(json!(null).into_response().unwrap(), Response::new(200));
        assert_eq!(
            ct(&json!("<html>x").into_response().unwrap()),
            ["text/html; charset=utf-8"]
        );
        assert_eq!(json!(42).into_response().unwrap().body, b"42");
        assert_eq!(json!([1, 2]).into_response().unwrap().body, b"[1,2]");
        assert!(json!({"status": 700}).into_response().is_err());
        assert!(json!({"headers": {"x": {"nested": 1}}})
            .into_response()
            .is_err());
        assert!(json!({"is_base64": true, "body_base64": "%%%"})
            .into_response()
            .is_err());
    }

    #[test]
    fn the_value_event_carries_body_env_and_params() {
        let env = std::sync::Arc::new(std::collections::BTreeMap::from([(
            "K".to_owned(),
            "v".to_owned(),
        )]));
        let e = Event::from_frame(
            json!({"method": "GET", "params": {"id": "7"}, "context": {"r": 1}}),
            vec![0xff],
            true,
            env,
        );
        let v = Value::from_event(e);
        assert_eq!(
            (v["id"].as_str(), v["env"]["K"].as_str()),
            (Some("7"), Some("v"))
        );
        assert_eq!(
            (v["body"].is_null(), v["body_base64"].as_str()),
            (true, Some("/w=="))
        );
        assert_eq!(v["context"]["r"], 1);
    }
}
