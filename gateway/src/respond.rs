//! Every response the gateway makes up itself is built here: JSON bodies of the shape
//! `{"error": ..., "request_id": ...}` and the headers each failure owes the client.

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

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
    h.insert(request_id::HEADER, rid.clone());
    resp
}

/// The error body; a plain struct so serialising it builds no map.
#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    request_id: &'a str,
}

pub fn error(err: &GatewayError, rid: &HeaderValue) -> Response<Body> {
    let message = err.to_string();
    let mut body = Vec::with_capacity(48 + message.len() + rid.len());
    serde_json::to_writer(
        &mut body,
        &ErrorBody {
            error: &message,
            request_id: rid.to_str().unwrap_or_default(),
        },
    )
    .expect("writing JSON to a Vec cannot fail");
    let mut resp = json(err.status(), body, rid);
    let h = resp.headers_mut();
    match err {
        GatewayError::MethodNotAllowed { allow } => {
            h.insert(ALLOW, allow.clone());
        }
        GatewayError::Unauthorized { failure } => {
            if let Some(c) = &failure.challenge {
                h.insert(WWW_AUTHENTICATE, c.clone());
            }
        }
        GatewayError::RateLimited { retry_after } => {
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            h.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        GatewayError::Pool(PoolError::Overloaded { retry_after_s }) => {
            h.insert(RETRY_AFTER, HeaderValue::from((*retry_after_s).max(1)));
        }
        _ => {}
    }
    resp
}
