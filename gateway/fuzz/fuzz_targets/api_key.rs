//! API key extraction: the header value and the query string are outside input.
#![no_main]

use gateway::auth::api_key;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte: flags; then the header value and the query string split at the first 0.
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (header, query) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let name = HeaderName::from_static(api_key::DEFAULT_HEADER);
    let mut headers = HeaderMap::new();
    if flags & 1 == 1 {
        if let Ok(v) = HeaderValue::from_bytes(header) {
            headers.append(name.clone(), v.clone());
            if flags & 2 == 2 {
                headers.append(name.clone(), v);
            }
        }
    }
    let query = std::str::from_utf8(query).ok();
    if let Ok(key) = api_key::extract(gateway::auth::headers::Headers::Map(&headers), &name, query, flags & 4 == 4) {
        assert!(!key.is_empty() && key.len() <= api_key::MAX_KEY_LEN);
    }
    let _ = api_key::percent_decode(rest);
});
