//! `Stripe-Signature: t=..,v1=..[,v1=..]` parsing.
#![no_main]

use gateway::auth::hmac_schemes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sig) = hmac_schemes::parse_stripe(data) {
        assert!(!sig.v1.is_empty() && sig.v1.len() <= hmac_schemes::MAX_STRIPE_SIGNATURES);
        assert!(sig.v1.iter().all(|v| v.len() == 32));
        assert_eq!(hmac_schemes::parse_timestamp(sig.t_raw.as_bytes()), Ok(sig.timestamp));
    }
});
