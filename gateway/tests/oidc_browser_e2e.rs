//! OIDC login end to end: the real `oidc-provider` (Node, its dev login and consent forms),
//! the real `edgefn` binary and a real Python worker whose handler echoes
//! `context.auth` and the `Cookie` header it gets. A cookie-keeping client plays the
//! browser: the gateway's 302 to the provider, the provider's forms, the callback, the
//! function with the right subject, a refresh (the session TTL equals the refresh
//! margin, so every request refreshes), logout, and the old cookie refused. Also: an API
//! request without a cookie gets 401, a tampered cookie is refused, a callback whose
//! `state` does not match gets 400, and an any-of list admits a key or sends a browser
//! to log in.

mod identity;
mod support;

use std::time::Duration;

use identity::{absolute, free_port, Browser, Provider};
use reqwest::header::{ACCEPT, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::Value;
use support::{write_tree, Gateway};

const SESSION: &str = "__edgefn_session";
const LOGIN: &str = "__edgefn_oidc_login";
const HTML: &str = "text/html,application/xhtml+xml";

const HANDLER: &str = r#"
def handler(event):
    return {"status": 200, "body": {"auth": event["context"]["auth"],
            "cookie": event["headers"].get("cookie")}}
"#;

fn tree(dir: &std::path::Path, issuer: &str) {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let env = format!(
        r#"{{"CS": {{"value": "web-secret-0123456789abcdef", "is_secret": true}},
            "CK": {{"value": "{key}", "is_secret": true}},
            "KEY": {{"value": "partner-key-0123", "is_secret": true}}}}"#
    );
    let oidc = format!(
        r#"{{"type": "oidc", "issuer": "{issuer}", "client_id": "web", "client_secret": "CS",
            "cookie_secret": "CK", "scopes": "openid email offline_access",
            "forward_claims": ["email"], "session_ttl_s": 10, "refresh_margin_s": 10}}"#
    );
    let me = format!(r#"{{"methods": ["GET", "POST"], "auth": {oidc}}}"#);
    // An issuer nothing answers on: no discovery document, ever.
    let dead = oidc.replace(issuer, &format!("http://127.0.0.1:{}", free_port()));
    let down = format!(r#"{{"auth": {dead}}}"#);
    let mixed = format!(r#"{{"auth": [{oidc}, {{"type": "api_key", "secret": "KEY"}}]}}"#);
    write_tree(
        dir,
        &[
            ("me/handler.py", HANDLER),
            ("me/fn.config.json", &me),
            ("me/fn.env.json", &env),
            ("mixed/handler.py", HANDLER),
            ("mixed/fn.config.json", &mixed),
            ("mixed/fn.env.json", &env),
            ("down/handler.py", HANDLER),
            ("down/fn.config.json", &down),
            ("down/fn.env.json", &env),
        ],
    );
}

fn start() -> (Provider, Gateway, tempfile::TempDir, tempfile::TempDir) {
    let keys = tempfile::tempdir().unwrap();
    let gw_port = free_port();
    let provider = Provider::start_with_login(free_port(), keys.path(), "k1", gw_port);
    let fns = tempfile::tempdir().unwrap();
    tree(fns.path(), &provider.issuer());
    let gw = Gateway::try_start_on(
        &format!("127.0.0.1:{gw_port}"),
        &["--functions", fns.path().to_str().unwrap()],
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        gw.wait_log("JWKS fetched", Duration::from_secs(30)),
        "the gateway never fetched the provider's discovery document:\n{}",
        gw.logs()
    );
    (provider, gw, keys, fns)
}

fn set_cookies(resp: &reqwest::blocking::Response) -> Vec<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The browser asks for `path`, is sent to the provider, logs in as `user`, and comes
/// back through the callback; returns the callback's answer (302 to `path`).
fn log_in(b: &mut Browser, gw: &Gateway, issuer: &str, path: &str, user: &str) -> String {
    let resp = b.send(b.http.get(gw.url(path)).header(ACCEPT, HTML));
    assert_eq!(
        resp.status(),
        302,
        "a browser without a session is sent to log in"
    );
    let to_provider = resp.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(to_provider.starts_with(issuer), "{to_provider}");
    let sc = set_cookies(&resp);
    assert!(
        sc.iter()
            .any(|c| c.starts_with(LOGIN) && c.contains("HttpOnly") && c.contains("SameSite=Lax")),
        "{sc:?}"
    );
    let callback = gw.url("/_fn/oidc/callback");
    let back = b.login(issuer, &to_provider, &callback, user);
    let resp = b.send(b.http.get(back.as_str()).header(ACCEPT, HTML));
    let sc = set_cookies(&resp);
    assert_eq!(resp.status(), 302, "callback: {:?}", resp.text());
    let session = sc
        .iter()
        .find(|c| c.starts_with(&format!("{SESSION}=")))
        .unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    assert!(!session.contains("Secure"), "no TLS here: {session}");
    assert!(session.len() <= 4096, "{} bytes", session.len());
    assert!(
        !b.jar.contains_key(LOGIN),
        "the login-state cookie is cleared"
    );
    resp.headers()[LOCATION].to_str().unwrap().to_owned()
}

#[test]
fn browser_logs_in_reaches_the_function_refreshes_logs_out_and_cannot_replay() {
    let (provider, gw, _keys, _fns) = start();
    let issuer = provider.issuer();
    let mut b = Browser::new();
    b.jar.insert("theme".into(), "dark".into());

    // An API client without a session: 401 with a Bearer challenge, no redirect.
    let resp = b
        .http
        .get(gw.url("/me"))
        .header(ACCEPT, "application/json")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()[WWW_AUTHENTICATE], "Bearer");
    let v: Value = resp.json().unwrap();
    assert!(v["error"].is_string() && v["request_id"].is_string());
    // A browser's POST is not redirected either.
    let resp = b
        .http
        .post(gw.url("/me"))
        .header(ACCEPT, HTML)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);

    let back = log_in(&mut b, &gw, &issuer, "/me?x=1", "alice");
    assert_eq!(back, "/me?x=1", "back to the page asked for, a local path");
    let first_cookie = b.jar[SESSION].clone();

    // The function sees the subject and claims, and none of the gateway's cookies.
    let resp = b.send(b.http.get(gw.url(&back)).header(ACCEPT, HTML));
    assert_eq!(resp.status(), 200);
    let reissued = set_cookies(&resp);
    let v: Value = resp.json().unwrap();
    assert_eq!(v["auth"]["type"], "oidc");
    assert_eq!(v["auth"]["subject"], "alice");
    assert_eq!(v["auth"]["claims"]["email"], "alice@example.test");
    // The jar is per host, as a browser's: the provider's cookies (another port) ride
    // along too; the gateway's own are the ones removed.
    let seen = v["cookie"].as_str().unwrap();
    assert!(seen.contains("theme=dark"), "{seen}");
    assert!(
        !seen.contains("__edgefn"),
        "the session never reaches the function: {seen}"
    );

    // Refresh: the session was due (TTL = margin), the refresh token went to the
    // provider, and the answer carries a new session cookie.
    assert!(
        gw.wait_log("OIDC session refreshed", Duration::from_secs(10)),
        "{}",
        gw.logs()
    );
    assert!(
        reissued
            .iter()
            .any(|c| c.starts_with(&format!("{SESSION}="))),
        "{reissued:?}"
    );
    assert_ne!(
        b.jar[SESSION], first_cookie,
        "the refreshed cookie replaces the old one"
    );
    let resp = b.send(b.http.get(gw.url("/me")).header(ACCEPT, "application/json"));
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().unwrap()["auth"]["subject"], "alice");

    // A tampered cookie is refused (401 for an API client, 302 to log in for a browser).
    let mut forged = b.jar[SESSION].clone().into_bytes();
    let mid = forged.len() / 2;
    forged[mid] = if forged[mid] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let resp = b
        .http
        .get(gw.url("/me"))
        .header(ACCEPT, "application/json")
        .header("cookie", format!("{SESSION}={forged}"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Logout: revoked, cleared, and sent to the provider's end-session endpoint.
    let before_logout = b.jar[SESSION].clone();
    let resp = b.send(b.http.get(gw.url("/_fn/oidc/logout")));
    assert_eq!(resp.status(), 302);
    let to = resp.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(to.starts_with(&format!("{issuer}/session/end")), "{to}");
    assert!(
        !b.jar.contains_key(SESSION),
        "the session cookie is cleared"
    );
    let page = b.http.get(absolute(&issuer, &to)).send().unwrap();
    assert_eq!(
        page.status(),
        200,
        "the provider accepts the logout redirect"
    );

    // The old cookie, replayed after logout, is refused.
    let replay = |accept: &str| {
        b.http
            .get(gw.url("/me"))
            .header(ACCEPT, accept)
            .header("cookie", format!("{SESSION}={before_logout}"))
            .send()
            .unwrap()
    };
    assert_eq!(replay("application/json").status(), 401);
    assert_eq!(
        replay(HTML).status(),
        302,
        "a browser is sent to log in again"
    );
    assert!(
        gw.metric(
            r#"edgefn_auth_failures_total{function="me",type="oidc",reason="session_revoked"}"#
        )
        .is_some_and(|n| n >= 2.0),
        "{}",
        gw.metrics()
    );
    provider.stop();
}

#[test]
fn bad_callbacks_are_400_and_any_of_admits_a_key_or_sends_a_browser_to_log_in() {
    let (provider, gw, _keys, _fns) = start();
    let issuer = provider.issuer();
    let http = support::client();

    // No login cookie, no query, a provider error: 400 JSON, never 500.
    for q in ["", "?code=c&state=s", "?error=access_denied&state=s"] {
        let resp = http
            .get(gw.url(&format!("/_fn/oidc/callback{q}")))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 400, "{q}");
        assert!(resp.json::<Value>().unwrap()["error"].is_string());
    }

    // A real login in flight, answered with another state: 400 (state mismatch).
    let mut b = Browser::new();
    let resp = b.send(b.http.get(gw.url("/me")).header(ACCEPT, HTML));
    assert_eq!(resp.status(), 302);
    let resp = b.send(b.http.get(gw.url("/_fn/oidc/callback?code=c&state=forged")));
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().unwrap();
    assert!(v["error"].as_str().unwrap().contains("state"), "{v}");
    // A login cookie sealed by nobody: 400.
    let resp = http
        .get(gw.url("/_fn/oidc/callback?code=c&state=s"))
        .header("cookie", format!("{LOGIN}=AAAA"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 400);

    // Any-of: the key admits an API client; a browser without either goes to log in,
    // and its login then reaches the same function.
    let resp = http
        .get(gw.url("/mixed"))
        .header("x-api-key", "partner-key-0123")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().unwrap()["auth"]["type"], "api_key");
    let resp = http
        .get(gw.url("/mixed"))
        .header(ACCEPT, "application/json")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
    let mut b = Browser::new();
    let back = log_in(&mut b, &gw, &issuer, "/mixed", "bob");
    assert_eq!(back, "/mixed");
    let resp = b.send(b.http.get(gw.url("/mixed")).header(ACCEPT, HTML));
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().unwrap();
    assert_eq!(
        (v["auth"]["type"].as_str(), v["auth"]["subject"].as_str()),
        (Some("oidc"), Some("bob"))
    );

    // No discovery document from the issuer yet: a login cannot start, 503 (not 401).
    let resp = http
        .get(gw.url("/down"))
        .header(ACCEPT, HTML)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));

    // OpenAPI describes the login as an openIdConnect scheme.
    let doc: Value = http
        .get(gw.url("/_fn/openapi.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let schemes = doc["components"]["securitySchemes"].to_string();
    assert!(
        schemes.contains("openIdConnect") && schemes.contains(".well-known/openid-configuration"),
        "{schemes}"
    );
    assert!(
        !doc.to_string().contains("web-secret"),
        "no secret in the document"
    );
    provider.stop();
}
