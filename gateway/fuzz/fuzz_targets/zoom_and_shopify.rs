//! Zoom's `endpoint.url_validation` body (answered by the gateway) and Shopify's base64
//! `X-Shopify-Hmac-Sha256`; Zoom's `x-zm-signature` shares `slack_signature`'s parser.
#![no_main]

use gateway::auth::{hmac_schemes, hmac_zoom};
use libfuzzer_sys::fuzz_target;
use ring::hmac;

fuzz_target!(|data: &[u8]| {
    let key = hmac::Key::new(hmac::HMAC_SHA256, b"fuzz");
    if let Some(answer) = hmac_zoom::challenge_answer(&key, data) {
        let v: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(v["encryptedToken"].as_str().unwrap().len(), 64);
    }
    if let Ok(sig) = hmac_schemes::parse_generic(data, "", hmac_schemes::Encoding::Base64, 32) {
        assert_eq!(sig.len(), 32);
    }
});
