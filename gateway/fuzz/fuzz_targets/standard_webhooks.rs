//! Standard Webhooks `webhook-id` / `webhook-timestamp` / `webhook-signature` parsing
//! (the three split at 0 bytes), for both `v1` and `v1a`.
#![no_main]

use gateway::auth::{hmac_schemes, hmac_standard};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0);
    let (id, ts, sig) = (parts.next(), parts.next(), parts.next());
    for (version, len) in [
        (hmac_standard::Version::V1, 32),
        (hmac_standard::Version::V1a, 64),
    ] {
        if let Ok(s) = hmac_standard::parse(id, ts, sig, version) {
            assert!(
                !s.signatures.is_empty() && s.signatures.len() <= hmac_standard::MAX_SIGNATURES
            );
            assert!(s.signatures.iter().all(|v| v.len() == len));
            assert!(!s.id.is_empty() && s.id.len() <= hmac_standard::MAX_ID_LEN);
            assert_eq!(
                hmac_schemes::parse_timestamp(s.ts_raw.as_bytes()),
                Ok(s.timestamp)
            );
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = hmac_standard::decode_key(text, "whsec_");
    }
});
