//! `X-Signature-Ed25519` + `X-Signature-Timestamp` parsing (split at the first 0 byte).
#![no_main]

use gateway::auth::{ed25519, hmac_schemes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (sig, ts) = match data.iter().position(|&b| b == 0) {
        Some(i) => (Some(&data[..i]), Some(&data[i + 1..])),
        None => (Some(data), None),
    };
    if let Ok((sig, ts_raw, ts)) = ed25519::parse_discord(sig, ts) {
        assert_eq!(sig.len(), 64);
        assert_eq!(hmac_schemes::parse_timestamp(ts_raw.as_bytes()), Ok(ts));
    }
});
