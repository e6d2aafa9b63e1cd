//! `X-Hub-Signature-256: sha256=<hex>` and the generic scheme's hex / base64 parsing.
#![no_main]

use gateway::auth::hmac_schemes::{self, Encoding};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sig) = hmac_schemes::parse_github(data) {
        assert_eq!(sig.len(), 32);
    }
    for (encoding, len) in [(Encoding::Hex, 32), (Encoding::Base64, 64)] {
        if let Ok(sig) = hmac_schemes::parse_generic(data, "sha256=", encoding, len) {
            assert_eq!(sig.len(), len);
        }
    }
});
