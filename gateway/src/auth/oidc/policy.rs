//! The compiled `"type": "oidc"` policy, and the steps of a login that need the network.
//! [`OidcPolicy::verify`] is synchronous (front and hyper alike): it opens the session
//! cookie and admits, or answers [`Refusal::Login`] (no usable session) or
//! [`Refusal::RefreshSession`] (due for a refresh). The pipeline takes those two to
//! hyper's path, where [`OidcPolicy::login`] builds the 302 to the provider and
//! [`OidcPolicy::refresh`] posts the refresh token; the callback and logout routes call
//! [`OidcPolicy::open_login`], [`OidcPolicy::finish_login`] and [`OidcPolicy::logout`].
//!
//! Endpoints come from the issuer's discovery document, fetched with its JWKS by the
//! shared [`RemoteKeys`] off the request path; before the first good fetch every step
//! that needs them answers 503. A session is sealed for the pair issuer + client id,
//! so every function behind the same login shares it (one cookie name for all).

use std::sync::Arc;

use http::HeaderValue;
use serde_json::json;

use super::callback::{self, CallbackError};
use super::config::{self, CompiledOidc, OidcConfig};
use super::cookies;
use super::decide::{self, Decision};
use super::login_state::{self, LoginError, LoginState};
use super::revoked;
use super::seal::random_token;
use super::session::{self, Session};
use super::token::{self, TokenError};
use super::token_client::{post_form, ExchangeError};
use super::{authorize, token::IdentityClaims};
use crate::auth::discovery::{self, Discovery};
use crate::auth::headers::Headers;
use crate::auth::http_fetch;
use crate::auth::jwks::JwsAlg;
use crate::auth::jwks_fetch::{RemoteKeys, Source};
use crate::auth::jwt::{ClaimMap, JwtError, JwtVerifier, KeySource};
use crate::auth::{Admitted, AuthConfigError, AuthFailure, AuthRequest, Identity, Refusal};
use crate::catalog::fn_env::FnEnv;

static CHALLENGE: HeaderValue = HeaderValue::from_static("Bearer");
const ID_TOKEN_LEEWAY_S: u64 = 30;

/// Why a login step could not complete; each maps to a status in `error.rs`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// 503: the issuer's discovery document has not been fetched yet.
    #[error("login is unavailable: the identity provider's discovery document could not be fetched yet; retry later")]
    NoDiscovery,
    /// 400: the callback query is missing, too long, or the provider refused.
    #[error("login failed: {0}")]
    Callback(#[from] CallbackError),
    /// 400: no login in flight in this browser (cookie missing, forged, or expired), or
    /// its `state` does not match.
    #[error("login failed: {0}; start again from the page you wanted")]
    Login(#[from] LoginError),
    /// 400: the browser did not send the login cookie back.
    #[error("login failed: no login in progress in this browser (its cookie is missing); start again from the page you wanted")]
    NoLoginCookie,
    /// 400: the request's `Host` cannot form a redirect URI.
    #[error("login failed: the request's Host header is missing or unusable")]
    BadHost,
    /// 400: the provider refused the code (replayed, expired, wrong verifier).
    #[error("login failed: the identity provider refused the authorization code (HTTP {status}); start again")]
    CodeRefused { status: u16 },
    /// 400: the ID token is for another login.
    #[error("login failed: the ID token's nonce does not match this login")]
    Nonce,
    /// 502: the token endpoint was unreachable or answered something unusable.
    #[error("login failed: the identity provider's token endpoint {detail}")]
    Provider { detail: &'static str },
}

impl OidcError {
    /// The bounded metric reason.
    pub fn reason(&self) -> &'static str {
        match self {
            OidcError::NoDiscovery => "no_discovery",
            OidcError::Callback(e) => e.reason(),
            OidcError::Login(e) => match e {
                LoginError::Open(o) => o.reason(),
                LoginError::Payload => "login_malformed",
                LoginError::Expired => "login_expired",
                LoginError::StateMismatch => "state_mismatch",
            },
            OidcError::NoLoginCookie => "no_login_cookie",
            OidcError::BadHost => "bad_host",
            OidcError::CodeRefused { .. } => "code_refused",
            OidcError::Nonce => "nonce_mismatch",
            OidcError::Provider { .. } => "provider_error",
        }
    }
}

#[derive(Debug)]
pub struct OidcPolicy {
    cfg: CompiledOidc,
    keys: Arc<RemoteKeys>,
    /// ID tokens: the issuer's published keys, `iss`, `aud` = client id.
    verifier: JwtVerifier,
    /// The seal's purpose: issuer and client id.
    scope: String,
}

/// The 302 to the provider: where, and the sealed login-state cookie.
#[derive(Debug)]
pub struct LoginRedirect {
    pub location: HeaderValue,
    pub cookie: HeaderValue,
}

/// A finished login: where to go back, and the session cookie.
#[derive(Debug)]
pub struct LoggedIn {
    pub return_to: String,
    pub cookie: String,
}

pub fn compile(c: &OidcConfig, env: &FnEnv) -> Result<OidcPolicy, Vec<AuthConfigError>> {
    let mut errors = Vec::new();
    let Some(cfg) = config::compile(c, env, &mut errors) else {
        return Err(errors);
    };
    let keys = RemoteKeys::shared(
        Source::Discovery {
            issuer: cfg.issuer.clone(),
        },
        cfg.allow_insecure_issuer,
    );
    let verifier = JwtVerifier {
        keys: KeySource::Remote(keys.clone()),
        algorithms: vec![JwsAlg::Rs256, JwsAlg::Es256, JwsAlg::EdDsa],
        issuer: Some(cfg.issuer.clone()),
        audience: vec![cfg.client_id.clone()],
        leeway_s: ID_TOKEN_LEEWAY_S,
        required_scopes: vec![],
        claims: vec![],
        forward_claims: cfg.forward_claims.clone(),
    };
    let scope = format!("{} {}", cfg.issuer, cfg.client_id);
    Ok(OidcPolicy {
        cfg,
        keys,
        verifier,
        scope,
    })
}

impl OidcPolicy {
    /// The session cookie alone decides; no IO.
    pub fn verify(&self, req: &AuthRequest<'_>) -> Result<Admitted, Refusal> {
        let accept = req
            .headers
            .first(&http::header::ACCEPT)
            .and_then(|v| std::str::from_utf8(v).ok());
        let presented = decide::Presented {
            session_cookie: session_cookie(req.headers),
            accept,
            now_unix: req.now_unix,
            margin_secs: self.cfg.refresh_margin_s,
        };
        match decide::decide(&self.cfg.ring, &self.scope, revoked::global(), &presented) {
            Decision::Admit(s) => Ok(admitted(&s)),
            Decision::AdmitAndRefresh(_) | Decision::RefreshFirst(_) => {
                Err(Refusal::RefreshSession)
            }
            Decision::Login { reason } => Err(Refusal::Login(failure(reason))),
            Decision::Unauthorized { reason } => Err(Refusal::Unauthorized(failure(reason))),
        }
    }

    pub fn openapi_scheme(&self) -> serde_json::Value {
        json!({"type": "openIdConnect", "openIdConnectUrl": discovery::url_for(&self.cfg.issuer),
            "description": "Browser login (authorization code with PKCE); the session is an HttpOnly cookie"})
    }

    fn endpoints(&self) -> Result<Arc<Discovery>, OidcError> {
        self.keys.endpoints().ok_or(OidcError::NoDiscovery)
    }

    /// An endpoint from the document, held to the same URL rules as the issuer.
    fn endpoint<'d>(&self, url: Option<&'d str>) -> Result<&'d str, OidcError> {
        let url = url.ok_or(OidcError::NoDiscovery)?;
        http_fetch::check_url(url, self.cfg.allow_insecure_issuer)
            .map_err(|_| OidcError::NoDiscovery)?;
        Ok(url)
    }

    /// Starts a login for `function`, returning to `return_to` afterwards.
    pub fn login(
        &self,
        function: &str,
        origin: &str,
        return_to: &str,
        now_unix: u64,
        secure: bool,
    ) -> Result<LoginRedirect, OidcError> {
        let d = self.endpoints()?;
        let auth_ep = self.endpoint(d.authorization_endpoint.as_deref())?;
        let provider = OidcError::Provider {
            detail: "could not be used (no randomness or no cookie room)",
        };
        let login = LoginState::start(function, return_to, now_unix).ok_or(provider.clone())?;
        let sealed = login.seal(&self.cfg.ring).ok_or(provider.clone())?;
        let url = authorize::url(
            auth_ep,
            &self.cfg.client_id,
            &authorize::redirect_uri(origin),
            &self.cfg.scopes,
            &login,
        );
        let cookie = cookies::set_cookie(
            login_state::COOKIE_NAME,
            &sealed,
            login_state::LOGIN_TTL_SECS,
            secure,
        );
        Ok(LoginRedirect {
            location: HeaderValue::try_from(url).map_err(|_| provider.clone())?,
            cookie: HeaderValue::try_from(cookie).map_err(|_| provider)?,
        })
    }

    /// Opens the login cookie the callback carries and checks its `state`.
    pub fn open_login(
        &self,
        cookie: &str,
        state: &str,
        now_unix: u64,
    ) -> Result<LoginState, LoginError> {
        LoginState::finish(&self.cfg.ring, cookie, state, now_unix)
    }

    /// The code exchange with the login's PKCE verifier, the ID token checks (nonce
    /// included), and the session cookie.
    pub async fn finish_login(
        &self,
        login: &LoginState,
        code: &str,
        origin: &str,
        now_unix: u64,
        secure: bool,
    ) -> Result<LoggedIn, OidcError> {
        let d = self.endpoints()?;
        let token_ep = self.endpoint(d.token_endpoint.as_deref())?;
        let form = token::code_form(
            code,
            &authorize::redirect_uri(origin),
            &login.verifier,
            &self.client(),
        );
        let answer = post_form(token_ep, form).await.map_err(exchange_error)?;
        let id_token = answer.id_token.as_deref().ok_or(OidcError::Provider {
            detail: "answered without an ID token",
        })?;
        let id = self
            .verify_id_token(id_token, Some(&login.nonce), now_unix)
            .await?;
        let sid = random_token(16).ok_or(OidcError::Provider {
            detail: "could not be used (no randomness)",
        })?;
        let s = Session {
            sid,
            sub: id.sub,
            claims: id.claims,
            exp: now_unix + self.cfg.session_ttl_s,
            iat: now_unix,
            refresh: bounded_refresh(answer.refresh_token),
        };
        Ok(LoggedIn {
            return_to: login.return_to.clone(),
            cookie: self.seal_cookie(s, secure)?,
        })
    }

    /// Refreshes the presented session with its refresh token. `Ok` with a cookie to set
    /// on the answer, or without one when the provider failed but the session is still
    /// live; `Err` when the session ends (the caller answers 302 or 401).
    pub async fn refresh(
        &self,
        headers: Headers<'_>,
        now_unix: u64,
        secure: bool,
    ) -> Result<(Admitted, Option<HeaderValue>), AuthFailure> {
        let s = session_cookie(headers)
            .and_then(|v| session::decode_allow_expired(&self.cfg.ring, &self.scope, v).ok())
            .ok_or_else(|| failure("no_session"))?;
        let live = s.exp > now_unix;
        match self.refreshed(&s, now_unix).await {
            Ok(new) => {
                let cookie = self
                    .seal_cookie(new.clone(), secure)
                    .ok()
                    .and_then(|c| HeaderValue::try_from(c).ok());
                tracing::debug!("OIDC session refreshed");
                Ok((admitted(&new), cookie))
            }
            Err(e) if live => {
                tracing::warn!(
                    reason = e.reason(),
                    "OIDC session refresh failed; the session is still live"
                );
                Ok((admitted(&s), None))
            }
            Err(e) => {
                tracing::info!(
                    reason = e.reason(),
                    "OIDC session refresh failed; the session ends"
                );
                Err(failure("refresh_failed"))
            }
        }
    }

    async fn refreshed(&self, s: &Session, now_unix: u64) -> Result<Session, OidcError> {
        let rt = s.refresh.as_deref().ok_or(OidcError::Provider {
            detail: "cannot refresh without a refresh token",
        })?;
        let d = self.endpoints()?;
        let token_ep = self.endpoint(d.token_endpoint.as_deref())?;
        let answer = post_form(token_ep, token::refresh_form(rt, &self.client()))
            .await
            .map_err(exchange_error)?;
        let mut new = s.clone();
        if let Some(id_token) = answer.id_token.as_deref() {
            let id = self.verify_id_token(id_token, None, now_unix).await?;
            if id.sub != s.sub {
                return Err(OidcError::Provider {
                    detail: "answered a refresh with another subject",
                });
            }
            new.claims = id.claims;
        }
        new.exp = now_unix + self.cfg.session_ttl_s;
        if answer.refresh_token.is_some() {
            new.refresh = bounded_refresh(answer.refresh_token);
        }
        Ok(new)
    }

    /// Revokes the presented session (if it is one of this policy's) until it could no
    /// longer be used; true when it was.
    pub fn logout(&self, cookie: &str, now_unix: u64) -> bool {
        match session::decode_allow_expired(&self.cfg.ring, &self.scope, cookie) {
            Ok(s) => {
                let until = s
                    .iat
                    .saturating_add(session::MAX_SESSION_AGE_SECS)
                    .max(s.exp);
                revoked::global().revoke(&s.sid, until, now_unix);
                true
            }
            Err(_) => false,
        }
    }

    /// Where the browser goes after logout: the provider's end-session endpoint when it
    /// publishes one, back to `origin/` afterwards.
    pub fn logout_location(&self, origin: &str) -> String {
        let back = format!("{}/", origin.trim_end_matches('/'));
        let end = self.keys.endpoints();
        let ep = end
            .as_deref()
            .and_then(|d| self.endpoint(d.end_session_endpoint.as_deref()).ok());
        callback::logout_redirect(ep, &self.cfg.client_id, &back)
    }

    fn client(&self) -> token::Client<'_> {
        token::Client {
            id: &self.cfg.client_id,
            secret: &self.cfg.client_secret,
        }
    }

    /// An ID token naming a key not yet fetched asks for the issuer's keys once.
    async fn verify_id_token(
        &self,
        id_token: &str,
        nonce: Option<&str>,
        now_unix: u64,
    ) -> Result<IdentityClaims, OidcError> {
        let first = token::verify_id_token(&self.verifier, id_token, nonce, now_unix);
        let result = match first {
            Err(TokenError::IdToken(JwtError::UnknownKey | JwtError::NoKeySet)) => {
                self.keys.refresh().await;
                token::verify_id_token(&self.verifier, id_token, nonce, now_unix)
            }
            other => other,
        };
        result.map_err(|e| match e {
            TokenError::Nonce => OidcError::Nonce,
            _ => OidcError::Provider {
                detail: "sent an ID token that does not verify",
            },
        })
    }

    /// Seals `s` into a `Set-Cookie` value; a session whose claims do not fit a cookie
    /// keeps only its subject.
    fn seal_cookie(&self, mut s: Session, secure: bool) -> Result<String, OidcError> {
        let value = match session::encode(&self.cfg.ring, &self.scope, &s) {
            Some(v) => v,
            None => {
                s.claims = ClaimMap::new();
                session::encode(&self.cfg.ring, &self.scope, &s).ok_or(OidcError::Provider {
                    detail: "sent a session too large for a cookie",
                })?
            }
        };
        let max_age = if s.refresh.is_some() {
            session::MAX_SESSION_AGE_SECS
        } else {
            s.exp.saturating_sub(s.iat)
        };
        Ok(cookies::set_cookie(
            session::COOKIE_NAME,
            &value,
            max_age,
            secure,
        ))
    }
}

/// The session cookie's value among the request's `Cookie` headers.
pub fn session_cookie(headers: Headers<'_>) -> Option<&str> {
    find_cookie(headers, session::COOKIE_NAME)
}

pub fn find_cookie<'a>(headers: Headers<'a>, name: &str) -> Option<&'a str> {
    headers
        .get_all(&http::header::COOKIE)
        .filter_map(|v| std::str::from_utf8(v).ok())
        .find_map(|h| cookies::find(h, name))
}

fn admitted(s: &Session) -> Admitted {
    let mut claims = s.claims.clone();
    claims.insert("sub".into(), s.sub.clone().into());
    Admitted {
        identity: Identity {
            kind: "oidc",
            subject: Some(Arc::from(s.sub.as_str())),
        },
        claims: Some(Arc::new(claims)),
    }
}

fn failure(reason: &'static str) -> AuthFailure {
    AuthFailure {
        reason,
        challenge: Some(CHALLENGE.clone()),
    }
}

/// A refresh token too long for the cookie is dropped: the session then ends at its
/// expiry instead.
fn bounded_refresh(rt: Option<String>) -> Option<String> {
    rt.filter(|r| r.len() <= session::MAX_REFRESH_TOKEN)
}

fn exchange_error(e: ExchangeError) -> OidcError {
    match e {
        ExchangeError::Status { status } if (400..500).contains(&status) => {
            OidcError::CodeRefused { status }
        }
        ExchangeError::Status { .. } => OidcError::Provider {
            detail: "answered with a server error",
        },
        ExchangeError::Transport { .. } => OidcError::Provider {
            detail: "is unreachable",
        },
        ExchangeError::Token(_) => OidcError::Provider {
            detail: "answered something that is not a token response",
        },
    }
}

/// `scheme://host[:port]` of this gateway as the browser sees it, from `Host` (the
/// provider only accepts registered redirect URIs, so a forged one goes nowhere).
pub fn origin(host: Option<&str>, tls: bool) -> Option<String> {
    let host = host?;
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    let scheme = if tls { "https" } else { "http" };
    ok.then(|| format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_is_checked() {
        assert_eq!(
            origin(Some("127.0.0.1:8080"), false).as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin(Some("gw.example"), true).as_deref(),
            Some("https://gw.example")
        );
        assert_eq!(origin(Some("evil/x"), false), None);
        assert_eq!(origin(Some(""), false), None);
        assert_eq!(origin(None, false), None);
    }

    use crate::auth::test_support::{env, headers, req};
    use crate::auth::{AuthConfig, Policy};
    use base64::Engine;

    fn key() -> String {
        base64::engine::general_purpose::STANDARD.encode([5u8; 32])
    }

    fn policy(json: serde_json::Value) -> Policy {
        let cfg: AuthConfig = serde_json::from_value(json).unwrap();
        let env = env(&[("CS", "client-secret"), ("CK", &key())]);
        Policy::compile(&cfg, &env, std::path::Path::new("/x")).unwrap()
    }

    fn oidc_json() -> serde_json::Value {
        serde_json::json!({"type": "oidc", "issuer": "http://127.0.0.1:1", "client_id": "web",
            "client_secret": "CS", "cookie_secret": "CK", "refresh_margin_s": 60})
    }

    fn cookie(exp: u64) -> String {
        let ring = super::super::seal::KeyRing::parse(&key()).unwrap();
        let s = Session {
            sid: "sid".into(),
            sub: "alice".into(),
            claims: ClaimMap::new(),
            exp,
            iat: 1_000,
            refresh: Some("rt".into()),
        };
        let value = session::encode(&ring, "http://127.0.0.1:1 web", &s).unwrap();
        format!("a=1; {}={value}", session::COOKIE_NAME)
    }

    #[test]
    fn sessions_logins_refreshes_and_refusals() {
        let p = policy(oidc_json());
        assert_eq!(p.kind(), "oidc");
        assert_eq!(p.hidden().cookies.len(), 2);
        assert_eq!(p.openapi_scheme().unwrap()["type"], "openIdConnect");
        let h = headers(&[("accept", "text/html")]);
        assert!(matches!(
            p.verify(&req(&h, b"", 2_000)),
            Err(Refusal::Login(_))
        ));
        let h = headers(&[("accept", "application/json")]);
        let Err(Refusal::Unauthorized(f)) = p.verify(&req(&h, b"", 2_000)) else {
            panic!()
        };
        assert_eq!(f.challenge.unwrap(), "Bearer");
        let c = cookie(5_000);
        let h = headers(&[("cookie", &c)]);
        let a = p.verify(&req(&h, b"", 2_000)).unwrap();
        assert_eq!(a.identity.kind, "oidc");
        assert_eq!(a.identity.subject.as_deref(), Some("alice"));
        assert_eq!(a.claims.unwrap()["sub"], "alice");
        // Inside the margin, or expired with a refresh token: refresh on hyper's path.
        assert_eq!(p.verify(&req(&h, b"", 4_950)), Err(Refusal::RefreshSession));
        assert_eq!(p.verify(&req(&h, b"", 6_000)), Err(Refusal::RefreshSession));
    }

    #[test]
    fn any_of_with_oidc() {
        let p = policy(serde_json::json!([{"type": "none"}, oidc_json()]));
        let h = headers(&[("accept", "text/html")]);
        assert_eq!(
            p.verify(&req(&h, b"", 2_000)).unwrap().identity.kind,
            "anonymous"
        );
        let c = cookie(5_000);
        let h = headers(&[("cookie", &c)]);
        assert_eq!(
            p.verify(&req(&h, b"", 2_000)).unwrap().identity.kind,
            "oidc"
        );
        let p = policy(serde_json::json!([{"type": "api_key", "secret": "CS"}, oidc_json()]));
        let h = headers(&[("accept", "text/html")]);
        assert!(
            matches!(p.verify(&req(&h, b"", 2_000)), Err(Refusal::Login(_))),
            "a browser with neither is sent to log in"
        );
        assert!(p.oidc().is_some());
    }

    #[test]
    fn every_error_has_a_reason() {
        for e in [
            OidcError::NoDiscovery,
            OidcError::NoLoginCookie,
            OidcError::BadHost,
            OidcError::CodeRefused { status: 400 },
            OidcError::Nonce,
            OidcError::Login(LoginError::StateMismatch),
        ] {
            assert!(!e.reason().is_empty());
        }
    }
}
