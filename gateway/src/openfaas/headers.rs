//! The headers OpenFaaS clients expect: `X-Call-Id` (the caller's when well-formed, else
//! the request id), `X-Start-Time` (Unix nanoseconds when the gateway took the request)
//! and `X-Duration-Seconds` on answers of the prefixed routes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};

pub static CALL_ID: HeaderName = HeaderName::from_static("x-call-id");
pub static START_TIME: HeaderName = HeaderName::from_static("x-start-time");
pub static DURATION: HeaderName = HeaderName::from_static("x-duration-seconds");
pub static CALLBACK_URL: HeaderName = HeaderName::from_static("x-callback-url");
pub static FUNCTION_STATUS: HeaderName = HeaderName::from_static("x-function-status");
pub static FUNCTION_NAME: HeaderName = HeaderName::from_static("x-function-name");

/// Longest call id kept from a caller (a UUID is 36).
const MAX_CALL_ID: usize = 64;

/// The caller's `X-Call-Id` when it is 1–64 characters of `[A-Za-z0-9._-]`, else `rid`.
pub fn call_id(headers: &HeaderMap, rid: &HeaderValue) -> HeaderValue {
    match headers.get(&CALL_ID) {
        Some(v) if well_formed(v.as_bytes()) => v.clone(),
        _ => rid.clone(),
    }
}

pub fn well_formed(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CALL_ID
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Unix time in nanoseconds, as OpenFaaS writes `X-Start-Time`.
pub fn unix_nanos(at: SystemTime) -> HeaderValue {
    let ns = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    HeaderValue::from(ns as u64)
}

pub fn seconds(d: Duration) -> HeaderValue {
    HeaderValue::from_str(&format!("{:.6}", d.as_secs_f64())).expect("digits are header-safe")
}

/// Adds the three headers to an answer of a `/function/` route.
pub fn stamp(h: &mut HeaderMap, call_id: HeaderValue, started: SystemTime, took: Duration) {
    h.insert(CALL_ID.clone(), call_id);
    h.insert(START_TIME.clone(), unix_nanos(started));
    h.insert(DURATION.clone(), seconds(took));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_id_kept_only_when_well_formed() {
        let rid = HeaderValue::from_static("rid-1");
        let mut h = HeaderMap::new();
        assert_eq!(call_id(&h, &rid), "rid-1");
        h.insert(CALL_ID.clone(), HeaderValue::from_static("a1b2-c3"));
        assert_eq!(call_id(&h, &rid), "a1b2-c3");
        h.insert(CALL_ID.clone(), HeaderValue::from_static("bad id"));
        assert_eq!(call_id(&h, &rid), "rid-1");
        let long = "x".repeat(65);
        h.insert(CALL_ID.clone(), HeaderValue::from_str(&long).unwrap());
        assert_eq!(call_id(&h, &rid), "rid-1");
    }

    #[test]
    fn durations_render_as_seconds() {
        assert_eq!(seconds(Duration::from_millis(1500)), "1.500000");
    }
}
