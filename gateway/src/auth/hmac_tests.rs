//! HMAC policy tests: RFC 4231 vectors, GitHub's and Slack's published examples, and per
//! scheme the good case, wrong key, tampered body, missing / malformed header, stale
//! timestamp and replay.

use super::*;
use crate::auth::test_support::{env, headers, req};

const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const GITHUB_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

fn policy(cfg: serde_json::Value, vars: &[(&str, &str)]) -> HmacPolicy {
    let cfg: HmacConfig = serde_json::from_value(cfg).unwrap();
    compile(&cfg, &env(vars)).unwrap()
}

fn reason(r: Result<Identity, AuthFailure>) -> &'static str {
    r.unwrap_err().reason
}

fn sign(alg: hmac::Algorithm, key: &[u8], msg: &[u8]) -> String {
    hex::encode(hmac::sign(&hmac::Key::new(alg, key), msg))
}

#[test]
fn rfc4231_vectors_sha256_and_sha512() {
    // RFC 4231 test cases 1 and 2.
    let cases = [
        ("\u{b}".repeat(20), "Hi There",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
         "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"),
        ("Jefe".to_owned(), "what do ya want for nothing?",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
         "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
    ];
    for (key, data, s256, s512) in cases {
        for (alg, sig) in [("sha256", s256), ("sha512", s512)] {
            let p = policy(
                serde_json::json!({"scheme": "generic", "secret": "K", "header": "X-Sig", "algorithm": alg}),
                &[("K", &key)],
            );
            let h = headers(&[("x-sig", sig)]);
            assert!(
                p.verify(&req(&h, data.as_bytes(), 0)).is_ok(),
                "{alg} {data}"
            );
            assert_eq!(reason(p.verify(&req(&h, b"tampered", 0))), "bad_signature");
        }
    }
}

#[test]
fn generic_base64_with_prefix() {
    let p = policy(
        serde_json::json!({"scheme": "generic", "secret": "K", "header": "x-sig", "encoding": "base64", "prefix": "v1,"}),
        &[("K", "Jefe")],
    );
    let raw =
        hex::decode("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843").unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    let body = b"what do ya want for nothing?";
    use base64::Engine;
    let good = headers(&[("x-sig", &format!("v1,{b64}"))]);
    assert!(p.verify(&req(&good, body, 0)).is_ok());
    let no_prefix = headers(&[("x-sig", &b64)]);
    assert_eq!(reason(p.verify(&req(&no_prefix, body, 0))), "malformed");
}

#[test]
fn github_published_example() {
    let p = policy(
        serde_json::json!({"scheme": "github", "secret": "GH"}),
        &[("GH", GITHUB_SECRET)],
    );
    let h = headers(&[("x-hub-signature-256", GITHUB_SIG)]);
    let id = p.verify(&req(&h, b"Hello, World!", 0)).unwrap();
    assert_eq!((id.kind, id.subject.as_deref()), ("hmac", Some("GH")));
    assert_eq!(
        reason(p.verify(&req(&h, b"Hello, World?", 0))),
        "bad_signature"
    );
    assert_eq!(
        reason(p.verify(&req(&headers(&[]), b"Hello, World!", 0))),
        "missing"
    );
    let bad = headers(&[("x-hub-signature-256", "sha1=757107ea")]);
    assert_eq!(
        reason(p.verify(&req(&bad, b"Hello, World!", 0))),
        "malformed"
    );
    let wrong = policy(
        serde_json::json!({"scheme": "github", "secret": "GH"}),
        &[("GH", "another")],
    );
    assert_eq!(
        reason(wrong.verify(&req(&h, b"Hello, World!", 0))),
        "bad_signature"
    );
}

#[test]
fn github_rotation_names_the_key() {
    let p = policy(
        serde_json::json!({"scheme": "github", "secret": ["OLD", "NEW"]}),
        &[("OLD", "old-secret"), ("NEW", GITHUB_SECRET)],
    );
    let h = headers(&[("x-hub-signature-256", GITHUB_SIG)]);
    assert_eq!(
        p.verify(&req(&h, b"Hello, World!", 0))
            .unwrap()
            .subject
            .as_deref(),
        Some("NEW")
    );
}

#[test]
fn stripe_scheme() {
    let secret = "whsec_test_secret";
    let p = policy(
        serde_json::json!({"scheme": "stripe", "secret": "S"}),
        &[("S", secret)],
    );
    let body = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
    let t = 1_700_000_000u64;
    let sig = sign(
        hmac::HMAC_SHA256,
        secret.as_bytes(),
        &[format!("{t}.").as_bytes(), body].concat(),
    );
    let other = sign(hmac::HMAC_SHA256, b"old", b"x");
    // Several v1 values (Stripe sends one per active secret): any may match.
    let h = headers(&[("stripe-signature", &format!("t={t},v1={other},v1={sig}"))]);
    assert!(p.verify(&req(&h, body, t + 10)).is_ok());
    assert_eq!(reason(p.verify(&req(&h, body, t + 11))), "replayed");
    assert_eq!(reason(p.verify(&req(&h, b"{}", t))), "bad_signature");
    assert_eq!(reason(p.verify(&req(&h, body, t + 301))), "stale_timestamp");
    assert_eq!(reason(p.verify(&req(&h, body, t - 301))), "stale_timestamp");
    assert_eq!(reason(p.verify(&req(&headers(&[]), body, t))), "missing");
    let bad = headers(&[("stripe-signature", &format!("v1={sig}"))]);
    assert_eq!(reason(p.verify(&req(&bad, body, t))), "malformed");
    let wrong = policy(
        serde_json::json!({"scheme": "stripe", "secret": "S"}),
        &[("S", "nope")],
    );
    let fresh = headers(&[("stripe-signature", &format!("t={t},v1={sig}"))]);
    assert_eq!(reason(wrong.verify(&req(&fresh, body, t))), "bad_signature");
}

/// During a secret roll Stripe signs each event with every active secret. Replaying the
/// same event with the signatures reordered, or with only the other one, is still a replay.
#[test]
fn stripe_replay_is_refused_whichever_secret_matches() {
    let p = policy(
        serde_json::json!({"scheme": "stripe", "secret": ["OLD", "NEW"]}),
        &[("OLD", "whsec_old"), ("NEW", "whsec_new")],
    );
    let body = br#"{"id":"evt_2"}"#;
    let t = 1_700_000_000u64;
    let msg = [format!("{t}.").as_bytes(), body].concat();
    let old = sign(hmac::HMAC_SHA256, b"whsec_old", &msg);
    let new = sign(hmac::HMAC_SHA256, b"whsec_new", &msg);
    let first = headers(&[("stripe-signature", &format!("t={t},v1={old},v1={new}"))]);
    assert!(p.verify(&req(&first, body, t)).is_ok());
    for replay in [
        format!("t={t},v1={new},v1={old}"),
        format!("t={t},v1={new}"),
        format!("t={t},v1={old}"),
    ] {
        let h = headers(&[("stripe-signature", &replay)]);
        assert_eq!(
            reason(p.verify(&req(&h, body, t + 1))),
            "replayed",
            "{replay}"
        );
    }
}

#[test]
fn slack_published_example() {
    let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let p = policy(
        serde_json::json!({"scheme": "slack", "secret": "S", "tolerance_s": 60}),
        &[("S", "8f742231b10e8888abcd99yyyzzz85a5")],
    );
    let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    let t = 1_531_420_618;
    let h = headers(&[
        ("x-slack-signature", sig),
        ("x-slack-request-timestamp", "1531420618"),
    ]);
    assert!(p.verify(&req(&h, body.as_bytes(), t)).is_ok());
    assert_eq!(reason(p.verify(&req(&h, body.as_bytes(), t))), "replayed");
    let p = policy(
        serde_json::json!({"scheme": "slack", "secret": "S", "tolerance_s": 60}),
        &[("S", "8f742231b10e8888abcd99yyyzzz85a5")],
    );
    assert_eq!(
        reason(p.verify(&req(&h, b"text=tampered", t))),
        "bad_signature"
    );
    assert_eq!(
        reason(p.verify(&req(&h, body.as_bytes(), t + 61))),
        "stale_timestamp"
    );
    let no_ts = headers(&[("x-slack-signature", sig)]);
    assert_eq!(
        reason(p.verify(&req(&no_ts, body.as_bytes(), t))),
        "missing_timestamp"
    );
    let bad = headers(&[
        ("x-slack-signature", "v0=xyz"),
        ("x-slack-request-timestamp", "1531420618"),
    ]);
    assert_eq!(
        reason(p.verify(&req(&bad, body.as_bytes(), t))),
        "malformed"
    );
    assert_eq!(
        reason(p.verify(&req(&headers(&[]), body.as_bytes(), t))),
        "missing"
    );
    // A repeated signature or timestamp header is malformed, not missing.
    for twice in ["x-slack-signature", "x-slack-request-timestamp"] {
        let mut pairs = vec![
            ("x-slack-signature", sig),
            ("x-slack-request-timestamp", "1531420618"),
        ];
        pairs.push((twice, pairs.iter().find(|(k, _)| *k == twice).unwrap().1));
        assert_eq!(
            reason(p.verify(&req(&headers(&pairs), body.as_bytes(), t))),
            "malformed",
            "{twice} twice"
        );
    }
}

#[test]
fn config_errors_name_fields() {
    let bad: HmacConfig = serde_json::from_value(serde_json::json!(
        {"scheme": "github", "secret": "MISSING", "tolerance_s": 5, "prefix": "x"}
    ))
    .unwrap();
    let errs = compile(&bad, &env(&[])).unwrap_err();
    let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["tolerance_s", "prefix", "secret"]);
    let generic: HmacConfig =
        serde_json::from_value(serde_json::json!({"scheme": "generic", "secret": "K"})).unwrap();
    let errs = compile(&generic, &env(&[("K", "k")])).unwrap_err();
    assert_eq!(errs[0].field, "header");
}

#[test]
fn openapi_has_no_secret() {
    let p = policy(
        serde_json::json!({"scheme": "github", "secret": "GH"}),
        &[("GH", GITHUB_SECRET)],
    );
    let doc = p.openapi_scheme().to_string();
    assert!(
        doc.contains("x-hub-signature-256") && !doc.contains("Secret to"),
        "{doc}"
    );
}
