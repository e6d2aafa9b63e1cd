//! The session cookie's payload: what a function needs to know about a logged-in browser
//! and no more (never the ID token). JSON inside a [`KeyRing`](super::seal::KeyRing) seal
//! whose AAD is `session:<function>`, so a session for one function does not open another.
//! [`decode`] is the one entry for a presented cookie: cap, AEAD open, JSON parse, bounds.

use serde::{Deserialize, Serialize};

use super::seal::{KeyRing, OpenError};
use crate::auth::jwt::ClaimMap;

/// Bounds applied to a decoded payload (the seal already proves it came from us; these
/// keep a future bug or an old format from carrying unbounded data into a request).
pub const MAX_SUBJECT: usize = 255;
pub const MAX_CLAIMS: usize = 32;
pub const MAX_REFRESH_TOKEN: usize = 2048;
pub const COOKIE_NAME: &str = "__edgefn_session";
/// A session ends this long after the login, refreshed or not (and a logged-out id is
/// kept revoked this long); the cookie's `Max-Age` when it carries a refresh token.
pub const MAX_SESSION_AGE_SECS: u64 = super::config::MAX_SESSION_TTL_S;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// Random id: what logout revokes.
    pub sid: String,
    pub sub: String,
    #[serde(default, skip_serializing_if = "ClaimMap::is_empty")]
    pub claims: ClaimMap,
    /// The session ends here unless refreshed (Unix seconds).
    pub exp: u64,
    /// When the session itself was first established (bounds the revocation lifetime).
    pub iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
}

#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("session payload malformed")]
    Payload,
    #[error("session expired")]
    Expired,
}

impl SessionError {
    pub fn reason(self) -> &'static str {
        match self {
            SessionError::Open(e) => e.reason(),
            SessionError::Payload => "session_malformed",
            SessionError::Expired => "session_expired",
        }
    }
}

pub fn purpose(function: &str) -> Vec<u8> {
    format!("session:{function}").into_bytes()
}

/// Seals a session; `None` when it would not fit a cookie (too many/large claims).
pub fn encode(ring: &KeyRing, function: &str, s: &Session) -> Option<String> {
    let json = serde_json::to_vec(s).ok()?;
    ring.seal(&purpose(function), &json)
}

/// Opens a presented cookie value. An expired session is reported as such (the caller
/// may still refresh it if it carries a refresh token: see [`decode_allow_expired`]).
pub fn decode(
    ring: &KeyRing,
    function: &str,
    value: &str,
    now_unix: u64,
) -> Result<Session, SessionError> {
    let s = decode_allow_expired(ring, function, value)?;
    if s.exp <= now_unix {
        return Err(SessionError::Expired);
    }
    Ok(s)
}

pub fn decode_allow_expired(
    ring: &KeyRing,
    function: &str,
    value: &str,
) -> Result<Session, SessionError> {
    let plain = ring.open(&purpose(function), value)?;
    let s: Session = serde_json::from_slice(&plain).map_err(|_| SessionError::Payload)?;
    let bounded = !s.sid.is_empty()
        && s.sid.len() <= 64
        && !s.sub.is_empty()
        && s.sub.len() <= MAX_SUBJECT
        && s.claims.len() <= MAX_CLAIMS
        && s.refresh
            .as_ref()
            .is_none_or(|r| r.len() <= MAX_REFRESH_TOKEN);
    if bounded {
        Ok(s)
    } else {
        Err(SessionError::Payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn ring(b: u8) -> KeyRing {
        KeyRing::parse(&base64::engine::general_purpose::STANDARD.encode([b; 32])).unwrap()
    }

    fn session() -> Session {
        let mut claims = ClaimMap::new();
        claims.insert("email".into(), "a@example.test".into());
        Session {
            sid: "sid1".into(),
            sub: "alice".into(),
            claims,
            exp: 2_000,
            iat: 1_000,
            refresh: Some("r".repeat(900)),
        }
    }

    #[test]
    fn round_trip_and_expiry() {
        let r = ring(3);
        let c = encode(&r, "hello", &session()).unwrap();
        assert!(c.len() < 4096);
        assert_eq!(decode(&r, "hello", &c, 1_500).unwrap(), session());
        assert_eq!(decode(&r, "hello", &c, 2_000), Err(SessionError::Expired));
        assert_eq!(decode_allow_expired(&r, "hello", &c).unwrap(), session());
        // The function name is the AAD: another function's cookie does not open.
        assert_eq!(
            decode(&r, "other", &c, 1_500),
            Err(SessionError::Open(OpenError::Forged))
        );
    }

    #[test]
    fn a_session_too_large_for_a_cookie_is_not_sealed() {
        let mut s = session();
        s.claims.insert("big".into(), "x".repeat(4000).into());
        assert!(encode(&ring(3), "hello", &s).is_none());
    }

    #[test]
    fn sealed_payload_out_of_bounds_is_refused() {
        let r = ring(4);
        let mut s = session();
        s.sub = "u".repeat(MAX_SUBJECT + 1);
        let c = r
            .seal(&purpose("f"), &serde_json::to_vec(&s).unwrap())
            .unwrap();
        assert_eq!(decode(&r, "f", &c, 0), Err(SessionError::Payload));
        let c = r.seal(&purpose("f"), b"not json").unwrap();
        assert_eq!(decode(&r, "f", &c, 0), Err(SessionError::Payload));
    }
}
