//! `"jwt"` inside a bearer policy: the raw config and its compilation into a
//! [`JwtVerifier`] plus an optional verification cache. Every problem is collected with
//! the field it belongs to; URLs are checked here (https, or http on loopback / with
//! `allow_insecure_issuer`) so a fetch never starts from a config that could not work.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::http_fetch;
use super::jwks::{self, JwsAlg};
use super::jwks_fetch::{RemoteKeys, Source};
use super::jwt::{JwtVerifier, KeySource};
use super::jwt_cache::{self, JwtCache};
use super::secrets::{self, OneOrMany};
use super::{keys_file, AuthConfigError};

pub const MAX_LEEWAY_S: u64 = 600;
const DEFAULT_LEEWAY_S: u64 = 30;
/// Most names in `forward_claims`, `required_scopes` or `claims`, and values per claim.
pub const MAX_RULES: usize = 32;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// JWKS file, relative to the function folder.
    pub jwks_file: Option<String>,
    /// JWKS URL, fetched and refreshed in the background.
    pub jwks_url: Option<String>,
    /// Read `jwks_uri` from `<issuer>/.well-known/openid-configuration`.
    #[serde(default)]
    pub discovery: bool,
    pub issuer: Option<String>,
    pub audience: Option<OneOrMany>,
    /// Allowed `alg` values: any of RS256, ES256, EdDSA, HS256.
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp` / `nbf`, default 30 s.
    pub leeway_s: Option<u64>,
    /// Scopes the token must all carry: a space-separated string or a list.
    pub required_scopes: Option<OneOrMany>,
    /// `{"role": ["admin", "ops"]}`: the claim must equal (or contain) one of the values.
    pub claims: Option<BTreeMap<String, serde_json::Value>>,
    /// Claims handed to the function in `event.context.auth.claims` (with `sub`).
    pub forward_claims: Option<Vec<String>>,
    /// Accept an `http://` issuer or JWKS URL off loopback.
    #[serde(default)]
    pub allow_insecure_issuer: bool,
    /// Verified tokens remembered (0: off), default 10000.
    pub cache_entries: Option<usize>,
}

pub fn compile(
    j: &JwtConfig,
    fn_dir: &Path,
    errors: &mut Vec<AuthConfigError>,
) -> (JwtVerifier, Option<JwtCache>) {
    let algorithms = algorithms(j, errors);
    let keys = key_source(j, fn_dir, errors);
    if let KeySource::Static(set) = &keys {
        for alg in &algorithms {
            if !set.keys.is_empty() && !set.keys.iter().any(|k| k.alg == *alg) {
                errors.push(secrets::err(
                    "jwt.algorithms",
                    &format!("{} has no key of that type in the JWKS", alg.as_str()),
                ));
            }
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
    let required_scopes: Vec<String> = j
        .required_scopes
        .as_ref()
        .map(|s| {
            s.names()
                .iter()
                .flat_map(|n| n.split(' '))
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let claims = claim_rules(j, errors);
    let forward_claims = j.forward_claims.clone().unwrap_or_default();
    for (field, n) in [
        ("jwt.required_scopes", required_scopes.len()),
        ("jwt.forward_claims", forward_claims.len()),
    ] {
        if n > MAX_RULES {
            errors.push(secrets::err(
                field,
                &format!("lists {n} names; at most {MAX_RULES}"),
            ));
        }
    }
    let entries = j.cache_entries.unwrap_or(jwt_cache::DEFAULT_ENTRIES);
    if entries > jwt_cache::MAX_ENTRIES {
        errors.push(secrets::err(
            "jwt.cache_entries",
            &format!("{entries} is over the {} ceiling", jwt_cache::MAX_ENTRIES),
        ));
    }
    let verifier = JwtVerifier {
        keys,
        algorithms,
        issuer: j.issuer.clone(),
        audience: j
            .audience
            .as_ref()
            .map(|a| a.names().to_vec())
            .unwrap_or_default(),
        leeway_s,
        required_scopes,
        claims,
        forward_claims,
    };
    (verifier, (entries > 0).then(|| JwtCache::new(entries)))
}

fn algorithms(j: &JwtConfig, errors: &mut Vec<AuthConfigError>) -> Vec<JwsAlg> {
    if j.algorithms.is_empty() {
        errors.push(secrets::err(
            "jwt.algorithms",
            "is empty; list the algorithms your issuer signs with, e.g. [\"RS256\"]",
        ));
    }
    let mut out = Vec::new();
    for a in &j.algorithms {
        match JwsAlg::parse(a) {
            Some(alg) => out.push(alg),
            None => errors.push(secrets::err(
                "jwt.algorithms",
                &format!("{a:?} is not supported; use RS256, ES256, EdDSA or HS256 (\"none\" is never accepted)"),
            )),
        }
    }
    out
}

fn key_source(j: &JwtConfig, fn_dir: &Path, errors: &mut Vec<AuthConfigError>) -> KeySource {
    let empty = || KeySource::fixed(Vec::new());
    match (&j.jwks_file, &j.jwks_url, j.discovery) {
        (Some(file), None, false) => match keys_file::resolve_path(fn_dir, file) {
            Err(e) => {
                errors.push(secrets::err("jwt.jwks_file", &e.to_string()));
                empty()
            }
            Ok(path) => KeySource::fixed(jwks::load(&path).unwrap_or_else(|e| {
                errors.push(secrets::err("jwt.jwks_file", &e.to_string()));
                Vec::new()
            })),
        },
        (None, Some(url), false) => match http_fetch::check_url(url, j.allow_insecure_issuer) {
            Ok(_) => KeySource::Remote(RemoteKeys::shared(
                Source::Url(url.clone()),
                j.allow_insecure_issuer,
            )),
            Err(e) => {
                errors.push(secrets::err("jwt.jwks_url", &e.to_string()));
                empty()
            }
        },
        (None, None, true) => {
            let Some(issuer) = j.issuer.as_deref().filter(|i| !i.is_empty()) else {
                errors.push(secrets::err(
                    "jwt.discovery",
                    "needs \"issuer\": the discovery document is read from <issuer>/.well-known/openid-configuration",
                ));
                return empty();
            };
            match http_fetch::check_url(issuer, j.allow_insecure_issuer) {
                Ok(_) => KeySource::Remote(RemoteKeys::shared(
                    Source::Discovery {
                        issuer: issuer.to_owned(),
                    },
                    j.allow_insecure_issuer,
                )),
                Err(e) => {
                    errors.push(secrets::err("jwt.issuer", &e.to_string()));
                    empty()
                }
            }
        }
        _ => {
            errors.push(secrets::err(
                "jwt.jwks_file",
                "set exactly one of \"jwks_file\", \"jwks_url\" or \"discovery\": true",
            ));
            empty()
        }
    }
}

fn claim_rules(
    j: &JwtConfig,
    errors: &mut Vec<AuthConfigError>,
) -> Vec<(String, Vec<serde_json::Value>)> {
    let mut out = Vec::new();
    for (name, v) in j.claims.iter().flatten() {
        let values = match v {
            serde_json::Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        };
        if values.is_empty()
            || values.len() > MAX_RULES
            || values
                .iter()
                .any(|v| v.is_array() || v.is_object() || v.is_null())
        {
            errors.push(secrets::err(
                &format!("jwt.claims.{name}"),
                &format!(
                    "must be a string, number or boolean, or a list of 1 to {MAX_RULES} of them"
                ),
            ));
            continue;
        }
        out.push((name.clone(), values));
    }
    if out.len() > MAX_RULES {
        errors.push(secrets::err(
            "jwt.claims",
            &format!("names {} claims; at most {MAX_RULES}", out.len()),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errs(v: serde_json::Value) -> Vec<String> {
        let cfg: JwtConfig = serde_json::from_value(v).unwrap();
        let mut e = Vec::new();
        let _ = compile(&cfg, Path::new("/nonexistent"), &mut e);
        e.into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn key_source_and_url_rules() {
        let e = errs(json!({"discovery": true, "algorithms": ["RS256"]}));
        assert!(
            e[0].starts_with("auth.jwt.discovery: needs \"issuer\""),
            "{e:?}"
        );
        let e = errs(
            json!({"discovery": true, "issuer": "http://id.example", "algorithms": ["RS256"]}),
        );
        assert!(e[0].starts_with("auth.jwt.issuer: must use https"), "{e:?}");
        let ok = errs(
            json!({"discovery": true, "issuer": "http://id.example", "allow_insecure_issuer": true, "algorithms": ["RS256"]}),
        );
        assert!(ok.is_empty(), "{ok:?}");
        let e = errs(
            json!({"jwks_url": "https://a/jwks", "jwks_file": "k.json", "algorithms": ["RS256"]}),
        );
        assert!(e[0].contains("set exactly one of"), "{e:?}");
        assert!(
            errs(json!({"jwks_url": "https://id.example/jwks", "algorithms": ["RS256"]}))
                .is_empty()
        );
    }

    #[test]
    fn claim_rules_are_scalars() {
        let e = errs(
            json!({"jwks_url": "https://id.example/jwks", "algorithms": ["RS256"],
            "claims": {"role": ["admin", {"x": 1}], "tier": []}, "cache_entries": 2000000}),
        );
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("auth.jwt.claims.role:"));
        assert!(e[1].starts_with("auth.jwt.claims.tier:"));
        assert!(e[2].starts_with("auth.jwt.cache_entries:"));
    }
}
