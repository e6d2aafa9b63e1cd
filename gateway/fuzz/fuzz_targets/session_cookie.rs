//! Session cookie values as a browser presents them: refused, or a bounded session.
#![no_main]

use gateway::auth::oidc::{seal::KeyRing, session};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ring = KeyRing::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
    if let Ok(value) = std::str::from_utf8(data) {
        if let Ok(s) = session::decode_allow_expired(&ring, "f", value) {
            assert!(s.sub.len() <= session::MAX_SUBJECT);
            assert!(s.claims.len() <= session::MAX_CLAIMS);
        }
    }
    // Sealed input that reaches the JSON decoder.
    if let Some(sealed) = ring.seal(&session::purpose("f"), data) {
        let _ = session::decode_allow_expired(&ring, "f", &sealed);
    }
});
