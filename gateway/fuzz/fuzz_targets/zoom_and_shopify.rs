//! Zoom's `endpoint.url_validation` body (answered by the gateway), Shopify's base64
//! `X-Shopify-Hmac-Sha256` and faas-cli's `sha256=`/`sha1=` header; Zoom's
//! `x-zm-signature` shares `slack_signature`'s parser.
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
    if let Ok((alg, sig)) = hmac_schemes::parse_faas_cli(data) {
        let len = match alg {
            hmac_schemes::FaasCliAlg::Sha1 => 20,
            hmac_schemes::FaasCliAlg::Sha256 => 32,
        };
        assert_eq!(sig.len(), len);
    }
});
