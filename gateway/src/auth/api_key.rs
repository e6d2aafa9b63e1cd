//! `"type": "api_key"`: a static key in a header (default `x-api-key`) or, when opted in
//! with `"query": true`, in `?api_key=`. Accepted keys come from env names (`secret`, one or
//! several for rotation) or from a `keys_file` of hashed keys; either way they are held as a
//! [`SecretSet`] and the matched id becomes the subject.

use std::borrow::Cow;
use std::path::Path;

use http::HeaderName;
use serde::Deserialize;
use serde_json::json;

use super::headers::{Headers, One};
use super::secrets::{self, OneOrMany, SecretSet};
use super::{keys_file, AuthConfigError, AuthFailure, AuthRequest, Identity};
use crate::catalog::fn_env::FnEnv;

pub const DEFAULT_HEADER: &str = "x-api-key";
pub const QUERY_PARAM: &str = "api_key";
/// Longer presented keys are malformed, not looked up.
pub const MAX_KEY_LEN: usize = 1024;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Header carrying the key; default `x-api-key`.
    pub header: Option<String>,
    /// Also accept `?api_key=` (keys in URLs end up in logs and histories: opt-in).
    #[serde(default)]
    pub query: bool,
    /// Env name(s) of accepted keys.
    pub secret: Option<OneOrMany>,
    /// File of `<id> sha256:<hex>` lines, relative to the function folder.
    pub keys_file: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    #[error("no key presented")]
    Missing,
    #[error("the key is empty, too long, repeated or badly encoded")]
    Malformed,
}

impl ApiKeyError {
    pub fn reason(self) -> &'static str {
        match self {
            ApiKeyError::Missing => "missing",
            ApiKeyError::Malformed => "malformed",
        }
    }
}

#[derive(Debug)]
pub struct ApiKeyPolicy {
    header: HeaderName,
    query: bool,
    keys: SecretSet,
}

pub fn compile(
    cfg: &ApiKeyConfig,
    env: &FnEnv,
    fn_dir: &Path,
) -> Result<ApiKeyPolicy, Vec<AuthConfigError>> {
    let mut errors = Vec::new();
    let name = cfg.header.as_deref().unwrap_or(DEFAULT_HEADER);
    let header =
        HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).unwrap_or_else(|_| {
            errors.push(secrets::err(
                "header",
                &format!("{name:?} is not a valid header name"),
            ));
            HeaderName::from_static(DEFAULT_HEADER)
        });
    let keys = match (&cfg.secret, &cfg.keys_file) {
        (Some(names), None) => {
            SecretSet::from_values(secrets::resolve(names, env, "secret", &mut errors))
        }
        (None, Some(rel)) => match keys_file::resolve_path(fn_dir, rel)
            .map_err(|e| vec![e])
            .and_then(|p| keys_file::load(&p))
        {
            Ok(keys) => SecretSet::from_digests(keys),
            Err(errs) => {
                errors.extend(
                    errs.into_iter()
                        .map(|e| secrets::err("keys_file", &e.to_string())),
                );
                SecretSet::from_digests([])
            }
        },
        _ => {
            errors.push(secrets::err(
                "secret",
                "set exactly one of \"secret\" (env names) or \"keys_file\" (hashed keys)",
            ));
            SecretSet::from_digests([])
        }
    };
    if errors.is_empty() {
        Ok(ApiKeyPolicy {
            header,
            query: cfg.query,
            keys,
        })
    } else {
        Err(errors)
    }
}

impl ApiKeyPolicy {
    /// Where the key travels: its header, and whether `?api_key=` is read too.
    pub fn credential_location(&self) -> (&HeaderName, bool) {
        (&self.header, self.query)
    }

    pub fn verify(&self, req: &AuthRequest<'_>) -> Result<Identity, AuthFailure> {
        let key = extract(req.headers, &self.header, req.query, self.query)
            .map_err(|e| AuthFailure::new(e.reason()))?;
        match self.keys.find(&key) {
            Some(id) => Ok(Identity {
                kind: "api_key",
                subject: Some(id.clone()),
            }),
            None => Err(AuthFailure::new("unknown_key")),
        }
    }

    pub fn openapi_scheme(&self) -> serde_json::Value {
        if self.query && self.header.as_str() == DEFAULT_HEADER {
            json!({"type": "apiKey", "in": "header", "name": self.header.as_str(),
                "description": format!("API key in the {} header (or the `{QUERY_PARAM}` query parameter)", self.header)})
        } else {
            json!({"type": "apiKey", "in": "header", "name": self.header.as_str(),
                "description": format!("API key in the {} header", self.header)})
        }
    }
}

/// Finds the presented key: the header first, then (when enabled) `?api_key=`. A repeated
/// header or parameter is malformed rather than "first wins", so proxies can't disagree.
pub fn extract<'a>(
    headers: Headers<'a>,
    header: &HeaderName,
    query: Option<&'a str>,
    query_enabled: bool,
) -> Result<Cow<'a, [u8]>, ApiKeyError> {
    match headers.one(header) {
        One::Value(b) => return check_len(b).map(Cow::Borrowed),
        One::Repeated => return Err(ApiKeyError::Malformed),
        One::Missing => {}
    }
    if !query_enabled {
        return Err(ApiKeyError::Missing);
    }
    let mut found = None;
    for pair in query.unwrap_or("").split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name == QUERY_PARAM {
            if found.is_some() {
                return Err(ApiKeyError::Malformed);
            }
            found = Some(value);
        }
    }
    let raw = found.ok_or(ApiKeyError::Missing)?;
    let decoded = percent_decode(raw.as_bytes())?;
    check_len(&decoded)?;
    Ok(decoded)
}

fn check_len(b: &[u8]) -> Result<&[u8], ApiKeyError> {
    if b.is_empty() || b.len() > MAX_KEY_LEN {
        Err(ApiKeyError::Malformed)
    } else {
        Ok(b)
    }
}

/// `%XX` and `+` decoding of one query value; a bad escape is malformed.
pub fn percent_decode(raw: &[u8]) -> Result<Cow<'_, [u8]>, ApiKeyError> {
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return Ok(Cow::Borrowed(raw));
    }
    if raw.len() > 3 * MAX_KEY_LEN {
        return Err(ApiKeyError::Malformed);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'%' => {
                let hex = raw.get(i + 1..i + 3).ok_or(ApiKeyError::Malformed)?;
                let mut byte = [0u8; 1];
                hex::decode_to_slice(hex, &mut byte).map_err(|_| ApiKeyError::Malformed)?;
                out.push(byte[0]);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
#[path = "api_key_tests.rs"]
mod tests;
