use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

use super::*;
use crate::pool::protocol::{encode, read_frame};

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
            handler: None,
        }),
    }
}

async fn event_of(req: &WorkerRequest) -> (serde_json::Value, Bytes) {
    let (mut frame, rest) = encode(
        &RequestHeader {
            id: 9,
            function: "p/[id]",
            req,
        },
        &req.body,
    );
    // Protocol v2: the body travels beside the header.
    if let Some(rest) = rest {
        frame.extend_from_slice(&rest);
    }
    let (header, body) = read_frame(&mut frame.as_slice()).await.unwrap();
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
