//! `"type": "hmac"`: webhook signatures over the exact raw body (the gateway reads the
//! bounded body before this check). Keys are `ring::hmac::Key`s built at reload, one per
//! env name listed in `secret` (rotation), and every comparison is `ring::hmac::verify`.
//! Timestamped schemes (Stripe, Slack, Standard Webhooks, Zoom) refuse stale timestamps
//! and replays. Header parsers live in `hmac_schemes`, `hmac_standard` and `hmac_twilio`;
//! Zoom's URL challenge in `hmac_zoom`.

use std::sync::Arc;

use http::HeaderName;
use ring::hmac;
use serde::Deserialize;
use serde_json::json;

use super::headers::{Headers, One};
use super::hmac_schemes::{self as schemes, Encoding, SigError};
use super::replay::{ReplayClaim, ReplayGuard};
use super::secrets::{self, blinded_eq, sha256_parts, OneOrMany};
use super::{hmac_standard, hmac_twilio, hmac_zoom};
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
    /// Standard Webhooks (Svix and the senders built on it).
    #[serde(alias = "svix")]
    Standard,
    Shopify,
    Zoom,
    Twilio,
    /// `faas-cli invoke --sign <header> --key <secret>`.
    #[serde(rename = "faas-cli")]
    FaasCli,
}

impl Scheme {
    fn timestamped(self) -> bool {
        match self {
            Scheme::Stripe | Scheme::Slack | Scheme::Standard | Scheme::Zoom => true,
            Scheme::Github
            | Scheme::Generic
            | Scheme::Shopify
            | Scheme::Twilio
            | Scheme::FaasCli => false,
        }
    }
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
    /// Accepted clock skew of the timestamped schemes (default 300 s).
    pub tolerance_s: Option<u64>,
    /// `generic` and `faas-cli`: the header carrying the signature.
    pub header: Option<String>,
    /// `generic` only: `sha256` (default) or `sha512`.
    pub algorithm: Option<Algorithm>,
    /// `generic` only: `hex` (default) or `base64`.
    pub encoding: Option<Encoding>,
    /// `generic` only: text before the signature, e.g. `sha256=`.
    pub prefix: Option<String>,
    /// `twilio` only: the base URL Twilio calls (`https://host[:port][/prefix]`); the
    /// request's path and query are appended to rebuild the URL it signed.
    pub public_url: Option<String>,
}

#[derive(Debug)]
pub struct HmacPolicy {
    scheme: Scheme,
    keys: Vec<(Arc<str>, hmac::Key)>,
    /// `faas-cli` only: the same secrets as HMAC-SHA1 keys (`sha1=<hex>`, what faas-cli
    /// releases before the SHA-256 change send).
    sha1_keys: Vec<(Arc<str>, hmac::Key)>,
    tolerance_s: u64,
    header: HeaderName,
    algorithm: Algorithm,
    /// Signature bytes of `generic`: 32 (SHA-256) or 64 (SHA-512).
    sig_len: usize,
    encoding: Encoding,
    prefix: String,
    public_url: String,
    replay: ReplayGuard,
}

/// Timestamp headers, parsed once.
static SLACK_TIMESTAMP: HeaderName = HeaderName::from_static("x-slack-request-timestamp");
static ZOOM_TIMESTAMP: HeaderName = HeaderName::from_static("x-zm-request-timestamp");

pub fn compile(cfg: &HmacConfig, env: &FnEnv) -> Result<HmacPolicy, Vec<AuthConfigError>> {
    let mut errors = Vec::new();
    let tolerance_s = match cfg.tolerance_s {
        Some(_) if !cfg.scheme.timestamped() => {
            errors.push(secrets::err(
                "tolerance_s",
                "applies only to the timestamped schemes \"stripe\", \"slack\", \"standard\" and \"zoom\"",
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
            (
                "header",
                cfg.header.is_some() && cfg.scheme != Scheme::FaasCli,
            ),
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
        (Scheme::Standard, _) => hmac_standard::SIGNATURE.clone(),
        (Scheme::Shopify, _) => HeaderName::from_static("x-shopify-hmac-sha256"),
        (Scheme::Zoom, _) => HeaderName::from_static("x-zm-signature"),
        (Scheme::Twilio, _) => HeaderName::from_static("x-twilio-signature"),
        (Scheme::Generic | Scheme::FaasCli, None) => {
            errors.push(secrets::err(
                "header",
                "is required for schemes \"generic\" and \"faas-cli\" (the header the sender signs into, e.g. \"x-hub-signature\")",
            ));
            HeaderName::from_static("x-signature")
        }
        (Scheme::Generic | Scheme::FaasCli, Some(h)) => {
            HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()).unwrap_or_else(|_| {
                errors.push(secrets::err(
                    "header",
                    &format!("{h:?} is not a valid header name"),
                ));
                HeaderName::from_static("x-signature")
            })
        }
    };
    let public_url = public_url(cfg, &mut errors);
    let algorithm = cfg.algorithm.unwrap_or(Algorithm::Sha256);
    let ring_alg = match (cfg.scheme, algorithm) {
        // Twilio signs with SHA-1; HMAC-SHA1 is not broken as a MAC.
        (Scheme::Twilio, _) => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        (_, Algorithm::Sha256) => hmac::HMAC_SHA256,
        (_, Algorithm::Sha512) => hmac::HMAC_SHA512,
    };
    let mut keys = Vec::new();
    let mut sha1_keys = Vec::new();
    for (name, value) in secrets::resolve(&cfg.secret, env, "secret", &mut errors) {
        let raw = if cfg.scheme == Scheme::Standard {
            // Standard Webhooks secrets are `whsec_<base64>`: the key is the decoded bytes.
            match std::str::from_utf8(&value)
                .ok()
                .and_then(|v| hmac_standard::decode_key(v, "whsec_"))
            {
                Some(k) => k,
                None => {
                    errors.push(secrets::err(
                        "secret",
                        &format!("variable {name:?} is not a Standard Webhooks secret (whsec_ followed by base64)"),
                    ));
                    continue;
                }
            }
        } else {
            value
        };
        if cfg.scheme == Scheme::FaasCli {
            let sha1 = hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY;
            sha1_keys.push((name.clone(), hmac::Key::new(sha1, &raw)));
        }
        keys.push((name, hmac::Key::new(ring_alg, &raw)));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(HmacPolicy {
        scheme: cfg.scheme,
        keys,
        sha1_keys,
        tolerance_s,
        header,
        algorithm,
        sig_len: match algorithm {
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        },
        encoding: cfg.encoding.unwrap_or(Encoding::Hex),
        prefix: cfg.prefix.clone().unwrap_or_default(),
        public_url,
        replay: ReplayGuard::default(),
    })
}

/// Longest `public_url` accepted.
pub const MAX_PUBLIC_URL_LEN: usize = 2048;

/// `twilio` requires `public_url` (an absolute http(s) URL without query or fragment, kept
/// without its trailing `/`); the other schemes refuse it.
fn public_url(cfg: &HmacConfig, errors: &mut Vec<AuthConfigError>) -> String {
    match (cfg.scheme, cfg.public_url.as_deref()) {
        (Scheme::Twilio, None) => errors.push(secrets::err(
            "public_url",
            "is required for scheme \"twilio\": the base URL Twilio is configured to call, e.g. \"https://hooks.example.com\"",
        )),
        (Scheme::Twilio, Some(u)) => {
            let ok = (u.starts_with("https://") || u.starts_with("http://"))
                && u.len() <= MAX_PUBLIC_URL_LEN
                && !u.contains(['?', '#', ' ']);
            if ok {
                return u.trim_end_matches('/').to_owned();
            }
            errors.push(secrets::err(
                "public_url",
                &format!("{u:?} is not an absolute http(s) URL without query or fragment (at most {MAX_PUBLIC_URL_LEN} bytes)"),
            ));
        }
        (_, Some(_)) => errors.push(secrets::err(
            "public_url",
            "applies only to scheme \"twilio\"",
        )),
        (_, None) => {}
    }
    String::new()
}

impl HmacPolicy {
    pub fn verify(&self, req: &AuthRequest<'_>) -> Result<Identity, AuthFailure> {
        let (identity, claim) = self.verify_deferred(req)?;
        match claim {
            Some(c) if !self.claim_locally(&c, req.now_unix) => Err(AuthFailure::new("replayed")),
            _ => Ok(identity),
        }
    }

    /// Records `claim` in this policy's own guard; false for a replay.
    pub fn claim_locally(&self, claim: &ReplayClaim, now_unix: u64) -> bool {
        self.replay
            .first_use(claim.digest, now_unix, claim.expires_unix)
    }

    /// [`HmacPolicy::verify`] without the replay check: a timestamped scheme returns the
    /// message's claim for the caller to record (locally or in the cluster store).
    pub fn verify_deferred<'a>(
        &self,
        req: &AuthRequest<'a>,
    ) -> Result<(Identity, Option<ReplayClaim>), AuthFailure> {
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
            Scheme::FaasCli => match schemes::parse_faas_cli(sig?).map_err(fail)? {
                (schemes::FaasCliAlg::Sha256, sig) => (self.check(&[req.body], &[&sig])?, None),
                (schemes::FaasCliAlg::Sha1, sig) => {
                    (check_keys(&self.sha1_keys, &[req.body], &[&sig])?, None)
                }
            },
            Scheme::Shopify => {
                let sig = schemes::parse_generic(sig?, "", Encoding::Base64, 32).map_err(fail)?;
                (self.check(&[req.body], &[&sig])?, None)
            }
            Scheme::Standard => {
                let s = hmac_standard::parse(
                    present(one_header(req.headers, &hmac_standard::ID))?,
                    present(one_header(req.headers, &hmac_standard::TIMESTAMP))?,
                    present(sig)?,
                    hmac_standard::Version::V1,
                )
                .map_err(fail)?;
                self.fresh(s.timestamp, req.now_unix)?;
                let msg = [s.id.as_bytes(), b".", s.ts_raw.as_bytes(), b".", req.body];
                let sigs: Vec<&[u8]> = s.signatures.iter().map(Vec::as_slice).collect();
                (
                    self.check(&msg, &sigs)?,
                    Some((s.timestamp, sha256_parts(&msg))),
                )
            }
            Scheme::Zoom => {
                let ts_header = one_header(req.headers, &ZOOM_TIMESTAMP);
                let (sig, ts_raw, ts) =
                    schemes::parse_slack(present(sig)?, present(ts_header)?).map_err(fail)?;
                self.fresh(ts, req.now_unix)?;
                let msg = [b"v0:", ts_raw.as_bytes(), b":", req.body];
                (self.check(&msg, &[&sig])?, Some((ts, sha256_parts(&msg))))
            }
            Scheme::Twilio => {
                let sig = hmac_twilio::parse_signature(sig?).map_err(fail)?;
                (self.check_twilio(req, &sig)?, None)
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
                let (sig, ts_raw, ts) =
                    schemes::parse_slack(present(sig)?, present(ts_header)?).map_err(fail)?;
                self.fresh(ts, req.now_unix)?;
                let msg = [b"v0:", ts_raw.as_bytes(), b":", req.body];
                (self.check(&msg, &[&sig])?, Some((ts, sha256_parts(&msg))))
            }
        };
        let claim = ts.map(|(ts, digest)| ReplayClaim {
            digest,
            expires_unix: ts.saturating_add(self.tolerance_s),
        });
        let identity = Identity {
            kind: "hmac",
            subject: Some(name.clone()),
        };
        Ok((identity, claim))
    }

    /// Twilio: the URL as the sender saw it, plus the sorted form parameters of a form
    /// POST; any other non-empty body must match the URL's `bodySHA256`.
    fn check_twilio(&self, req: &AuthRequest<'_>, sig: &[u8]) -> Result<&Arc<str>, AuthFailure> {
        let form = req
            .headers
            .first(&http::header::CONTENT_TYPE)
            .is_some_and(|ct| ct.starts_with(b"application/x-www-form-urlencoded"));
        let signed = if form {
            hmac_twilio::Signed::Form(req.body)
        } else {
            if !req.body.is_empty()
                && hmac_twilio::body_hash(req.query).as_deref()
                    != Some(&secrets::sha256(req.body)[..])
            {
                return Err(AuthFailure::new("bad_body_hash"));
            }
            hmac_twilio::Signed::UrlOnly
        };
        let text = hmac_twilio::signed_text(&self.public_url, req.path, req.query, signed)
            .map_err(|e| AuthFailure::new(e.reason()))?;
        self.check(&[text.as_bytes()], &[sig])
    }

    /// Zoom's `endpoint.url_validation` answer, for a request already verified with the key
    /// named `key_name`; `None` for every other request (and every other scheme).
    pub fn direct_answer(&self, key_name: &str, body: &[u8]) -> Option<bytes::Bytes> {
        if self.scheme != Scheme::Zoom {
            return None;
        }
        let (_, key) = self.keys.iter().find(|(n, _)| &**n == key_name)?;
        hmac_zoom::challenge_answer(key, body)
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
        check_keys(&self.keys, parts, sigs)
    }

    pub fn openapi_scheme(&self) -> serde_json::Value {
        let description = match self.scheme {
            Scheme::Github => "GitHub webhook signature: `sha256=<hex>` HMAC-SHA256 of the raw body".to_owned(),
            Scheme::Stripe => format!("Stripe webhook signature: `t=<unix>,v1=<hex>` HMAC-SHA256 of `<t>.<body>`, timestamps within {} s", self.tolerance_s),
            Scheme::Slack => format!("Slack request signature: `v0=<hex>` HMAC-SHA256 of `v0:<timestamp>:<body>` with X-Slack-Request-Timestamp within {} s", self.tolerance_s),
            Scheme::Standard => format!("Standard Webhooks signature: `webhook-signature: v1,<base64>` (space-separated, one per active secret) HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>`, secret `whsec_<base64>`, timestamps within {} s", self.tolerance_s),
            Scheme::Shopify => "Shopify webhook signature: base64 HMAC-SHA256 of the raw body".to_owned(),
            Scheme::Zoom => format!("Zoom webhook signature: `v0=<hex>` HMAC-SHA256 of `v0:<x-zm-request-timestamp>:<body>`, timestamps within {} s; `endpoint.url_validation` is answered by the gateway", self.tolerance_s),
            Scheme::Twilio => "Twilio request signature: base64 HMAC-SHA1 of the public URL plus the sorted form parameters (or the URL with `bodySHA256` for other bodies)".to_owned(),
            Scheme::FaasCli => "faas-cli invoke --sign: `sha256=<hex>` HMAC-SHA256 (or `sha1=<hex>` HMAC-SHA1, older faas-cli) of the raw body".to_owned(),
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

/// [`HmacPolicy::check`] over an explicit key list.
fn check_keys<'k>(
    keys: &'k [(Arc<str>, hmac::Key)],
    parts: &[&[u8]],
    sigs: &[&[u8]],
) -> Result<&'k Arc<str>, AuthFailure> {
    for (name, key) in keys {
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

/// Absent headers are the parser's to name (missing / missing_timestamp / missing_id); a
/// repeated one is malformed here already.
fn present(r: Result<&[u8], AuthFailure>) -> Result<Option<&[u8]>, AuthFailure> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.reason == SigError::Missing.reason() => Ok(None),
        Err(e) => Err(e),
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

#[cfg(test)]
#[path = "hmac_more_tests.rs"]
mod more_tests;
