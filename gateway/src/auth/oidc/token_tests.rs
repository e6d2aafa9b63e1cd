//! Token endpoint answers and ID-token checks, with an HS256 key standing in for the
//! issuer's JWKS (the e2e login against oidc-provider covers RS256 from discovery).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;

use super::*;
use crate::auth::jwks::{self, JwsAlg};
use crate::auth::jwt::KeySource;

const KEY: [u8; 32] = [5; 32];

fn verifier() -> JwtVerifier {
    let doc = format!(
        r#"{{"keys":[{{"kty":"oct","k":"{}"}}]}}"#,
        URL_SAFE_NO_PAD.encode(KEY)
    );
    JwtVerifier {
        keys: KeySource::fixed(jwks::parse(&doc).unwrap()),
        algorithms: vec![JwsAlg::Hs256],
        issuer: Some("https://id.example".into()),
        audience: vec!["web".into()],
        leeway_s: 0,
        required_scopes: vec![],
        claims: vec![],
        forward_claims: vec!["email".into()],
    }
}

fn sign(claims: serde_json::Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &KEY), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn claims(nonce: &str) -> serde_json::Value {
    serde_json::json!({"iss": "https://id.example", "aud": "web", "exp": 2000, "sub": "alice",
        "nonce": nonce, "email": "a@example.test", "name": "not forwarded"})
}

#[test]
fn id_token_with_the_login_nonce_gives_subject_and_forwarded_claims() {
    let t = sign(claims("n1"));
    let id = verify_id_token(&verifier(), &t, Some("n1"), 1000).unwrap();
    assert_eq!(id.sub, "alice");
    assert_eq!(id.claims.len(), 1);
    assert_eq!(id.claims["email"], "a@example.test");
}

#[test]
fn wrong_nonce_audience_issuer_or_expiry_is_refused() {
    let v = verifier();
    assert_eq!(
        verify_id_token(&v, &sign(claims("n1")), Some("n2"), 1000),
        Err(TokenError::Nonce)
    );
    let mut no_nonce = claims("x");
    no_nonce.as_object_mut().unwrap().remove("nonce");
    assert_eq!(
        verify_id_token(&v, &sign(no_nonce), Some("x"), 1000),
        Err(TokenError::Nonce)
    );
    for (k, bad) in [("aud", "other"), ("iss", "https://evil.example")] {
        let mut c = claims("n1");
        c[k] = bad.into();
        assert!(matches!(
            verify_id_token(&v, &sign(c), Some("n1"), 1000),
            Err(TokenError::IdToken(_))
        ));
    }
    assert!(matches!(
        verify_id_token(&v, &sign(claims("n1")), Some("n1"), 3000),
        Err(TokenError::IdToken(_))
    ));
}

#[test]
fn token_responses_are_capped_and_forms_carry_the_verifier() {
    let r = parse_response(
        br#"{"id_token":"a.b.c","refresh_token":"r","expires_in":60,"token_type":"Bearer"}"#,
    )
    .unwrap();
    assert_eq!(r.refresh_token.as_deref(), Some("r"));
    assert_eq!(parse_response(b"[]"), Err(TokenError::Malformed));
    let big = vec![b' '; MAX_TOKEN_RESPONSE + 1];
    assert_eq!(parse_response(&big), Err(TokenError::TooLarge));
    let client = Client {
        id: "web",
        secret: "s&t",
    };
    let f = code_form("c0de", "http://127.0.0.1/_fn/oidc/callback", "v", &client);
    assert!(f.contains("grant_type=authorization_code") && f.contains("code_verifier=v"));
    assert!(f.contains("client_secret=s%26t"));
    assert!(refresh_form("r1", &client).contains("grant_type=refresh_token&refresh_token=r1"));
}
