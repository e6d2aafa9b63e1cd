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

pub mod any_of;
pub mod api_key;
pub mod authorization;
pub mod basic;
pub mod basic_cache;
pub mod basic_slots;
pub mod bearer;
pub mod discovery;
pub mod hash_key;
pub mod headers;
pub mod hide;
pub mod hmac;
pub mod hmac_schemes;
pub mod http_fetch;
pub mod jwks;
pub mod jwks_fetch;
pub mod jwt;
pub mod jwt_cache;
pub mod jwt_config;
pub mod keys_file;
pub mod mtls;
pub mod oidc;
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
#[serde(try_from = "serde_json::Value")]
pub enum AuthConfig {
    None,
    ApiKey(api_key::ApiKeyConfig),
    Hmac(hmac::HmacConfig),
    Bearer(bearer::BearerConfig),
    Basic(basic::BasicConfig),
    /// `"auth": [ {...}, {...} ]`: admitted when any one admits (see [`any_of`]).
    AnyOf(Vec<AuthConfig>),
    /// A policy with `"forward_credentials": true`: the verified credential reaches the
    /// function (see [`hide`]).
    ForwardCredentials(Box<AuthConfig>),
    Mtls(mtls::MtlsConfig),
    Token(token::TokenConfig),
    Ed25519(ed25519::Ed25519Config),
    /// Browser login (see [`oidc`]).
    Oidc(oidc::config::OidcConfig),
}

impl TryFrom<serde_json::Value> for AuthConfig {
    type Error = String;

    /// An object is one policy; an array is any-of (its items objects, not arrays). Going
    /// through `Value` keeps serde's own messages (`unknown field ...`) for each item.
    fn try_from(v: serde_json::Value) -> Result<Self, String> {
        match v {
            serde_json::Value::Array(items) => any_of::parse(items),
            serde_json::Value::Object(mut obj) => {
                let forward = match obj.remove("forward_credentials") {
                    None | Some(serde_json::Value::Bool(false)) => false,
                    Some(serde_json::Value::Bool(true)) => true,
                    Some(_) => return Err("forward_credentials: expected true or false".into()),
                };
                let cfg = serde_json::from_value::<RawAuthConfig>(serde_json::Value::Object(obj))
                    .map(AuthConfig::from)
                    .map_err(|e| e.to_string())?;
                Ok(if forward {
                    AuthConfig::ForwardCredentials(Box::new(cfg))
                } else {
                    cfg
                })
            }
            other => serde_json::from_value::<RawAuthConfig>(other)
                .map(AuthConfig::from)
                .map_err(|e| e.to_string()),
        }
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum RawAuthConfig {
    None(NoFields),
    ApiKey(api_key::ApiKeyConfig),
    Hmac(hmac::HmacConfig),
    Bearer(bearer::BearerConfig),
    Basic(basic::BasicConfig),
    Mtls(mtls::MtlsConfig),
    Token(token::TokenConfig),
    Ed25519(ed25519::Ed25519Config),
    Oidc(oidc::config::OidcConfig),
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
            RawAuthConfig::Mtls(c) => AuthConfig::Mtls(c),
            RawAuthConfig::Token(c) => AuthConfig::Token(c),
            RawAuthConfig::Ed25519(c) => AuthConfig::Ed25519(c),
            RawAuthConfig::Oidc(c) => AuthConfig::Oidc(c),
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
    /// The client's address (Basic auth budgets PBKDF2 work per address).
    pub peer: std::net::IpAddr,
}

/// An admitted request: who, and the verified claims the policy forwards
/// (`event.context.auth.claims`).
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    pub identity: Identity,
    pub claims: Option<Arc<jwt::ClaimMap>>,
}

impl From<Identity> for Admitted {
    fn from(identity: Identity) -> Self {
        Admitted {
            identity,
            claims: None,
        }
    }
}

/// Why a request was not admitted, by the answer it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 401: no credential, or a wrong one.
    Unauthorized(AuthFailure),
    /// 403: a valid credential without the scopes or claims the function asks for.
    Forbidden(AuthFailure),
    /// 503: the policy cannot decide yet (no key set was ever fetched).
    Unavailable(AuthFailure),
    /// The token names a key not (yet) in the fetched set: fetch, then decide again with
    /// [`Policy::verify_refreshed`] (the asynchronous path).
    RefreshKeys,
    /// OIDC: no usable session. A browser's GET/HEAD is sent to the provider (302 on
    /// the asynchronous path); anything else gets this 401.
    Login(AuthFailure),
    /// OIDC: the session is due for a refresh with its refresh token (the asynchronous
    /// path posts it, then admits or ends the session).
    RefreshSession,
}

impl Refusal {
    /// The failure, or the metric reason `refresh_keys` for a pending fetch.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Unauthorized(f)
            | Refusal::Forbidden(f)
            | Refusal::Unavailable(f)
            | Refusal::Login(f) => f.reason,
            Refusal::RefreshKeys => "refresh_keys",
            Refusal::RefreshSession => "refresh_session",
        }
    }
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
    /// Removed from the request before the function sees it.
    hidden: hide::Hidden,
}

#[derive(Debug)]
enum Inner {
    None,
    ApiKey(api_key::ApiKeyPolicy),
    Hmac(hmac::HmacPolicy),
    Bearer(bearer::BearerPolicy),
    Basic(basic::BasicPolicy),
    AnyOf(any_of::AnyOfPolicy),
    Mtls(mtls::MtlsPolicy),
    Token(token::TokenPolicy),
    Ed25519(ed25519::Ed25519Policy),
    Oidc(Box<oidc::policy::OidcPolicy>),
}

/// What a policy reads besides the request: the connection's verified client
/// certificate, and whether it may ask for a key fetch.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub client: Option<&'a mtls::ClientCert>,
    pub may_wait: bool,
}

impl Policy {
    pub fn none() -> Self {
        Self {
            inner: Inner::None,
            hidden: hide::Hidden::default(),
        }
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
            AuthConfig::AnyOf(list) => Inner::AnyOf(any_of::compile(list, env, fn_dir)?),
            AuthConfig::Mtls(c) => Inner::Mtls(mtls::compile(c)?),
            AuthConfig::ForwardCredentials(cfg) => {
                let mut p = Policy::compile(cfg, env, fn_dir)?;
                p.hidden = hide::Hidden::default();
                return Ok(p);
            }
            AuthConfig::Token(c) => Inner::Token(token::compile(c, env)?),
            AuthConfig::Ed25519(c) => Inner::Ed25519(ed25519::compile(c, env)?),
            AuthConfig::Oidc(c) => Inner::Oidc(Box::new(oidc::policy::compile(c, env)?)),
        };
        let hidden = match &inner {
            Inner::None | Inner::Hmac(_) | Inner::Mtls(_) | Inner::Ed25519(_) => {
                hide::Hidden::default()
            }
            Inner::Token(p) => hide::Hidden {
                headers: vec![p.header().clone()],
                ..Default::default()
            },
            Inner::Oidc(_) => hide::Hidden::oidc_cookies(),
            Inner::ApiKey(p) => {
                let (header, query) = p.credential_location();
                hide::Hidden {
                    headers: vec![header.clone()],
                    query_params: if query {
                        vec![api_key::QUERY_PARAM]
                    } else {
                        vec![]
                    },
                    ..Default::default()
                }
            }
            Inner::Bearer(_) | Inner::Basic(_) => hide::Hidden::authorization(),
            Inner::AnyOf(p) => p.hidden(),
        };
        Ok(Policy { inner, hidden })
    }

    /// The credential headers and query parameters the function does not see.
    pub fn hidden(&self) -> &hide::Hidden {
        &self.hidden
    }

    /// The `type` label: `none`, `api_key`, `hmac`, `bearer`, `basic`.
    pub fn kind(&self) -> &'static str {
        match self.inner {
            Inner::None => "none",
            Inner::ApiKey(_) => "api_key",
            Inner::Hmac(_) => "hmac",
            Inner::Bearer(_) => "bearer",
            Inner::Basic(_) => "basic",
            Inner::AnyOf(_) => "any_of",
            Inner::Mtls(_) => "mtls",
            Inner::Token(_) => "token",
            Inner::Ed25519(_) => "ed25519",
            Inner::Oidc(_) => "oidc",
        }
    }

    /// What `edgefn check` prints: the type, or an any-of list's types (`oidc|api_key`).
    pub fn label(&self) -> String {
        match &self.inner {
            Inner::AnyOf(p) => p.label(),
            _ => self.kind().to_owned(),
        }
    }

    /// True when verification needs the raw body (HMAC): the gateway reads it first.
    pub fn needs_body(&self) -> bool {
        match &self.inner {
            Inner::AnyOf(p) => p.needs_body(),
            inner => matches!(inner, Inner::Hmac(_) | Inner::Ed25519(_)),
        }
    }

    /// True when verification reads `AuthRequest::now_unix` (timestamps, replay windows,
    /// JWT `exp`/`nbf`); for the other policies the gateway skips reading the wall clock.
    /// Deliberately broad: every policy that could look at time says yes.
    pub fn needs_clock(&self) -> bool {
        matches!(
            self.inner,
            Inner::Hmac(_)
                | Inner::Bearer(_)
                | Inner::AnyOf(_)
                | Inner::Ed25519(_)
                | Inner::Oidc(_)
        )
    }

    /// Decides the request; may answer [`Refusal::RefreshKeys`].
    pub fn verify(&self, req: &AuthRequest<'_>) -> Result<Admitted, Refusal> {
        self.check(
            req,
            Context {
                client: None,
                may_wait: true,
            },
        )
    }

    /// Decides again after [`Policy::refresh_keys`]: never [`Refusal::RefreshKeys`].
    pub fn verify_refreshed(&self, req: &AuthRequest<'_>) -> Result<Admitted, Refusal> {
        self.check(
            req,
            Context {
                client: None,
                may_wait: false,
            },
        )
    }

    /// Fetches the key sets a [`Refusal::RefreshKeys`] asked for (bounded wait).
    pub async fn refresh_keys(&self) {
        match &self.inner {
            Inner::Bearer(p) => {
                if let Some(r) = p.remote_keys() {
                    r.refresh().await;
                }
            }
            Inner::AnyOf(p) => p.refresh_keys().await,
            Inner::None
            | Inner::ApiKey(_)
            | Inner::Hmac(_)
            | Inner::Basic(_)
            | Inner::Mtls(_)
            | Inner::Token(_)
            | Inner::Ed25519(_)
            | Inner::Oidc(_) => {}
        }
    }

    /// The OIDC login policy, alone or among any-of alternatives.
    pub fn oidc(&self) -> Option<&oidc::policy::OidcPolicy> {
        match &self.inner {
            Inner::Oidc(p) => Some(p),
            Inner::AnyOf(p) => p.oidc(),
            _ => None,
        }
    }

    /// Decides the request with its connection's context.
    pub fn check(&self, req: &AuthRequest<'_>, ctx: Context<'_>) -> Result<Admitted, Refusal> {
        let plain =
            |r: Result<Identity, AuthFailure>| r.map(Admitted::from).map_err(Refusal::Unauthorized);
        match &self.inner {
            Inner::None => Ok(Identity {
                kind: "none",
                subject: None,
            }
            .into()),
            Inner::ApiKey(p) => plain(p.verify(req)),
            Inner::Hmac(p) => plain(p.verify(req)),
            Inner::Bearer(p) => p.verify(req, ctx.may_wait),
            Inner::Basic(p) => plain(p.verify(req)),
            Inner::AnyOf(p) => p.verify(req, ctx),
            Inner::Mtls(p) => plain(p.verify(ctx.client)),
            Inner::Token(p) => plain(p.verify(req)),
            Inner::Ed25519(p) => plain(p.verify(req)),
            Inner::Oidc(p) => p.verify(req),
        }
    }

    pub(crate) fn is_none(&self) -> bool {
        matches!(self.inner, Inner::None)
    }

    /// The OpenAPI security scheme object for this policy (never a secret), if any.
    pub fn openapi_scheme(&self) -> Option<serde_json::Value> {
        match &self.inner {
            Inner::None => None,
            Inner::ApiKey(p) => Some(p.openapi_scheme()),
            Inner::Hmac(p) => Some(p.openapi_scheme()),
            Inner::Bearer(p) => Some(p.openapi_scheme()),
            Inner::Basic(p) => Some(p.openapi_scheme()),
            Inner::AnyOf(_) => None,
            Inner::Mtls(p) => Some(p.openapi_scheme()),
            Inner::Token(p) => Some(p.openapi_scheme()),
            Inner::Ed25519(p) => Some(p.openapi_scheme()),
            Inner::Oidc(p) => Some(p.openapi_scheme()),
        }
    }

    /// The OpenAPI security schemes of every alternative (any-of), in order; one entry for
    /// a single policy.
    pub fn openapi_alternatives(&self) -> Vec<Option<serde_json::Value>> {
        match &self.inner {
            Inner::AnyOf(p) => p.openapi_alternatives(),
            _ => vec![self.openapi_scheme()],
        }
    }

    /// [`Policy::verify`] leaving the replay check to the caller: a timestamped webhook
    /// returns its [`replay::ReplayClaim`] (for the cluster store); every other policy
    /// verifies as usual and returns none.
    pub fn verify_deferred(
        &self,
        req: &AuthRequest<'_>,
        ctx: Context<'_>,
    ) -> Result<(Admitted, Option<replay::ReplayClaim>), Refusal> {
        match &self.inner {
            Inner::Hmac(p) => p
                .verify_deferred(req)
                .map(|(id, c)| (id.into(), c))
                .map_err(Refusal::Unauthorized),
            Inner::Ed25519(p) => p
                .verify_deferred(req)
                .map(|(id, c)| (id.into(), Some(c)))
                .map_err(Refusal::Unauthorized),
            _ => self.check(req, ctx).map(|a| (a, None)),
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
            peer: std::net::IpAddr::from([127, 0, 0, 1]),
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
    fn forward_credentials_keeps_the_credential() {
        let env = test_support::env(&[("K", "key-secret")]);
        let hidden = |v: &str| {
            let cfg: AuthConfig = serde_json::from_str(v).unwrap();
            let p = Policy::compile(&cfg, &env, Path::new("/x")).unwrap();
            (p.kind(), p.hidden().clone())
        };
        let (kind, h) = hidden(r#"{"type":"api_key","secret":"K","query":true}"#);
        assert_eq!(kind, "api_key");
        assert_eq!(h.headers, [http::HeaderName::from_static("x-api-key")]);
        assert_eq!(h.query_params, ["api_key"]);
        let (kind, h) = hidden(r#"{"type":"api_key","secret":"K","forward_credentials":true}"#);
        assert_eq!(kind, "api_key");
        assert!(h.is_empty());
        let (_, h) = hidden(r#"[{"type":"bearer","secret":"K"},{"type":"api_key","secret":"K"}]"#);
        assert_eq!(h.headers.len(), 2);
        let e = serde_json::from_str::<AuthConfig>(r#"{"type":"none","forward_credentials":1}"#);
        assert!(e.unwrap_err().to_string().contains("forward_credentials"));
    }

    #[test]
    fn none_policy() {
        let p = Policy::none();
        let h = http::HeaderMap::new();
        let id = p.verify(&test_support::req(&h, b"", 0)).unwrap().identity;
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
