//! The token endpoint's side of a login: the form bodies the gateway posts (code with
//! its PKCE verifier; refresh token) and the capped parse of the answer. The ID token
//! is checked by the issuer's [`JwtVerifier`] (signature from the discovered JWKS, `iss`,
//! `aud` = client id, `exp`) and then for the login's `nonce`; only its subject and
//! forwarded claims go on into the session.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use crate::auth::jwt::{self, ClaimMap, JwtError, JwtVerifier};
use crate::auth::secrets::blinded_eq;

/// Largest token endpoint answer read.
pub const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TokenResponse {
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
    pub expires_in: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token endpoint answer over {MAX_TOKEN_RESPONSE} bytes")]
    TooLarge,
    #[error("token endpoint answer is not a token response")]
    Malformed,
    #[error("token endpoint answer has no id_token")]
    NoIdToken,
    #[error("ID token refused: {0}")]
    IdToken(JwtError),
    #[error("ID token nonce does not match the login")]
    Nonce,
    #[error("ID token has no subject")]
    NoSubject,
}

pub fn code_form(code: &str, redirect_uri: &str, verifier: &str, client: &Client<'_>) -> String {
    client
        .form()
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", verifier)
        .finish()
}

pub fn refresh_form(refresh_token: &str, client: &Client<'_>) -> String {
    client
        .form()
        .append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", refresh_token)
        .finish()
}

/// Client credentials sent in the body (`client_secret_post`).
pub struct Client<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

impl Client<'_> {
    fn form(&self) -> form_urlencoded::Serializer<'static, String> {
        let mut f = form_urlencoded::Serializer::new(String::new());
        f.append_pair("client_id", self.id)
            .append_pair("client_secret", self.secret);
        f
    }
}

pub fn parse_response(body: &[u8]) -> Result<TokenResponse, TokenError> {
    if body.len() > MAX_TOKEN_RESPONSE {
        return Err(TokenError::TooLarge);
    }
    serde_json::from_slice(body).map_err(|_| TokenError::Malformed)
}

/// What a verified ID token contributes to the session.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityClaims {
    pub sub: String,
    pub claims: ClaimMap,
}

/// Verifies the ID token; `nonce` is the login's (a refresh answer's ID token, if any,
/// carries no nonce to check: pass `None`).
pub fn verify_id_token(
    verifier: &JwtVerifier,
    id_token: &str,
    nonce: Option<&str>,
    now_unix: u64,
) -> Result<IdentityClaims, TokenError> {
    let (claims, _) = verifier
        .verify(id_token, now_unix)
        .map_err(TokenError::IdToken)?;
    if let Some(want) = nonce {
        let c = jwt::parse_compact(id_token).map_err(TokenError::IdToken)?;
        let payload = URL_SAFE_NO_PAD
            .decode(c.payload_b64)
            .map_err(|_| TokenError::Malformed)?;
        #[derive(Deserialize)]
        struct WithNonce {
            nonce: Option<String>,
        }
        let got: WithNonce = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if !got
            .nonce
            .is_some_and(|n| blinded_eq(n.as_bytes(), want.as_bytes()))
        {
            return Err(TokenError::Nonce);
        }
    }
    let sub = claims.sub.ok_or(TokenError::NoSubject)?;
    let mut forwarded = claims.forwarded.unwrap_or_default();
    forwarded.remove("sub");
    Ok(IdentityClaims {
        sub,
        claims: forwarded,
    })
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
