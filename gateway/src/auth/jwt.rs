//! JWT (JWS compact serialization) verification with ring. Order matters: parse the
//! header, pick keys by `kid` whose algorithm equals the header's `alg` (which must be in
//! the configured list; `none` never is), verify the signature, and only then parse the
//! claims and check `exp` / `nbf` (with leeway), `iss` and `aud`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use std::sync::Arc;

use super::jwks::{Jwk, JwsAlg};
use super::jwks_fetch::{KeySet, RemoteKeys};
use super::secrets::OneOrMany;

/// Longest token parsed.
pub const MAX_TOKEN_LEN: usize = 8192;
/// Longest `sub` handed to the function as the subject.
pub const MAX_SUBJECT_LEN: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a JWS compact serialization")]
    Malformed,
    #[error("the token's algorithm is not allowed")]
    AlgNotAllowed,
    #[error("no key matches the token's kid and algorithm")]
    UnknownKey,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the claims are not a valid JSON object")]
    MalformedClaims,
    #[error("the token has no exp claim")]
    MissingExp,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the issuer is not the configured one")]
    WrongIssuer,
    #[error("the audience is not the configured one")]
    WrongAudience,
    #[error("no key set has been fetched from the issuer yet")]
    NoKeySet,
    #[error("the token lacks a required scope")]
    InsufficientScope,
    #[error("a required claim is missing or has another value")]
    ClaimMismatch,
}

impl JwtError {
    pub fn reason(self) -> &'static str {
        match self {
            JwtError::Malformed => "malformed",
            JwtError::AlgNotAllowed => "alg_not_allowed",
            JwtError::UnknownKey => "unknown_key",
            JwtError::BadSignature => "bad_signature",
            JwtError::MalformedClaims => "malformed_claims",
            JwtError::MissingExp => "missing_exp",
            JwtError::Expired => "expired",
            JwtError::NotYetValid => "not_yet_valid",
            JwtError::WrongIssuer => "wrong_issuer",
            JwtError::WrongAudience => "wrong_audience",
            JwtError::NoKeySet => "no_key_set",
            JwtError::InsufficientScope => "insufficient_scope",
            JwtError::ClaimMismatch => "claim_mismatch",
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    /// Critical extensions we do not implement: such a token must be refused (RFC 7515 §4.1.11).
    crit: Option<serde_json::Value>,
}

/// A parsed, not yet verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compact<'a> {
    /// The header's `alg`, verbatim (may be `none` or unknown: refused at verification).
    pub alg: String,
    pub kid: Option<String>,
    /// `<header>.<payload>`, the signed bytes.
    pub signing_input: &'a str,
    pub payload_b64: &'a str,
    pub signature: Vec<u8>,
}

pub fn parse_compact(token: &str) -> Result<Compact<'_>, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header_json = URL_SAFE_NO_PAD.decode(h).map_err(|_| JwtError::Malformed)?;
    let header: Header = serde_json::from_slice(&header_json).map_err(|_| JwtError::Malformed)?;
    if header.crit.is_some() || p.is_empty() {
        return Err(JwtError::Malformed);
    }
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    Ok(Compact {
        alg: header.alg,
        kid: header.kid,
        signing_input: &token[..h.len() + 1 + p.len()],
        payload_b64: p,
        signature,
    })
}

/// A JSON object of claims handed to the function.
pub type ClaimMap = serde_json::Map<String, serde_json::Value>;

/// The claims the gateway uses after verification.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub sub: Option<String>,
    /// `exp`, seconds since the epoch (a verification cache entry lives until then).
    pub exp: f64,
    /// The configured `forward_claims` the token carries, plus `sub`; `None` when nothing
    /// is configured to be forwarded. Bounded by [`MAX_TOKEN_LEN`].
    pub forwarded: Option<ClaimMap>,
}

#[derive(Deserialize)]
struct RawClaims {
    exp: Option<f64>,
    nbf: Option<f64>,
    iss: Option<String>,
    aud: Option<OneOrMany>,
    sub: Option<String>,
}

/// Where the verification keys come from.
#[derive(Debug)]
pub enum KeySource {
    /// `jwks_file`, read at compile time.
    Static(Arc<KeySet>),
    /// `discovery` / `jwks_url`: the last good set fetched.
    Remote(Arc<RemoteKeys>),
}

impl KeySource {
    pub fn fixed(keys: Vec<Jwk>) -> KeySource {
        KeySource::Static(Arc::new(KeySet {
            keys,
            generation: 0,
        }))
    }

    pub fn current(&self) -> Option<Arc<KeySet>> {
        match self {
            KeySource::Static(set) => Some(set.clone()),
            KeySource::Remote(r) => r.current(),
        }
    }
}

/// Compiled `jwt` settings.
#[derive(Debug)]
pub struct JwtVerifier {
    pub keys: KeySource,
    pub algorithms: Vec<JwsAlg>,
    pub issuer: Option<String>,
    pub audience: Vec<String>,
    pub leeway_s: u64,
    /// All of these must be in `scope` (space-separated) or `scp` (array).
    pub required_scopes: Vec<String>,
    /// Each named claim must equal (or, for an array claim, contain) one of the values.
    pub claims: Vec<(String, Vec<serde_json::Value>)>,
    pub forward_claims: Vec<String>,
}

impl JwtVerifier {
    /// Signature and claims against the current key set; also returns that set's
    /// generation, which a cached result is tied to.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<(Claims, u64), JwtError> {
        let c = parse_compact(token)?;
        let set = self.keys.current().ok_or(JwtError::NoKeySet)?;
        verify_signature(&self.algorithms, &set.keys, &c)?;
        Ok((self.check_claims(c.payload_b64, now_unix)?, set.generation))
    }

    /// The signature alone, against the current key set.
    pub fn verify_signature(&self, c: &Compact<'_>) -> Result<(), JwtError> {
        let set = self.keys.current().ok_or(JwtError::NoKeySet)?;
        verify_signature(&self.algorithms, &set.keys, c)
    }

    fn check_claims(&self, payload_b64: &str, now: u64) -> Result<Claims, JwtError> {
        let json = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| JwtError::MalformedClaims)?;
        let all: ClaimMap = serde_json::from_slice(&json).map_err(|_| JwtError::MalformedClaims)?;
        let raw: RawClaims = serde_json::from_value(serde_json::Value::Object(all.clone()))
            .map_err(|_| JwtError::MalformedClaims)?;
        let now = now as f64;
        let leeway = self.leeway_s as f64;
        let exp = raw.exp.ok_or(JwtError::MissingExp)?;
        if now >= exp + leeway {
            return Err(JwtError::Expired);
        }
        if raw.nbf.is_some_and(|nbf| now + leeway < nbf) {
            return Err(JwtError::NotYetValid);
        }
        if let Some(want) = &self.issuer {
            if raw.iss.as_ref() != Some(want) {
                return Err(JwtError::WrongIssuer);
            }
        }
        if !self.audience.is_empty() {
            let got = raw.aud.as_ref().map_or(&[][..], OneOrMany::names);
            if !got.iter().any(|a| self.audience.contains(a)) {
                return Err(JwtError::WrongAudience);
            }
        }
        if raw.sub.as_ref().is_some_and(|s| s.len() > MAX_SUBJECT_LEN) {
            return Err(JwtError::MalformedClaims);
        }
        if !self.required_scopes.iter().all(|s| has_scope(&all, s)) {
            return Err(JwtError::InsufficientScope);
        }
        for (name, accepted) in &self.claims {
            if !claim_matches(all.get(name), accepted) {
                return Err(JwtError::ClaimMismatch);
            }
        }
        let forwarded = (!self.forward_claims.is_empty()).then(|| {
            let mut out = ClaimMap::new();
            for name in self
                .forward_claims
                .iter()
                .map(String::as_str)
                .chain(["sub"])
            {
                if let Some(v) = all.get(name) {
                    out.insert(name.to_owned(), v.clone());
                }
            }
            out
        });
        Ok(Claims {
            sub: raw.sub,
            exp,
            forwarded,
        })
    }
}

/// Algorithm allow-list, key choice (kid and algorithm must both match), signature.
pub fn verify_signature(
    algorithms: &[JwsAlg],
    keys: &[Jwk],
    c: &Compact<'_>,
) -> Result<(), JwtError> {
    let alg = JwsAlg::parse(&c.alg)
        .filter(|a| algorithms.contains(a))
        .ok_or(JwtError::AlgNotAllowed)?;
    let mut candidates = keys
        .iter()
        .filter(|k| k.alg == alg && (c.kid.is_none() || k.kid == c.kid))
        .peekable();
    if candidates.peek().is_none() {
        return Err(JwtError::UnknownKey);
    }
    if candidates.any(|k| k.verify(c.signing_input.as_bytes(), &c.signature)) {
        Ok(())
    } else {
        Err(JwtError::BadSignature)
    }
}

/// `scope` as a space-separated string (RFC 8693 §4.2) or `scp` as an array or string
/// (Entra, Okta).
fn has_scope(all: &ClaimMap, want: &str) -> bool {
    let in_str = |v: Option<&serde_json::Value>| {
        v.and_then(|v| v.as_str())
            .is_some_and(|s| s.split(' ').any(|x| x == want))
    };
    in_str(all.get("scope"))
        || in_str(all.get("scp"))
        || all
            .get("scp")
            .and_then(|v| v.as_array())
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(want)))
}

fn claim_matches(got: Option<&serde_json::Value>, accepted: &[serde_json::Value]) -> bool {
    match got {
        None => false,
        Some(serde_json::Value::Array(items)) => items.iter().any(|i| accepted.contains(i)),
        Some(v) => accepted.contains(v),
    }
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
