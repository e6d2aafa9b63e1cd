//! `"auth": [ {...}, {...} ]`: the request is admitted by the first alternative that
//! admits it, tried in the listed order. `{"type": "none"}` in the list admits an
//! anonymous request (`context.auth.type = "anonymous"`), but only when no alternative saw
//! a credential of its own: a wrong key is refused, not downgraded to anonymous.
//!
//! When all refuse, the answer is the most telling refusal: a pending key fetch first (the
//! request is decided again after it), then 403 (a valid credential lacking scope), 503 (a
//! key set not available), a 401 for a credential that was presented, and last the first
//! alternative's 401 (nothing presented; its challenge is sent).

use std::path::Path;

use super::{
    Admitted, AuthConfig, AuthConfigError, AuthRequest, Context, Identity, Policy, Refusal,
};
use crate::catalog::fn_env::FnEnv;

/// Most alternatives in one list.
pub const MAX_ALTERNATIVES: usize = 8;

/// Reasons that mean "this alternative's credential was not in the request".
const NOT_PRESENTED: [&str; 3] = ["missing", "wrong_scheme", "no_session"];

#[derive(Debug)]
pub struct AnyOfPolicy {
    alternatives: Vec<Policy>,
    anonymous: bool,
}

pub fn parse(items: Vec<serde_json::Value>) -> Result<AuthConfig, String> {
    if items.is_empty() || items.len() > MAX_ALTERNATIVES {
        return Err(format!(
            "an \"auth\" list holds 1 to {MAX_ALTERNATIVES} policies, not {}",
            items.len()
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        if !item.is_object() {
            return Err(format!(
                "auth[{i}]: each item of an \"auth\" list is an object"
            ));
        }
        let cfg = AuthConfig::try_from(item).map_err(|e| format!("auth[{i}]: {e}"))?;
        out.push(cfg);
    }
    Ok(AuthConfig::AnyOf(out))
}

pub fn compile(
    list: &[AuthConfig],
    env: &FnEnv,
    fn_dir: &Path,
) -> Result<AnyOfPolicy, Vec<AuthConfigError>> {
    let mut errors = Vec::new();
    let mut alternatives = Vec::new();
    let mut anonymous = false;
    for (i, cfg) in list.iter().enumerate() {
        match Policy::compile(cfg, env, fn_dir) {
            Ok(p) if p.is_none() => anonymous = true,
            Ok(p) => alternatives.push(p),
            Err(errs) => errors.extend(errs.into_iter().map(|e| AuthConfigError {
                field: format!("{i}.{}", e.field),
                message: e.message,
            })),
        }
    }
    if errors.is_empty() {
        Ok(AnyOfPolicy {
            alternatives,
            anonymous,
        })
    } else {
        Err(errors)
    }
}

impl AnyOfPolicy {
    pub fn needs_body(&self) -> bool {
        self.alternatives.iter().any(Policy::needs_body)
    }

    pub fn verify(&self, req: &AuthRequest<'_>, ctx: Context<'_>) -> Result<Admitted, Refusal> {
        let mut best: Option<(u8, Refusal)> = None;
        for p in &self.alternatives {
            match p.check(req, ctx) {
                Ok(admitted) => return Ok(admitted),
                Err(r) => {
                    let rank = rank(&r);
                    if best.as_ref().is_none_or(|(b, _)| rank > *b) {
                        best = Some((rank, r));
                    }
                }
            }
        }
        match best {
            Some((0 | 1, _)) | None if self.anonymous => Ok(Identity {
                kind: "anonymous",
                subject: None,
            }
            .into()),
            Some((_, r)) => Err(r),
            None => Err(Refusal::Unauthorized(super::AuthFailure::new("missing"))),
        }
    }

    pub fn hidden(&self) -> super::hide::Hidden {
        let mut out = super::hide::Hidden::default();
        for p in &self.alternatives {
            out.merge(p.hidden().clone());
        }
        out
    }

    /// The alternatives' types in order, `none` last when anonymous requests pass.
    pub fn label(&self) -> String {
        let mut kinds: Vec<&str> = self.alternatives.iter().map(Policy::kind).collect();
        if self.anonymous {
            kinds.push("none");
        }
        kinds.join("|")
    }

    pub fn oidc(&self) -> Option<&crate::auth::oidc::policy::OidcPolicy> {
        self.alternatives.iter().find_map(Policy::oidc)
    }

    pub async fn refresh_keys(&self) {
        for p in &self.alternatives {
            Box::pin(p.refresh_keys()).await;
        }
    }

    pub fn openapi_alternatives(&self) -> Vec<Option<serde_json::Value>> {
        let mut out: Vec<_> = self
            .alternatives
            .iter()
            .map(Policy::openapi_scheme)
            .collect();
        if self.anonymous {
            out.push(None);
        }
        out
    }
}

/// Higher wins; 0 is "nothing presented", 1 a browser without a session (sent to log
/// in rather than refused, unless anonymous requests are admitted).
fn rank(r: &Refusal) -> u8 {
    match r {
        Refusal::RefreshKeys | Refusal::RefreshSession => 5,
        Refusal::Forbidden(_) => 4,
        Refusal::Unavailable(_) => 3,
        Refusal::Unauthorized(f) if NOT_PRESENTED.contains(&f.reason) => 0,
        Refusal::Login(f) if NOT_PRESENTED.contains(&f.reason) => 1,
        Refusal::Unauthorized(_) | Refusal::Login(_) => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_support::{env, headers, req};

    fn policy(v: serde_json::Value) -> Policy {
        let cfg: AuthConfig = serde_json::from_value(v).unwrap();
        Policy::compile(
            &cfg,
            &env(&[("K", "key-one"), ("T", "tok-one")]),
            Path::new("/x"),
        )
        .unwrap()
    }

    #[test]
    fn first_admitting_alternative_wins() {
        let p = policy(serde_json::json!([
            {"type": "api_key", "secret": "K"},
            {"type": "bearer", "secret": "T"}
        ]));
        let h = headers(&[("authorization", "Bearer tok-one")]);
        let a = p.verify(&req(&h, b"", 0)).unwrap();
        assert_eq!(
            (a.identity.kind, a.identity.subject.as_deref()),
            ("bearer", Some("T"))
        );
        let h = headers(&[("x-api-key", "key-one")]);
        assert_eq!(p.verify(&req(&h, b"", 0)).unwrap().identity.kind, "api_key");
        let h = headers(&[("authorization", "Bearer wrong")]);
        let Err(Refusal::Unauthorized(f)) = p.verify(&req(&h, b"", 0)) else {
            panic!()
        };
        assert_eq!(
            f.reason, "unknown_token",
            "the presented credential's failure"
        );
        let h = headers(&[]);
        let Err(Refusal::Unauthorized(f)) = p.verify(&req(&h, b"", 0)) else {
            panic!()
        };
        assert_eq!(f.reason, "missing");
    }

    #[test]
    fn none_admits_only_requests_without_credentials() {
        let p = policy(serde_json::json!([{"type": "none"}, {"type": "api_key", "secret": "K"}]));
        let h = headers(&[]);
        assert_eq!(
            p.verify(&req(&h, b"", 0)).unwrap().identity.kind,
            "anonymous"
        );
        let h = headers(&[("x-api-key", "key-one")]);
        assert_eq!(p.verify(&req(&h, b"", 0)).unwrap().identity.kind, "api_key");
        let h = headers(&[("x-api-key", "nope")]);
        assert!(
            p.verify(&req(&h, b"", 0)).is_err(),
            "a wrong key is not anonymous"
        );
        assert_eq!(p.openapi_alternatives().len(), 2);
        assert_eq!(p.label(), "api_key|none");
    }

    #[test]
    fn list_shapes() {
        let e = serde_json::from_value::<AuthConfig>(serde_json::json!([])).unwrap_err();
        assert!(e.to_string().contains("1 to 8"), "{e}");
        let e = serde_json::from_value::<AuthConfig>(serde_json::json!([[{"type": "none"}]]))
            .unwrap_err();
        assert!(e.to_string().contains("auth[0]"), "{e}");
        let e = serde_json::from_value::<AuthConfig>(
            serde_json::json!([{"type": "api_key", "secrets": "K"}]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `secrets`"), "{e}");
        let cfg: AuthConfig =
            serde_json::from_value(serde_json::json!([{"type": "api_key", "secret": "MISSING"}]))
                .unwrap();
        let errs = Policy::compile(&cfg, &env(&[]), Path::new("/x")).unwrap_err();
        assert!(errs[0].field.starts_with("0."), "{errs:?}");
    }
}
