//! Formats read at reload from files an operator edits: keys files, Basic user hashes, JWKS.
#![no_main]

use gateway::auth::{hash_key, jwks, keys_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = keys_file::parse(std::path::Path::new("fuzz"), text);
    if let Ok(h) = hash_key::parse_basic_hash(text) {
        assert!(h.iterations.get() >= hash_key::MIN_ITERATIONS);
    }
    let _ = jwks::parse(text);
});
