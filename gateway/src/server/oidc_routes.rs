//! The gateway's own OIDC routes, served on hyper's path. `GET /_fn/oidc/callback`: the
//! query read with caps, the login-state cookie opened by whichever OIDC policy sealed it
//! (each function's key ring is tried; the sealed state names its function) and its
//! `state` checked, the code exchanged with the PKCE verifier, the ID token checked with
//! its nonce, then the session cookie set and the browser sent back to the page it asked
//! for (a local path only). `GET /_fn/oidc/logout`: the session id revoked (the old
//! cookie cannot be replayed), the cookie cleared, and the browser sent to the provider's
//! end-session endpoint when it has one. Every failure is a [`GatewayError`] (400 for a
//! bad or stale login, never 500).

use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Method, Request};

use crate::auth::headers::Headers;
use crate::auth::oidc::authorize::{CALLBACK_PATH, LOGOUT_PATH};
use crate::auth::oidc::login_state::{self, LoginError};
use crate::auth::oidc::policy::{self, OidcError};
use crate::auth::oidc::{callback, cookies, session};
use crate::error::GatewayError;
use crate::respond::{self, Body};
use crate::snapshot::Snapshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Callback,
    Logout,
}

impl Route {
    pub fn of(path: &str) -> Option<Route> {
        match path {
            CALLBACK_PATH => Some(Route::Callback),
            LOGOUT_PATH => Some(Route::Logout),
            _ => None,
        }
    }
}

pub async fn serve<B>(
    route: Route,
    snap: &Snapshot,
    req: &Request<B>,
    tls: bool,
    rid: &HeaderValue,
) -> http::Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let allow = HeaderValue::from_static("GET, HEAD");
        return respond::error(&GatewayError::MethodNotAllowed { allow }, rid);
    }
    let headers = Headers::Map(req.headers());
    let host = headers
        .first(&http::header::HOST)
        .and_then(|v| std::str::from_utf8(v).ok())
        .or(req.uri().authority().map(|a| a.as_str()));
    let origin = policy::origin(host, tls);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let result = match route {
        Route::Callback => callback(snap, headers, req.uri().query(), origin, now, tls).await,
        Route::Logout => Ok(logout(snap, headers, origin, now, tls)),
    };
    match result {
        Ok((location, set)) => respond::redirect(&location, &set, rid),
        Err(e) => {
            tracing::info!(reason = e.reason(), "OIDC callback refused");
            respond::error(&GatewayError::Oidc(e), rid)
        }
    }
}

type Redirect = (String, Vec<String>);

async fn callback(
    snap: &Snapshot,
    headers: Headers<'_>,
    query: Option<&str>,
    origin: Option<String>,
    now: u64,
    tls: bool,
) -> Result<Redirect, OidcError> {
    let cb = callback::parse(query)?;
    let cookie =
        policy::find_cookie(headers, login_state::COOKIE_NAME).ok_or(OidcError::NoLoginCookie)?;
    let mut refusal = LoginError::Open(crate::auth::oidc::seal::OpenError::Forged);
    let mut found = None;
    for f in snap.functions.iter() {
        let Some(oidc) = f.def.auth.oidc() else {
            continue;
        };
        match oidc.open_login(cookie, &cb.state, now) {
            Ok(login) if *login.function == *f.def.name => {
                found = Some((oidc, login));
                break;
            }
            // Sealed by another function's key, or for another function.
            Ok(_) | Err(LoginError::Open(_)) => {}
            // This policy's own login, but stale or with another `state`.
            Err(e) => {
                refusal = e;
                break;
            }
        }
    }
    let (oidc, login) = found.ok_or(OidcError::Login(refusal))?;
    let origin = origin.ok_or(OidcError::BadHost)?;
    let done = oidc
        .finish_login(&login, &cb.code, &origin, now, tls)
        .await?;
    let cleared = cookies::clear_cookie(login_state::COOKIE_NAME, tls);
    Ok((done.return_to, vec![done.cookie, cleared]))
}

fn logout(
    snap: &Snapshot,
    headers: Headers<'_>,
    origin: Option<String>,
    now: u64,
    tls: bool,
) -> Redirect {
    let mut location = "/".to_owned();
    if let Some(cookie) = policy::session_cookie(headers) {
        let owner = snap
            .functions
            .iter()
            .filter_map(|f| f.def.auth.oidc())
            .find(|oidc| oidc.logout(cookie, now));
        if let (Some(oidc), Some(origin)) = (owner, origin) {
            location = oidc.logout_location(&origin);
        }
    }
    (
        location,
        vec![cookies::clear_cookie(session::COOKIE_NAME, tls)],
    )
}
