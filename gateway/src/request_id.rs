//! Request ids: a caller's well-formed `x-request-id` is kept (so traces join up), else a
//! new one from a per-process random prefix and a counter: unique, cheap, no syscall.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use http::{HeaderMap, HeaderValue};

static COUNTER: AtomicU64 = AtomicU64::new(0);
static PREFIX: OnceLock<u32> = OnceLock::new();

pub const HEADER: &str = "x-request-id";

/// The id for this request.
pub fn for_request(headers: &HeaderMap) -> HeaderValue {
    if let Some(v) = headers.get(HEADER) {
        let b = v.as_bytes();
        if !b.is_empty()
            && b.len() <= 128
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
        {
            return v.clone();
        }
    }
    new_id()
}

pub fn new_id() -> HeaderValue {
    let prefix = *PREFIX.get_or_init(rand::random::<u32>);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let id = format!("{prefix:08x}-{n:012x}");
    HeaderValue::from_str(&id).expect("hex is header-safe")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_good_replaces_bad() {
        let mut h = HeaderMap::new();
        h.insert(HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(for_request(&h), "abc-123");
        h.insert(HEADER, HeaderValue::from_static("has space"));
        assert_ne!(for_request(&h), "has space");
        assert_ne!(new_id(), new_id());
    }
}
