//! Ed25519 policy tests with keys made by `ring`: per scheme the good case, wrong key,
//! tampered body, missing and malformed headers, stale timestamp, replay, rotation. The
//! publishers' own libraries (PyNaCl) sign in `tests/webhooks_e2e.rs`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair};

use super::*;
use crate::auth::test_support::{env, headers, req};

const T: u64 = 1_700_000_000;

fn pair(seed: u8) -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap()
}

fn policy(scheme: &str, vars: &[(&str, &str)], names: serde_json::Value) -> Ed25519Policy {
    let cfg: Ed25519Config =
        serde_json::from_value(json!({"scheme": scheme, "public_key": names})).unwrap();
    compile(&cfg, &env(vars)).unwrap()
}

fn reason(r: Result<Identity, AuthFailure>) -> &'static str {
    r.unwrap_err().reason
}

#[test]
fn discord() {
    let k = pair(1);
    let public = hex::encode(k.public_key().as_ref());
    let p = policy("discord", &[("PK", &public)], json!("PK"));
    let body = br#"{"type":1}"#;
    let sig = hex::encode(k.sign(&[b"1700000000".as_slice(), body].concat()));
    let h = headers(&[
        ("x-signature-ed25519", &sig),
        ("x-signature-timestamp", "1700000000"),
    ]);
    let id = p.verify(&req(&h, body, T + 5)).unwrap();
    assert_eq!((id.kind, id.subject.as_deref()), ("ed25519", Some("PK")));
    assert_eq!(reason(p.verify(&req(&h, body, T + 6))), "replayed");
    let p = policy("discord", &[("PK", &public)], json!("PK"));
    assert_eq!(
        reason(p.verify(&req(&h, br#"{"type":2}"#, T))),
        "bad_signature"
    );
    assert_eq!(reason(p.verify(&req(&h, body, T + 301))), "stale_timestamp");
    let only_sig = headers(&[("x-signature-ed25519", &sig)]);
    assert_eq!(
        reason(p.verify(&req(&only_sig, body, T))),
        "missing_timestamp"
    );
    assert_eq!(reason(p.verify(&req(&headers(&[]), body, T))), "missing");
    let short = headers(&[
        ("x-signature-ed25519", "abcd"),
        ("x-signature-timestamp", "1700000000"),
    ]);
    assert_eq!(reason(p.verify(&req(&short, body, T))), "malformed");
    let other = hex::encode(pair(2).public_key().as_ref());
    let wrong = policy("discord", &[("PK", &other)], json!("PK"));
    assert_eq!(reason(wrong.verify(&req(&h, body, T))), "bad_signature");
}

#[test]
fn standard_v1a_with_rotation() {
    let (old, new) = (pair(3), pair(4));
    let whpk = |k: &Ed25519KeyPair| format!("whpk_{}", STANDARD.encode(k.public_key().as_ref()));
    let vars = [
        ("OLD", whpk(&old)),
        ("NEW", hex::encode(new.public_key().as_ref())),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = policy("standard", &vars, json!(["OLD", "NEW"]));
    let body = br#"{"type":"user.created"}"#;
    let msg = [b"msg_1.1700000000.".as_slice(), body].concat();
    let sig = format!("v1,AAAA v1a,{}", STANDARD.encode(new.sign(&msg)));
    let h = headers(&[
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", "1700000000"),
        ("webhook-signature", &sig),
    ]);
    assert_eq!(
        p.verify(&req(&h, body, T)).unwrap().subject.as_deref(),
        Some("NEW")
    );
    assert_eq!(reason(p.verify(&req(&h, body, T))), "replayed");
    assert_eq!(reason(p.verify(&req(&h, b"{}", T))), "bad_signature");
    assert_eq!(reason(p.verify(&req(&h, body, T - 301))), "stale_timestamp");
    let no_id = headers(&[
        ("webhook-timestamp", "1700000000"),
        ("webhook-signature", &sig),
    ]);
    assert_eq!(reason(p.verify(&req(&no_id, body, T))), "missing_id");
    let v1_only = headers(&[
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", "1700000000"),
        ("webhook-signature", "v1,AAAA"),
    ]);
    assert_eq!(reason(p.verify(&req(&v1_only, body, T))), "malformed");
}

#[test]
fn config_errors_name_fields() {
    let cfg: Ed25519Config = serde_json::from_value(
        json!({"scheme": "discord", "public_key": ["MISSING", "BAD"], "tolerance_s": 0}),
    )
    .unwrap();
    let errs = compile(&cfg, &env(&[("BAD", "whpk_AAAA")])).unwrap_err();
    let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["tolerance_s", "public_key", "public_key"]);
    assert!(errs[2].message.contains("64 hex digits"), "{}", errs[2]);
}
