//! The OIDC login building blocks (`gateway::auth::oidc`) against a real OpenID provider
//! (`oidc-provider` on Node, with its dev login and consent forms): a cookie-keeping HTTP
//! client plays the browser from the authorization URL the gateway builds to the callback
//! redirect; then the code is exchanged with its PKCE verifier, the ID token checked with
//! the provider's published JWKS and the login nonce, the session sealed and reopened,
//! and the refresh token used. Not yet through the gateway's own routes (not wired).

mod identity;
mod support;

use std::collections::BTreeMap;

use gateway::auth::jwks::{self, JwsAlg};
use gateway::auth::jwt::{JwtVerifier, KeySource};
use gateway::auth::oidc::token_client::{post_form, ExchangeError};
use gateway::auth::oidc::{
    authorize, callback, login_state::LoginState, seal::KeyRing, session, token,
};
use identity::{free_port, Browser, Provider};
use reqwest::blocking::Client;
use serde_json::Value;

const WEB_ID: &str = "web";
const WEB_SECRET: &str = "web-secret-0123456789abcdef";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn code_flow_with_pkce_nonce_session_and_refresh_against_oidc_provider() {
    let keys_dir = tempfile::tempdir().unwrap();
    let gateway_port = free_port();
    let provider = Provider::start_with_login(free_port(), keys_dir.path(), "k1", gateway_port);
    let issuer = provider.issuer();
    let http = Client::new();
    let disc: Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let jwks_doc = http
        .get(disc["jwks_uri"].as_str().unwrap())
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let verifier = JwtVerifier {
        keys: KeySource::fixed(jwks::parse_published(&jwks_doc).unwrap()),
        algorithms: vec![JwsAlg::Rs256],
        issuer: Some(issuer.clone()),
        audience: vec![WEB_ID.into()],
        leeway_s: 30,
        required_scopes: vec![],
        claims: vec![],
        forward_claims: vec!["email".into()],
    };
    let ring = KeyRing::parse(&base64_key()).unwrap();

    // The 302 to the provider: login state sealed into its cookie.
    let login = LoginState::start("hello", "/hello?x=1", now()).unwrap();
    let login_cookie = login.seal(&ring).unwrap();
    let redirect_uri = authorize::redirect_uri(&format!("http://127.0.0.1:{gateway_port}"));
    let auth_url = authorize::url(
        disc["authorization_endpoint"].as_str().unwrap(),
        WEB_ID,
        &redirect_uri,
        "openid email offline_access",
        &login,
    );

    let callback = Browser::new().login(&issuer, &auth_url, &redirect_uri, "alice");
    let q: BTreeMap<String, String> = callback.query_pairs().into_owned().collect();
    assert!(!q.contains_key("error"), "provider refused: {q:?}");

    // The callback: a wrong state is refused, the right one finishes the login.
    assert!(LoginState::finish(&ring, &login_cookie, "forged", now()).is_err());
    let done = LoginState::finish(&ring, &login_cookie, &q["state"], now()).unwrap();
    assert_eq!(done.return_to, "/hello?x=1");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let token_endpoint = disc["token_endpoint"].as_str().unwrap();
    let client = token::Client {
        id: WEB_ID,
        secret: WEB_SECRET,
    };
    let form = token::code_form(&q["code"], &redirect_uri, &done.verifier, &client);
    let answer = rt
        .block_on(post_form(token_endpoint, form.clone()))
        .unwrap();
    let id_token = answer.id_token.unwrap();
    let id = token::verify_id_token(&verifier, &id_token, Some(&done.nonce), now()).unwrap();
    assert_eq!(id.sub, "alice");
    assert_eq!(id.claims["email"], "alice@example.test");
    // The same ID token under another login's nonce is refused.
    assert_eq!(
        token::verify_id_token(&verifier, &id_token, Some("other"), now()),
        Err(token::TokenError::Nonce)
    );

    let refresh = answer
        .refresh_token
        .expect("offline_access gives a refresh token");
    let s = session::Session {
        sid: "sid-1".into(),
        sub: id.sub.clone(),
        claims: id.claims.clone(),
        exp: now() + 60,
        iat: now(),
        refresh: Some(refresh.clone()),
    };
    let cookie = session::encode(&ring, "hello", &s).unwrap();
    assert!(cookie.len() < 4096);
    assert_eq!(session::decode(&ring, "hello", &cookie, now()).unwrap(), s);

    let refreshed = rt
        .block_on(post_form(
            token_endpoint,
            token::refresh_form(&refresh, &client),
        ))
        .unwrap();
    let new_id =
        token::verify_id_token(&verifier, &refreshed.id_token.unwrap(), None, now()).unwrap();
    assert_eq!(new_id.sub, "alice");
    // Rotation: the provider issues a new refresh token and the old one is spent.
    if let Some(new_rt) = refreshed.refresh_token.as_deref() {
        if new_rt != refresh {
            assert!(rt
                .block_on(post_form(
                    token_endpoint,
                    token::refresh_form(&refresh, &client)
                ))
                .is_err());
        }
    }

    // A code is good once: the provider refuses a replay of the exchange (and revokes
    // what the code gave, so this comes after the refresh).
    assert!(matches!(
        rt.block_on(post_form(token_endpoint, form)),
        Err(ExchangeError::Status { status: 400 })
    ));

    // A second login whose code is exchanged with the wrong verifier.
    let login2 = LoginState::start("hello", "/", now()).unwrap();
    let url2 = authorize::url(
        disc["authorization_endpoint"].as_str().unwrap(),
        WEB_ID,
        &redirect_uri,
        "openid",
        &login2,
    );
    let cb2 = Browser::new().login(&issuer, &url2, &redirect_uri, "bob");
    let code2 = cb2
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let wrong = token::code_form(&code2, &redirect_uri, &login.verifier, &client);
    assert!(matches!(
        rt.block_on(post_form(token_endpoint, wrong)),
        Err(ExchangeError::Status { status: 400 })
    ));

    // Logout: the provider's end-session endpoint accepts the redirect the gateway builds
    // (client id and the registered post-logout URI) and shows its confirmation form.
    let logout = callback::logout_redirect(
        disc["end_session_endpoint"].as_str(),
        WEB_ID,
        &format!("http://127.0.0.1:{gateway_port}/"),
    );
    assert!(logout.starts_with(disc["end_session_endpoint"].as_str().unwrap()));
    let page = http.get(&logout).send().unwrap();
    assert_eq!(
        page.status(),
        200,
        "end-session endpoint refused the logout redirect"
    );
    provider.stop();
}

fn base64_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([42u8; 32])
}
