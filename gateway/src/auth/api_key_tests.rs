//! API key tests: extraction (header, query, malformed forms) and policies from env
//! names (rotation) and from a keys_file.

use http::{HeaderMap, HeaderValue};

use super::*;

fn h(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        m.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    m
}

#[test]
fn header_then_query() {
    let name = HeaderName::from_static(DEFAULT_HEADER);
    let hs = h(&[("x-api-key", "k1")]);
    assert_eq!(
        &*extract(Headers::Map(&hs), &name, Some("api_key=q"), true).unwrap(),
        b"k1"
    );
    let none = h(&[]);
    assert_eq!(
        &*extract(
            Headers::Map(&none),
            &name,
            Some("a=1&api_key=q%2Bx+y"),
            true
        )
        .unwrap(),
        b"q+x y"
    );
    assert_eq!(
        extract(Headers::Map(&none), &name, Some("api_key=q"), false),
        Err(ApiKeyError::Missing)
    );
    assert_eq!(
        extract(Headers::Map(&none), &name, None, true),
        Err(ApiKeyError::Missing)
    );
}

#[test]
fn malformed_cases() {
    let name = HeaderName::from_static(DEFAULT_HEADER);
    let twice = h(&[("x-api-key", "a"), ("x-api-key", "b")]);
    assert_eq!(
        extract(Headers::Map(&twice), &name, None, false),
        Err(ApiKeyError::Malformed)
    );
    let empty = h(&[("x-api-key", "")]);
    assert_eq!(
        extract(Headers::Map(&empty), &name, None, false),
        Err(ApiKeyError::Malformed)
    );
    let long = "k".repeat(MAX_KEY_LEN + 1);
    let long = h(&[("x-api-key", &long)]);
    assert_eq!(
        extract(Headers::Map(&long), &name, None, false),
        Err(ApiKeyError::Malformed)
    );
    let none = h(&[]);
    for q in [
        "api_key=%zz",
        "api_key=%4",
        "api_key=a&api_key=b",
        "api_key=",
    ] {
        assert_eq!(
            extract(Headers::Map(&none), &name, Some(q), true),
            Err(ApiKeyError::Malformed),
            "{q}"
        );
    }
}

fn verify(
    p: &ApiKeyPolicy,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<String>, &'static str> {
    let req = AuthRequest {
        headers: Headers::Map(headers),
        query,
        path: "/",
        body: b"",
        now_unix: 0,
        peer: std::net::IpAddr::from([127, 0, 0, 1]),
    };
    p.verify(&req)
        .map(|id| id.subject.map(|s| s.to_string()))
        .map_err(|f| f.reason)
}

#[test]
fn env_keys_with_rotation() {
    use crate::auth::test_support::env;
    let cfg: ApiKeyConfig = serde_json::from_value(
        json!({"secret": ["OLD", "NEW"], "header": "X-Client-Key", "query": true}),
    )
    .unwrap();
    let p = compile(
        &cfg,
        &env(&[("OLD", "old-key"), ("NEW", "new-key")]),
        Path::new("/nonexistent"),
    )
    .unwrap();
    assert_eq!(
        verify(&p, &h(&[("x-client-key", "old-key")]), None),
        Ok(Some("OLD".into()))
    );
    assert_eq!(
        verify(&p, &h(&[("x-client-key", "new-key")]), None),
        Ok(Some("NEW".into()))
    );
    assert_eq!(
        verify(&p, &h(&[]), Some("api_key=new-key")),
        Ok(Some("NEW".into()))
    );
    assert_eq!(
        verify(&p, &h(&[("x-client-key", "new-key!")]), None),
        Err("unknown_key")
    );
    assert_eq!(
        verify(&p, &h(&[("x-api-key", "new-key")]), None),
        Err("missing")
    );
    assert_eq!(
        verify(&p, &h(&[("x-client-key", "")]), None),
        Err("malformed")
    );
    let debug = format!("{p:?}");
    assert!(
        !debug.contains("old-key") && !debug.contains("new-key"),
        "{debug}"
    );
}

#[test]
fn keys_file_policy() {
    use crate::auth::test_support::env;
    let dir = tempfile::tempdir().unwrap();
    let line = crate::auth::hash_key::run(false, None, Some("partner-a"), b"partner-key").unwrap();
    std::fs::write(
        dir.path().join("keys.txt"),
        format!("# ids and digests\n{line}\n"),
    )
    .unwrap();
    let cfg: ApiKeyConfig = serde_json::from_value(json!({"keys_file": "keys.txt"})).unwrap();
    let p = compile(&cfg, &env(&[]), dir.path()).unwrap();
    assert_eq!(
        verify(&p, &h(&[("x-api-key", "partner-key")]), None),
        Ok(Some("partner-a".into()))
    );
    assert_eq!(
        verify(&p, &h(&[("x-api-key", "partner-kez")]), None),
        Err("unknown_key")
    );
    assert_eq!(
        verify(&p, &h(&[]), Some("api_key=partner-key")),
        Err("missing"),
        "query not enabled"
    );
    let both: ApiKeyConfig =
        serde_json::from_value(json!({"keys_file": "keys.txt", "secret": "X"})).unwrap();
    assert_eq!(
        compile(&both, &env(&[]), dir.path()).unwrap_err()[0].field,
        "secret"
    );
    let missing: ApiKeyConfig = serde_json::from_value(json!({"keys_file": "nope.txt"})).unwrap();
    assert_eq!(
        compile(&missing, &env(&[]), dir.path()).unwrap_err()[0].field,
        "keys_file"
    );
}
