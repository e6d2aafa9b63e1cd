//! `Authorization: <scheme> <token68>` parsing, and the Basic credentials decoding after it.
#![no_main]

use gateway::auth::authorization;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for scheme in ["bearer", "basic"] {
        if let Ok(token) = authorization::parse(data, scheme) {
            assert!(!token.is_empty() && token.len() <= authorization::MAX_CREDENTIALS);
            assert!(authorization::is_token68(token));
        }
    }
});
