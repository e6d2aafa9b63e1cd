//! The event a handler receives, in FastFN's shape (`http/gateway.lua`), serialised in
//! one pass straight from the request parts into the frame header: no intermediate map,
//! one small grouping buffer for the query string only. The worker adds `body` (the raw
//! bytes travel after the header) and `env`.
//!
//! `{"id", "ts", "method", "path", "raw_path", "query", "params", "path_params",
//! "headers", "session", "client": {"ip", "ua"}, "context": {"request_id", "function",
//! "function_name", "runtime", "version", "timeout_ms", "max_body_bytes", "debug": {"enabled"},
//! "auth", "user"}}`

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::{AuthContext, WorkerRequest};

/// What the event says about the function, fixed per snapshot (built once at load).
#[derive(Debug, Clone)]
pub struct EventMeta {
    /// FastFN's `function_name` (the function's name without `@version`).
    pub function_name: Arc<str>,
    pub runtime: &'static str,
    /// `"default"` unless a runtime-grouped version (`v2`).
    pub version: Arc<str>,
    pub timeout_ms: u64,
    pub max_body_bytes: u64,
    /// FastFN's `context.debug.enabled`: the function asked for debug headers, and its
    /// handler may add debug details of its own (FastFN's `python/hello` does).
    pub debug: bool,
    /// The handler file when the function runs on a pool it shares with the other Node
    /// functions of its folder (`snapshot.rs`): the worker calls this file's handler.
    pub handler: Option<Arc<str>>,
}

impl Default for EventMeta {
    fn default() -> Self {
        EventMeta {
            function_name: Arc::from(""),
            runtime: "",
            version: Arc::from("default"),
            timeout_ms: 0,
            max_body_bytes: 0,
            debug: false,
            handler: None,
        }
    }
}

/// `{"type":"req","id":..,"binary":..,"event":{...}}` borrowed from the request.
pub struct RequestHeader<'a> {
    pub id: u64,
    pub function: &'a str,
    pub req: &'a WorkerRequest,
}

impl Serialize for RequestHeader<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let handler = self.req.meta.handler.as_deref();
        let mut m = s.serialize_map(Some(4 + usize::from(handler.is_some())))?;
        m.serialize_entry("type", "req")?;
        m.serialize_entry("id", &self.id)?;
        if let Some(h) = handler {
            m.serialize_entry("handler", h)?;
        }
        m.serialize_entry("binary", &std::str::from_utf8(&self.req.body).is_err())?;
        m.serialize_entry(
            "event",
            &Event {
                function: self.function,
                req: self.req,
            },
        )?;
        m.end()
    }
}

struct Event<'a> {
    function: &'a str,
    req: &'a WorkerRequest,
}

impl Serialize for Event<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.req;
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let ua = r
            .headers
            .get(http::header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()));
        let mut m = s.serialize_map(Some(13))?;
        m.serialize_entry("id", &*r.request_id)?;
        m.serialize_entry("ts", &ts)?;
        m.serialize_entry("method", r.method.as_str())?;
        m.serialize_entry("path", &r.path)?;
        m.serialize_entry("raw_path", &RawPath(&r.path, r.query.as_deref()))?;
        m.serialize_entry("query", &Query(r.query.as_deref().unwrap_or("")))?;
        m.serialize_entry("params", &Params(&r.params))?;
        m.serialize_entry("path_params", &Params(&r.params))?;
        m.serialize_entry("headers", &Headers(&r.headers))?;
        m.serialize_entry("session", &Session(&r.headers))?;
        m.serialize_entry(
            "client",
            &Client {
                ip: r.client_ip.map(|ip| ip.to_string()),
                ua,
            },
        )?;
        m.serialize_entry(
            "context",
            &Context {
                request_id: &r.request_id,
                function: self.function,
                function_name: &r.meta.function_name,
                runtime: r.meta.runtime,
                version: &r.meta.version,
                timeout_ms: r.meta.timeout_ms,
                max_body_bytes: r.meta.max_body_bytes,
                debug: Debug {
                    enabled: r.meta.debug,
                },
                auth: AuthRef(&r.auth),
                user: User(&r.auth),
            },
        )?;
        m.end()
    }
}

struct RawPath<'a>(&'a str, Option<&'a str>);

impl Serialize for RawPath<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.1 {
            Some(q) => s.collect_str(&format_args!("{}?{q}", self.0)),
            None => s.serialize_str(self.0),
        }
    }
}

/// FastFN's query (nginx's `get_uri_args`): a name once → its value, repeated → an
/// array of values in order, a bare `?flag` → `true`.
struct Query<'a>(&'a str);

enum QValue<'a> {
    Flag,
    Text(Cow<'a, str>),
}

impl Serialize for QValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            QValue::Flag => s.serialize_bool(true),
            QValue::Text(t) => s.serialize_str(t),
        }
    }
}

impl Serialize for Query<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut pairs: Vec<(Cow<'_, str>, QValue<'_>)> = Vec::new();
        for piece in self.0.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = match piece.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (piece, None),
            };
            let key = decode(k);
            if key.is_empty() {
                continue;
            }
            pairs.push((key, v.map_or(QValue::Flag, |v| QValue::Text(decode(v)))));
        }
        let mut m = s.serialize_map(None)?;
        for (i, (k, v)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(p, _)| p == k) {
                continue;
            }
            let mut same = pairs[i + 1..].iter().filter(|(p, _)| p == k).peekable();
            if same.peek().is_none() {
                m.serialize_entry(k, v)?;
            } else {
                let all: Vec<&QValue<'_>> =
                    std::iter::once(v).chain(same.map(|(_, v)| v)).collect();
                m.serialize_entry(k, &all)?;
            }
        }
        m.end()
    }
}

/// `+` is a space and `%XX` a byte, as in a form.
fn decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['+', '%']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::new();
    for (k, v) in form_urlencoded::parse(format!("{s}=").as_bytes()) {
        debug_assert!(v.is_empty());
        out.push_str(&k);
    }
    Cow::Owned(out)
}

struct Params<'a>(&'a [(String, String)]);

impl Serialize for Params<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// Lower-cased names (hyper already stores them so); a repeated header becomes an array
/// of its values, as nginx's `get_headers` hands them to FastFN handlers.
struct Headers<'a>(&'a HeaderMap);

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.keys_len()))?;
        // `iter` yields every value of a name together: one pass, no per-name lookup.
        let mut values = self.0.iter().peekable();
        while let Some((name, first)) = values.next() {
            let first = String::from_utf8_lossy(first.as_bytes());
            if values.peek().is_some_and(|(n, _)| *n == name) {
                let mut all = vec![first];
                while let Some((_, v)) = values.next_if(|(n, _)| *n == name) {
                    all.push(String::from_utf8_lossy(v.as_bytes()));
                }
                m.serialize_entry(name.as_str(), &all)?;
            } else {
                m.serialize_entry(name.as_str(), &first)?;
            }
        }
        m.end()
    }
}

/// `{"id", "raw", "cookies"}` from the Cookie header (`null` without one); the id is the
/// `session_id`, `sessionid` or `sid` cookie, as FastFN picks it.
struct Session<'a>(&'a HeaderMap);

impl Serialize for Session<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw: Vec<&str> = self
            .0
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if raw.is_empty() {
            return s.serialize_none();
        }
        let raw = raw.join("; ");
        let cookies: Vec<(&str, &str)> = raw
            .split(';')
            .filter_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let k = k.trim();
                (!k.is_empty()).then_some((k, v.trim()))
            })
            .collect();
        let id = ["session_id", "sessionid", "sid"]
            .iter()
            .find_map(|n| cookies.iter().find(|(k, _)| k == n).map(|(_, v)| *v));
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("id", &id)?;
        m.serialize_entry("raw", &raw)?;
        m.serialize_entry("cookies", &CookieMap(&cookies))?;
        m.end()
    }
}

/// Later cookies of one name win, as in FastFN's table.
struct CookieMap<'a>(&'a [(&'a str, &'a str)]);

impl Serialize for CookieMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (i, (k, _)) in self.0.iter().enumerate() {
            if self.0[i + 1..].iter().any(|(n, _)| n == k) {
                continue;
            }
            m.serialize_entry(k, self.0[i].1)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct Client<'a> {
    ip: Option<String>,
    ua: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct Context<'a> {
    request_id: &'a str,
    function: &'a str,
    function_name: &'a str,
    runtime: &'a str,
    version: &'a str,
    timeout_ms: u64,
    max_body_bytes: u64,
    debug: Debug,
    auth: AuthRef<'a>,
    user: User<'a>,
}

#[derive(Serialize)]
struct Debug {
    enabled: bool,
}

struct AuthRef<'a>(&'a AuthContext);

impl Serialize for AuthRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2 + usize::from(self.0.claims.is_some())))?;
        m.serialize_entry("type", self.0.kind)?;
        m.serialize_entry("subject", &self.0.subject.as_deref())?;
        if let Some(claims) = &self.0.claims {
            m.serialize_entry("claims", &**claims)?;
        }
        m.end()
    }
}

/// The identity the gateway verified, as FastFN's `context.user`: `{"id", "auth"}`, or
/// `null` when the function is open.
struct User<'a>(&'a AuthContext);

impl Serialize for User<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.kind == "none" {
            return s.serialize_none();
        }
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("id", &self.0.subject.as_deref())?;
        m.serialize_entry("auth", self.0.kind)?;
        m.end()
    }
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
