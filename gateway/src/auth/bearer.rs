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
use super::jwks::{self, JwsAlg};
use super::jwt::JwtVerifier;
use super::secrets::{self, OneOrMany, SecretSet};
use super::{keys_file, AuthConfigError, AuthFailure, AuthRequest, Identity};
use crate::catalog::fn_env::FnEnv;

pub const MAX_LEEWAY_S: u64 = 600;
const DEFAULT_LEEWAY_S: u64 = 30;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BearerConfig {
    /// Env name(s) of static tokens.
    pub secret: Option<OneOrMany>,
    pub jwt: Option<JwtConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// JWKS file, relative to the function folder.
    pub jwks_file: String,
    pub issuer: Option<String>,
    pub audience: Option<OneOrMany>,
    /// Allowed `alg` values: any of RS256, ES256, EdDSA, HS256.
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp` / `nbf`, default 30 s.
    pub leeway_s: Option<u64>,
}

#[derive(Debug)]
enum Check {
    Static(SecretSet),
    Jwt(JwtVerifier),
}

#[derive(Debug)]
pub struct BearerPolicy {
    check: Check,
}

static CHALLENGE: HeaderValue = HeaderValue::from_static("Bearer");
static INVALID_TOKEN: HeaderValue = HeaderValue::from_static(r#"Bearer error="invalid_token""#);
static INVALID_REQUEST: HeaderValue = HeaderValue::from_static(r#"Bearer error="invalid_request""#);

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
        (None, Some(j)) => Check::Jwt(compile_jwt(j, fn_dir, &mut errors)),
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

fn compile_jwt(j: &JwtConfig, fn_dir: &Path, errors: &mut Vec<AuthConfigError>) -> JwtVerifier {
    let mut algorithms = Vec::new();
    if j.algorithms.is_empty() {
        errors.push(secrets::err(
            "jwt.algorithms",
            "is empty; list the algorithms your issuer signs with, e.g. [\"RS256\"]",
        ));
    }
    for a in &j.algorithms {
        match JwsAlg::parse(a) {
            Some(alg) => algorithms.push(alg),
            None => errors.push(secrets::err(
                "jwt.algorithms",
                &format!("{a:?} is not supported; use RS256, ES256, EdDSA or HS256 (\"none\" is never accepted)"),
            )),
        }
    }
    let keys = match keys_file::resolve_path(fn_dir, &j.jwks_file) {
        Err(e) => {
            errors.push(secrets::err("jwt.jwks_file", &e.to_string()));
            Vec::new()
        }
        Ok(path) => jwks::load(&path).unwrap_or_else(|e| {
            errors.push(secrets::err("jwt.jwks_file", &e.to_string()));
            Vec::new()
        }),
    };
    for alg in &algorithms {
        if !keys.is_empty() && !keys.iter().any(|k| k.alg == *alg) {
            errors.push(secrets::err(
                "jwt.algorithms",
                &format!("{} has no key of that type in the JWKS", alg.as_str()),
            ));
        }
    }
    let leeway_s = j.leeway_s.unwrap_or(DEFAULT_LEEWAY_S);
    if leeway_s > MAX_LEEWAY_S {
        errors.push(secrets::err(
            "jwt.leeway_s",
            &format!("{leeway_s} is over the {MAX_LEEWAY_S} s ceiling"),
        ));
    }
    if j.issuer.as_deref() == Some("") {
        errors.push(secrets::err(
            "jwt.issuer",
            "is empty; omit it or name the issuer",
        ));
    }
    JwtVerifier {
        keys,
        algorithms,
        issuer: j.issuer.clone(),
        audience: j
            .audience
            .as_ref()
            .map(|a| a.names().to_vec())
            .unwrap_or_default(),
        leeway_s,
    }
}

impl BearerPolicy {
    pub fn verify(&self, req: &AuthRequest<'_>) -> Result<Identity, AuthFailure> {
        let token = authorization::credentials(req.headers, "bearer").map_err(|e| AuthFailure {
            reason: e.reason(),
            challenge: Some(match e {
                AuthorizationError::Missing | AuthorizationError::WrongScheme => CHALLENGE.clone(),
                AuthorizationError::Malformed => INVALID_REQUEST.clone(),
            }),
        })?;
        let invalid = |reason| AuthFailure {
            reason,
            challenge: Some(INVALID_TOKEN.clone()),
        };
        let subject = match &self.check {
            Check::Static(set) => set
                .find(token.as_bytes())
                .cloned()
                .ok_or_else(|| invalid("unknown_token"))?,
            Check::Jwt(v) => {
                let claims = v
                    .verify(token, req.now_unix)
                    .map_err(|e| invalid(e.reason()))?;
                match claims.sub {
                    Some(sub) => Arc::from(sub),
                    None => {
                        return Ok(Identity {
                            kind: "bearer",
                            subject: None,
                        })
                    }
                }
            }
        };
        Ok(Identity {
            kind: "bearer",
            subject: Some(subject),
        })
    }

    pub fn openapi_scheme(&self) -> serde_json::Value {
        match &self.check {
            Check::Static(_) => json!({"type": "http", "scheme": "bearer"}),
            Check::Jwt(v) => json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": format!("JWT signed with {}", v.algorithms.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", "))}),
        }
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
        let f = p.verify(&req(&h, b"", 0)).unwrap_err();
        (f.reason, f.challenge.unwrap().to_str().unwrap().to_owned())
    }

    #[test]
    fn static_tokens_with_rotation() {
        let p = static_policy();
        for (tok, id) in [("tok-one", "T1"), ("tok-two", "T2")] {
            let h = headers(&[("authorization", &format!("Bearer {tok}"))]);
            assert_eq!(
                p.verify(&req(&h, b"", 0)).unwrap().subject.as_deref(),
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
}
