//! `X-Twilio-Signature` parsing, and the signed text built from a path, query and form
//! body (split at 0 bytes).
#![no_main]

use gateway::auth::hmac_twilio::{self, Signed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sig) = hmac_twilio::parse_signature(data) {
        assert_eq!(sig.len(), 20);
    }
    let mut parts = data.splitn(3, |&b| b == 0);
    let (path, query, body) = (parts.next(), parts.next(), parts.next());
    let path = path
        .and_then(|p| std::str::from_utf8(p).ok())
        .unwrap_or("/");
    let query = query.and_then(|q| std::str::from_utf8(q).ok());
    let _ = hmac_twilio::body_hash(query);
    if let Ok(text) =
        hmac_twilio::signed_text("https://h", path, query, Signed::Form(body.unwrap_or(b"")))
    {
        assert!(text.starts_with("https://h"));
    }
});
