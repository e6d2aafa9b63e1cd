//! The event a handler receives, in FastFN's shape (`http/gateway.lua`), written as JSON
//! in one pass straight from the request parts into the frame header. What is fixed per
//! function (its name, runtime, version, limits, the shared-pool handler) is rendered once,
//! at the function's first request, and copied in; strings that need no escaping (nearly
//! all of them) are copied as they are. The worker adds `body` (the raw bytes travel after
//! the header) and `env`.
//!
//! `{"id", "ts", "method", "path", "raw_path", "query", "params", "path_params",
//! "headers", "session", "client": {"ip", "ua"}, "context": {"request_id", "function",
//! "function_name", "runtime", "version", "timeout_ms", "max_body_bytes", "debug": {"enabled"},
//! "auth", "user"}}`
//!
//! A worker that announces `"request_encoding":"flat1"` in its `ready` (the Node worker) is
//! sent the same event as newline-separated positional fields instead
//! ([`write_flat_request_header`], runtimes/PROTOCOL.md): it builds the object from fixed
//! shapes rather than parsing it, which was most of its cost per request.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};

use super::json_text::{self, string};
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
    /// The JSON of the fields above, rendered at load by [`EventMeta::prerender`] (else at
    /// the first request; the fields are no longer changed once the meta is shared).
    pub rendered: OnceLock<Rendered>,
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
            rendered: OnceLock::new(),
        }
    }
}

/// The fixed parts of a request header for one function on one pool.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The pool's function name the `context` part was rendered with.
    function: Box<str>,
    /// `"handler":"<file>",` or nothing.
    handler: Box<[u8]>,
    /// `,"function":..,"function_name":..,...,"debug":{"enabled":..},"auth":`
    context: Box<[u8]>,
    /// The flat encoding's first field: `F{"function":..,...,"debug":..[,"handler":..]}\n`.
    flat: Box<[u8]>,
}

/// How request frames are encoded for one worker, as its `ready` announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// `{"type":"req",...,"event":{...}}`: every runtime understands it.
    #[default]
    Json,
    /// `flat1`: positional fields, one a line (runtimes/PROTOCOL.md).
    Flat,
}

impl Encoding {
    /// The encoding a `ready` frame's `request_encoding` names; JSON for anything unknown.
    pub fn announced(name: Option<&str>) -> Encoding {
        match name {
            Some("flat1") => Encoding::Flat,
            _ => Encoding::Json,
        }
    }
}

impl EventMeta {
    fn render(&self, function: &str) -> Rendered {
        let mut handler = Vec::new();
        if let Some(h) = &self.handler {
            handler.extend_from_slice(br#""handler":"#);
            string(&mut handler, h);
            handler.push(b',');
        }
        let mut c = Vec::with_capacity(160);
        c.extend_from_slice(br#","function":"#);
        string(&mut c, function);
        c.extend_from_slice(br#","function_name":"#);
        string(&mut c, &self.function_name);
        c.extend_from_slice(br#","runtime":"#);
        string(&mut c, self.runtime);
        c.extend_from_slice(br#","version":"#);
        string(&mut c, &self.version);
        c.extend_from_slice(br#","timeout_ms":"#);
        number(&mut c, self.timeout_ms);
        c.extend_from_slice(br#","max_body_bytes":"#);
        number(&mut c, self.max_body_bytes);
        c.extend_from_slice(if self.debug {
            br#","debug":{"enabled":true},"auth":"#
        } else {
            br#","debug":{"enabled":false},"auth":"#
        });
        let mut flat = Vec::with_capacity(192);
        flat.extend_from_slice(br#"F{"function":"#);
        flat.extend_from_slice(&c[br#","function":"#.len()..c.len() - br#","auth":"#.len()]);
        if let Some(h) = &self.handler {
            flat.extend_from_slice(br#","handler":"#);
            string(&mut flat, h);
        }
        flat.extend_from_slice(b"}\n");
        Rendered {
            function: function.into(),
            handler: handler.into(),
            context: c.into(),
            flat: flat.into(),
        }
    }

    /// Renders the fixed parts for the pool named `function` now, at load, so that no
    /// request pays for it.
    pub fn prerender(&self, function: &str) {
        let _ = self.rendered.set(self.render(function));
    }

    /// The rendered parts for `function` (the pool's name, the same for every request of
    /// one meta; anything else is rendered afresh).
    fn rendered(&self, function: &str) -> Cow<'_, Rendered> {
        let r = self.rendered.get_or_init(|| self.render(function));
        if *r.function == *function {
            Cow::Borrowed(r)
        } else {
            Cow::Owned(self.render(function))
        }
    }
}

/// Appends `{"type":"req","id":..,["handler":..,]"binary":..,"event":{...}}` for `req`.
pub fn write_request_header(out: &mut Vec<u8>, id: u64, function: &str, req: &WorkerRequest) {
    let fixed = req.meta.rendered(function);
    let ts = timestamp();
    out.reserve(768);
    out.extend_from_slice(br#"{"type":"req","id":"#);
    number(out, id);
    out.push(b',');
    out.extend_from_slice(&fixed.handler);
    out.extend_from_slice(if std::str::from_utf8(&req.body).is_err() {
        br#""binary":true,"event":{"id":"#
    } else {
        br#""binary":false,"event":{"id":"#
    });
    string(out, &req.request_id);
    out.extend_from_slice(br#","ts":"#);
    number(out, ts);
    out.extend_from_slice(br#","method":"#);
    string(out, req.method.as_str());
    out.extend_from_slice(br#","path":"#);
    string(out, &req.path);
    out.extend_from_slice(br#","raw_path":"#);
    match req.query.as_deref() {
        Some(q) => {
            out.push(b'"');
            json_text::contents(out, &req.path);
            out.push(b'?');
            json_text::contents(out, q);
            out.push(b'"');
        }
        None => string(out, &req.path),
    }
    out.extend_from_slice(br#","query":"#);
    query(out, req.query.as_deref().unwrap_or(""));
    out.extend_from_slice(br#","params":"#);
    let params_at = out.len();
    params(out, &req.params);
    out.extend_from_slice(br#","path_params":"#);
    out.extend_from_within(params_at..out.len() - br#","path_params":"#.len());
    out.extend_from_slice(br#","headers":"#);
    let seen = headers(out, &req.headers);
    out.extend_from_slice(br#","session":"#);
    session(out, &req.headers, seen.cookie);
    out.extend_from_slice(br#","client":{"ip":"#);
    match req.client_ip {
        Some(ip) => address(out, ip),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(br#","ua":"#);
    match seen.user_agent {
        Some(v) => header_value(out, v.as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(br#"},"context":{"request_id":"#);
    string(out, &req.request_id);
    out.extend_from_slice(&fixed.context);
    auth(out, &req.auth);
    out.extend_from_slice(br#","user":"#);
    user(out, &req.auth);
    out.extend_from_slice(b"}}}");
}

/// Appends the flat (`flat1`) request header for `req`, the event's fields one a line:
///
/// ```text
/// F{fixed per-function JSON}   id   binary (0|1)   request id   ts   method   path
/// "" | "?" raw query   query JSON   params JSON   headers JSON   session JSON
/// client ip ("" for none)   "" | "=" user agent   auth JSON
/// ```
///
/// Text fields travel as they are, so a field holding a newline cannot be sent this way:
/// then (never for a request hyper parsed: no such byte survives its URI and header
/// checks) the JSON header is written instead, which every worker also reads.
pub fn write_flat_request_header(out: &mut Vec<u8>, id: u64, function: &str, req: &WorkerRequest) {
    let ua = req.headers.get(http::header::USER_AGENT);
    let raw = [
        req.request_id.as_bytes(),
        req.path.as_bytes(),
        req.query.as_deref().unwrap_or("").as_bytes(),
        ua.map_or(&b""[..], |v| v.as_bytes()),
    ];
    if raw.iter().any(|f| f.contains(&b'\n')) {
        write_request_header(out, id, function, req);
        return;
    }
    let fixed = req.meta.rendered(function);
    out.reserve(512);
    out.extend_from_slice(&fixed.flat);
    number(out, id);
    out.extend_from_slice(if std::str::from_utf8(&req.body).is_err() {
        b"\n1\n"
    } else {
        b"\n0\n"
    });
    out.extend_from_slice(req.request_id.as_bytes());
    out.push(b'\n');
    number(out, timestamp());
    out.push(b'\n');
    out.extend_from_slice(req.method.as_str().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(req.path.as_bytes());
    out.push(b'\n');
    if let Some(q) = &req.query {
        out.push(b'?');
        out.extend_from_slice(q.as_bytes());
    }
    out.push(b'\n');
    query(out, req.query.as_deref().unwrap_or(""));
    out.push(b'\n');
    params(out, &req.params);
    out.push(b'\n');
    let seen = headers(out, &req.headers);
    out.push(b'\n');
    session(out, &req.headers, seen.cookie);
    out.push(b'\n');
    if let Some(ip) = req.client_ip {
        ip_text(out, ip);
    }
    out.push(b'\n');
    if let Some(v) = ua {
        out.push(b'=');
        out.extend_from_slice(String::from_utf8_lossy(v.as_bytes()).as_bytes());
    }
    out.push(b'\n');
    auth(out, &req.auth);
}

fn timestamp() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A header value as text: printable ASCII is copied, anything else decoded lossily.
fn header_value(out: &mut Vec<u8>, v: &[u8]) {
    if json_text::printable_len(v) == v.len() {
        out.reserve(v.len() + 2);
        out.push(b'"');
        out.extend_from_slice(v);
        out.push(b'"');
    } else {
        string(out, &String::from_utf8_lossy(v));
    }
}

fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn address(out: &mut Vec<u8>, ip: IpAddr) {
    out.push(b'"');
    ip_text(out, ip);
    out.push(b'"');
}

/// The address as text (never anything JSON must escape).
fn ip_text(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            // At most 15 bytes, written in place: no formatter, no copy per octet.
            out.reserve(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            write!(out, "{v6}").expect("writing to a Vec cannot fail");
        }
    }
}

/// FastFN's query (nginx's `get_uri_args`): a name once → its value, repeated → an
/// array of values in order, a bare `?flag` → `true`.
fn query(out: &mut Vec<u8>, q: &str) {
    let mut pairs: Vec<(Cow<'_, str>, Option<Cow<'_, str>>)> = Vec::new();
    for piece in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = match piece.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (piece, None),
        };
        let key = decode(k);
        if key.is_empty() {
            continue;
        }
        pairs.push((key, v.map(decode)));
    }
    let value = |out: &mut Vec<u8>, v: &Option<Cow<'_, str>>| match v {
        None => out.extend_from_slice(b"true"),
        Some(t) => string(out, t),
    };
    out.push(b'{');
    let mut first = true;
    for (i, (k, v)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(p, _)| p == k) {
            continue;
        }
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        string(out, k);
        out.push(b':');
        let mut same = pairs[i + 1..].iter().filter(|(p, _)| p == k).peekable();
        if same.peek().is_none() {
            value(out, v);
        } else {
            out.push(b'[');
            value(out, v);
            for (_, v) in same {
                out.push(b',');
                value(out, v);
            }
            out.push(b']');
        }
    }
    out.push(b'}');
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

fn params(out: &mut Vec<u8>, params: &[(String, String)]) {
    out.push(b'{');
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, k);
        out.push(b':');
        string(out, v);
    }
    out.push(b'}');
}

/// What the event reads of two headers on their own, noted while they are written (a
/// lookup by name hashes it).
struct Seen<'a> {
    /// The first `User-Agent` value, as `HeaderMap::get` gives it.
    user_agent: Option<&'a HeaderValue>,
    cookie: bool,
}

/// Lower-cased names (hyper already stores them so; a header name never needs escaping);
/// a repeated header becomes an array of its values, as nginx's `get_headers` hands them
/// to FastFN handlers.
fn headers<'a>(out: &mut Vec<u8>, map: &'a HeaderMap) -> Seen<'a> {
    let mut seen = Seen {
        user_agent: None,
        cookie: false,
    };
    out.push(b'{');
    // `iter` yields every value of a name together: one pass, no per-name lookup.
    let mut values = map.iter().peekable();
    let mut first = true;
    while let Some((name, value)) = values.next() {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        if *name == http::header::USER_AGENT {
            seen.user_agent = Some(value);
        } else if *name == http::header::COOKIE {
            seen.cookie = true;
        }
        out.push(b'"');
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b"\":");
        if values.peek().is_some_and(|(n, _)| *n == name) {
            out.push(b'[');
            header_value(out, value.as_bytes());
            while let Some((_, v)) = values.next_if(|(n, _)| *n == name) {
                out.push(b',');
                header_value(out, v.as_bytes());
            }
            out.push(b']');
        } else {
            header_value(out, value.as_bytes());
        }
    }
    out.push(b'}');
    seen
}

/// `{"id", "raw", "cookies"}` from the Cookie header (`null` without one); the id is the
/// `session_id`, `sessionid` or `sid` cookie, as FastFN picks it. Later cookies of one
/// name win in `cookies`, as in FastFN's table. `cookie`: the map has a Cookie header.
fn session(out: &mut Vec<u8>, map: &HeaderMap, cookie: bool) {
    if !cookie {
        out.extend_from_slice(b"null");
        return;
    }
    let raw: Vec<&str> = map
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if raw.is_empty() {
        out.extend_from_slice(b"null");
        return;
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
    out.extend_from_slice(br#"{"id":"#);
    match id {
        Some(id) => string(out, id),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(br#","raw":"#);
    string(out, &raw);
    out.extend_from_slice(br#","cookies":{"#);
    let mut first = true;
    for (i, (k, v)) in cookies.iter().enumerate() {
        if cookies[i + 1..].iter().any(|(n, _)| n == k) {
            continue;
        }
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        string(out, k);
        out.push(b':');
        string(out, v);
    }
    out.extend_from_slice(b"}}");
}

fn auth(out: &mut Vec<u8>, a: &AuthContext) {
    out.extend_from_slice(br#"{"type":"#);
    string(out, a.kind);
    out.extend_from_slice(br#","subject":"#);
    match a.subject.as_deref() {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
    if let Some(claims) = &a.claims {
        out.extend_from_slice(br#","claims":"#);
        serde_json::to_writer(&mut *out, &**claims).expect("writing JSON to a Vec cannot fail");
    }
    out.push(b'}');
}

/// The identity the gateway verified, as FastFN's `context.user`: `{"id", "auth"}`, or
/// `null` when the function is open.
fn user(out: &mut Vec<u8>, a: &AuthContext) {
    if a.kind == "none" {
        out.extend_from_slice(b"null");
        return;
    }
    out.extend_from_slice(br#"{"id":"#);
    match a.subject.as_deref() {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(br#","auth":"#);
    string(out, a.kind);
    out.push(b'}');
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
