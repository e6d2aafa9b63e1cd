//! OpenID discovery documents as an issuer (or something posing as one) serves them.
#![no_main]

use gateway::auth::discovery;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = discovery::parse(data, "https://id.example") {
        assert_eq!(d.issuer, "https://id.example");
    }
});
