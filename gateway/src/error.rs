//! Every way a request can fail at the gateway, and the ONE exhaustive mapping from those
//! failures to HTTP statuses (no catch-all arm: a new variant must choose its status).

use std::time::Duration;

use http::{HeaderValue, StatusCode};

use crate::async_queue::AsyncError;
use crate::auth::oidc::policy::OidcError;
use crate::auth::AuthFailure;
use crate::pool::PoolError;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No route for this path and method (FastFN's text).
    #[error("not found")]
    NotFound,
    /// Two handlers serve the route (`python/x`, `node/x`): FastFN's 409 and text.
    #[error("ambiguous function")]
    Ambiguous,
    /// A `..` segment (`/%2e%2e/x`) above the root: 400, as nginx answers for FastFN.
    #[error("Bad Request: the path climbs above the root")]
    PathAboveRoot,
    /// The methods accepted go in `Allow` (FastFN's text).
    #[error("method not allowed")]
    MethodNotAllowed { allow: HeaderValue },
    #[error("unauthorized")]
    Unauthorized { failure: AuthFailure },
    #[error("rate limit exceeded; retry later")]
    RateLimited { retry_after: Duration },
    /// FastFN's text; `limit` is for the log.
    #[error("payload too large")]
    PayloadTooLarge { limit: u64 },
    #[error("the request body could not be read")]
    BodyRead,
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error("forbidden: the credential lacks a required scope or claim")]
    Forbidden { failure: AuthFailure },
    #[error(
        "authentication is unavailable: no key set could be fetched from the issuer; retry later"
    )]
    AuthUnavailable,
    #[error("the request body did not arrive in time")]
    BodyTimeout { why: BodyTimeout },
    /// A replay-guarded webhook while the `[cluster]` store is unreachable.
    #[error("the shared replay guard is unavailable; retry later")]
    StoreUnavailable,
    #[error(transparent)]
    Async(#[from] AsyncError),
    /// An OIDC-protected function asked by a browser without a session: 302 to the
    /// provider, setting the sealed login-state cookie.
    #[error("login required: follow the redirect to the identity provider")]
    LoginRequired {
        location: HeaderValue,
        cookie: HeaderValue,
    },
    /// A step of the OIDC callback or login that could not complete.
    #[error(transparent)]
    Oidc(#[from] OidcError),
    /// A handler's FastFN `proxy` answer that could not be served (FastFN answers 502).
    #[error("edge proxy failed: {0}")]
    Edge(#[from] crate::edge::EdgeError),
}

/// Which body-read rule a client broke (`server/body.rs`): 408 either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyTimeout {
    /// The whole body did not arrive within `server.body_read_timeout_ms`.
    Deadline { timeout_ms: u64 },
    /// Fewer than `server.min_body_bytes_per_s` on average after the first second.
    TooSlow { min_bytes_per_s: u64 },
}

impl BodyTimeout {
    /// The `reason` label of `edgefn_body_read_timeouts_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            BodyTimeout::Deadline { .. } => "deadline",
            BodyTimeout::TooSlow { .. } => "too_slow",
        }
    }
}

impl GatewayError {
    /// The message when it has no parameters (the hot failures), so no formatting runs.
    pub fn static_message(&self) -> Option<&'static str> {
        match self {
            GatewayError::NotFound => Some("not found"),
            GatewayError::MethodNotAllowed { .. } => Some("method not allowed"),
            GatewayError::PayloadTooLarge { .. } => Some("payload too large"),
            GatewayError::Ambiguous => Some("ambiguous function"),
            GatewayError::PathAboveRoot => Some("Bad Request: the path climbs above the root"),
            GatewayError::Unauthorized { .. } => Some("unauthorized"),
            GatewayError::RateLimited { .. } => Some("rate limit exceeded; retry later"),
            GatewayError::BodyRead => Some("the request body could not be read"),
            GatewayError::Forbidden { .. } => {
                Some("forbidden: the credential lacks a required scope or claim")
            }
            GatewayError::AuthUnavailable => Some("authentication is unavailable: no key set could be fetched from the issuer; retry later"),
            GatewayError::BodyTimeout { .. } => Some("the request body did not arrive in time"),
            _ => None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::NotFound => StatusCode::NOT_FOUND,
            GatewayError::Ambiguous => StatusCode::CONFLICT,
            GatewayError::PathAboveRoot => StatusCode::BAD_REQUEST,
            GatewayError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            GatewayError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::BodyRead => StatusCode::BAD_REQUEST,
            GatewayError::Forbidden { .. } => StatusCode::FORBIDDEN,
            GatewayError::AuthUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            GatewayError::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Pool(p) => match p {
                PoolError::Crashed | PoolError::BadResponse { .. } => StatusCode::BAD_GATEWAY,
                PoolError::HandlerError { status, .. } => *status,
                PoolError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
                // FastFN's default `worker_pool.overflow_status`.
                PoolError::Overloaded { status, .. } | PoolError::QueueTimeout { status, .. } => {
                    *status
                }
                PoolError::Unavailable { .. } | PoolError::Starting { .. } => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            },
            GatewayError::Async(a) => match a {
                AsyncError::Full | AsyncError::Unavailable { .. } => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                AsyncError::Callback { .. } => StatusCode::BAD_REQUEST,
                AsyncError::Duplicate => StatusCode::CONFLICT,
            },
            GatewayError::LoginRequired { .. } => StatusCode::FOUND,
            GatewayError::Oidc(o) => match o {
                OidcError::NoDiscovery => StatusCode::SERVICE_UNAVAILABLE,
                OidcError::Callback(_)
                | OidcError::Login(_)
                | OidcError::NoLoginCookie
                | OidcError::BadHost
                | OidcError::CodeRefused { .. }
                | OidcError::Nonce => StatusCode::BAD_REQUEST,
                OidcError::Provider { .. } => StatusCode::BAD_GATEWAY,
            },
            GatewayError::Edge(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn every_variant_has_its_status() {
        let cases: Vec<(GatewayError, u16)> = vec![
            (GatewayError::NotFound, 404),
            (GatewayError::Ambiguous, 409),
            (GatewayError::PathAboveRoot, 400),
            (
                GatewayError::MethodNotAllowed {
                    allow: HeaderValue::from_static("GET"),
                },
                405,
            ),
            (
                GatewayError::Unauthorized {
                    failure: AuthFailure {
                        reason: "missing",
                        challenge: None,
                    },
                },
                401,
            ),
            (
                GatewayError::RateLimited {
                    retry_after: Duration::from_secs(1),
                },
                429,
            ),
            (GatewayError::PayloadTooLarge { limit: 1 }, 413),
            (GatewayError::BodyRead, 400),
            (
                GatewayError::Forbidden {
                    failure: AuthFailure::new("insufficient_scope"),
                },
                403,
            ),
            (GatewayError::AuthUnavailable, 503),
            (
                GatewayError::BodyTimeout {
                    why: BodyTimeout::TooSlow { min_bytes_per_s: 1 },
                },
                408,
            ),
            (
                GatewayError::BodyTimeout {
                    why: BodyTimeout::Deadline { timeout_ms: 1 },
                },
                408,
            ),
            (GatewayError::StoreUnavailable, 503),
            (PoolError::Crashed.into(), 502),
            (
                PoolError::HandlerError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: Arc::from("boom"),
                }
                .into(),
                500,
            ),
            (
                PoolError::HandlerError {
                    status: StatusCode::BAD_REQUEST,
                    message: Arc::from("status must be a valid HTTP code"),
                }
                .into(),
                400,
            ),
            (PoolError::BadResponse { detail: "x" }.into(), 502),
            (PoolError::Timeout { timeout_ms: 1 }.into(), 504),
            (
                PoolError::Overloaded {
                    retry_after_s: 1,
                    status: StatusCode::TOO_MANY_REQUESTS,
                }
                .into(),
                429,
            ),
            (
                PoolError::QueueTimeout {
                    retry_after_s: 1,
                    status: StatusCode::SERVICE_UNAVAILABLE,
                }
                .into(),
                503,
            ),
            (
                PoolError::Unavailable {
                    reason: Arc::from("x"),
                }
                .into(),
                503,
            ),
            (AsyncError::Full.into(), 503),
            (
                AsyncError::Unavailable {
                    source: crate::async_queue::store::StoreError::Closed,
                }
                .into(),
                503,
            ),
            (
                AsyncError::Callback {
                    refusal: crate::async_queue::ssrf::UrlRefusal::Forbidden,
                }
                .into(),
                400,
            ),
            (AsyncError::Duplicate.into(), 409),
            (
                GatewayError::LoginRequired {
                    location: HeaderValue::from_static("https://id.example/auth"),
                    cookie: HeaderValue::from_static("l=v"),
                },
                302,
            ),
            (OidcError::NoDiscovery.into(), 503),
            (
                OidcError::Callback(crate::auth::oidc::callback::CallbackError::Missing).into(),
                400,
            ),
            (
                OidcError::Login(crate::auth::oidc::login_state::LoginError::StateMismatch).into(),
                400,
            ),
            (OidcError::NoLoginCookie.into(), 400),
            (OidcError::BadHost.into(), 400),
            (OidcError::CodeRefused { status: 400 }.into(), 400),
            (OidcError::Nonce.into(), 400),
            (
                OidcError::Provider {
                    detail: "is unreachable",
                }
                .into(),
                502,
            ),
        ];
        for (err, status) in cases {
            assert_eq!(err.status().as_u16(), status, "{err:?}");
            if let Some(m) = err.static_message() {
                assert_eq!(m, err.to_string(), "static message matches Display");
            }
        }
    }
}
