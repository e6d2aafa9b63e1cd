//! Standard Webhooks (Svix, Resend, OpenAI, Clerk...): `webhook-id`, `webhook-timestamp`
//! and `webhook-signature`, a space-separated list of `<version>,<base64>` entries (one per
//! active secret during a roll). `v1` is HMAC-SHA256 and `v1a` Ed25519, both over
//! `<id>.<timestamp>.<body>`. Pure parsers of outside input (fuzzed in `gateway/fuzz`);
//! the keyed checks are in [`super::hmac`] and [`super::ed25519`].

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use http::HeaderName;

use super::hmac_schemes::{parse_timestamp, SigError, MAX_HEADER_LEN};

pub static ID: HeaderName = HeaderName::from_static("webhook-id");
pub static TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
pub static SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

/// Most signature entries taken from one header.
pub const MAX_SIGNATURES: usize = 8;
/// Longest `webhook-id` accepted (Svix ids are about 30 characters).
pub const MAX_ID_LEN: usize = 256;

/// Which entries of `webhook-signature` a policy reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `v1,<base64 of 32 bytes>`: HMAC-SHA256.
    V1,
    /// `v1a,<base64 of 64 bytes>`: Ed25519.
    V1a,
}

impl Version {
    fn tag(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V1a => "v1a",
        }
    }

    fn len(self) -> usize {
        match self {
            Version::V1 => 32,
            Version::V1a => 64,
        }
    }
}

/// The three headers, parsed: the signed message is `id.ts_raw.body`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandardSignature<'a> {
    pub id: &'a str,
    pub ts_raw: &'a str,
    pub timestamp: u64,
    /// Decoded signatures of the wanted version; entries of other versions are skipped
    /// (a sender may list both during a migration).
    pub signatures: Vec<Vec<u8>>,
}

pub fn parse<'a>(
    id: Option<&'a [u8]>,
    timestamp: Option<&'a [u8]>,
    signature: Option<&'a [u8]>,
    version: Version,
) -> Result<StandardSignature<'a>, SigError> {
    let signature = signature.ok_or(SigError::Missing)?;
    let ts = timestamp.ok_or(SigError::MissingTimestamp)?;
    let id = id.ok_or(SigError::MissingId)?;
    if id.is_empty() || id.len() > MAX_ID_LEN || signature.len() > MAX_HEADER_LEN {
        return Err(SigError::Malformed);
    }
    let id = std::str::from_utf8(id).map_err(|_| SigError::Malformed)?;
    let ts_raw = std::str::from_utf8(ts).map_err(|_| SigError::Malformed)?;
    let timestamp = parse_timestamp(ts)?;
    let text = std::str::from_utf8(signature).map_err(|_| SigError::Malformed)?;
    let mut signatures = Vec::new();
    for entry in text.split(' ').filter(|e| !e.is_empty()) {
        let (tag, b64) = entry.split_once(',').ok_or(SigError::Malformed)?;
        if tag != version.tag() {
            continue;
        }
        if signatures.len() == MAX_SIGNATURES {
            return Err(SigError::Malformed);
        }
        let bytes = STANDARD.decode(b64).map_err(|_| SigError::Malformed)?;
        if bytes.len() != version.len() {
            return Err(SigError::Malformed);
        }
        signatures.push(bytes);
    }
    if signatures.is_empty() {
        return Err(SigError::Malformed);
    }
    Ok(StandardSignature {
        id,
        ts_raw,
        timestamp,
        signatures,
    })
}

/// A secret as the libraries issue it: `whsec_` (symmetric) or `whpk_` (Ed25519 public
/// key) followed by base64, padded or not; the prefix is optional, as in the reference
/// libraries.
pub fn decode_key(value: &str, prefix: &str) -> Option<Vec<u8>> {
    let b64 = value.trim().strip_prefix(prefix).unwrap_or(value.trim());
    STANDARD_NO_PAD
        .decode(b64.trim_end_matches('='))
        .ok()
        .filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn parses_and_skips_other_versions() {
        let v1a = format!("v1a,{}", STANDARD.encode([1u8; 64]));
        let header = format!("{v1a} {SIG} v2,xyz");
        let s = parse(
            Some(b"msg_1"),
            Some(b"1614265330"),
            Some(header.as_bytes()),
            Version::V1,
        )
        .unwrap();
        assert_eq!(
            (s.id, s.ts_raw, s.timestamp),
            ("msg_1", "1614265330", 1614265330)
        );
        assert_eq!(s.signatures.len(), 1);
        let s = parse(
            Some(b"m"),
            Some(b"1"),
            Some(header.as_bytes()),
            Version::V1a,
        )
        .unwrap();
        assert_eq!(s.signatures, [vec![1u8; 64]]);
    }

    #[test]
    fn refuses_bad_headers() {
        let ok = Some(SIG.as_bytes());
        assert_eq!(
            parse(Some(b"m"), Some(b"1"), None, Version::V1),
            Err(SigError::Missing)
        );
        assert_eq!(
            parse(Some(b"m"), None, ok, Version::V1),
            Err(SigError::MissingTimestamp)
        );
        assert_eq!(
            parse(None, Some(b"1"), ok, Version::V1),
            Err(SigError::MissingId)
        );
        let long_id = vec![b'a'; MAX_ID_LEN + 1];
        for (id, ts, sig) in [
            (&b""[..], &b"1"[..], SIG.as_bytes()),
            (&long_id[..], b"1", SIG.as_bytes()),
            (b"m", b"x", SIG.as_bytes()),
            (b"m", b"1", b"v1"),
            (b"m", b"1", b"v1,!!!"),
            (b"m", b"1", b"v1,AAAA"),
            (b"m", b"1", b"v2,AAAA"),
        ] {
            assert_eq!(
                parse(Some(id), Some(ts), Some(sig), Version::V1),
                Err(SigError::Malformed),
                "{:?}",
                String::from_utf8_lossy(sig)
            );
        }
        let many = [SIG; MAX_SIGNATURES + 1].join(" ");
        assert_eq!(
            parse(Some(b"m"), Some(b"1"), Some(many.as_bytes()), Version::V1),
            Err(SigError::Malformed)
        );
    }

    #[test]
    fn keys_with_or_without_prefix() {
        assert_eq!(decode_key("whsec_AQID", "whsec_"), Some(vec![1, 2, 3]));
        assert_eq!(decode_key("AQID", "whsec_"), Some(vec![1, 2, 3]));
        assert_eq!(decode_key("whsec_AQI", "whsec_"), Some(vec![1, 2]));
        assert_eq!(decode_key("whsec_AQI=", "whsec_"), Some(vec![1, 2]));
        assert_eq!(decode_key("whsec_!!", "whsec_"), None);
        assert_eq!(decode_key("whsec_", "whsec_"), None);
    }
}
