//! JWT (JWS compact serialization) verification with ring. Order matters: parse the
//! header, pick keys by `kid` whose algorithm equals the header's `alg` (which must be in
//! the configured list; `none` never is), verify the signature, and only then parse the
//! claims and check `exp` / `nbf` (with leeway), `iss` and `aud`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use super::jwks::{Jwk, JwsAlg};
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

/// The claims the gateway uses after verification.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub sub: Option<String>,
}

#[derive(Deserialize)]
struct RawClaims {
    exp: Option<f64>,
    nbf: Option<f64>,
    iss: Option<String>,
    aud: Option<OneOrMany>,
    sub: Option<String>,
}

/// Compiled `jwt` settings.
#[derive(Debug)]
pub struct JwtVerifier {
    pub keys: Vec<Jwk>,
    pub algorithms: Vec<JwsAlg>,
    pub issuer: Option<String>,
    pub audience: Vec<String>,
    pub leeway_s: u64,
}

impl JwtVerifier {
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<Claims, JwtError> {
        let c = parse_compact(token)?;
        self.verify_signature(&c)?;
        self.check_claims(c.payload_b64, now_unix)
    }

    /// Algorithm allow-list, key choice (kid and algorithm must both match), signature.
    pub fn verify_signature(&self, c: &Compact<'_>) -> Result<(), JwtError> {
        let alg = JwsAlg::parse(&c.alg)
            .filter(|a| self.algorithms.contains(a))
            .ok_or(JwtError::AlgNotAllowed)?;
        let mut candidates = self
            .keys
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

    fn check_claims(&self, payload_b64: &str, now: u64) -> Result<Claims, JwtError> {
        let json = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| JwtError::MalformedClaims)?;
        let raw: RawClaims =
            serde_json::from_slice(&json).map_err(|_| JwtError::MalformedClaims)?;
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
        Ok(Claims { sub: raw.sub })
    }
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
