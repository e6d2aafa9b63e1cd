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

/// The header bytes with the timestamp (the only field that varies) replaced by `TS`.
fn pinned(req: &WorkerRequest, function: &str, encoding: Encoding) -> String {
    let mut frame = Vec::new();
    encode_request(&mut frame, 9, function, req, encoding);
    let text = String::from_utf8(frame[8..].to_vec()).unwrap();
    let (at, end) = match encoding {
        Encoding::Json => {
            let at = text.find(r#","ts":"#).unwrap() + r#","ts":"#.len();
            (at, at + text[at..].find(',').unwrap())
        }
        Encoding::Flat => {
            let at = text.match_indices('\n').nth(3).unwrap().0 + 1;
            (at, at + text[at..].find('\n').unwrap())
        }
    };
    format!("{}TS{}", &text[..at], &text[end..])
}

/// A request whose text fields hold every byte JSON escapes, beside runs of plain text on
/// either side (the workers parse these bytes: they must not change).
fn awkward() -> WorkerRequest {
    let mut req = request(
        b"ok",
        AuthContext {
            kind: "jwt",
            subject: Some(Arc::from("u\\1")),
            claims: Some(Arc::new(
                serde_json::from_str(r#"{"sub":"u\\1","tags":["a","\u0001"]}"#).unwrap(),
            )),
        },
    );
    let controls: String = (0u8..0x20)
        .filter(|&b| b != b'\n')
        .map(char::from)
        .collect();
    req.path = format!("/a-long-plain-run{controls}\"\\\u{7f}é€😀/tail-of-text");
    req.query = Some("x=%00%0A%1F%22%5C%7F&long-plain-key=long-plain-value".into());
    req.params = vec![
        ("k\"".into(), "v\\".into()),
        ("plain".into(), "text".into()),
    ];
    req.headers.insert(
        "x-mixed",
        HeaderValue::from_bytes(b"plain \t\"quoted\" back\\slash \xc3\xa9 \xff end").unwrap(),
    );
    req.headers.insert(
        "user-agent",
        HeaderValue::from_bytes(b"agent/1 \"x\" \xe2\x82\xac").unwrap(),
    );
    req.client_ip = Some("2001:db8::ff00:42:8329".parse().unwrap());
    req
}

/// The exact bytes the workers read, for the fixtures above: every rewrite of the encoder
/// must keep them.
#[test]
fn the_wire_bytes_are_pinned() {
    let plain = request(
        b"\xff",
        AuthContext {
            kind: "api_key",
            subject: Some(Arc::from("k1")),
            claims: None,
        },
    );
    let mut open = request(
        b"",
        AuthContext {
            kind: "none",
            subject: None,
            claims: None,
        },
    );
    open.headers.remove("cookie");
    open.headers.remove("user-agent");
    open.query = None;
    open.client_ip = Some("192.168.100.255".parse().unwrap());
    let awkward = awkward();
    for (req, json, flat) in [
        (&plain, PLAIN_JSON, PLAIN_FLAT),
        (&open, OPEN_JSON, OPEN_FLAT),
        (&awkward, AWKWARD_JSON, AWKWARD_FLAT),
    ] {
        assert_eq!(pinned(req, "p/[id]", Encoding::Json), json);
        assert_eq!(pinned(req, "p/[id]", Encoding::Flat), flat);
    }
}

const PLAIN_JSON: &str = "{\"type\":\"req\",\"id\":9,\"binary\":true,\"event\":{\"id\":\"rid\",\"ts\":TS,\"method\":\"POST\",\"path\":\"/p/7\",\"raw_path\":\"/p/7?a=1&b=x%20y+z&a=3&flag&e=\",\"query\":{\"a\":[\"1\",\"3\"],\"b\":\"x y z\",\"flag\":true,\"e\":\"\"},\"params\":{\"id\":\"7\"},\"path_params\":{\"id\":\"7\"},\"headers\":{\"x-a\":[\"1\",\"2\"],\"x-b\":\"3\",\"user-agent\":\"curl/8\",\"cookie\":[\"sid=abc; theme=dark\",\"theme=light\"]},\"session\":{\"id\":\"abc\",\"raw\":\"sid=abc; theme=dark; theme=light\",\"cookies\":{\"sid\":\"abc\",\"theme\":\"light\"}},\"client\":{\"ip\":\"10.1.2.3\",\"ua\":\"curl/8\"},\"context\":{\"request_id\":\"rid\",\"function\":\"p/[id]\",\"function_name\":\"p/[id]\",\"runtime\":\"python\",\"version\":\"default\",\"timeout_ms\":2500,\"max_body_bytes\":1024,\"debug\":{\"enabled\":true},\"auth\":{\"type\":\"api_key\",\"subject\":\"k1\"},\"user\":{\"id\":\"k1\",\"auth\":\"api_key\"}}}}";
const PLAIN_FLAT: &str = "F{\"function\":\"p/[id]\",\"function_name\":\"p/[id]\",\"runtime\":\"python\",\"version\":\"default\",\"timeout_ms\":2500,\"max_body_bytes\":1024,\"debug\":{\"enabled\":true}}\n9\n1\nrid\nTS\nPOST\n/p/7\n?a=1&b=x%20y+z&a=3&flag&e=\n{\"a\":[\"1\",\"3\"],\"b\":\"x y z\",\"flag\":true,\"e\":\"\"}\n{\"id\":\"7\"}\n{\"x-a\":[\"1\",\"2\"],\"x-b\":\"3\",\"user-agent\":\"curl/8\",\"cookie\":[\"sid=abc; theme=dark\",\"theme=light\"]}\n{\"id\":\"abc\",\"raw\":\"sid=abc; theme=dark; theme=light\",\"cookies\":{\"sid\":\"abc\",\"theme\":\"light\"}}\n10.1.2.3\n=curl/8\n{\"type\":\"api_key\",\"subject\":\"k1\"}";
const OPEN_JSON: &str = "{\"type\":\"req\",\"id\":9,\"binary\":false,\"event\":{\"id\":\"rid\",\"ts\":TS,\"method\":\"POST\",\"path\":\"/p/7\",\"raw_path\":\"/p/7\",\"query\":{},\"params\":{\"id\":\"7\"},\"path_params\":{\"id\":\"7\"},\"headers\":{\"x-a\":[\"1\",\"2\"],\"x-b\":\"3\"},\"session\":null,\"client\":{\"ip\":\"192.168.100.255\",\"ua\":null},\"context\":{\"request_id\":\"rid\",\"function\":\"p/[id]\",\"function_name\":\"p/[id]\",\"runtime\":\"python\",\"version\":\"default\",\"timeout_ms\":2500,\"max_body_bytes\":1024,\"debug\":{\"enabled\":true},\"auth\":{\"type\":\"none\",\"subject\":null},\"user\":null}}}";
const OPEN_FLAT: &str = "F{\"function\":\"p/[id]\",\"function_name\":\"p/[id]\",\"runtime\":\"python\",\"version\":\"default\",\"timeout_ms\":2500,\"max_body_bytes\":1024,\"debug\":{\"enabled\":true}}\n9\n0\nrid\nTS\nPOST\n/p/7\n\n{}\n{\"id\":\"7\"}\n{\"x-a\":[\"1\",\"2\"],\"x-b\":\"3\"}\nnull\n192.168.100.255\n\n{\"type\":\"none\",\"subject\":null}";
const AWKWARD_JSON: &str = "{\"type\":\"req\",\"id\":9,\"binary\":false,\"event\":{\"id\":\"rid\",\"ts\":TS,\"method\":\"POST\",\"path\":\"/a-long-plain-run\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\\\"\\\\\u{7f}é€😀/tail-of-text\",\"raw_path\":\"/a-long-plain-run\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\\\"\\\\\u{7f}é€😀/tail-of-text?x=%00%0A%1F%22%5C%7F&long-plain-key=long-plain-value\",\"query\":{\"x\":\"\\u0000\\n\\u001f\\\"\\\\\u{7f}\",\"long-plain-key\":\"long-plain-value\"},\"params\":{\"k\\\"\":\"v\\\\\",\"plain\":\"text\"},\"path_params\":{\"k\\\"\":\"v\\\\\",\"plain\":\"text\"},\"headers\":{\"x-a\":[\"1\",\"2\"],\"x-b\":\"3\",\"user-agent\":\"agent/1 \\\"x\\\" €\",\"cookie\":[\"sid=abc; theme=dark\",\"theme=light\"],\"x-mixed\":\"plain \\t\\\"quoted\\\" back\\\\slash é � end\"},\"session\":{\"id\":\"abc\",\"raw\":\"sid=abc; theme=dark; theme=light\",\"cookies\":{\"sid\":\"abc\",\"theme\":\"light\"}},\"client\":{\"ip\":\"2001:db8::ff00:42:8329\",\"ua\":\"agent/1 \\\"x\\\" €\"},\"context\":{\"request_id\":\"rid\",\"function\":\"p/[id]\",\"function_name\":\"p/[id]\",\"runtime\":\"python\",\"version\":\"default\",\"timeout_ms\":2500,\"max_body_bytes\":1024,\"debug\":{\"enabled\":true},\"auth\":{\"type\":\"jwt\",\"subject\":\"u\\\\1\",\"claims\":{\"sub\":\"u\\\\1\",\"tags\":[\"a\",\"\\u0001\"]}},\"user\":{\"id\":\"u\\\\1\",\"auth\":\"jwt\"}}}}";
const AWKWARD_FLAT: &str = "F{\"function\":\"p/[id]\",\"function_name\":\"p/[id]\",\"runtime\":\"python\",\"version\":\"default\",\"timeout_ms\":2500,\"max_body_bytes\":1024,\"debug\":{\"enabled\":true}}\n9\n0\nrid\nTS\nPOST\n/a-long-plain-run\0\u{1}\u{2}\u{3}\u{4}\u{5}\u{6}\u{7}\u{8}\t\u{b}\u{c}\r\u{e}\u{f}\u{10}\u{11}\u{12}\u{13}\u{14}\u{15}\u{16}\u{17}\u{18}\u{19}\u{1a}\u{1b}\u{1c}\u{1d}\u{1e}\u{1f}\"\\\u{7f}é€😀/tail-of-text\n?x=%00%0A%1F%22%5C%7F&long-plain-key=long-plain-value\n{\"x\":\"\\u0000\\n\\u001f\\\"\\\\\u{7f}\",\"long-plain-key\":\"long-plain-value\"}\n{\"k\\\"\":\"v\\\\\",\"plain\":\"text\"}\n{\"x-a\":[\"1\",\"2\"],\"x-b\":\"3\",\"user-agent\":\"agent/1 \\\"x\\\" €\",\"cookie\":[\"sid=abc; theme=dark\",\"theme=light\"],\"x-mixed\":\"plain \\t\\\"quoted\\\" back\\\\slash é � end\"}\n{\"id\":\"abc\",\"raw\":\"sid=abc; theme=dark; theme=light\",\"cookies\":{\"sid\":\"abc\",\"theme\":\"light\"}}\n2001:db8::ff00:42:8329\n=agent/1 \"x\" €\n{\"type\":\"jwt\",\"subject\":\"u\\\\1\",\"claims\":{\"sub\":\"u\\\\1\",\"tags\":[\"a\",\"\\u0001\"]}}";

/// `client.ua` is the first User-Agent value; a Cookie header with no readable value
/// makes no session. Both encodings agree.
#[tokio::test]
async fn repeated_user_agents_and_unreadable_cookies() {
    let mut req = request(
        b"",
        AuthContext {
            kind: "none",
            subject: None,
            claims: None,
        },
    );
    req.headers
        .append("user-agent", HeaderValue::from_static("second/2"));
    req.headers.remove("cookie");
    req.headers
        .insert("cookie", HeaderValue::from_bytes(b"sid=\xff").unwrap());
    let (v, _) = event_of(&req).await;
    let e = &v["event"];
    assert_eq!(
        e["headers"]["user-agent"],
        serde_json::json!(["curl/8", "second/2"])
    );
    assert_eq!(e["client"]["ua"], "curl/8");
    assert!(e["session"].is_null());
    let text = flat_header(&req, "p/[id]");
    let f: Vec<&str> = text.split('\n').collect();
    assert_eq!(&f[11..14], ["null", "10.1.2.3", "=curl/8"]);
}

#[test]
fn ipv4_addresses_are_written_as_std_writes_them() {
    let mut req = request(
        b"",
        AuthContext {
            kind: "none",
            subject: None,
            claims: None,
        },
    );
    for n in 0..=255u8 {
        let ip = std::net::Ipv4Addr::new(n, 255 - n, n / 10, n % 10);
        req.client_ip = Some(ip.into());
        let text = flat_header(&req, "p/[id]");
        assert_eq!(text.split('\n').nth(12), Some(&*ip.to_string()));
    }
}
