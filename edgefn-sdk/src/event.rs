//! The request as a handler sees it, built from a `req` frame: the header's `event` object
//! and the frame's body bytes, which are moved in, not copied. `env` is shared by every
//! request of the worker (it was sent once, in `init`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

/// One HTTP request routed to this function.
#[derive(Debug, Clone)]
pub struct Event {
    pub method: String,
    pub path: String,
    /// Decoded query string; a repeated name (an array in the event) is its JSON text,
    /// `raw["query"]` keeps the array.
    pub query: BTreeMap<String, String>,
    /// Path parameters from `[name]` folders.
    pub params: BTreeMap<String, String>,
    /// Request headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// The raw request body.
    pub body: Vec<u8>,
    /// The body is not UTF-8 (other runtimes see it as `body_base64`).
    pub binary: bool,
    /// `fn.env.json` values, secrets included.
    pub env: Arc<BTreeMap<String, String>>,
    /// `request_id`, `function`, `auth` and whatever else the gateway adds.
    pub context: Value,
    /// The whole event object as the gateway sent it (fields this SDK has no name for).
    pub raw: Map<String, Value>,
}

impl Event {
    pub(crate) fn from_frame(
        event: Value,
        body: Vec<u8>,
        binary: bool,
        env: Arc<BTreeMap<String, String>>,
    ) -> Event {
        let mut raw = match event {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let text = |m: &Map<String, Value>, k: &str| {
            m.get(k).and_then(Value::as_str).unwrap_or("").to_owned()
        };
        Event {
            method: text(&raw, "method"),
            path: text(&raw, "path"),
            query: strings(raw.get("query")),
            params: strings(raw.get("params")),
            headers: strings(raw.get("headers")),
            body,
            binary,
            env,
            context: raw.remove("context").unwrap_or(Value::Null),
            raw,
        }
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A header by name, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn env(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str)
    }

    /// The body as UTF-8 text, when it is.
    pub fn body_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

fn strings(v: Option<&Value>) -> BTreeMap<String, String> {
    let Some(Value::Object(m)) = v else {
        return BTreeMap::new();
    };
    m.iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_come_from_the_event_object() {
        let env = Arc::new(BTreeMap::from([("K".to_owned(), "v".to_owned())]));
        let e = Event::from_frame(
            json!({"method": "POST", "path": "/x", "query": {"a": "1"}, "params": {"id": "7"},
                   "headers": {"x-h": "v"}, "context": {"request_id": "r"}, "extra": 1}),
            b"hi".to_vec(),
            false,
            env,
        );
        assert_eq!((e.method.as_str(), e.path.as_str()), ("POST", "/x"));
        assert_eq!(
            (e.query("a"), e.param("id"), e.header("X-H")),
            (Some("1"), Some("7"), Some("v"))
        );
        assert_eq!((e.env("K"), e.body_text()), (Some("v"), Some("hi")));
        assert_eq!(e.context["request_id"], "r");
        assert_eq!(e.raw["extra"], 1);
    }
}
