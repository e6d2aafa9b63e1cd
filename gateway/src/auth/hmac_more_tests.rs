//! Tests of the schemes added for issue 16 (standard, shopify, zoom, twilio, faas-cli): the
//! publishers' published vectors (Standard Webhooks' reference test, Twilio's docs example)
//! and per scheme wrong secret, tampered body, missing header, stale timestamp and replay.
//! Signatures made by the publishers' own libraries are in `tests/webhooks_e2e.rs`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::*;
use crate::auth::test_support::{env, headers, req};
use crate::auth::AuthRequest;

fn policy(cfg: serde_json::Value, vars: &[(&str, &str)]) -> HmacPolicy {
    let cfg: HmacConfig = serde_json::from_value(cfg).unwrap();
    compile(&cfg, &env(vars)).unwrap()
}

fn reason(r: Result<Identity, AuthFailure>) -> &'static str {
    r.unwrap_err().reason
}

fn b64_hmac(alg: hmac::Algorithm, key: &[u8], msg: &[u8]) -> String {
    STANDARD.encode(hmac::sign(&hmac::Key::new(alg, key), msg))
}

const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SW_TS: u64 = 1_614_265_330;
const SW_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SW_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn sw_headers(id: &str, sig: &str) -> http::HeaderMap {
    headers(&[
        ("webhook-id", id),
        ("webhook-timestamp", "1614265330"),
        ("webhook-signature", sig),
    ])
}

#[test]
fn standard_webhooks_reference_vector() {
    for scheme in ["standard", "svix"] {
        let p = policy(
            json!({"scheme": scheme, "secret": "S"}),
            &[("S", SW_SECRET)],
        );
        // Rotation: a signature by another secret first, then the good one.
        let sig = format!("v1,{} {SW_SIG}", STANDARD.encode([0u8; 32]));
        let h = sw_headers(SW_ID, &sig);
        assert_eq!(
            p.verify(&req(&h, SW_BODY, SW_TS + 1))
                .unwrap()
                .subject
                .as_deref(),
            Some("S")
        );
        assert_eq!(reason(p.verify(&req(&h, SW_BODY, SW_TS + 2))), "replayed");
    }
    let p = policy(
        json!({"scheme": "standard", "secret": "S", "tolerance_s": 60}),
        &[("S", SW_SECRET)],
    );
    let h = sw_headers(SW_ID, SW_SIG);
    assert_eq!(
        reason(p.verify(&req(&h, br#"{"test": 1}"#, SW_TS))),
        "bad_signature"
    );
    assert_eq!(
        reason(p.verify(&req(&sw_headers("msg_other", SW_SIG), SW_BODY, SW_TS))),
        "bad_signature"
    );
    assert_eq!(
        reason(p.verify(&req(&h, SW_BODY, SW_TS + 61))),
        "stale_timestamp"
    );
    assert_eq!(
        reason(p.verify(&req(&headers(&[]), SW_BODY, SW_TS))),
        "missing"
    );
    let no_id = headers(&[
        ("webhook-timestamp", "1614265330"),
        ("webhook-signature", SW_SIG),
    ]);
    assert_eq!(reason(p.verify(&req(&no_id, SW_BODY, SW_TS))), "missing_id");
    let no_ts = headers(&[("webhook-id", SW_ID), ("webhook-signature", SW_SIG)]);
    assert_eq!(
        reason(p.verify(&req(&no_ts, SW_BODY, SW_TS))),
        "missing_timestamp"
    );
    let wrong = policy(
        json!({"scheme": "standard", "secret": "S"}),
        &[("S", "whsec_AAAAAAAAAAAAAAAAAAAAAAAA")],
    );
    assert_eq!(
        reason(wrong.verify(&req(&h, SW_BODY, SW_TS))),
        "bad_signature"
    );
    assert!(p.verify(&req(&h, SW_BODY, SW_TS)).is_ok());
}

#[test]
fn standard_refuses_a_secret_that_is_not_base64() {
    let cfg: HmacConfig =
        serde_json::from_value(json!({"scheme": "standard", "secret": "S"})).unwrap();
    let errs = compile(&cfg, &env(&[("S", "whsec_not base64!")])).unwrap_err();
    assert_eq!(errs[0].field, "secret");
    assert!(!errs[0].message.contains("not base64!"), "{}", errs[0]);
}

#[test]
fn shopify_and_faas_cli() {
    let body = br#"{"id":820982911946154508}"#;
    let shop = policy(
        json!({"scheme": "shopify", "secret": "S"}),
        &[("S", "shpss_secret")],
    );
    let sig = b64_hmac(hmac::HMAC_SHA256, b"shpss_secret", body);
    let h = headers(&[("x-shopify-hmac-sha256", &sig)]);
    assert!(shop.verify(&req(&h, body, 0)).is_ok());
    assert_eq!(reason(shop.verify(&req(&h, b"{}", 0))), "bad_signature");
    assert_eq!(reason(shop.verify(&req(&headers(&[]), body, 0))), "missing");
    let hexsig = headers(&[("x-shopify-hmac-sha256", "abcd")]);
    assert_eq!(reason(shop.verify(&req(&hexsig, body, 0))), "malformed");

    let faas = policy(
        json!({"scheme": "faas-cli", "secret": "S", "header": "X-Hub-Signature"}),
        &[("S", "faas-key")],
    );
    let tag = hex::encode(hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, b"faas-key"),
        body,
    ));
    let h = headers(&[("x-hub-signature", &format!("sha256={tag}"))]);
    assert!(faas.verify(&req(&h, body, 0)).is_ok());
    assert_eq!(reason(faas.verify(&req(&h, b"x", 0))), "bad_signature");
    assert_eq!(reason(faas.verify(&req(&headers(&[]), body, 0))), "missing");
    // Older faas-cli releases sign with HMAC-SHA1 (`sha1=<hex>`).
    let sha1 = hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY;
    let tag = hex::encode(hmac::sign(&hmac::Key::new(sha1, b"faas-key"), body));
    let h = headers(&[("x-hub-signature", &format!("sha1={tag}"))]);
    assert!(faas.verify(&req(&h, body, 0)).is_ok());
    assert_eq!(reason(faas.verify(&req(&h, b"x", 0))), "bad_signature");
    let h = headers(&[("x-hub-signature", "sha512=00")]);
    assert_eq!(reason(faas.verify(&req(&h, body, 0))), "malformed");
    let cfg: HmacConfig =
        serde_json::from_value(json!({"scheme": "faas-cli", "secret": "S"})).unwrap();
    assert_eq!(
        compile(&cfg, &env(&[("S", "k")])).unwrap_err()[0].field,
        "header"
    );
}

#[test]
fn zoom_signature_and_url_validation() {
    let secret = "zoom-secret-token";
    let p = policy(json!({"scheme": "zoom", "secret": "Z"}), &[("Z", secret)]);
    let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    let t = 1_654_503_849u64;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let sig = hex::encode(hmac::sign(
        &key,
        &[format!("v0:{t}:").as_bytes(), body].concat(),
    ));
    let h = headers(&[
        ("x-zm-signature", &format!("v0={sig}")),
        ("x-zm-request-timestamp", &t.to_string()),
    ]);
    let id = p.verify(&req(&h, body, t)).unwrap();
    let answer: serde_json::Value = serde_json::from_slice(
        &p.direct_answer(id.subject.as_deref().unwrap(), body)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        answer["encryptedToken"],
        hex::encode(hmac::sign(&key, b"qgg8vlvZRS6UYooatFL8Aw"))
    );
    assert_eq!(reason(p.verify(&req(&h, body, t))), "replayed");
    assert_eq!(reason(p.verify(&req(&h, b"{}", t))), "bad_signature");
    assert_eq!(reason(p.verify(&req(&h, body, t + 301))), "stale_timestamp");
    let no_ts = headers(&[("x-zm-signature", &format!("v0={sig}"))]);
    assert_eq!(reason(p.verify(&req(&no_ts, body, t))), "missing_timestamp");
    assert_eq!(reason(p.verify(&req(&headers(&[]), body, t))), "missing");
    // Other schemes never answer for the function.
    let gh = policy(json!({"scheme": "github", "secret": "Z"}), &[("Z", secret)]);
    assert!(gh.direct_answer("Z", body).is_none());
}

fn twilio_req<'a>(
    h: &'a http::HeaderMap,
    path: &'a str,
    query: Option<&'a str>,
    body: &'a [u8],
) -> AuthRequest<'a> {
    AuthRequest {
        path,
        query,
        ..req(h, body, 0)
    }
}

/// Twilio's documented example: auth token `12345`, URL
/// `https://mycompany.com/myapp.php?foo=1&bar=2` and five form parameters.
#[test]
fn twilio_docs_example() {
    let p = policy(
        json!({"scheme": "twilio", "secret": "T", "public_url": "https://mycompany.com/"}),
        &[("T", "12345")],
    );
    let body = b"CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let h = headers(&[
        form[0],
        ("x-twilio-signature", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
    ]);
    let q = Some("foo=1&bar=2");
    assert!(p.verify(&twilio_req(&h, "/myapp.php", q, body)).is_ok());
    assert_eq!(
        reason(p.verify(&twilio_req(&h, "/myapp.php", q, b"CallSid=CA1"))),
        "bad_signature"
    );
    assert_eq!(
        reason(p.verify(&twilio_req(&h, "/other.php", q, body))),
        "bad_signature"
    );
    let no_sig = headers(&form);
    assert_eq!(
        reason(p.verify(&twilio_req(&no_sig, "/myapp.php", q, body))),
        "missing"
    );
    let wrong = policy(
        json!({"scheme": "twilio", "secret": "T", "public_url": "https://mycompany.com"}),
        &[("T", "54321")],
    );
    assert_eq!(
        reason(wrong.verify(&twilio_req(&h, "/myapp.php", q, body))),
        "bad_signature"
    );
}

#[test]
fn twilio_json_body_bound_by_body_sha256() {
    let p = policy(
        json!({"scheme": "twilio", "secret": "T", "public_url": "https://hooks.example.com:8443/tw"}),
        &[("T", "token")],
    );
    let body = br#"{"event":"x"}"#;
    let query = format!("bodySHA256={}", hex::encode(secrets::sha256(body)));
    let url = format!("https://hooks.example.com:8443/tw/in?{query}");
    let sig = b64_hmac(
        hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        b"token",
        url.as_bytes(),
    );
    let h = headers(&[
        ("content-type", "application/json"),
        ("x-twilio-signature", &sig),
    ]);
    assert!(p.verify(&twilio_req(&h, "/in", Some(&query), body)).is_ok());
    assert_eq!(
        reason(p.verify(&twilio_req(&h, "/in", Some(&query), b"{}"))),
        "bad_body_hash"
    );
    assert_eq!(
        reason(p.verify(&twilio_req(&h, "/in", None, body))),
        "bad_body_hash"
    );
}

#[test]
fn twilio_needs_public_url_and_only_twilio_takes_it() {
    let errs = |cfg: serde_json::Value| {
        let cfg: HmacConfig = serde_json::from_value(cfg).unwrap();
        compile(&cfg, &env(&[("T", "t")])).unwrap_err()
    };
    assert_eq!(
        errs(json!({"scheme": "twilio", "secret": "T"}))[0].field,
        "public_url"
    );
    assert_eq!(
        errs(json!({"scheme": "twilio", "secret": "T", "public_url": "hooks.example.com"}))[0]
            .field,
        "public_url"
    );
    assert_eq!(
        errs(json!({"scheme": "twilio", "secret": "T", "public_url": "https://h/?a=1"}))[0].field,
        "public_url"
    );
    assert_eq!(
        errs(json!({"scheme": "github", "secret": "T", "public_url": "https://h"}))[0].field,
        "public_url"
    );
    assert_eq!(
        errs(json!({"scheme": "shopify", "secret": "T", "tolerance_s": 10}))[0].field,
        "tolerance_s"
    );
}
