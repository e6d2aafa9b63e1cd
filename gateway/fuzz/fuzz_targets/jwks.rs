//! JWKS documents as fetched from an issuer: every key is either usable or skipped.
#![no_main]

use gateway::auth::jwks;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(keys) = jwks::parse_published(data) {
        assert!(!keys.is_empty() && keys.len() <= jwks::MAX_KEYS);
        for k in &keys {
            assert!(!k.verify(b"", b""));
        }
    }
});
