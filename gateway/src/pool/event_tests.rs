use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

use super::*;
use crate::pool::protocol::{encode_request, read_frame, Encoding};

fn request(body: &'static [u8], auth: AuthContext) -> WorkerRequest {
    let mut headers = HeaderMap::new();
    headers.append("x-a", HeaderValue::from_static("1"));
    headers.append("x-a", HeaderValue::from_static("2"));
    headers.append("x-b", HeaderValue::from_static("3"));
    headers.append("user-agent", HeaderValue::from_static("curl/8"));
    headers.append("cookie", HeaderValue::from_static("sid=abc; theme=dark"));
    headers.append("cookie", HeaderValue::from_static("theme=light"));
    WorkerRequest {
        request_id: Arc::from("rid"),
        method: http::Method::POST,
        path: "/p/7".into(),
        query: Some("a=1&b=x%20y+z&a=3&flag&e=".into()),
        params: vec![("id".into(), "7".into())],
        headers,
        body: Bytes::from_static(body),
        auth,
        client_ip: Some("10.1.2.3".parse().unwrap()),
        meta: Arc::new(EventMeta {
            function_name: Arc::from("p/[id]"),
            runtime: "python",
            version: Arc::from("default"),
            timeout_ms: 2500,
            max_body_bytes: 1024,
            debug: true,
            ..EventMeta::default()
        }),
    }
}

async fn event_of(req: &WorkerRequest) -> (serde_json::Value, Bytes) {
    event_on(req, "p/[id]").await
}

async fn event_on(req: &WorkerRequest, function: &str) -> (serde_json::Value, Bytes) {
    let mut frame = b"left alone".to_vec();
    encode_request(&mut frame, 9, function, req, Encoding::Json);
    // Protocol v2: the body travels beside the header.
    frame.extend_from_slice(&req.body);
    assert_eq!(&frame[..10], b"left alone");
    let mut frame = &frame[10..];
    let (header, body) = read_frame(&mut frame).await.unwrap();
    assert!(frame.is_empty());
    (serde_json::from_slice(&header).unwrap(), body)
}

#[tokio::test]
async fn fastfn_event_fields() {
    let req = request(
        b"\xff\x00",
        AuthContext {
            kind: "api_key",
            subject: Some(Arc::from("k1")),
            claims: None,
        },
    );
    let (v, body) = event_of(&req).await;
    assert_eq!(v["id"], 9);
    assert_eq!(v["binary"], true);
    let e = &v["event"];
    assert_eq!(e["id"], "rid");
    assert!(e["ts"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(e["raw_path"], "/p/7?a=1&b=x%20y+z&a=3&flag&e=");
    assert_eq!(e["query"]["a"], serde_json::json!(["1", "3"]));
    assert_eq!(e["query"]["b"], "x y z");
    assert_eq!(e["query"]["flag"], true);
    assert_eq!(e["query"]["e"], "");
    assert_eq!(e["params"]["id"], "7");
    assert_eq!(e["path_params"]["id"], "7");
    assert_eq!(e["headers"]["x-a"], serde_json::json!(["1", "2"]));
    assert_eq!(e["headers"]["x-b"], "3");
    assert_eq!(e["client"]["ip"], "10.1.2.3");
    assert_eq!(e["client"]["ua"], "curl/8");
    assert_eq!(e["session"]["id"], "abc");
    assert_eq!(e["session"]["raw"], "sid=abc; theme=dark; theme=light");
    assert_eq!(e["session"]["cookies"]["theme"], "light");
    let c = &e["context"];
    assert_eq!(c["request_id"], "rid");
    assert_eq!(c["function"], "p/[id]");
    assert_eq!(c["function_name"], "p/[id]");
    assert_eq!(c["runtime"], "python");
    assert_eq!(c["version"], "default");
    assert_eq!(c["timeout_ms"], 2500);
    assert_eq!(c["max_body_bytes"], 1024);
    assert_eq!(c["debug"], serde_json::json!({"enabled": true}));
    assert_eq!(c["auth"]["subject"], "k1");
    assert_eq!(
        c["user"],
        serde_json::json!({"id": "k1", "auth": "api_key"})
    );
    assert_eq!(&body[..], b"\xff\x00");
}

#[tokio::test]
async fn open_functions_have_no_user_and_no_session_without_cookies() {
    let mut req = request(
        b"",
        AuthContext {
            kind: "none",
            subject: None,
            claims: None,
        },
    );
    req.headers.remove("cookie");
    req.query = None;
    let (v, _) = event_of(&req).await;
    assert!(v["event"]["context"]["user"].is_null());
    assert!(v["event"]["session"].is_null());
    assert_eq!(v["event"]["raw_path"], "/p/7");
    assert_eq!(v["event"]["query"], serde_json::json!({}));
}

/// Every string that needs escaping is escaped as serde_json would, header values that
/// are not UTF-8 are decoded lossily, and the fixed part follows the pool's name.
#[tokio::test]
async fn escapes_and_fixed_parts() {
    let mut req = request(
        "é\"\n".as_bytes(),
        AuthContext {
            kind: "bearer",
            subject: Some(Arc::from("a\"b")),
            claims: Some(Arc::new(
                serde_json::from_str(r#"{"sub":"a\"b","n":[1,2]}"#).unwrap(),
            )),
        },
    );
    req.headers
        .insert("x-q", HeaderValue::from_static(r#"say "hi" \o/"#));
    req.headers
        .insert("x-bin", HeaderValue::from_bytes(b"caf\xe9\tok").unwrap());
    req.path = "/p/\u{1}é".into();
    req.query = Some("q=%22x%22&%5Ck=\u{7f}".into());
    req.params = vec![("id".into(), "\"7\"".into())];
    req.client_ip = Some("::1".parse().unwrap());
    req.meta = Arc::new(EventMeta {
        function_name: Arc::from("p\"q"),
        runtime: "node",
        version: Arc::from("v2"),
        handler: Some(Arc::from("/fns/a\"b/get.js")),
        ..EventMeta::default()
    });
    let (v, body) = event_of(&req).await;
    assert_eq!(v["binary"], false);
    assert_eq!(v["handler"], "/fns/a\"b/get.js");
    assert_eq!(&body[..], "é\"\n".as_bytes());
    let e = &v["event"];
    assert_eq!(e["method"], "POST");
    assert_eq!(e["path"], "/p/\u{1}é");
    assert_eq!(e["raw_path"], "/p/\u{1}é?q=%22x%22&%5Ck=\u{7f}");
    assert_eq!(e["query"]["q"], "\"x\"");
    assert_eq!(e["query"]["\\k"], "\u{7f}");
    assert_eq!(e["params"]["id"], "\"7\"");
    assert_eq!(e["path_params"], e["params"]);
    assert_eq!(e["headers"]["x-q"], r#"say "hi" \o/"#);
    assert_eq!(e["headers"]["x-bin"], "caf\u{fffd}\tok");
    assert_eq!(e["client"]["ip"], "::1");
    let c = &e["context"];
    assert_eq!(c["function"], "p/[id]");
    assert_eq!(c["function_name"], "p\"q");
    assert_eq!(c["runtime"], "node");
    assert_eq!(c["version"], "v2");
    assert_eq!(c["debug"]["enabled"], false);
    assert_eq!(
        c["auth"],
        serde_json::json!({"type": "bearer", "subject": "a\"b",
            "claims": {"sub": "a\"b", "n": [1, 2]}})
    );
    assert_eq!(
        c["user"],
        serde_json::json!({"id": "a\"b", "auth": "bearer"})
    );
    // The same meta on another pool's worker names that pool.
    let (v, _) = event_on(&req, "other").await;
    assert_eq!(v["event"]["context"]["function"], "other");
    let (v, _) = event_of(&req).await;
    assert_eq!(v["event"]["context"]["function"], "p/[id]");
}

fn flat_header(req: &WorkerRequest, function: &str) -> String {
    let mut frame = Vec::new();
    encode_request(&mut frame, 9, function, req, Encoding::Flat);
    String::from_utf8(frame[8..].to_vec()).unwrap()
}

/// The flat encoding's fields, one a line, carry the same JSON parts as the JSON encoding;
/// text fields travel unescaped.
#[test]
fn flat_fields_are_positional() {
    let mut req = request(
        b"\xff",
        AuthContext {
            kind: "api_key",
            subject: Some(Arc::from("k1")),
            claims: None,
        },
    );
    req.meta = Arc::new(EventMeta {
        function_name: Arc::from("p"),
        runtime: "node",
        handler: Some(Arc::from("/fns/a\"b/get.js")),
        ..EventMeta::default()
    });
    let text = flat_header(&req, "p/[id]");
    let f: Vec<&str> = text.split('\n').collect();
    assert_eq!(f.len(), 15, "{text}");
    assert_eq!(
        f[0],
        r#"F{"function":"p/[id]","function_name":"p","runtime":"node","version":"default","timeout_ms":0,"max_body_bytes":0,"debug":{"enabled":false},"handler":"/fns/a\"b/get.js"}"#
    );
    assert_eq!(&f[1..4], ["9", "1", "rid"]);
    assert!(f[4].parse::<u64>().unwrap() > 1_700_000_000_000);
    assert_eq!(&f[5..8], ["POST", "/p/7", "?a=1&b=x%20y+z&a=3&flag&e="]);
    let json = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    assert_eq!(
        json(f[8]),
        serde_json::json!({"a": ["1", "3"], "b": "x y z", "flag": true, "e": ""})
    );
    assert_eq!(json(f[9]), serde_json::json!({"id": "7"}));
    assert_eq!(json(f[10])["x-a"], serde_json::json!(["1", "2"]));
    assert_eq!(json(f[11])["id"], "abc");
    assert_eq!(&f[12..14], ["10.1.2.3", "=curl/8"]);
    assert_eq!(
        json(f[14]),
        serde_json::json!({"type": "api_key", "subject": "k1"})
    );

    req.headers.remove("user-agent");
    req.client_ip = None;
    req.query = None;
    let text = flat_header(&req, "p/[id]");
    let f: Vec<&str> = text.split('\n').collect();
    assert_eq!(&f[7..9], ["", "{}"]);
    assert_eq!(&f[12..14], ["", ""]);
}

/// A text field holding a newline cannot travel flat: that request is sent as JSON.
#[tokio::test]
async fn a_newline_in_a_text_field_falls_back_to_json() {
    let mut req = request(
        b"",
        AuthContext {
            kind: "none",
            subject: None,
            claims: None,
        },
    );
    req.path = "/p/a\nb".into();
    let mut frame = Vec::new();
    encode_request(&mut frame, 9, "p/[id]", &req, Encoding::Flat);
    let (header, _) = read_frame(&mut &frame[..]).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&header).unwrap();
    assert_eq!(v["event"]["path"], "/p/a\nb");
}
