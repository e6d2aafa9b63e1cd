//! Hot-path auth and L7 rate limits against the real binary: every policy type refuses
//! with the same JSON body shape (and its challenge), each reason is counted in
//! `/metrics`, keys rotate through a reload without a restart, 429 carries Retry-After,
//! and the OpenAPI document lists each route's security scheme without a secret.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use reqwest::blocking::{RequestBuilder, Response};
use ring::hmac;
use serde_json::{json, Value};
use support::recording::{recording_py, Calls};
use support::{
    client, get_json, prometheus, secret, tempdir, wait_until, write_tree, write_tree_owned,
    Gateway,
};

/// What the recording handlers write per call: the identity the gateway verified.
const RECORDED: &str =
    r#"event["context"]["auth"]["type"] + " " + str(event["context"]["auth"]["subject"])"#;
const KEY_ONE: &str = "key-one-aaaaaaaaaaaaaaaaaaaaaaaaaaa";
const KEY_TWO: &str = "key-two-bbbbbbbbbbbbbbbbbbbbbbbbbbb";
const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const TOKEN: &str = "static-bearer-token-ccccccccccccccc";
const STRIPE_SECRET: &str = "whsec_stripe-test-secret-ddddddddddd";
const HS_KEY: &[u8] = b"an-hs256-key-of-at-least-32-bytes!!";

/// The functions every test serves; `calls` is the file the handlers append to.
fn fixture(calls: &std::path::Path) -> tempfile::TempDir {
    let dir = tempdir();
    let calls = calls.to_str().unwrap();
    let hash = gateway::auth::hash_key::basic_hash(
        b"open sesame",
        gateway::auth::hash_key::MIN_ITERATIONS,
    );
    let jwks = json!({"keys": [{"kty": "oct", "kid": "k1", "k": URL_SAFE_NO_PAD.encode(HS_KEY)}]});
    let mut files: Vec<(String, String)> = vec![
        ("keyed/fn.config.json".into(), json!({"methods": ["GET", "POST"], "auth": {"type": "api_key", "secret": ["API_KEY_CURRENT", "API_KEY_NEXT"], "query": true}}).to_string()),
        ("keyed/fn.env.json".into(), json!({"CALLS": calls, "API_KEY_CURRENT": secret(KEY_ONE), "API_KEY_NEXT": secret("not-issued-yet-zzzzzzzzzzzzzzzz")}).to_string()),
        ("hook/fn.config.json".into(), json!({"methods": ["POST"], "auth": {"type": "hmac", "scheme": "github", "secret": "HOOK_SECRET"}}).to_string()),
        ("hook/fn.env.json".into(), json!({"CALLS": calls, "HOOK_SECRET": secret(GITHUB_SECRET)}).to_string()),
        ("bearer/fn.config.json".into(), json!({"auth": {"type": "bearer", "secret": "TOKEN"}}).to_string()),
        ("bearer/fn.env.json".into(), json!({"CALLS": calls, "TOKEN": secret(TOKEN)}).to_string()),
        ("jwt/fn.config.json".into(), json!({"auth": {"type": "bearer", "jwt": {"jwks_file": "jwks.json", "issuer": "https://issuer.test", "audience": "edgefn", "algorithms": ["HS256"]}}}).to_string()),
        ("jwt/fn.env.json".into(), json!({"CALLS": calls}).to_string()),
        ("jwt/jwks.json".into(), jwks.to_string()),
        ("staff/fn.config.json".into(), json!({"auth": {"type": "basic", "users": "USERS", "realm": "Staff only"}}).to_string()),
        ("staff/fn.env.json".into(), json!({"CALLS": calls, "USERS": secret(&format!("ops:{hash}\n"))}).to_string()),
        ("stripe/fn.config.json".into(), json!({"methods": ["POST"], "auth": {"type": "hmac", "scheme": "stripe", "secret": "STRIPE_SECRET", "tolerance_s": 300}}).to_string()),
        ("stripe/fn.env.json".into(), json!({"CALLS": calls, "STRIPE_SECRET": secret(STRIPE_SECRET)}).to_string()),
        ("limited/fn.config.json".into(), json!({"rate_limit": {"per_second": 0.5, "burst": 2}}).to_string()),
        ("limited/fn.env.json".into(), json!({"CALLS": calls}).to_string()),
    ];
    let recording = recording_py(RECORDED);
    for f in [
        "keyed", "hook", "bearer", "jwt", "staff", "limited", "stripe",
    ] {
        files.push((format!("{f}/handler.py"), recording.clone()));
    }
    write_tree_owned(dir.path(), &files);
    dir
}

struct Env {
    _dir: tempfile::TempDir,
    calls: Calls,
    root: std::path::PathBuf,
    gw: Gateway,
}

fn start() -> Env {
    let calls = Calls::new();
    let dir = fixture(&calls.path);
    let gw = Gateway::start(dir.path());
    Env {
        root: dir.path().to_path_buf(),
        _dir: dir,
        calls,
        gw,
    }
}

/// A 401 with the gateway's error body; returns the WWW-Authenticate value, if any.
fn assert_401(resp: Response) -> Option<String> {
    assert_eq!(resp.status().as_u16(), 401);
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = resp.json().unwrap();
    assert_eq!(
        body,
        json!({"error": "unauthorized", "request_id": rid}),
        "same shape for every reason"
    );
    challenge
}

/// Admitted by the gateway and answered by the real Python worker.
fn admitted(resp: Response) -> bool {
    resp.status().as_u16() == 200 && resp.text().unwrap() == "ok"
}

fn send(rb: RequestBuilder) -> Response {
    rb.send().unwrap()
}

fn auth_failures(gw: &Gateway) -> BTreeMap<(String, String, String), u64> {
    prometheus::parse(&gw.metrics())
        .into_iter()
        .filter(|(name, _, _)| name == "edgefn_auth_failures_total")
        .map(|(_, l, v)| {
            let key = (
                l["function"].clone(),
                l["type"].clone(),
                l["reason"].clone(),
            );
            (key, v as u64)
        })
        .collect()
}

fn counted(m: &BTreeMap<(String, String, String), u64>, f: &str, t: &str, r: &str) -> u64 {
    m.get(&(f.to_owned(), t.to_owned(), r.to_owned()))
        .copied()
        .unwrap_or(0)
}

#[test]
fn api_key_refusals_are_401_with_distinct_reasons() {
    let env = start();
    let (gw, c) = (&env.gw, client());
    let url = gw.url("/keyed");
    assert_eq!(assert_401(send(c.get(&url))), None);
    assert_eq!(
        assert_401(send(c.get(&url).header("x-api-key", "wrong-key"))),
        None
    );
    assert_401(send(
        c.get(&url)
            .header("x-api-key", KEY_ONE)
            .header("x-api-key", KEY_ONE),
    ));
    assert_401(send(c.get(format!("{url}?api_key=%zz"))));
    assert!(admitted(send(c.get(&url).header("x-api-key", KEY_ONE))));
    assert!(admitted(send(c.get(format!("{url}?api_key={KEY_ONE}")))));
    let m = auth_failures(gw);
    assert_eq!(counted(&m, "keyed", "api_key", "missing"), 1);
    assert_eq!(counted(&m, "keyed", "api_key", "unknown_key"), 1);
    assert_eq!(counted(&m, "keyed", "api_key", "malformed"), 2);
    let logs = gw.logs();
    assert!(
        !logs.contains("wrong-key") && !logs.contains(KEY_ONE),
        "a presented key reached the logs"
    );
}

#[test]
fn key_rotation_through_reload_needs_no_restart() {
    let env = start();
    let (gw, c) = (&env.gw, client());
    let url = gw.url("/keyed");
    let pid = gw.pid();
    assert!(admitted(send(c.get(&url).header("x-api-key", KEY_ONE))));
    assert_401(send(c.get(&url).header("x-api-key", KEY_TWO)));

    // Issue the next key: both are accepted during the overlap.
    let calls = env.calls.env_value();
    let rotate = |current: &str, next: &str| {
        let before = gw.generation();
        let text = json!({"CALLS": calls, "API_KEY_CURRENT": secret(current), "API_KEY_NEXT": secret(next)});
        write_tree(&env.root, &[("keyed/fn.env.json", &text.to_string())]);
        assert!(
            wait_until(Duration::from_secs(5), || gw.generation() > before),
            "no reload:\n{}",
            gw.logs()
        );
    };
    rotate(KEY_ONE, KEY_TWO);
    assert!(wait_until(Duration::from_secs(5), || admitted(send(
        c.get(&url).header("x-api-key", KEY_TWO)
    ))));
    assert!(admitted(send(c.get(&url).header("x-api-key", KEY_ONE))));
    // Retire the old key.
    rotate(KEY_TWO, "next-not-issued-yet-yyyyyyyyyyyyyyy");
    assert!(wait_until(Duration::from_secs(5), || send(
        c.get(&url).header("x-api-key", KEY_ONE)
    )
    .status()
        == 401));
    assert!(admitted(send(c.get(&url).header("x-api-key", KEY_TWO))));
    assert_eq!(gw.pid(), pid, "same process throughout");
}

fn github_sig(body: &[u8]) -> String {
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, GITHUB_SECRET.as_bytes()),
        body,
    );
    format!("sha256={}", hex::encode(tag))
}

#[test]
fn github_webhook_signature_over_raw_body() {
    let env = start();
    let (gw, c) = (&env.gw, client());
    let url = gw.url("/hook");
    // GitHub's documented example.
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(github_sig(b"Hello, World!"), sig);
    assert!(admitted(send(
        c.post(&url)
            .header("x-hub-signature-256", sig)
            .body("Hello, World!")
    )));
    assert_401(send(
        c.post(&url)
            .header("x-hub-signature-256", sig)
            .body("Hello, World?"),
    ));
    assert_401(send(c.post(&url).body("Hello, World!")));
    assert_401(send(
        c.post(&url)
            .header("x-hub-signature-256", "sha1=abc")
            .body("Hello, World!"),
    ));
    let big = vec![b'x'; 200_000];
    assert!(admitted(send(
        c.post(&url)
            .header("x-hub-signature-256", github_sig(&big))
            .body(big)
    )));
    let m = auth_failures(gw);
    for reason in ["bad_signature", "missing", "malformed"] {
        assert_eq!(counted(&m, "hook", "hmac", reason), 1, "{reason}: {m:?}");
    }
}

fn jwt(claims: Value, kid: &str) -> String {
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, HS_KEY), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[test]
fn bearer_and_basic_challenges() {
    let env = start();
    let (gw, c) = (&env.gw, client());
    let bearer = gw.url("/bearer");
    assert_eq!(assert_401(send(c.get(&bearer))).as_deref(), Some("Bearer"));
    assert_eq!(
        assert_401(send(c.get(&bearer).bearer_auth("nope"))).as_deref(),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert!(admitted(send(c.get(&bearer).bearer_auth(TOKEN))));

    let jwt_url = gw.url("/jwt");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let good =
        json!({"sub": "user-7", "iss": "https://issuer.test", "aud": "edgefn", "exp": now + 600});
    assert!(admitted(send(
        c.get(&jwt_url).bearer_auth(jwt(good.clone(), "k1"))
    )));
    let mut expired = good.clone();
    expired["exp"] = json!(now - 600);
    assert_eq!(
        assert_401(send(c.get(&jwt_url).bearer_auth(jwt(expired, "k1")))).as_deref(),
        Some(r#"Bearer error="invalid_token""#)
    );
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(good.to_string())
    );
    assert_401(send(c.get(&jwt_url).bearer_auth(none)));
    assert_401(send(c.get(&jwt_url).bearer_auth(jwt(good, "other-kid"))));

    let staff = gw.url("/staff");
    let realm = r#"Basic realm="Staff only", charset="UTF-8""#;
    assert_eq!(assert_401(send(c.get(&staff))).as_deref(), Some(realm));
    assert_eq!(
        assert_401(send(c.get(&staff).basic_auth("ops", Some("wrong")))).as_deref(),
        Some(realm)
    );
    assert_eq!(
        assert_401(send(c.get(&staff).basic_auth("eve", Some("open sesame")))).as_deref(),
        Some(realm)
    );
    assert!(admitted(send(
        c.get(&staff).basic_auth("ops", Some("open sesame"))
    )));
    assert!(admitted(send(c.get(&staff).header(
        "authorization",
        format!("Basic {}", STANDARD.encode("ops:open sesame"))
    ))));

    let m = auth_failures(gw);
    let expect = [
        ("bearer", "bearer", "missing"),
        ("bearer", "bearer", "unknown_token"),
        ("jwt", "bearer", "expired"),
        ("jwt", "bearer", "alg_not_allowed"),
        ("jwt", "bearer", "unknown_key"),
        ("staff", "basic", "missing"),
        ("staff", "basic", "bad_password"),
        ("staff", "basic", "unknown_user"),
    ];
    for (f, t, r) in expect {
        assert_eq!(counted(&m, f, t, r), 1, "{f} {t} {r}: {m:?}");
    }
}

#[test]
fn rate_limit_answers_429_with_retry_after() {
    let env = start();
    let (gw, c) = (&env.gw, client());
    let url = gw.url("/limited");
    assert!(admitted(send(c.get(&url))));
    assert!(admitted(send(c.get(&url))));
    let resp = send(c.get(&url));
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = resp.json().unwrap();
    assert_eq!(body["request_id"], json!(rid));
    let page = prometheus::parse(&gw.metrics());
    assert!(
        page.iter()
            .any(|(name, l, v)| name == "edgefn_rate_limited_total"
                && l.get("function").map(String::as_str) == Some("limited")
                && *v == 1.0),
        "{page:?}"
    );
}

#[test]
fn openapi_lists_security_schemes_without_secrets() {
    let env = start();
    let doc: Value = get_json(&env.gw.url("/_fn/openapi.json"));
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(
        schemes["keyed_auth"],
        json!({"type": "apiKey", "in": "header", "name": "x-api-key", "description": "API key in the x-api-key header (or the `api_key` query parameter)"})
    );
    assert_eq!(schemes["hook_auth"]["type"], "apiKey");
    assert_eq!(schemes["hook_auth"]["name"], "x-hub-signature-256");
    assert_eq!(
        schemes["bearer_auth"],
        json!({"type": "http", "scheme": "bearer"})
    );
    assert_eq!(schemes["jwt_auth"]["bearerFormat"], "JWT");
    assert_eq!(schemes["staff_auth"]["scheme"], "basic");
    assert!(schemes.get("limited_auth").is_none());
    assert_eq!(
        doc["paths"]["/keyed"]["get"]["security"],
        json!([{"keyed_auth": []}])
    );
    let text = doc.to_string();
    for s in [
        KEY_ONE,
        GITHUB_SECRET,
        TOKEN,
        "pbkdf2",
        "API_KEY_CURRENT",
        "HOOK_SECRET",
    ] {
        assert!(!text.contains(s), "{s} in the OpenAPI document");
    }
}

#[test]
fn bad_auth_config_refuses_the_reload_and_names_file_and_field() {
    let env = start();
    let gw = &env.gw;
    let before = gw.generation();
    write_tree(
        &env.root,
        &[(
            "bearer/fn.config.json",
            r#"{"auth": {"type": "bearer", "secret": "NOT_DEFINED"}}"#,
        )],
    );
    assert!(
        gw.wait_log("reload refused", Duration::from_secs(5)),
        "{}",
        gw.logs()
    );
    let logs = gw.logs();
    assert!(
        logs.contains("bearer/fn.config.json") && logs.contains("auth.secret"),
        "{logs}"
    );
    assert_eq!(gw.generation(), before);
    // The old policy is still in force.
    assert!(admitted(send(
        client().get(gw.url("/bearer")).bearer_auth(TOKEN)
    )));
}

#[test]
fn rejected_requests_never_reach_the_worker() {
    let env = start();
    let (gw, c) = (&env.gw, client());
    let mut accepted = 0;
    for _ in 0..3 {
        assert_401(send(c.get(gw.url("/keyed")).header("x-api-key", "bad")));
        assert_401(send(
            c.post(gw.url("/hook"))
                .header("x-hub-signature-256", github_sig(b"a"))
                .body("b"),
        ));
        assert_401(send(c.get(gw.url("/staff")).basic_auth("ops", Some("bad"))));
        let ok = send(c.get(gw.url("/keyed")).header("x-api-key", KEY_ONE));
        assert_eq!(ok.status().as_u16(), 200);
        assert_eq!(ok.text().unwrap(), "ok");
        accepted += 1;
    }
    let ok = send(
        c.post(gw.url("/hook"))
            .header("x-hub-signature-256", github_sig(b"x"))
            .body("x"),
    );
    assert_eq!(ok.status().as_u16(), 200);
    accepted += 1;
    let lines = env.calls.lines();
    assert_eq!(lines.len(), accepted, "{lines:?}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| *l == "api_key API_KEY_CURRENT")
            .count(),
        3,
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("hmac HOOK_SECRET")),
        "{lines:?}"
    );
}

#[test]
fn bundled_examples_work_as_the_readme_says() {
    let gw = Gateway::start(&support::repo_root().join("examples/functions"));
    let c = client();
    // The README's curl lines, in order.
    let json = |path: &str| -> Value { send(c.get(gw.url(path))).json().unwrap() };
    assert_eq!(json("/_fn/health"), serde_json::json!({"status": "ok"}));
    assert_eq!(json("/_fn/openapi.json")["openapi"], "3.1.0");
    assert_eq!(gw.readyz()["status"], "ready");
    assert_eq!(
        json("/hello?name=you"),
        serde_json::json!({"hello": "you", "runtime": "python"})
    );
    assert_eq!(
        json("/hello-node"),
        serde_json::json!({"hello": "world", "runtime": "node"})
    );
    let secure = gw.url("/secure-api");
    assert_401(send(c.get(&secure)));
    let resp = send(c.get(&secure).header("x-api-key", "demo-key-change-me"));
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().unwrap();
    assert_eq!(body["key_id"], "SECURE_API_KEY");

    let hook = gw.url("/github-webhook");
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let resp = send(
        c.post(&hook)
            .header("x-hub-signature-256", sig)
            .header("x-github-event", "ping")
            .body("Hello, World!"),
    );
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().unwrap();
    assert_eq!(
        (body["received"].as_str(), body["verified_with"].as_str()),
        (Some("ping"), Some("GITHUB_WEBHOOK_SECRET"))
    );
    assert_401(send(
        c.post(&hook)
            .header("x-hub-signature-256", sig)
            .body("Hello, World?"),
    ));

    let page = gw.url("/basic-auth");
    let challenge = assert_401(send(c.get(&page).basic_auth("demo", Some("wrong"))));
    assert_eq!(
        challenge.as_deref(),
        Some(r#"Basic realm="edgefn demo", charset="UTF-8""#)
    );
    let resp = send(c.get(&page).basic_auth("demo", Some("demo-password")));
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().unwrap().starts_with("Hello, demo!"));
}

/// The gateway reads the wall clock for timestamped schemes: a correctly signed Stripe
/// event is admitted when fresh and refused as stale when older than `tolerance_s`.
#[test]
fn stripe_timestamps_are_checked_against_the_clock() {
    let env = start();
    let url = env.gw.url("/stripe");
    let key = hmac::Key::new(hmac::HMAC_SHA256, STRIPE_SECRET.as_bytes());
    let body = r#"{"id":"evt_1"}"#;
    let signed = |t: u64| {
        let tag = hmac::sign(&key, format!("{t}.{body}").as_bytes());
        format!("t={t},v1={}", hex::encode(tag.as_ref()))
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let c = client();
    let fresh = send(
        c.post(&url)
            .header("stripe-signature", signed(now))
            .body(body),
    );
    assert!(admitted(fresh));
    assert_401(send(
        c.post(&url)
            .header("stripe-signature", signed(now - 3600))
            .body(body),
    ));
    let failures = auth_failures(&env.gw);
    assert_eq!(
        failures.get(&("stripe".into(), "hmac".into(), "stale_timestamp".into())),
        Some(&1),
        "{failures:?}"
    );
}
