//! JWT compact parsing and full verification (signature, then claims) against fixed keys.
#![no_main]

use std::sync::OnceLock;

use gateway::auth::jwks::{self, JwsAlg};
use gateway::auth::jwt::{self, JwtVerifier};
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static JwtVerifier {
    static V: OnceLock<JwtVerifier> = OnceLock::new();
    V.get_or_init(|| JwtVerifier {
        keys: jwt::KeySource::fixed(jwks::parse(
            r#"{"keys":[
              {"kty":"oct","kid":"h","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"},
              {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
              {"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
            ]}"#,
        )
        .expect("fixed JWKS parses")),
        algorithms: JwsAlg::ALL.to_vec(),
        issuer: Some("joe".into()),
        audience: vec![],
        leeway_s: 30,
        required_scopes: vec!["read".into()],
        claims: vec![("role".into(), vec!["admin".into(), 7.into()])],
        forward_claims: vec!["role".into(), "email".into()],
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = jwt::parse_compact(token) {
        assert!(c.signing_input.len() < token.len());
    }
    let _ = verifier().verify(token, 1_300_819_000);
});
