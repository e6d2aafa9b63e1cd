//! `"type": "ed25519"`: webhooks signed with a private key whose public half is in
//! `fn.env.json` (`public_key`, one or several env names for rotation). Schemes:
//! `discord` (`X-Signature-Ed25519: <hex>` over `X-Signature-Timestamp` + body, hex key)
//! and `standard` (Standard Webhooks `v1a,<base64>` over `<id>.<timestamp>.<body>`,
//! `whpk_<base64>` or hex key). Both are timestamped: stale timestamps and replays are
//! refused as for the HMAC schemes. Keys are parsed at reload; the request path only calls
//! `ring`'s verifier.

use std::sync::Arc;

use http::HeaderName;
use ring::signature::{UnparsedPublicKey, ED25519};
use serde::Deserialize;
use serde_json::json;

use super::headers::{Headers, One};
use super::hmac::{DEFAULT_TOLERANCE_S, MAX_TOLERANCE_S};
use super::hmac_schemes::{parse_timestamp, SigError, MAX_HEADER_LEN};
use super::hmac_standard::{self, Version};
use super::replay::{ReplayClaim, ReplayGuard};
use super::secrets::{self, sha256_parts, OneOrMany, MAX_SECRETS};
use super::{AuthConfigError, AuthFailure, AuthRequest, Identity};
use crate::catalog::fn_env::FnEnv;

pub static DISCORD_SIGNATURE: HeaderName = HeaderName::from_static("x-signature-ed25519");
pub static DISCORD_TIMESTAMP: HeaderName = HeaderName::from_static("x-signature-timestamp");

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    Discord,
    #[serde(alias = "svix")]
    Standard,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Ed25519Config {
    pub scheme: Scheme,
    /// Env name(s) of the public key(s): 64 hex digits, or `whpk_<base64>` for `standard`.
    pub public_key: OneOrMany,
    /// Accepted clock skew (default 300 s).
    pub tolerance_s: Option<u64>,
}

#[derive(Debug)]
pub struct Ed25519Policy {
    scheme: Scheme,
    keys: Vec<(Arc<str>, UnparsedPublicKey<[u8; 32]>)>,
    tolerance_s: u64,
    replay: ReplayGuard,
}

pub fn compile(cfg: &Ed25519Config, env: &FnEnv) -> Result<Ed25519Policy, Vec<AuthConfigError>> {
    let mut errors = Vec::new();
    let tolerance_s = match cfg.tolerance_s {
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
    let names = cfg.public_key.names();
    if names.is_empty() || names.len() > MAX_SECRETS {
        errors.push(secrets::err(
            "public_key",
            &format!(
                "lists {} names; name 1 to {MAX_SECRETS} variables of fn.env.json",
                names.len()
            ),
        ));
    }
    let mut keys = Vec::new();
    for name in names {
        // A public key need not be marked secret; it only has to be there and well formed.
        let Some(var) = env.get(name) else {
            errors.push(secrets::err(
                "public_key",
                &format!("names {name:?}, which fn.env.json does not define"),
            ));
            continue;
        };
        match decode_public_key(&var.value, cfg.scheme) {
            Some(k) => keys.push((
                Arc::from(name.as_str()),
                UnparsedPublicKey::new(&ED25519, k),
            )),
            None => errors.push(secrets::err(
                "public_key",
                &format!(
                    "variable {name:?} is not an Ed25519 public key ({})",
                    match cfg.scheme {
                        Scheme::Discord =>
                            "64 hex digits, as the Discord developer portal shows it",
                        Scheme::Standard =>
                            "whpk_ followed by base64 of 32 bytes, or 64 hex digits",
                    }
                ),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Ed25519Policy {
        scheme: cfg.scheme,
        keys,
        tolerance_s,
        replay: ReplayGuard::default(),
    })
}

fn decode_public_key(value: &str, scheme: Scheme) -> Option<[u8; 32]> {
    let v = value.trim();
    let bytes = if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(v).ok()?
    } else if scheme == Scheme::Standard && v.starts_with("whpk_") {
        hmac_standard::decode_key(v, "whpk_")?
    } else {
        return None;
    };
    bytes.try_into().ok()
}

/// `X-Signature-Ed25519: <128 hex>` and `X-Signature-Timestamp: <unix>`; returns the
/// signature and the timestamp text (the signed message is `<timestamp><body>`).
pub fn parse_discord<'a>(
    signature: Option<&'a [u8]>,
    timestamp: Option<&'a [u8]>,
) -> Result<(Vec<u8>, &'a str, u64), SigError> {
    let sig = signature.ok_or(SigError::Missing)?;
    let ts = timestamp.ok_or(SigError::MissingTimestamp)?;
    if sig.len() > MAX_HEADER_LEN {
        return Err(SigError::Malformed);
    }
    let sig = std::str::from_utf8(sig)
        .map_err(|_| SigError::Malformed)?
        .trim();
    if sig.len() != 128 {
        return Err(SigError::Malformed);
    }
    let sig = hex::decode(sig).map_err(|_| SigError::Malformed)?;
    let ts_raw = std::str::from_utf8(ts).map_err(|_| SigError::Malformed)?;
    Ok((sig, ts_raw, parse_timestamp(ts)?))
}

impl Ed25519Policy {
    pub fn verify(&self, req: &AuthRequest<'_>) -> Result<Identity, AuthFailure> {
        let (identity, claim) = self.verify_deferred(req)?;
        if self.claim_locally(&claim, req.now_unix) {
            Ok(identity)
        } else {
            Err(AuthFailure::new("replayed"))
        }
    }

    /// Records `claim` in this policy's own guard; false for a replay.
    pub fn claim_locally(&self, claim: &ReplayClaim, now_unix: u64) -> bool {
        self.replay
            .first_use(claim.digest, now_unix, claim.expires_unix)
    }

    /// [`Ed25519Policy::verify`] without the replay check: the claim is the caller's to
    /// record (locally or in the cluster store).
    pub fn verify_deferred(
        &self,
        req: &AuthRequest<'_>,
    ) -> Result<(Identity, ReplayClaim), AuthFailure> {
        let fail = |e: SigError| AuthFailure::new(e.reason());
        let (msg, sigs, ts) = match self.scheme {
            Scheme::Discord => {
                let (sig, ts_raw, ts) = parse_discord(
                    present(req.headers, &DISCORD_SIGNATURE)?,
                    present(req.headers, &DISCORD_TIMESTAMP)?,
                )
                .map_err(fail)?;
                ([ts_raw.as_bytes(), req.body].concat(), vec![sig], ts)
            }
            Scheme::Standard => {
                let s = hmac_standard::parse(
                    present(req.headers, &hmac_standard::ID)?,
                    present(req.headers, &hmac_standard::TIMESTAMP)?,
                    present(req.headers, &hmac_standard::SIGNATURE)?,
                    Version::V1a,
                )
                .map_err(fail)?;
                let msg = [s.id.as_bytes(), b".", s.ts_raw.as_bytes(), b".", req.body].concat();
                (msg, s.signatures, s.timestamp)
            }
        };
        if ts.abs_diff(req.now_unix) > self.tolerance_s {
            return Err(AuthFailure::new("stale_timestamp"));
        }
        let name = self
            .keys
            .iter()
            .find(|(_, key)| sigs.iter().any(|s| key.verify(&msg, s).is_ok()))
            .map(|(name, _)| name)
            .ok_or(AuthFailure::new("bad_signature"))?;
        let claim = ReplayClaim {
            digest: sha256_parts(&[&msg]),
            expires_unix: ts.saturating_add(self.tolerance_s),
        };
        let identity = Identity {
            kind: "ed25519",
            subject: Some(name.clone()),
        };
        Ok((identity, claim))
    }

    pub fn openapi_scheme(&self) -> serde_json::Value {
        let (header, description) = match self.scheme {
            Scheme::Discord => (DISCORD_SIGNATURE.as_str(), format!("Discord interaction signature: hex Ed25519 signature of `<X-Signature-Timestamp><body>`, timestamps within {} s", self.tolerance_s)),
            Scheme::Standard => (hmac_standard::SIGNATURE.as_str(), format!("Standard Webhooks asymmetric signature: `webhook-signature: v1a,<base64>` Ed25519 over `<webhook-id>.<webhook-timestamp>.<body>`, timestamps within {} s", self.tolerance_s)),
        };
        json!({"type": "apiKey", "in": "header", "name": header, "description": description})
    }
}

/// A header's single value; absent is `None` (the parser names what is missing), repeated
/// is malformed.
fn present<'a>(headers: Headers<'a>, name: &HeaderName) -> Result<Option<&'a [u8]>, AuthFailure> {
    match headers.one(name) {
        One::Missing => Ok(None),
        One::Value(v) => Ok(Some(v)),
        One::Repeated => Err(AuthFailure::new(SigError::Malformed.reason())),
    }
}

#[cfg(test)]
#[path = "ed25519_tests.rs"]
mod tests;
