//! `"auth": {"type": "oidc", ...}` as written in `fn.config.json`, and its compilation
//! against `fn.env.json`: the client secret and the cookie keys are env names whose
//! variables must be marked `is_secret`; the cookie keys become a [`KeyRing`] (the first
//! key seals, all open). Every problem is collected with its field.

use serde::Deserialize;

use super::seal::KeyRing;
use crate::auth::http_fetch;
use crate::auth::secrets::{self, err, OneOrMany};
use crate::auth::AuthConfigError;
use crate::catalog::fn_env::FnEnv;

pub const DEFAULT_SESSION_TTL_S: u64 = 3600;
pub const MAX_SESSION_TTL_S: u64 = 7 * 24 * 3600;
pub const MIN_SESSION_TTL_S: u64 = 10;
const DEFAULT_SCOPES: &str = "openid";
const MAX_FORWARD_CLAIMS: usize = 32;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    /// Name of the `fn.env.json` variable holding the client secret.
    pub client_secret: String,
    /// Name(s) of the variables holding the cookie keys (base64 of 32 random bytes;
    /// a value may list several, comma-separated). The first key seals.
    pub cookie_secret: OneOrMany,
    /// Space-separated or a list; default `openid` (add `offline_access` for refresh).
    pub scopes: Option<OneOrMany>,
    pub forward_claims: Option<Vec<String>>,
    /// Session lifetime before a refresh is due, default 3600 s.
    pub session_ttl_s: Option<u64>,
    /// Refresh a session this long before it expires, default 60 s (at most the TTL:
    /// equal to it, every request refreshes).
    pub refresh_margin_s: Option<u64>,
    #[serde(default)]
    pub allow_insecure_issuer: bool,
}

#[derive(Debug)]
pub struct CompiledOidc {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub ring: KeyRing,
    pub scopes: String,
    pub forward_claims: Vec<String>,
    pub session_ttl_s: u64,
    pub refresh_margin_s: u64,
    pub allow_insecure_issuer: bool,
}

pub fn compile(
    c: &OidcConfig,
    env: &FnEnv,
    errors: &mut Vec<AuthConfigError>,
) -> Option<CompiledOidc> {
    let before = errors.len();
    if let Err(e) = http_fetch::check_url(&c.issuer, c.allow_insecure_issuer) {
        errors.push(err("issuer", &e.to_string()));
    }
    if c.client_id.is_empty() {
        errors.push(err("client_id", "is empty"));
    }
    let client_secret = secrets::resolve(
        &OneOrMany::One(c.client_secret.clone()),
        env,
        "client_secret",
        errors,
    );
    let keys = secrets::resolve(&c.cookie_secret, env, "cookie_secret", errors);
    let joined = keys
        .iter()
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .collect::<Vec<_>>()
        .join(",");
    let ring = match KeyRing::parse(&joined) {
        Ok(r) => Some(r),
        // The missing variable was already reported by `resolve`.
        Err(_) if keys.is_empty() => None,
        Err(e) => {
            errors.push(err("cookie_secret", &e.to_string()));
            None
        }
    };
    let session_ttl_s = c.session_ttl_s.unwrap_or(DEFAULT_SESSION_TTL_S);
    if !(MIN_SESSION_TTL_S..=MAX_SESSION_TTL_S).contains(&session_ttl_s) {
        errors.push(err(
            "session_ttl_s",
            &format!("must be {MIN_SESSION_TTL_S}..={MAX_SESSION_TTL_S} seconds"),
        ));
    }
    let refresh_margin_s = c
        .refresh_margin_s
        .unwrap_or(super::decide::REFRESH_MARGIN_SECS.min(session_ttl_s));
    if refresh_margin_s > session_ttl_s {
        errors.push(err(
            "refresh_margin_s",
            "must not exceed session_ttl_s (equal refreshes on every request)",
        ));
    }
    let scopes = match &c.scopes {
        None => DEFAULT_SCOPES.to_owned(),
        Some(s) => s.names().join(" "),
    };
    if !scopes.split_whitespace().any(|s| s == "openid") {
        errors.push(err("scopes", "must include \"openid\""));
    }
    let forward_claims = c.forward_claims.clone().unwrap_or_default();
    if forward_claims.len() > MAX_FORWARD_CLAIMS {
        errors.push(err(
            "forward_claims",
            &format!("at most {MAX_FORWARD_CLAIMS} names"),
        ));
    }
    if errors.len() > before {
        return None;
    }
    Some(CompiledOidc {
        issuer: c.issuer.clone(),
        client_id: c.client_id.clone(),
        client_secret: String::from_utf8_lossy(&client_secret.first()?.1).into_owned(),
        ring: ring?,
        scopes,
        forward_claims,
        session_ttl_s,
        refresh_margin_s,
        allow_insecure_issuer: c.allow_insecure_issuer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::fn_env::EnvVar;
    use base64::Engine;

    fn env() -> FnEnv {
        let b64 = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
        let var = |v: String, secret| EnvVar { value: v, secret };
        FnEnv::new(
            [
                ("CS".to_owned(), var("s3cret".into(), true)),
                ("CK".to_owned(), var(format!("{},{}", b64(1), b64(2)), true)),
                ("PLAIN".to_owned(), var(b64(3), false)),
                ("SHORT".to_owned(), var("AAAA".into(), true)),
            ]
            .into_iter()
            .collect(),
        )
    }

    fn cfg(json: serde_json::Value) -> OidcConfig {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn compiles_a_valid_config() {
        let c = cfg(
            serde_json::json!({"issuer": "http://127.0.0.1:9000", "client_id": "web",
            "client_secret": "CS", "cookie_secret": "CK", "scopes": "openid offline_access"}),
        );
        let mut errors = vec![];
        let o = compile(&c, &env(), &mut errors).unwrap();
        assert!(errors.is_empty());
        assert_eq!(o.scopes, "openid offline_access");
        assert_eq!(o.session_ttl_s, DEFAULT_SESSION_TTL_S);
        assert_eq!(o.client_secret, "s3cret");
    }

    #[test]
    fn every_problem_is_collected_with_its_field() {
        let c = cfg(
            serde_json::json!({"issuer": "http://id.example", "client_id": "",
            "client_secret": "PLAIN", "cookie_secret": "SHORT", "scopes": ["profile"],
            "session_ttl_s": 1}),
        );
        let mut errors = vec![];
        assert!(compile(&c, &env(), &mut errors).is_none());
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "issuer",
                "client_id",
                "client_secret",
                "cookie_secret",
                "session_ttl_s",
                "scopes"
            ]
        );
        // No secret value appears in a message.
        assert!(errors.iter().all(|e| !e.message.contains("AAAA")));
        assert!(
            serde_json::from_value::<OidcConfig>(serde_json::json!({"issuer": "x",
            "client_id": "c", "client_secret": "CS", "cookie_secret": "CK", "typo": 1}))
            .is_err()
        );
    }
}
