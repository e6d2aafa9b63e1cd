//! `"type": "token"`: a plain shared token in a header of the sender's choice (GitLab's
//! `X-Gitlab-Token`, and the many senders that copy it). Nothing is signed, so the token is
//! the whole proof: accepted values come from env names (`secret`, several for rotation)
//! and are held as a [`SecretSet`], compared in constant time; the matched env name is the
//! subject.

use http::HeaderName;
use serde::Deserialize;
use serde_json::json;

use super::api_key::{extract, ApiKeyError};
use super::secrets::{self, OneOrMany, SecretSet};
use super::{AuthConfigError, AuthFailure, AuthRequest, Identity};
use crate::catalog::fn_env::FnEnv;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Header carrying the token, e.g. `x-gitlab-token`.
    pub header: String,
    /// Env name(s) of accepted tokens.
    pub secret: OneOrMany,
}

#[derive(Debug)]
pub struct TokenPolicy {
    header: HeaderName,
    tokens: SecretSet,
}

impl TokenPolicy {
    /// The header carrying the token (hidden from the function unless forwarded).
    pub fn header(&self) -> &HeaderName {
        &self.header
    }
}

pub fn compile(cfg: &TokenConfig, env: &FnEnv) -> Result<TokenPolicy, Vec<AuthConfigError>> {
    let mut errors = Vec::new();
    let header =
        HeaderName::from_bytes(cfg.header.to_ascii_lowercase().as_bytes()).unwrap_or_else(|_| {
            errors.push(secrets::err(
                "header",
                &format!("{:?} is not a valid header name", cfg.header),
            ));
            HeaderName::from_static("x-gitlab-token")
        });
    let tokens = SecretSet::from_values(secrets::resolve(&cfg.secret, env, "secret", &mut errors));
    if errors.is_empty() {
        Ok(TokenPolicy { header, tokens })
    } else {
        Err(errors)
    }
}

impl TokenPolicy {
    pub fn verify(&self, req: &AuthRequest<'_>) -> Result<Identity, AuthFailure> {
        // The API-key extractor's rules: one header value, 1 to 1024 bytes.
        let presented = extract(req.headers, &self.header, None, false)
            .map_err(|e: ApiKeyError| AuthFailure::new(e.reason()))?;
        match self.tokens.find(&presented) {
            Some(name) => Ok(Identity {
                kind: "token",
                subject: Some(name.clone()),
            }),
            None => Err(AuthFailure::new("unknown_token")),
        }
    }

    pub fn openapi_scheme(&self) -> serde_json::Value {
        json!({"type": "apiKey", "in": "header", "name": self.header.as_str(),
            "description": format!("Shared webhook token in the {} header, compared in constant time", self.header)})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_support::{env, headers, req};

    fn policy() -> TokenPolicy {
        let cfg: TokenConfig = serde_json::from_value(
            serde_json::json!({"header": "X-Gitlab-Token", "secret": ["OLD", "NEW"]}),
        )
        .unwrap();
        compile(&cfg, &env(&[("OLD", "old-token"), ("NEW", "new-token")])).unwrap()
    }

    #[test]
    fn accepts_each_listed_token_and_names_it() {
        let p = policy();
        for (token, name) in [("old-token", "OLD"), ("new-token", "NEW")] {
            let h = headers(&[("x-gitlab-token", token)]);
            let id = p.verify(&req(&h, b"", 0)).unwrap();
            assert_eq!((id.kind, id.subject.as_deref()), ("token", Some(name)));
        }
    }

    #[test]
    fn refusals_have_reasons() {
        let p = policy();
        let reason = |pairs: &[(&str, &str)]| {
            let h = headers(pairs);
            p.verify(&req(&h, b"", 0)).unwrap_err().reason
        };
        assert_eq!(reason(&[("x-gitlab-token", "new-tokeN")]), "unknown_token");
        assert_eq!(reason(&[]), "missing");
        let long = "a".repeat(super::super::api_key::MAX_KEY_LEN + 1);
        assert_eq!(reason(&[("x-gitlab-token", &long)]), "malformed");
        assert_eq!(
            reason(&[
                ("x-gitlab-token", "new-token"),
                ("x-gitlab-token", "new-token")
            ]),
            "malformed"
        );
    }

    #[test]
    fn config_errors_name_fields() {
        let cfg: TokenConfig =
            serde_json::from_value(serde_json::json!({"header": "bad header", "secret": "NOPE"}))
                .unwrap();
        let errs = compile(&cfg, &env(&[])).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["header", "secret"]);
    }
}
