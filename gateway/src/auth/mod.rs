//! Hot-path authentication. `fn.config.json`'s `"auth"` object is parsed into
//! [`AuthConfig`] (raw, serde), compiled once per reload into a [`Policy`] (keys as
//! `ring` objects, digests precomputed), and the request path only calls
//! [`Policy::verify`].
//!
//! One module per policy type (`api_key`, `hmac`, `bearer`, `basic`), one per parser of
//! outside input (`hmac_schemes`, `authorization`, `jwt`), and the shared pieces: `secrets`
//! (env names → constant-time sets), `keys_file`, `jwks`, `replay`, `hash_key` (the
//! `edgefn hash-key` formats). Failures carry a bounded `reason` label and never the
//! presented value.

pub mod api_key;
pub mod authorization;
pub mod basic;
pub mod basic_cache;
pub mod bearer;
pub mod hash_key;
pub mod headers;
pub mod hmac;
pub mod hmac_schemes;
pub mod jwks;
pub mod jwt;
pub mod keys_file;
pub mod replay;
pub mod secrets;
// Webhook signatures beyond the first four schemes (issue 16).
pub mod ed25519;
pub mod hmac_standard;
pub mod hmac_twilio;
pub mod hmac_zoom;
pub mod token;

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::catalog::fn_env::FnEnv;

/// Raw `"auth"` object of `fn.config.json`, tagged by `"type"` (snake_case), unknown keys
/// refused. Deserialized through [`RawAuthConfig`], whose `None` carries an empty struct:
/// a unit variant would silently accept `{"type": "none", "secret": ...}`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(from = "RawAuthConfig")]
pub enum AuthConfig {
    None,
    ApiKey(api_key::ApiKeyConfig),
    Hmac(hmac::HmacConfig),
    Bearer(bearer::BearerConfig),
    Basic(basic::BasicConfig),
    Token(token::TokenConfig),
    Ed25519(ed25519::Ed25519Config),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum RawAuthConfig {
    None(NoFields),
    ApiKey(api_key::ApiKeyConfig),
    Hmac(hmac::HmacConfig),
    Bearer(bearer::BearerConfig),
    Basic(basic::BasicConfig),
    Token(token::TokenConfig),
    Ed25519(ed25519::Ed25519Config),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

impl From<RawAuthConfig> for AuthConfig {
    fn from(raw: RawAuthConfig) -> Self {
        match raw {
            RawAuthConfig::None(NoFields {}) => AuthConfig::None,
            RawAuthConfig::ApiKey(c) => AuthConfig::ApiKey(c),
            RawAuthConfig::Hmac(c) => AuthConfig::Hmac(c),
            RawAuthConfig::Bearer(c) => AuthConfig::Bearer(c),
            RawAuthConfig::Basic(c) => AuthConfig::Basic(c),
            RawAuthConfig::Token(c) => AuthConfig::Token(c),
            RawAuthConfig::Ed25519(c) => AuthConfig::Ed25519(c),
        }
    }
}

/// A config error inside `"auth"`; `field` is a dotted path below `auth` (e.g. `secret`).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("auth.{field}: {message}")]
pub struct AuthConfigError {
    pub field: String,
    pub message: String,
}

/// What the request presents, borrowed from the request.
pub struct AuthRequest<'a> {
    pub headers: headers::Headers<'a>,
    /// Raw query string without `?`.
    pub query: Option<&'a str>,
    /// Request path (Twilio signs the URL).
    pub path: &'a str,
    /// Raw body bytes; empty unless [`Policy::needs_body`].
    pub body: &'a [u8],
    /// Seconds since the Unix epoch, read once per request.
    pub now_unix: u64,
}

/// Who was let in; handed to the function as `event.context.auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `"none"`, `"api_key"`, `"hmac"`, `"bearer"`, `"basic"`.
    pub kind: &'static str,
    /// Key id, JWT `sub`, Basic user name; never the credential itself.
    pub subject: Option<Arc<str>>,
}

/// Why a request was refused. `reason` is a bounded metric label value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    pub reason: &'static str,
    /// `WWW-Authenticate` value, when the scheme defines one.
    pub challenge: Option<http::HeaderValue>,
}

impl AuthFailure {
    /// A failure without a challenge (API keys, webhook signatures).
    pub fn new(reason: &'static str) -> Self {
        Self {
            reason,
            challenge: None,
        }
    }
}

/// A compiled policy.
#[derive(Debug)]
pub struct Policy {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    None,
    ApiKey(api_key::ApiKeyPolicy),
    Hmac(hmac::HmacPolicy),
    Bearer(bearer::BearerPolicy),
    Basic(basic::BasicPolicy),
    Token(token::TokenPolicy),
    Ed25519(ed25519::Ed25519Policy),
}

impl Policy {
    pub fn none() -> Self {
        Self { inner: Inner::None }
    }

    /// Compiles the raw config against the function's env (secret names are env names).
    pub fn compile(
        cfg: &AuthConfig,
        env: &FnEnv,
        fn_dir: &Path,
    ) -> Result<Policy, Vec<AuthConfigError>> {
        let inner = match cfg {
            AuthConfig::None => Inner::None,
            AuthConfig::ApiKey(c) => Inner::ApiKey(api_key::compile(c, env, fn_dir)?),
            AuthConfig::Hmac(c) => Inner::Hmac(hmac::compile(c, env)?),
            AuthConfig::Bearer(c) => Inner::Bearer(bearer::compile(c, env, fn_dir)?),
            AuthConfig::Basic(c) => Inner::Basic(basic::compile(c, env)?),
            AuthConfig::Token(c) => Inner::Token(token::compile(c, env)?),
            AuthConfig::Ed25519(c) => Inner::Ed25519(ed25519::compile(c, env)?),
        };
        Ok(Policy { inner })
    }

    /// The `type` label: `none`, `api_key`, `hmac`, `bearer`, `basic`.
    pub fn kind(&self) -> &'static str {
        match self.inner {
            Inner::None => "none",
            Inner::ApiKey(_) => "api_key",
            Inner::Hmac(_) => "hmac",
            Inner::Bearer(_) => "bearer",
            Inner::Basic(_) => "basic",
            Inner::Token(_) => "token",
            Inner::Ed25519(_) => "ed25519",
        }
    }

    /// True when verification needs the raw body (HMAC): the gateway reads it first.
    pub fn needs_body(&self) -> bool {
        matches!(self.inner, Inner::Hmac(_) | Inner::Ed25519(_))
    }

    /// True when verification reads `AuthRequest::now_unix` (timestamps, replay windows,
    /// JWT `exp`/`nbf`); for the other policies the gateway skips reading the wall clock.
    /// Deliberately broad: every policy that could look at time says yes.
    pub fn needs_clock(&self) -> bool {
        matches!(
            self.inner,
            Inner::Hmac(_) | Inner::Bearer(_) | Inner::Ed25519(_)
        )
    }

    pub fn verify(&self, req: &AuthRequest<'_>) -> Result<Identity, AuthFailure> {
        match &self.inner {
            Inner::None => Ok(Identity {
                kind: "none",
                subject: None,
            }),
            Inner::ApiKey(p) => p.verify(req),
            Inner::Hmac(p) => p.verify(req),
            Inner::Bearer(p) => p.verify(req),
            Inner::Basic(p) => p.verify(req),
            Inner::Token(p) => p.verify(req),
            Inner::Ed25519(p) => p.verify(req),
        }
    }

    /// The OpenAPI security scheme object for this policy (never a secret), if any.
    pub fn openapi_scheme(&self) -> Option<serde_json::Value> {
        match &self.inner {
            Inner::None => None,
            Inner::ApiKey(p) => Some(p.openapi_scheme()),
            Inner::Hmac(p) => Some(p.openapi_scheme()),
            Inner::Bearer(p) => Some(p.openapi_scheme()),
            Inner::Basic(p) => Some(p.openapi_scheme()),
            Inner::Token(p) => Some(p.openapi_scheme()),
            Inner::Ed25519(p) => Some(p.openapi_scheme()),
        }
    }

    /// [`Policy::verify`] leaving the replay check to the caller: a timestamped webhook
    /// returns its [`replay::ReplayClaim`] (for the cluster store); every other policy
    /// verifies as usual and returns none.
    pub fn verify_deferred(
        &self,
        req: &AuthRequest<'_>,
    ) -> Result<(Identity, Option<replay::ReplayClaim>), AuthFailure> {
        match &self.inner {
            Inner::Hmac(p) => p.verify_deferred(req),
            Inner::Ed25519(p) => p.verify_deferred(req).map(|(id, c)| (id, Some(c))),
            _ => self.verify(req).map(|id| (id, None)),
        }
    }

    /// Records a claim in the policy's own replay guard; false for a replay.
    pub fn claim_locally(&self, claim: &replay::ReplayClaim, now_unix: u64) -> bool {
        match &self.inner {
            Inner::Hmac(p) => p.claim_locally(claim, now_unix),
            Inner::Ed25519(p) => p.claim_locally(claim, now_unix),
            _ => true,
        }
    }

    /// The gateway's own answer to a verified request that is a sender's handshake rather
    /// than an event (Zoom's `endpoint.url_validation`); `None` sends it to the function.
    pub fn direct_answer(&self, identity: &Identity, body: &[u8]) -> Option<bytes::Bytes> {
        match (&self.inner, identity.subject.as_deref()) {
            (Inner::Hmac(p), Some(key)) => p.direct_answer(key, body),
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::collections::BTreeMap;

    use http::{HeaderMap, HeaderName, HeaderValue};

    use super::AuthRequest;
    use crate::catalog::fn_env::{EnvVar, FnEnv};

    /// An env whose variables are all marked secret.
    pub fn env(vars: &[(&str, &str)]) -> FnEnv {
        FnEnv::new(
            vars.iter()
                .map(|(k, v)| {
                    let var = EnvVar {
                        value: (*v).to_owned(),
                        secret: true,
                    };
                    ((*k).to_owned(), var)
                })
                .collect::<BTreeMap<_, _>>(),
        )
    }

    pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    pub fn req<'a>(headers: &'a HeaderMap, body: &'a [u8], now_unix: u64) -> AuthRequest<'a> {
        AuthRequest {
            headers: super::headers::Headers::Map(headers),
            query: None,
            path: "/",
            body,
            now_unix,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_shapes() {
        let c: AuthConfig = serde_json::from_str(r#"{"type":"api_key","secret":"K"}"#).unwrap();
        assert!(matches!(c, AuthConfig::ApiKey(_)));
        let e = serde_json::from_str::<AuthConfig>(r#"{"type":"api_key","secrets":"K"}"#);
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("unknown field `secrets`"));
        let e = serde_json::from_str::<AuthConfig>(r#"{"type":"oauth"}"#);
        assert!(e.is_err());
        let none: AuthConfig = serde_json::from_str(r#"{"type":"none"}"#).unwrap();
        assert_eq!(none, AuthConfig::None);
        let e = serde_json::from_str::<AuthConfig>(r#"{"type":"none","secret":"K"}"#);
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("unknown field `secret`"));
    }

    #[test]
    fn none_policy() {
        let p = Policy::none();
        let h = http::HeaderMap::new();
        let id = p.verify(&test_support::req(&h, b"", 0)).unwrap();
        assert_eq!((id.kind, id.subject), ("none", None));
        assert!(p.openapi_scheme().is_none() && !p.needs_body());
    }

    #[test]
    fn debug_output_never_holds_a_secret() {
        let users = format!(
            "ops:{}",
            hash_key::basic_hash(b"pw-secret", hash_key::MIN_ITERATIONS)
        );
        let env = test_support::env(&[("K", "key-secret"), ("H", "hmac-secret"), ("U", &users)]);
        let configs = [
            r#"{"type":"api_key","secret":"K"}"#,
            r#"{"type":"hmac","scheme":"stripe","secret":"H"}"#,
            r#"{"type":"bearer","secret":"K"}"#,
            r#"{"type":"basic","users":"U"}"#,
        ];
        for c in configs {
            let cfg: AuthConfig = serde_json::from_str(c).unwrap();
            let p = Policy::compile(&cfg, &env, Path::new("/nonexistent")).unwrap();
            let debug = format!("{p:?}");
            for secret in ["key-secret", "hmac-secret", "pw-secret", "pbkdf2"] {
                assert!(!debug.contains(secret), "{c}: {debug}");
            }
        }
    }
}
