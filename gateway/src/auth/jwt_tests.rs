//! JWT tests: RFC 7515 A.1 (HS256), A.2 (RS256), A.3 (ES256) and RFC 8037 A.4 (EdDSA)
//! verify as published; claims, `alg: none` and algorithm confusion are refused.

use ring::hmac;

use super::*;
use crate::auth::jwks;

const RFC7515_PAYLOAD: &str =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
/// `exp` of the RFC 7515 payload is 1300819380.
const BEFORE_EXP: u64 = 1_300_819_000;

const A1_KEY: &str = r#"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;
const A1_TOKEN_HEAD: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9";
const A1_SIG: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

const A2_KEY: &str = r#"{"kty":"RSA","e":"AQAB","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"}"#;
const A2_SIG: &str = "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

const A3_KEY: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
const A3_SIG: &str =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

const RFC8037_KEY: &str =
    r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
const RFC8037_TOKEN: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

fn verifier(keys: &[&str], algs: &[JwsAlg]) -> JwtVerifier {
    let doc = format!(r#"{{"keys":[{}]}}"#, keys.join(","));
    JwtVerifier {
        keys: KeySource::fixed(jwks::parse(&doc).unwrap()),
        algorithms: algs.to_vec(),
        issuer: None,
        audience: vec![],
        leeway_s: 0,
        required_scopes: vec![],
        claims: vec![],
        forward_claims: vec![],
    }
}

fn all(keys: &[&str]) -> JwtVerifier {
    verifier(keys, &JwsAlg::ALL)
}

#[test]
fn rfc7515_a1_hs256() {
    let token = format!("{A1_TOKEN_HEAD}.{RFC7515_PAYLOAD}.{A1_SIG}");
    let v = all(&[A1_KEY]);
    assert_eq!(v.verify(&token, BEFORE_EXP).map(|(c, _)| c.sub), Ok(None));
    assert_eq!(v.verify(&token, 1_300_819_380), Err(JwtError::Expired));
    let tampered = format!(
        "{A1_TOKEN_HEAD}.{}.{A1_SIG}",
        RFC7515_PAYLOAD.replacen("qb2Ui", "qb2Uj", 1)
    );
    assert_eq!(v.verify(&tampered, BEFORE_EXP), Err(JwtError::BadSignature));
}

#[test]
fn rfc7515_a2_rs256() {
    let token = format!("eyJhbGciOiJSUzI1NiJ9.{RFC7515_PAYLOAD}.{A2_SIG}");
    assert!(all(&[A2_KEY]).verify(&token, BEFORE_EXP).is_ok());
    // Wrong key of the right type: the ES256 key cannot verify an RS256 token at all.
    assert_eq!(
        all(&[A3_KEY]).verify(&token, BEFORE_EXP),
        Err(JwtError::UnknownKey)
    );
    let mut sig = A2_SIG.to_owned();
    sig.replace_range(0..1, "d");
    let bad = format!("eyJhbGciOiJSUzI1NiJ9.{RFC7515_PAYLOAD}.{sig}");
    assert_eq!(
        all(&[A2_KEY]).verify(&bad, BEFORE_EXP),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn rfc7515_a3_es256() {
    let token = format!("eyJhbGciOiJFUzI1NiJ9.{RFC7515_PAYLOAD}.{A3_SIG}");
    assert!(all(&[A3_KEY]).verify(&token, BEFORE_EXP).is_ok());
    assert_eq!(
        verifier(&[A3_KEY], &[JwsAlg::Rs256]).verify(&token, BEFORE_EXP),
        Err(JwtError::AlgNotAllowed)
    );
}

#[test]
fn rfc8037_a4_eddsa() {
    // The payload is plain text, not claims: the signature verifies, the claims do not parse.
    let v = all(&[RFC8037_KEY]);
    let c = parse_compact(RFC8037_TOKEN).unwrap();
    assert_eq!(c.alg, "EdDSA");
    assert_eq!(v.verify_signature(&c), Ok(()));
    assert_eq!(v.verify(RFC8037_TOKEN, 0), Err(JwtError::MalformedClaims));
    let tampered = RFC8037_TOKEN.replace(
        "RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc",
        "RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmd",
    );
    assert_eq!(v.verify(&tampered, 0), Err(JwtError::BadSignature));
}

#[test]
fn alg_none_refused() {
    // {"alg":"none"} with the RFC payload and an empty signature.
    let token = format!("eyJhbGciOiJub25lIn0.{RFC7515_PAYLOAD}.");
    assert_eq!(
        all(&[A1_KEY, A2_KEY]).verify(&token, BEFORE_EXP),
        Err(JwtError::AlgNotAllowed)
    );
}

#[test]
fn algorithm_confusion_refused() {
    // The classic attack: HS256 "signed" with the RSA public key's bytes as the secret.
    let n = URL_SAFE_NO_PAD
        .decode(
            serde_json::from_str::<serde_json::Value>(A2_KEY).unwrap()["n"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let input = format!("{A1_TOKEN_HEAD}.{RFC7515_PAYLOAD}");
    let sig = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &n), input.as_bytes());
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(
        all(&[A2_KEY]).verify(&token, BEFORE_EXP),
        Err(JwtError::UnknownKey)
    );
    // And a JWKS claiming alg HS256 for an RSA key is refused at load.
    let lying = A2_KEY.replace("\"kty\"", "\"alg\":\"HS256\",\"kty\"");
    assert!(jwks::parse(&format!(r#"{{"keys":[{lying}]}}"#)).is_err());
}

/// Signs `claims` with the RFC 7515 A.1 HS256 key, optionally with a kid.
fn hs256(claims: serde_json::Value, kid: Option<&str>) -> String {
    let k: serde_json::Value = serde_json::from_str(A1_KEY).unwrap();
    let key = URL_SAFE_NO_PAD.decode(k["k"].as_str().unwrap()).unwrap();
    let mut header = serde_json::json!({"alg": "HS256", "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = kid.into();
    }
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[test]
fn claims_checked() {
    let mut v = all(&[A1_KEY]);
    v.issuer = Some("https://issuer.example".into());
    v.audience = vec!["edgefn".into()];
    v.leeway_s = 30;
    let good = serde_json::json!({"sub": "user-42", "iss": "https://issuer.example", "aud": ["x", "edgefn"], "exp": 2000, "nbf": 1000});
    assert_eq!(
        v.verify(&hs256(good.clone(), None), 1500)
            .unwrap()
            .0
            .sub
            .as_deref(),
        Some("user-42")
    );
    assert!(v.verify(&hs256(good.clone(), None), 2029).is_ok(), "leeway");
    assert_eq!(
        v.verify(&hs256(good.clone(), None), 2030),
        Err(JwtError::Expired)
    );
    assert!(v.verify(&hs256(good.clone(), None), 971).is_ok(), "leeway");
    assert_eq!(
        v.verify(&hs256(good.clone(), None), 969),
        Err(JwtError::NotYetValid)
    );
    let mut c = good.clone();
    c["iss"] = "https://evil.example".into();
    assert_eq!(v.verify(&hs256(c, None), 1500), Err(JwtError::WrongIssuer));
    let mut c = good.clone();
    c["aud"] = "other".into();
    assert_eq!(
        v.verify(&hs256(c, None), 1500),
        Err(JwtError::WrongAudience)
    );
    let mut c = good.clone();
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(v.verify(&hs256(c, None), 1500), Err(JwtError::MissingExp));
    let mut c = good.clone();
    c["exp"] = "soon".into();
    assert_eq!(
        v.verify(&hs256(c, None), 1500),
        Err(JwtError::MalformedClaims)
    );
    // A kid no key carries.
    assert_eq!(
        v.verify(&hs256(good, Some("k9")), 1500),
        Err(JwtError::UnknownKey)
    );
}

#[test]
fn malformed_tokens() {
    for bad in [
        "",
        "a",
        "a.b",
        "a.b.c.d",
        "!!.e30.",
        "e30.e30.",
        "eyJhbGciOiJIUzI1NiJ9..c2ln",
        "eyJhbGciOiJIUzI1NiJ9.e30.!!",
    ] {
        assert_eq!(parse_compact(bad), Err(JwtError::Malformed), "{bad}");
    }
    // crit header: {"alg":"HS256","crit":["exp"]}
    let crit = format!(
        "{}.e30.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","crit":["exp"]}"#)
    );
    assert_eq!(parse_compact(&crit), Err(JwtError::Malformed));
}

#[test]
fn scopes_claim_rules_and_forwarded_claims() {
    let mut v = all(&[A1_KEY]);
    v.required_scopes = vec!["read".into(), "write".into()];
    v.claims = vec![("role".into(), vec!["admin".into(), "ops".into()])];
    v.forward_claims = vec!["role".into(), "email".into()];
    let token = |extra: serde_json::Value| {
        let mut c = serde_json::json!({"sub": "u1", "exp": 2000});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        hs256(c, None)
    };
    let ok = v
        .verify(
            &token(serde_json::json!({"scope": "read write x", "role": "ops"})),
            1500,
        )
        .unwrap()
        .0;
    assert_eq!(
        ok.forwarded.map(serde_json::Value::Object),
        Some(serde_json::json!({"role": "ops", "sub": "u1"})),
        "email absent, sub added"
    );
    // `scp` as an array (Entra, Okta) and an array claim containing an accepted value.
    assert!(v
        .verify(
            &token(serde_json::json!({"scp": ["write", "read"], "role": ["guest", "admin"]})),
            1500
        )
        .is_ok());
    for (extra, err) in [
        (
            serde_json::json!({"scope": "read", "role": "ops"}),
            JwtError::InsufficientScope,
        ),
        (
            serde_json::json!({"scope": "readwrite", "role": "ops"}),
            JwtError::InsufficientScope,
        ),
        (
            serde_json::json!({"scope": "read write", "role": "guest"}),
            JwtError::ClaimMismatch,
        ),
        (
            serde_json::json!({"scope": "read write"}),
            JwtError::ClaimMismatch,
        ),
    ] {
        assert_eq!(
            v.verify(&token(extra.clone()), 1500).map(|_| ()),
            Err(err),
            "{extra}"
        );
    }
}

#[test]
fn no_key_set_yet() {
    let mut v = all(&[A1_KEY]);
    v.keys = KeySource::Remote(crate::auth::jwks_fetch::RemoteKeys::shared(
        crate::auth::jwks_fetch::Source::Url("https://never-fetched.invalid/jwks".into()),
        false,
    ));
    let t = hs256(serde_json::json!({"exp": 2000}), None);
    assert_eq!(v.verify(&t, 1500).map(|_| ()), Err(JwtError::NoKeySet));
}
