//! Identity against the real binary and a real OpenID provider (`oidc-provider` on Node,
//! loopback): client-credentials tokens through discovery, scopes (403), key rotation
//! (a new `kid` accepted on its first request), keys kept while the provider is down, 503
//! until a provider that was never reachable comes up (on both HTTP/1 paths), tokens
//! minted by PyJWT for RS256 / ES256 / EdDSA and the refusals (`alg: none`, wrong `aud`,
//! expired, missing scope), and any-of lists with anonymous access.

mod identity;
mod support;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use identity::{free_port, kid, pyjwt, Provider, RESOURCE};
use reqwest::blocking::Response;
use serde_json::{json, Value};
use support::{client, get_json, tempdir, wait_until, write_tree_owned, Gateway};

/// Answers with what the gateway told it about the caller.
const WHOAMI: &str = r#"def handler(event):
    return {"status": 200, "body": {"auth": event["context"]["auth"],
            "authorization": event["headers"].get("authorization")}}
"#;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A functions tree: each `(name, auth)` served by [`WHOAMI`].
fn tree(root: &Path, functions: &[(&str, Value)], extra: &[(&str, String)]) {
    let mut files: Vec<(String, String)> = Vec::new();
    for (name, auth) in functions {
        files.push((
            format!("{name}/fn.config.json"),
            json!({"auth": auth}).to_string(),
        ));
        files.push((format!("{name}/handler.py"), WHOAMI.to_owned()));
    }
    files.extend(extra.iter().map(|(p, c)| ((*p).to_owned(), c.clone())));
    write_tree_owned(root, &files);
}

fn start(root: &Path, fast_path: bool) -> Gateway {
    let config = root.with_extension(format!("{fast_path}.toml"));
    std::fs::write(
        &config,
        format!("[server]\nhttp1_fast_path = {fast_path}\n"),
    )
    .unwrap();
    Gateway::start_with_config(&config, root)
}

fn get(gw: &Gateway, path: &str, token: Option<&str>) -> Response {
    let mut req = client().get(gw.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().unwrap()
}

fn discovery(issuer: &str, extra: Value) -> Value {
    let mut jwt = json!({"discovery": true, "issuer": issuer, "audience": RESOURCE,
        "algorithms": ["RS256"]});
    jwt.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({"type": "bearer", "jwt": jwt})
}

#[test]
fn provider_tokens_scopes_rotation_and_outage() {
    let keys = tempdir();
    let port = free_port();
    let provider = Provider::start(port, keys.path(), "a");
    let issuer = provider.issuer();
    let dir = tempdir();
    let root = dir.path().join("functions");
    tree(
        &root,
        &[
            (
                "read",
                discovery(
                    &issuer,
                    json!({"required_scopes": "read", "forward_claims": ["client_id", "scope"]}),
                ),
            ),
            (
                "write",
                discovery(&issuer, json!({"required_scopes": ["write"]})),
            ),
            ("nocache", discovery(&issuer, json!({"cache_entries": 0}))),
        ],
        &[],
    );
    let gw = start(&root, true);

    let token_a = provider.token("read");
    assert_eq!(kid(&token_a), "a");
    let r = get(&gw, "/read", Some(&token_a));
    assert_eq!(r.status(), 200);
    let v: Value = r.json().unwrap();
    assert_eq!(v["auth"]["type"], "bearer");
    assert_eq!(v["auth"]["subject"], identity::CLIENT_ID);
    assert_eq!(
        v["auth"]["claims"],
        json!({"client_id": "machine", "scope": "read", "sub": "machine"})
    );
    assert!(
        v["authorization"].is_null(),
        "the verified credential is not forwarded"
    );
    // Warm: the cached verification answers the same.
    assert_eq!(get(&gw, "/read", Some(&token_a)).status(), 200);

    let r = get(&gw, "/write", Some(&token_a));
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()["www-authenticate"],
        r#"Bearer error="insufficient_scope""#
    );
    let body: Value = r.json().unwrap();
    assert!(body["request_id"].is_string() && body["error"].is_string());
    assert_eq!(get(&gw, "/read", None).status(), 401);

    // Rotation: the provider restarts signing with a new key "b" (still publishing "a");
    // the first request with the new kid is accepted (a fetch on demand).
    provider.stop();
    let provider = Provider::start(port, keys.path(), "b,a");
    let token_b = provider.token("read write");
    assert_eq!(kid(&token_b), "b");
    assert_eq!(get(&gw, "/nocache", Some(&token_b)).status(), 200);
    assert_eq!(get(&gw, "/write", Some(&token_b)).status(), 200);

    // Provider down: the keys fetched keep working (no verification cache here).
    provider.stop();
    assert_eq!(get(&gw, "/nocache", Some(&token_a)).status(), 200);
    assert_eq!(get(&gw, "/nocache", Some(&token_b)).status(), 200);
    let metrics = gw.metrics();
    assert!(
        metrics.contains(r#"reason="insufficient_scope""#),
        "403s are counted"
    );
}

/// A gateway whose issuer is not reachable answers 503 (not 401), the same on both HTTP/1
/// paths, until the provider comes up; then a token lacking a scope is 403 on both.
#[test]
fn no_key_set_is_503_until_the_provider_is_up() {
    for fast_path in [true, false] {
        let keys = tempdir();
        let port = free_port();
        let issuer = format!("http://127.0.0.1:{port}");
        let dir = tempdir();
        let root = dir.path().join("functions");
        tree(
            &root,
            &[
                ("api", discovery(&issuer, json!({}))),
                (
                    "write",
                    discovery(&issuer, json!({"required_scopes": "write"})),
                ),
            ],
            &[],
        );
        let gw = start(&root, fast_path);
        let (_, tokens) = pyjwt(&[(
            "RS256",
            json!({"sub": "x", "iss": issuer, "aud": RESOURCE, "exp": now() + 600}),
        )]);
        let r = get(&gw, "/api", Some(&tokens[0]));
        assert_eq!(r.status(), 503, "fast_path={fast_path}");
        assert!(r.headers().contains_key("retry-after"));
        let body: Value = r.json().unwrap();
        assert!(body["error"].as_str().unwrap().contains("no key set"));
        assert!(gw.wait_log("JWKS fetch failed", Duration::from_secs(30)));

        let provider = Provider::start(port, keys.path(), "a");
        let token = provider.token("read");
        let mut last = 0;
        let up = wait_until(Duration::from_secs(90), || {
            last = get(&gw, "/api", Some(&token)).status().as_u16();
            last == 200
        });
        assert!(
            up,
            "still {last} after the provider came up (fast_path={fast_path})"
        );
        // The 403 comes out the same on both paths too.
        let r = get(&gw, "/write", Some(&token));
        assert_eq!(r.status(), 403, "fast_path={fast_path}");
        assert_eq!(
            r.headers()["www-authenticate"],
            r#"Bearer error="insufficient_scope""#
        );
    }
}

#[test]
fn pyjwt_tokens_and_refusals() {
    let exp = now() + 600;
    let good = |scope: Value| {
        let mut c = json!({"sub": "user-7", "iss": "https://pyjwt.test", "aud": "edgefn", "exp": exp, "role": "ops"});
        c.as_object_mut().unwrap().insert("scope".into(), scope);
        c
    };
    let (jwks, tokens) = pyjwt(&[
        ("RS256", good(json!("read profile"))),
        ("ES256", good(json!("read"))),
        ("EdDSA", good(json!("read"))),
        ("none", good(json!("read"))),
        (
            "RS256",
            json!({"sub": "u", "iss": "https://pyjwt.test", "aud": "other", "exp": exp, "scope": "read", "role": "ops"}),
        ),
        (
            "RS256",
            json!({"sub": "u", "iss": "https://pyjwt.test", "aud": "edgefn", "exp": now() - 3600, "scope": "read", "role": "ops"}),
        ),
        ("ES256", good(json!("profile"))),
        ("EdDSA", {
            let mut c = good(json!("read"));
            c["role"] = json!("guest");
            c
        }),
    ]);
    let dir = tempdir();
    let root = dir.path().join("functions");
    let local = json!({"type": "bearer", "jwt": {"jwks_file": "jwks.json", "issuer": "https://pyjwt.test",
        "audience": "edgefn", "algorithms": ["RS256", "ES256", "EdDSA"], "required_scopes": "read",
        "claims": {"role": ["admin", "ops"]}, "forward_claims": ["role"]}});
    let either = json!([{"type": "api_key", "secret": "KEY"}, {"type": "none"}]);
    tree(
        &root,
        &[("local", local), ("either", either)],
        &[
            ("local/jwks.json", jwks.to_string()),
            (
                "either/fn.env.json",
                json!({"KEY": {"value": "key-0123456789abcdef0123", "is_secret": true}})
                    .to_string(),
            ),
        ],
    );
    let gw = start(&root, true);
    for t in &tokens[..3] {
        let r = get(&gw, "/local", Some(t));
        assert_eq!(r.status(), 200, "{}", kid(t));
        let v: Value = r.json().unwrap();
        assert_eq!(v["auth"]["subject"], "user-7");
        assert_eq!(v["auth"]["claims"], json!({"role": "ops", "sub": "user-7"}));
    }
    for (t, reason, status) in [
        (&tokens[3], "alg_not_allowed", 401),
        (&tokens[4], "wrong_audience", 401),
        (&tokens[5], "expired", 401),
        (&tokens[6], "insufficient_scope", 403),
        (&tokens[7], "claim_mismatch", 403),
    ] {
        let r = get(&gw, "/local", Some(t));
        assert_eq!(r.status(), status, "{reason}");
        let series = format!(
            r#"edgefn_auth_failures_total{{function="local",type="bearer",reason="{reason}"}}"#
        );
        assert_eq!(gw.metric(&series), Some(1.0), "{series}");
    }

    // Any-of with anonymous: no credential passes as anonymous, the key as api_key, a
    // wrong key is refused.
    let v: Value = get(&gw, "/either", None).json().unwrap();
    assert_eq!(v["auth"]["type"], "anonymous");
    let r = client()
        .get(gw.url("/either"))
        .header("x-api-key", "key-0123456789abcdef0123")
        .send()
        .unwrap();
    let v: Value = r.json().unwrap();
    assert_eq!(v["auth"]["type"], "api_key");
    let r = client()
        .get(gw.url("/either"))
        .header("x-api-key", "wrong")
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    let openapi: Value = get_json(&gw.url("/_fn/openapi.json"));
    let security = &openapi["paths"]["/either"]["get"]["security"];
    assert_eq!(security.as_array().map(Vec::len), Some(2), "{security}");
}
