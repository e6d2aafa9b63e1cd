//! The login in flight: PKCE verifier, `state`, `nonce`, which function and where to go
//! back, sealed into a short-lived cookie set with the 302 to the provider. The callback
//! opens it (on any node: nothing is kept in memory), checks the `state` parameter
//! against it and sends the verifier to the token endpoint.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::seal::{random_token, KeyRing, OpenError};
use crate::auth::secrets::blinded_eq;

pub const COOKIE_NAME: &str = "__edgefn_oidc_login";
const PURPOSE: &[u8] = b"oidc-login";
/// A login must finish within this long (seconds).
pub const LOGIN_TTL_SECS: u64 = 600;
/// Caps on the callback's query parameters.
pub const MAX_CODE: usize = 2048;
pub const MAX_STATE: usize = 128;
pub const MAX_RETURN_TO: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginState {
    pub function: String,
    /// Path and query on this gateway (never an absolute URL: no open redirect).
    pub return_to: String,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub exp: u64,
}

#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum LoginError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("login state malformed")]
    Payload,
    #[error("login expired")]
    Expired,
    #[error("state does not match")]
    StateMismatch,
}

impl LoginState {
    /// A fresh login for `function`, returning to `return_to` (a local path).
    pub fn start(function: &str, return_to: &str, now_unix: u64) -> Option<Self> {
        // Browsers read `\` as `/`, so `/\evil.test` would leave the site as `//` does.
        let return_to = if return_to.starts_with('/')
            && !return_to.starts_with("//")
            && !return_to
                .bytes()
                .any(|b| b == b'\\' || b < 0x20 || b == 0x7f)
            && return_to.len() <= MAX_RETURN_TO
        {
            return_to.to_owned()
        } else {
            "/".to_owned()
        };
        Some(LoginState {
            function: function.to_owned(),
            return_to,
            state: random_token(24)?,
            nonce: random_token(24)?,
            verifier: random_token(32)?,
            exp: now_unix + LOGIN_TTL_SECS,
        })
    }

    /// The PKCE S256 challenge for the verifier.
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }

    pub fn seal(&self, ring: &KeyRing) -> Option<String> {
        ring.seal(PURPOSE, &serde_json::to_vec(self).ok()?)
    }

    /// Opens the login cookie and checks the callback's `state` against it.
    pub fn finish(
        ring: &KeyRing,
        cookie: &str,
        state_param: &str,
        now_unix: u64,
    ) -> Result<Self, LoginError> {
        let plain = ring.open(PURPOSE, cookie)?;
        let s: LoginState = serde_json::from_slice(&plain).map_err(|_| LoginError::Payload)?;
        if s.exp <= now_unix {
            return Err(LoginError::Expired);
        }
        if !blinded_eq(s.state.as_bytes(), state_param.as_bytes()) {
            return Err(LoginError::StateMismatch);
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::parse(&base64::engine::general_purpose::STANDARD.encode([9u8; 32])).unwrap()
    }

    #[test]
    fn start_seal_finish() {
        let s = LoginState::start("hello", "/hello?x=1", 100).unwrap();
        let c = s.seal(&ring()).unwrap();
        assert_eq!(LoginState::finish(&ring(), &c, &s.state, 200).unwrap(), s);
        assert_eq!(
            LoginState::finish(&ring(), &c, "wrong", 200),
            Err(LoginError::StateMismatch)
        );
        assert_eq!(
            LoginState::finish(&ring(), &c, &s.state, 100 + LOGIN_TTL_SECS),
            Err(LoginError::Expired)
        );
    }

    #[test]
    fn return_to_is_local_only() {
        assert_eq!(
            LoginState::start("f", "https://evil.test/", 0)
                .unwrap()
                .return_to,
            "/"
        );
        assert_eq!(
            LoginState::start("f", "//evil.test/", 0).unwrap().return_to,
            "/"
        );
        for sneaky in ["/\\evil.test/", "/\t/evil.test", "/a\r\nSet-Cookie: x=1"] {
            assert_eq!(
                LoginState::start("f", sneaky, 0).unwrap().return_to,
                "/",
                "{sneaky:?}"
            );
        }
        assert_eq!(
            LoginState::start("f", "/app?x=1", 0).unwrap().return_to,
            "/app?x=1"
        );
    }

    #[test]
    fn pkce_challenge_matches_rfc7636_appendix_b() {
        let mut s = LoginState::start("f", "/", 0).unwrap();
        s.verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into();
        assert_eq!(s.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }
}
