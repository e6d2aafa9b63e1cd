//! What a handler returns: a status, header pairs (repeats allowed) and body bytes, built
//! with small constructors that set the usual content type.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// FastFN's edge proxy: the request (`path` or `url`, `method`, `headers`, `body`, ...)
    /// the gateway sends instead of answering with this response, within the function's
    /// `edge` config.
    pub proxy: Option<Value>,
}

impl Response {
    /// An empty response with this status.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            proxy: None,
        }
    }

    /// 200 with a UTF-8 text body.
    pub fn text(body: impl Into<String>) -> Response {
        Response::new(200)
            .header("content-type", "text/plain; charset=utf-8")
            .body(body.into().into_bytes())
    }

    /// 200 with a JSON body.
    pub fn json(value: &Value) -> Response {
        Response::new(200)
            .header("content-type", "application/json")
            .body(value.to_string().into_bytes())
    }

    /// 200 with raw bytes.
    pub fn bytes(body: impl Into<Vec<u8>>) -> Response {
        Response::new(200)
            .header("content-type", "application/octet-stream")
            .body(body)
    }

    pub fn status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }

    /// Adds a header (a second call with the same name adds a second value).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        let name = name.into();
        if name.eq_ignore_ascii_case("content-type") {
            self.headers
                .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
        }
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }

    /// Has the gateway fetch this upstream request and answer with it (FastFN's edge proxy).
    pub fn proxy(mut self, request: Value) -> Response {
        self.proxy = Some(request);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_set_the_content_type_once() {
        let r = Response::text("hi")
            .header("Content-Type", "text/html")
            .status(201);
        assert_eq!(r.status, 201);
        assert_eq!(
            r.headers,
            vec![("Content-Type".to_owned(), "text/html".to_owned())]
        );
        assert_eq!(r.body, b"hi");
        let j = Response::json(&serde_json::json!({"a": 1}));
        assert_eq!(j.body, br#"{"a":1}"#);
    }
}
