//! Hot-path authentication. `fn.config.json`'s `"auth"` object is parsed into
//! [`AuthConfig`] (raw, serde), compiled once per reload into a [`Policy`] (keys as
//! `ring` objects, digests precomputed), and the request path only calls
//! [`Policy::verify`].
//!
//! CONTRACT STUB: the auth work replaces the body of this module, keeping these names.

use std::path::Path;
use std::sync::Arc;

use http::HeaderMap;
use serde::Deserialize;

use crate::catalog::fn_env::FnEnv;

/// Raw `"auth"` object of `fn.config.json`, tagged by `"type"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    None,
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
    pub headers: &'a HeaderMap,
    /// Raw query string without `?`.
    pub query: Option<&'a str>,
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

/// A compiled policy.
#[derive(Debug)]
pub struct Policy {
    kind: &'static str,
}

impl Policy {
    pub fn none() -> Self {
        Self { kind: "none" }
    }

    /// Compiles the raw config against the function's env (secret names are env names).
    pub fn compile(
        cfg: &AuthConfig,
        _env: &FnEnv,
        _fn_dir: &Path,
    ) -> Result<Policy, Vec<AuthConfigError>> {
        match cfg {
            AuthConfig::None => Ok(Self::none()),
        }
    }

    /// The `type` label: `none`, `api_key`, `hmac`, `bearer`, `basic`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// True when verification needs the raw body (HMAC): the gateway reads it first.
    pub fn needs_body(&self) -> bool {
        false
    }

    pub fn verify(&self, _req: &AuthRequest<'_>) -> Result<Identity, AuthFailure> {
        Ok(Identity {
            kind: self.kind,
            subject: None,
        })
    }

    /// The OpenAPI security scheme object for this policy (never a secret), if any.
    pub fn openapi_scheme(&self) -> Option<serde_json::Value> {
        None
    }
}
