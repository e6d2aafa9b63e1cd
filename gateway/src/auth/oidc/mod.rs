//! OIDC login for websites (`"auth": {"type": "oidc", ...}`). The pieces, by the order a
//! login flows through them: [`seal`] (the AEAD key ring every cookie goes through),
//! [`login_state`] (PKCE verifier, `state` and `nonce` sealed into a short-lived cookie so
//! any node can finish the login), [`session`] (the session cookie: subject, forwarded
//! claims, expiry, refresh token) and [`revoked`] (logged-out session ids kept until
//! their expiry so an old cookie cannot be replayed); [`cookies`] reads, strips and writes
//! them in headers; [`authorize`] builds the provider URL and [`token`] the token
//! endpoint's forms, parses its answer and checks the ID token (JWKS, `iss`, `aud`, `exp`,
//! `nonce`); [`decide`] maps a presented cookie to admit / refresh / login / 401; [`callback`]
//! reads the callback query with caps and builds the logout redirect; [`config`] compiles
//! the `fn.config.json` object; [`policy`] is the compiled policy the pipeline calls.

pub mod authorize;
pub mod callback;
pub mod config;
pub mod cookies;
pub mod decide;
pub mod login_state;
pub mod policy;
pub mod revoked;
pub mod seal;
pub mod session;
pub mod token;
pub mod token_client;
