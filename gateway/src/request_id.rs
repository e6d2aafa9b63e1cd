//! Request ids: a caller's well-formed `x-request-id` is kept (so traces join up), else a
//! new one from a per-process random prefix and a counter: unique, cheap, no syscall.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::auth::headers::Headers;

static COUNTER: AtomicU64 = AtomicU64::new(0);
static PREFIX: OnceLock<u32> = OnceLock::new();

pub const HEADER: &str = "x-request-id";
/// The parsed name: inserting or looking up by `&str` re-parses and re-hashes it each time.
pub static HEADER_NAME: HeaderName = HeaderName::from_static(HEADER);

/// Length of a generated id.
pub const NEW_LEN: usize = 21;

/// The id for this request.
pub fn for_request(headers: &HeaderMap) -> HeaderValue {
    match headers.get(&HEADER_NAME) {
        Some(v) if well_formed(v.as_bytes()) => v.clone(),
        _ => new_id(),
    }
}

/// The caller's id when it is well formed: 1–128 of `[A-Za-z0-9-_.:]`, characters that
/// need no escaping in JSON, logs or headers.
pub fn given(headers: Headers<'_>) -> Option<&[u8]> {
    headers.first(&HEADER_NAME).filter(|b| well_formed(b))
}

fn well_formed(b: &[u8]) -> bool {
    !b.is_empty()
        && b.len() <= 128
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
}

pub fn new_id() -> HeaderValue {
    HeaderValue::from_bytes(&new_id_bytes()).expect("hex is header-safe")
}

/// `pppppppp-nnnnnnnnnnnn` (hex): written by hand, `format!` cost as much as the rest of a
/// rejected request's gateway work.
pub fn new_id_bytes() -> [u8; NEW_LEN] {
    let prefix = *PREFIX.get_or_init(rand::random::<u32>);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut id = [b'-'; NEW_LEN];
    hex_into(&mut id[..8], u64::from(prefix));
    hex_into(&mut id[9..], n);
    id
}

/// Lower-case hex of the low `out.len() * 4` bits of `v`, zero-padded.
fn hex_into(out: &mut [u8], mut v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in out.iter_mut().rev() {
        *b = DIGITS[(v & 0xf) as usize];
        v >>= 4;
    }
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
        let id = new_id();
        let id = id.to_str().unwrap();
        assert_eq!(id.len(), 21);
        assert_eq!(id.as_bytes()[8], b'-');
        assert!(id.bytes().all(|c| c == b'-' || c.is_ascii_hexdigit()));
        let mut buf = [0u8; 12];
        hex_into(&mut buf, 0xabc);
        assert_eq!(&buf, b"000000000abc");
    }
}
