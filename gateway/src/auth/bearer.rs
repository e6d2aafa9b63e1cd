//! `"type": "bearer"`: `Authorization: Bearer <token>` checked either against static
//! tokens (env names, rotation; a [`SecretSet`], so constant time) or as a JWT against a
//! JWKS file. Failures carry an RFC 6750 challenge: `Bearer` alone when nothing was
//! presented, `error="invalid_request"` for a malformed header, else `invalid_token`.

use std::path::Path;
use std::sync::Arc;

use http::HeaderValue;
use serde::Deserialize;
use serde_json::json;

use super::authorization::{self, AuthorizationError};
use super::jwt::{JwtError, JwtVerifier, KeySource};
use super::jwt_cache::{JwtCache, Verified};
use super::secrets::{self, OneOrMany, SecretSet};
use super::{Admitted, AuthConfigError, AuthFailure, AuthRequest, Identity, Refusal};
use crate::catalog::fn_env::FnEnv;

pub use super::jwt_config::MAX_LEEWAY_S;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BearerConfig {
    /// Env name(s) of static tokens.
    pub secret: Option<OneOrMany>,
    pub jwt: Option<JwtConfig>,
}

pub use super::jwt_config::JwtConfig;

#[derive(Debug)]
enum Check {
    Static(SecretSet),
    Jwt(JwtVerifier, Option<JwtCache>),
}

#[derive(Debug)]
pub struct BearerPolicy {
    check: Check,
}

static CHALLENGE: HeaderValue = HeaderValue::from_static("Bearer");
static INVALID_TOKEN: HeaderValue = HeaderValue::from_static(r#"Bearer error="invalid_token""#);
static INVALID_REQUEST: HeaderValue = HeaderValue::from_static(r#"Bearer error="invalid_request""#);
static INSUFFICIENT_SCOPE: HeaderValue =
    HeaderValue::from_static(r#"Bearer error="insufficient_scope""#);

pub fn compile(
    cfg: &BearerConfig,
    env: &FnEnv,
    fn_dir: &Path,
) -> Result<BearerPolicy, Vec<AuthConfigError>> {
    let mut errors = Vec::new();
    let check = match (&cfg.secret, &cfg.jwt) {
        (Some(names), None) => Check::Static(SecretSet::from_values(secrets::resolve(
            names,
            env,
            "secret",
            &mut errors,
        ))),
        (None, Some(j)) => {
            let (verifier, cache) = super::jwt_config::compile(j, fn_dir, &mut errors);
            Check::Jwt(verifier, cache)
        }
        _ => {
            errors.push(secrets::err(
                "secret",
                "set exactly one of \"secret\" (static tokens) or \"jwt\"",
            ));
            Check::Static(SecretSet::from_digests([]))
        }
    };
    if errors.is_empty() {
        Ok(BearerPolicy { check })
    } else {
        Err(errors)
    }
}

impl BearerPolicy {
    /// `may_wait`: an unknown `kid` (or no key set yet) may answer
    /// [`Refusal::RefreshKeys`] so the caller fetches and asks again with `false`.
    pub fn verify(&self, req: &AuthRequest<'_>, may_wait: bool) -> Result<Admitted, Refusal> {
        let token = authorization::credentials(req.headers, "bearer").map_err(|e| {
            Refusal::Unauthorized(AuthFailure {
                reason: e.reason(),
                challenge: Some(match e {
                    AuthorizationError::Missing | AuthorizationError::WrongScheme => {
                        CHALLENGE.clone()
                    }
                    AuthorizationError::Malformed => INVALID_REQUEST.clone(),
                }),
            })
        })?;
        match &self.check {
            Check::Static(set) => {
                let subject = set.find(token.as_bytes()).cloned().ok_or_else(|| {
                    Refusal::Unauthorized(AuthFailure {
                        reason: "unknown_token",
                        challenge: Some(INVALID_TOKEN.clone()),
                    })
                })?;
                Ok(bearer(Some(subject), None))
            }
            Check::Jwt(v, cache) => verify_jwt(v, cache.as_ref(), token, req.now_unix, may_wait),
        }
    }

    /// The key source to refresh before asking again, when it is fetched.
    pub fn remote_keys(&self) -> Option<&Arc<super::jwks_fetch::RemoteKeys>> {
        match &self.check {
            Check::Jwt(v, _) => match &v.keys {
                KeySource::Remote(r) => Some(r),
                KeySource::Static(_) => None,
            },
            Check::Static(_) => None,
        }
    }

    pub fn openapi_scheme(&self) -> serde_json::Value {
        match &self.check {
            Check::Static(_) => json!({"type": "http", "scheme": "bearer"}),
            Check::Jwt(v, _) => json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": format!("JWT signed with {}", v.algorithms.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", "))}),
        }
    }
}

fn bearer(subject: Option<Arc<str>>, claims: Option<Arc<super::jwt::ClaimMap>>) -> Admitted {
    Admitted {
        identity: Identity {
            kind: "bearer",
            subject,
        },
        claims,
    }
}

fn verify_jwt(
    v: &JwtVerifier,
    cache: Option<&JwtCache>,
    token: &str,
    now: u64,
    may_wait: bool,
) -> Result<Admitted, Refusal> {
    let hit = cache.and_then(|c| {
        let generation = v.keys.current()?.generation;
        c.get(token, now, generation)
    });
    let verified = match hit {
        Some(hit) => hit,
        None => {
            let (claims, generation) = v.verify(token, now).map_err(|e| refusal(v, e, may_wait))?;
            let verified = Arc::new(Verified {
                subject: claims.sub.map(Arc::from),
                forwarded: claims.forwarded.map(Arc::new),
                valid_until: claims.exp + v.leeway_s as f64,
                generation,
            });
            if let Some(c) = cache {
                c.insert(token, now, verified.clone());
            }
            verified
        }
    };
    Ok(bearer(verified.subject.clone(), verified.forwarded.clone()))
}

fn refusal(v: &JwtVerifier, e: JwtError, may_wait: bool) -> Refusal {
    let failure = |challenge: Option<&HeaderValue>| AuthFailure {
        reason: e.reason(),
        challenge: challenge.cloned(),
    };
    let can_fetch = may_wait && matches!(&v.keys, KeySource::Remote(r) if r.may_refresh());
    match e {
        JwtError::UnknownKey | JwtError::NoKeySet if can_fetch => Refusal::RefreshKeys,
        JwtError::NoKeySet => Refusal::Unavailable(failure(None)),
        JwtError::InsufficientScope | JwtError::ClaimMismatch => {
            Refusal::Forbidden(failure(Some(&INSUFFICIENT_SCOPE)))
        }
        _ => Refusal::Unauthorized(failure(Some(&INVALID_TOKEN))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_support::{env, headers, req};

    fn static_policy() -> BearerPolicy {
        let cfg: BearerConfig = serde_json::from_value(json!({"secret": ["T1", "T2"]})).unwrap();
        compile(
            &cfg,
            &env(&[("T1", "tok-one"), ("T2", "tok-two")]),
            Path::new("/nonexistent"),
        )
        .unwrap()
    }

    fn fail(p: &BearerPolicy, auth: Option<&str>) -> (&'static str, String) {
        let h = headers(&auth.map(|a| vec![("authorization", a)]).unwrap_or_default());
        let Err(Refusal::Unauthorized(f)) = p.verify(&req(&h, b"", 0), true) else {
            panic!("not a 401")
        };
        (f.reason, f.challenge.unwrap().to_str().unwrap().to_owned())
    }

    #[test]
    fn static_tokens_with_rotation() {
        let p = static_policy();
        for (tok, id) in [("tok-one", "T1"), ("tok-two", "T2")] {
            let h = headers(&[("authorization", &format!("Bearer {tok}"))]);
            assert_eq!(
                p.verify(&req(&h, b"", 0), true)
                    .unwrap()
                    .identity
                    .subject
                    .as_deref(),
                Some(id)
            );
        }
        assert_eq!(fail(&p, None), ("missing", "Bearer".into()));
        assert_eq!(
            fail(&p, Some("Basic dG9r")),
            ("wrong_scheme", "Bearer".into())
        );
        assert_eq!(
            fail(&p, Some("Bearer a b")),
            ("malformed", r#"Bearer error="invalid_request""#.into())
        );
        assert_eq!(
            fail(&p, Some("Bearer tok-three")),
            ("unknown_token", r#"Bearer error="invalid_token""#.into())
        );
    }

    #[test]
    fn jwt_config_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("jwks.json"), r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#).unwrap();
        let cfg: BearerConfig = serde_json::from_value(json!({"jwt": {"jwks_file": "jwks.json", "algorithms": ["none", "RS256"], "leeway_s": 9999}})).unwrap();
        let errs = compile(&cfg, &env(&[]), dir.path()).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["jwt.algorithms", "jwt.algorithms", "jwt.leeway_s"],
            "{errs:?}"
        );
        let ok: BearerConfig = serde_json::from_value(
            json!({"jwt": {"jwks_file": "jwks.json", "algorithms": ["EdDSA"]}}),
        )
        .unwrap();
        let p = compile(&ok, &env(&[]), dir.path()).unwrap();
        assert_eq!(p.openapi_scheme()["bearerFormat"], "JWT");
        let escape: BearerConfig = serde_json::from_value(
            json!({"jwt": {"jwks_file": "../jwks.json", "algorithms": ["EdDSA"]}}),
        )
        .unwrap();
        assert_eq!(
            compile(&escape, &env(&[]), dir.path()).unwrap_err()[0].field,
            "jwt.jwks_file"
        );
    }

    #[test]
    fn verified_tokens_are_cached_and_failures_are_not() {
        use base64::Engine;
        let dir = tempfile::tempdir().unwrap();
        let key = b"an-hs256-key-of-at-least-32-bytes!!";
        let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key);
        std::fs::write(
            dir.path().join("jwks.json"),
            json!({"keys": [{"kty": "oct", "k": k}]}).to_string(),
        )
        .unwrap();
        let cfg: BearerConfig = serde_json::from_value(
            json!({"jwt": {"jwks_file": "jwks.json", "algorithms": ["HS256"], "required_scopes": "read"}}),
        )
        .unwrap();
        let p = compile(&cfg, &env(&[]), dir.path()).unwrap();
        let sign = |claims: serde_json::Value| {
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let input = format!(
                "{}.{}",
                b64.encode(r#"{"alg":"HS256"}"#),
                b64.encode(claims.to_string())
            );
            let sig = ring::hmac::sign(
                &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
                input.as_bytes(),
            );
            format!("Bearer {input}.{}", b64.encode(sig))
        };
        let good = sign(json!({"sub": "u", "exp": 2000, "scope": "read"}));
        let weak = sign(json!({"sub": "u", "exp": 2000, "scope": "profile"}));
        let Check::Jwt(_, Some(cache)) = &p.check else {
            panic!("cache on by default")
        };
        for _ in 0..2 {
            let h = headers(&[("authorization", &good)]);
            let a = p.verify(&req(&h, b"", 1500), true).unwrap();
            assert_eq!(a.identity.subject.as_deref(), Some("u"));
        }
        assert_eq!(cache.len(), 1);
        let h = headers(&[("authorization", &weak)]);
        let Err(Refusal::Forbidden(f)) = p.verify(&req(&h, b"", 1500), true) else {
            panic!("403")
        };
        assert_eq!(
            f.challenge.unwrap().to_str().unwrap(),
            r#"Bearer error="insufficient_scope""#
        );
        assert_eq!(cache.len(), 1, "refusals are not cached");
        let h = headers(&[("authorization", &good)]);
        let Err(Refusal::Unauthorized(f)) = p.verify(&req(&h, b"", 2100), true) else {
            panic!("expired, even though cached")
        };
        assert_eq!(f.reason, "expired");
    }
}
