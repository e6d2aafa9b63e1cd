//! `"type": "hmac"`: webhook signatures over the exact raw body (the gateway reads the
//! bounded body before this check). Keys are `ring::hmac::Key`s built at reload, one per
//! env name listed in `secret` (rotation), and every comparison is `ring::hmac::verify`.
//! Timestamped schemes (Stripe, Slack) refuse stale timestamps and replays.

use std::sync::Arc;

use http::HeaderName;
use ring::hmac;
use serde::Deserialize;
use serde_json::json;

use super::headers::{Headers, One};
use super::hmac_schemes::{self as schemes, Encoding, SigError};
use super::replay::ReplayGuard;
use super::secrets::{self, blinded_eq, sha256_parts, OneOrMany};
use super::{AuthConfigError, AuthFailure, AuthRequest, Identity};
use crate::catalog::fn_env::FnEnv;

pub const DEFAULT_TOLERANCE_S: u64 = 300;
pub const MAX_TOLERANCE_S: u64 = 86_400;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    Github,
    Stripe,
    Slack,
    Generic,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HmacConfig {
    pub scheme: Scheme,
    /// Env name(s) of the signing secret(s).
    pub secret: OneOrMany,
    /// Accepted clock skew for Stripe and Slack (default 300 s).
    pub tolerance_s: Option<u64>,
    /// `generic` only: the header carrying the signature.
    pub header: Option<String>,
    /// `generic` only: `sha256` (default) or `sha512`.
    pub algorithm: Option<Algorithm>,
    /// `generic` only: `hex` (default) or `base64`.
    pub encoding: Option<Encoding>,
    /// `generic` only: text before the signature, e.g. `sha256=`.
    pub prefix: Option<String>,
}

#[derive(Debug)]
pub struct HmacPolicy {
    scheme: Scheme,
    keys: Vec<(Arc<str>, hmac::Key)>,
    tolerance_s: u64,
    header: HeaderName,
    algorithm: Algorithm,
    /// Signature bytes of `generic`: 32 (SHA-256) or 64 (SHA-512).
    sig_len: usize,
    encoding: Encoding,
    prefix: String,
    replay: ReplayGuard,
}

/// Slack's timestamp header, parsed once.
static SLACK_TIMESTAMP: HeaderName = HeaderName::from_static("x-slack-request-timestamp");

pub fn compile(cfg: &HmacConfig, env: &FnEnv) -> Result<HmacPolicy, Vec<AuthConfigError>> {
    let mut errors = Vec::new();
    let timestamped = matches!(cfg.scheme, Scheme::Stripe | Scheme::Slack);
    let tolerance_s = match cfg.tolerance_s {
        Some(_) if !timestamped => {
            errors.push(secrets::err(
                "tolerance_s",
                "applies only to schemes \"stripe\" and \"slack\"",
            ));
            0
        }
        Some(t) if t == 0 || t > MAX_TOLERANCE_S => {
            errors.push(secrets::err(
                "tolerance_s",
                &format!("{t} is out of range; use 1 to {MAX_TOLERANCE_S}"),
            ));
            0
        }
        Some(t) => t,
        None => DEFAULT_TOLERANCE_S,
    };
    if cfg.scheme != Scheme::Generic {
        for (field, set) in [
            ("header", cfg.header.is_some()),
            ("algorithm", cfg.algorithm.is_some()),
            ("encoding", cfg.encoding.is_some()),
            ("prefix", cfg.prefix.is_some()),
        ] {
            if set {
                errors.push(secrets::err(
                    field,
                    "applies only to scheme \"generic\"; the named schemes fix it",
                ));
            }
        }
    }
    let header = match (cfg.scheme, cfg.header.as_deref()) {
        (Scheme::Github, _) => HeaderName::from_static("x-hub-signature-256"),
        (Scheme::Stripe, _) => HeaderName::from_static("stripe-signature"),
        (Scheme::Slack, _) => HeaderName::from_static("x-slack-signature"),
        (Scheme::Generic, None) => {
            errors.push(secrets::err("header", "is required for scheme \"generic\""));
            HeaderName::from_static("x-signature")
        }
        (Scheme::Generic, Some(h)) => HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes())
            .unwrap_or_else(|_| {
                errors.push(secrets::err(
                    "header",
                    &format!("{h:?} is not a valid header name"),
                ));
                HeaderName::from_static("x-signature")
            }),
    };
    let algorithm = cfg.algorithm.unwrap_or(Algorithm::Sha256);
    let ring_alg = match algorithm {
        Algorithm::Sha256 => hmac::HMAC_SHA256,
        Algorithm::Sha512 => hmac::HMAC_SHA512,
    };
    let keys = secrets::resolve(&cfg.secret, env, "secret", &mut errors)
        .into_iter()
        .map(|(name, value)| (name, hmac::Key::new(ring_alg, &value)))
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(HmacPolicy {
        scheme: cfg.scheme,
        keys,
        tolerance_s,
        header,
        algorithm,
        sig_len: match algorithm {
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        },
        encoding: cfg.encoding.unwrap_or(Encoding::Hex),
        prefix: cfg.prefix.clone().unwrap_or_default(),
        replay: ReplayGuard::default(),
    })
}

impl HmacPolicy {
    pub fn verify<'a>(&self, req: &AuthRequest<'a>) -> Result<Identity, AuthFailure> {
        let fail = |e: SigError| AuthFailure::new(e.reason());
        let sig = one_header(req.headers, &self.header);
        let (name, ts) = match self.scheme {
            Scheme::Github => {
                let sig = schemes::parse_github(sig?).map_err(fail)?;
                (self.check(&[req.body], &[&sig])?, None)
            }
            Scheme::Generic => {
                let sig = schemes::parse_generic(sig?, &self.prefix, self.encoding, self.sig_len)
                    .map_err(fail)?;
                (self.check(&[req.body], &[&sig])?, None)
            }
            Scheme::Stripe => {
                let s = schemes::parse_stripe(sig?).map_err(fail)?;
                self.fresh(s.timestamp, req.now_unix)?;
                let msg = [s.t_raw.as_bytes(), b".", req.body];
                let sigs: Vec<&[u8]> = s.v1.iter().map(Vec::as_slice).collect();
                (
                    self.check(&msg, &sigs)?,
                    Some((s.timestamp, sha256_parts(&msg))),
                )
            }
            Scheme::Slack => {
                let ts_header = one_header(req.headers, &SLACK_TIMESTAMP);
                // Absent headers are the parser's to name (missing / missing_timestamp); a
                // repeated one is malformed here already.
                let present = |r: Result<&'a [u8], AuthFailure>| match r {
                    Ok(v) => Ok(Some(v)),
                    Err(e) if e.reason == SigError::Missing.reason() => Ok(None),
                    Err(e) => Err(e),
                };
                let (sig, ts_raw, ts) =
                    schemes::parse_slack(present(sig)?, present(ts_header)?).map_err(fail)?;
                self.fresh(ts, req.now_unix)?;
                let msg = [b"v0:", ts_raw.as_bytes(), b":", req.body];
                (self.check(&msg, &[&sig])?, Some((ts, sha256_parts(&msg))))
            }
        };
        if let Some((ts, digest)) = ts {
            if !self
                .replay
                .first_use(digest, req.now_unix, ts.saturating_add(self.tolerance_s))
            {
                return Err(AuthFailure::new("replayed"));
            }
        }
        Ok(Identity {
            kind: "hmac",
            subject: Some(name.clone()),
        })
    }

    fn fresh(&self, ts: u64, now: u64) -> Result<(), AuthFailure> {
        if ts.abs_diff(now) > self.tolerance_s {
            Err(AuthFailure::new("stale_timestamp"))
        } else {
            Ok(())
        }
    }

    /// The env name of the key whose HMAC over `parts` (concatenated) is one of `sigs`. Each
    /// key reads the message once however many signatures are presented (Stripe sends one
    /// `v1` per active secret), and the message is never copied; tags are compared with
    /// [`blinded_eq`], in constant time with respect to the expected tag.
    fn check(&self, parts: &[&[u8]], sigs: &[&[u8]]) -> Result<&Arc<str>, AuthFailure> {
        for (name, key) in &self.keys {
            let mut ctx = hmac::Context::with_key(key);
            for p in parts {
                ctx.update(p);
            }
            let tag = ctx.sign();
            if sigs.iter().any(|s| blinded_eq(tag.as_ref(), s)) {
                return Ok(name);
            }
        }
        Err(AuthFailure::new("bad_signature"))
    }

    pub fn openapi_scheme(&self) -> serde_json::Value {
        let description = match self.scheme {
            Scheme::Github => "GitHub webhook signature: `sha256=<hex>` HMAC-SHA256 of the raw body".to_owned(),
            Scheme::Stripe => format!("Stripe webhook signature: `t=<unix>,v1=<hex>` HMAC-SHA256 of `<t>.<body>`, timestamps within {} s", self.tolerance_s),
            Scheme::Slack => format!("Slack request signature: `v0=<hex>` HMAC-SHA256 of `v0:<timestamp>:<body>` with X-Slack-Request-Timestamp within {} s", self.tolerance_s),
            Scheme::Generic => format!(
                "HMAC-{} of the raw body, {}-encoded{}",
                match self.algorithm { Algorithm::Sha256 => "SHA256", Algorithm::Sha512 => "SHA512" },
                match self.encoding { Encoding::Hex => "hex", Encoding::Base64 => "base64" },
                if self.prefix.is_empty() { String::new() } else { format!(", prefixed by `{}`", self.prefix) }
            ),
        };
        json!({"type": "apiKey", "in": "header", "name": self.header.as_str(), "description": description})
    }
}

/// The single value of `name`: absent is `Missing`, repeated is `Malformed`.
fn one_header<'a>(headers: Headers<'a>, name: &HeaderName) -> Result<&'a [u8], AuthFailure> {
    match headers.one(name) {
        One::Missing => Err(AuthFailure::new(SigError::Missing.reason())),
        One::Value(v) => Ok(v),
        One::Repeated => Err(AuthFailure::new(SigError::Malformed.reason())),
    }
}

#[cfg(test)]
#[path = "hmac_tests.rs"]
mod tests;
