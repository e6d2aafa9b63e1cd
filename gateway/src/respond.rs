//! Every response the gateway makes up itself is built here: JSON bodies of the shape
//! `{"error": ..., "request_id": ...}` and the headers each failure owes the client.

use bytes::Bytes;
use http::header::{
    ALLOW, CONNECTION, CONTENT_TYPE, LOCATION, RETRY_AFTER, SET_COOKIE, WWW_AUTHENTICATE,
};
use http::{HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::async_queue::AsyncError;
use crate::auth::oidc::policy::OidcError;
use crate::error::GatewayError;
use crate::pool::PoolError;
use crate::request_id;

pub type Body = Full<Bytes>;

static JSON: HeaderValue = HeaderValue::from_static("application/json");

pub fn json(status: StatusCode, body: impl Into<Bytes>, rid: &HeaderValue) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, JSON.clone());
    h.insert(request_id::HEADER_NAME.clone(), rid.clone());
    resp
}

/// A response the gateway makes up itself: always JSON, always with the request id, at
/// most one header beyond those. Kept apart from `http::Response` so the HTTP/1 front
/// (`server/front.rs`) can write it straight to the socket while hyper gets a `Response`.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub extra: Option<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl Answer {
    pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Answer {
        Answer {
            status,
            extra: None,
            body: body.into(),
        }
    }

    pub fn into_response(self, rid: &HeaderValue) -> Response<Body> {
        let mut resp = json(self.status, self.body, rid);
        if let Some((name, value)) = self.extra {
            resp.headers_mut().insert(name, value);
        }
        resp
    }
}

/// `{"error":"<message>","request_id":"<id>"}`, written directly: the common failures have
/// static messages, and request ids are restricted to characters JSON never escapes.
fn error_body(err: &GatewayError, rid: &[u8]) -> Vec<u8> {
    let owned;
    let message = match err.static_message() {
        Some(m) => m,
        None => {
            owned = err.to_string();
            owned.as_str()
        }
    };
    // Exact capacity: `Bytes::from(Vec)` with spare capacity allocates a shared header.
    let mut body = Vec::with_capacity(28 + message.len() + rid.len());
    body.extend_from_slice(br#"{"error":"#);
    if message.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        serde_json::to_writer(&mut body, message).expect("writing JSON to a Vec cannot fail");
    } else {
        body.push(b'"');
        body.extend_from_slice(message.as_bytes());
        body.push(b'"');
    }
    body.extend_from_slice(br#","request_id":""#);
    if rid
        .iter()
        .all(|b| *b != b'"' && *b != b'\\' && *b >= 0x20 && *b < 0x7f)
    {
        body.extend_from_slice(rid);
    }
    body.extend_from_slice(br#""}"#);
    body
}

/// The one place a [`GatewayError`] becomes status, headers and body.
pub fn error_answer(err: &GatewayError, rid: &[u8]) -> Answer {
    let extra = match err {
        GatewayError::MethodNotAllowed { allow } => Some((ALLOW, allow.clone())),
        GatewayError::Unauthorized { failure } | GatewayError::Forbidden { failure } => {
            failure.challenge.clone().map(|c| (WWW_AUTHENTICATE, c))
        }
        GatewayError::AuthUnavailable => Some((
            RETRY_AFTER,
            HeaderValue::from(crate::auth::jwks_fetch::DEMAND_INTERVAL.as_secs()),
        )),
        GatewayError::RateLimited { retry_after } => {
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            Some((RETRY_AFTER, HeaderValue::from(secs)))
        }
        GatewayError::StoreUnavailable => Some((RETRY_AFTER, HeaderValue::from(1u64))),
        GatewayError::Pool(PoolError::Overloaded { retry_after_s, .. })
        | GatewayError::Pool(PoolError::QueueTimeout { retry_after_s, .. })
        | GatewayError::Pool(PoolError::Starting { retry_after_s }) => {
            Some((RETRY_AFTER, HeaderValue::from((*retry_after_s).max(1))))
        }
        // The rest of a stalled body may never come: the connection cannot be reused
        // (hyper drops the header on h2, where the stream alone ends).
        GatewayError::BodyTimeout { .. } => Some((CONNECTION, HeaderValue::from_static("close"))),
        GatewayError::Async(AsyncError::Full | AsyncError::Unavailable { .. }) => {
            Some((RETRY_AFTER, HeaderValue::from_static("1")))
        }
        GatewayError::LoginRequired { location, .. } => Some((LOCATION, location.clone())),
        GatewayError::Oidc(OidcError::NoDiscovery) => Some((
            RETRY_AFTER,
            HeaderValue::from(crate::auth::jwks_fetch::DEMAND_INTERVAL.as_secs()),
        )),
        _ => None,
    };
    Answer {
        status: err.status(),
        extra,
        body: error_body(err, rid).into(),
    }
}

pub fn error(err: &GatewayError, rid: &HeaderValue) -> Response<Body> {
    let mut resp = error_answer(err, rid.as_bytes()).into_response(rid);
    // The one error with a second header: the login redirect's state cookie (only
    // hyper's path makes it, so the front's one-header `Answer` never needs it).
    if let GatewayError::LoginRequired { cookie, .. } = err {
        resp.headers_mut().append(SET_COOKIE, cookie.clone());
    }
    resp
}

/// A 302 the gateway makes (the OIDC callback and logout), setting `cookies`.
pub fn redirect(location: &str, cookies: &[String], rid: &HeaderValue) -> Response<Body> {
    let mut resp = json(StatusCode::FOUND, Bytes::from_static(b"{}"), rid);
    let h = resp.headers_mut();
    match HeaderValue::try_from(location) {
        Ok(v) => h.insert(LOCATION, v),
        Err(_) => h.insert(LOCATION, HeaderValue::from_static("/")),
    };
    for c in cookies {
        if let Ok(v) = HeaderValue::try_from(c.as_str()) {
            h.append(SET_COOKIE, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_valid_json_with_both_fields() {
        let rid = HeaderValue::from_static("abc-1");
        for err in [
            GatewayError::NotFound,
            GatewayError::PayloadTooLarge { limit: 10 },
            GatewayError::Pool(PoolError::BadResponse {
                detail: "a \"quoted\" detail",
            }),
        ] {
            let body = error_body(&err, rid.as_bytes());
            if err.static_message().is_some() {
                assert_eq!(
                    body.len(),
                    body.capacity(),
                    "exact capacity: no shared Bytes header"
                );
            }
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["error"], err.to_string());
            assert_eq!(v["request_id"], "abc-1");
        }
    }
}
