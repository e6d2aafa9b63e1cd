//! Parsers of webhook signature headers, one per scheme. Pure functions of the header
//! text (outside input: fuzzed in `gateway/fuzz`), returning decoded signature bytes and
//! timestamps; the keyed check itself is in [`super::hmac`].

use base64::Engine;

/// Longest signature header parsed (Stripe may list several `v1=`).
pub const MAX_HEADER_LEN: usize = 4096;
/// Most `v1=` entries taken from one Stripe header.
pub const MAX_STRIPE_SIGNATURES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("the signature header is absent")]
    Missing,
    #[error("the timestamp header is absent")]
    MissingTimestamp,
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the message id header is absent")]
    MissingId,
}

impl SigError {
    pub fn reason(self) -> &'static str {
        match self {
            SigError::Missing => "missing",
            SigError::MissingTimestamp => "missing_timestamp",
            SigError::Malformed => "malformed",
            SigError::MissingId => "missing_id",
        }
    }
}

/// `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...][,v0=...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeSignature<'a> {
    /// The timestamp exactly as sent: the signed payload is `"<t>.<body>"`.
    pub t_raw: &'a str,
    pub timestamp: u64,
    pub v1: Vec<Vec<u8>>,
}

/// `X-Hub-Signature-256: sha256=<64 hex>`.
pub fn parse_github(value: &[u8]) -> Result<Vec<u8>, SigError> {
    let s = text(value)?;
    let hex_part = s.strip_prefix("sha256=").ok_or(SigError::Malformed)?;
    decode_hex(hex_part, 32)
}

/// Digest named by a `faas-cli invoke --sign` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaasCliAlg {
    Sha1,
    Sha256,
}

/// `<header>: sha256=<64 hex>` (current faas-cli) or `sha1=<40 hex>` (older releases).
pub fn parse_faas_cli(value: &[u8]) -> Result<(FaasCliAlg, Vec<u8>), SigError> {
    let s = text(value)?;
    if let Some(h) = s.strip_prefix("sha256=") {
        Ok((FaasCliAlg::Sha256, decode_hex(h, 32)?))
    } else if let Some(h) = s.strip_prefix("sha1=") {
        Ok((FaasCliAlg::Sha1, decode_hex(h, 20)?))
    } else {
        Err(SigError::Malformed)
    }
}

pub fn parse_stripe(value: &[u8]) -> Result<StripeSignature<'_>, SigError> {
    let s = text(value)?;
    let mut t = None;
    let mut v1 = Vec::new();
    for item in s.split(',') {
        let (k, v) = item.trim().split_once('=').ok_or(SigError::Malformed)?;
        match k {
            "t" if t.is_none() => t = Some((v, parse_timestamp(v.as_bytes())?)),
            "t" => return Err(SigError::Malformed),
            "v1" if v1.len() < MAX_STRIPE_SIGNATURES => v1.push(decode_hex(v, 32)?),
            "v1" => return Err(SigError::Malformed),
            // v0 (test-mode legacy) and future schemes are ignored, as Stripe documents.
            _ => {}
        }
    }
    let (t_raw, timestamp) = t.ok_or(SigError::Malformed)?;
    if v1.is_empty() {
        return Err(SigError::Malformed);
    }
    Ok(StripeSignature {
        t_raw,
        timestamp,
        v1,
    })
}

/// `X-Slack-Signature: v0=<64 hex>` and `X-Slack-Request-Timestamp: <unix>`; returns the
/// signature and the timestamp text (the base string is `v0:<ts>:<body>`). Zoom's
/// `x-zm-signature` / `x-zm-request-timestamp` have the same form and base string.
pub fn parse_slack<'a>(
    signature: Option<&'a [u8]>,
    timestamp: Option<&'a [u8]>,
) -> Result<(Vec<u8>, &'a str, u64), SigError> {
    let sig = signature.ok_or(SigError::Missing)?;
    let ts = timestamp.ok_or(SigError::MissingTimestamp)?;
    let hex_part = text(sig)?.strip_prefix("v0=").ok_or(SigError::Malformed)?;
    let sig = decode_hex(hex_part, 32)?;
    let ts_text = text(ts)?;
    Ok((sig, ts_text, parse_timestamp(ts)?))
}

/// Encoding of a generic signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Hex,
    Base64,
}

/// A generic signature header: optional `prefix`, then `len` bytes as hex or base64.
pub fn parse_generic(
    value: &[u8],
    prefix: &str,
    encoding: Encoding,
    len: usize,
) -> Result<Vec<u8>, SigError> {
    let s = text(value)?;
    let rest = s.strip_prefix(prefix).ok_or(SigError::Malformed)?;
    match encoding {
        Encoding::Hex => decode_hex(rest, len),
        Encoding::Base64 => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(rest))
                .map_err(|_| SigError::Malformed)?;
            if bytes.len() == len {
                Ok(bytes)
            } else {
                Err(SigError::Malformed)
            }
        }
    }
}

/// A Unix timestamp in seconds: 1 to 12 ASCII digits.
pub fn parse_timestamp(v: &[u8]) -> Result<u64, SigError> {
    if v.is_empty() || v.len() > 12 || !v.iter().all(u8::is_ascii_digit) {
        return Err(SigError::Malformed);
    }
    v.iter()
        .try_fold(0u64, |acc, d| {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .ok_or(SigError::Malformed)
}

fn text(value: &[u8]) -> Result<&str, SigError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(SigError::Malformed);
    }
    std::str::from_utf8(value)
        .map(str::trim)
        .map_err(|_| SigError::Malformed)
}

fn decode_hex(s: &str, len: usize) -> Result<Vec<u8>, SigError> {
    if s.len() != 2 * len {
        return Err(SigError::Malformed);
    }
    hex::decode(s).map_err(|_| SigError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn github() {
        assert_eq!(
            parse_github(format!("sha256={HEX}").as_bytes())
                .unwrap()
                .len(),
            32
        );
        for bad in [
            "",
            "sha1=abcd",
            "sha256=",
            "sha256=zz",
            &format!("sha256={HEX}00"),
        ] {
            assert_eq!(
                parse_github(bad.as_bytes()),
                Err(SigError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn stripe() {
        let h = format!("t=1492774577,v1={HEX},v0=6ffbb59b,v1={HEX}");
        let s = parse_stripe(h.as_bytes()).unwrap();
        assert_eq!(
            (s.t_raw, s.timestamp, s.v1.len()),
            ("1492774577", 1492774577, 2)
        );
        for bad in [
            format!("v1={HEX}"),
            "t=1".to_owned(),
            format!("t=x,v1={HEX}"),
            format!("t=1,t=2,v1={HEX}"),
            format!("t=1,v1={HEX}ab"),
            "garbage".to_owned(),
        ] {
            assert_eq!(
                parse_stripe(bad.as_bytes()),
                Err(SigError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn slack() {
        let sig = format!("v0={HEX}");
        let (s, ts, n) = parse_slack(Some(sig.as_bytes()), Some(b"1531420618")).unwrap();
        assert_eq!((s.len(), ts, n), (32, "1531420618", 1531420618));
        assert_eq!(parse_slack(None, Some(b"1")), Err(SigError::Missing));
        assert_eq!(
            parse_slack(Some(sig.as_bytes()), None),
            Err(SigError::MissingTimestamp)
        );
        assert_eq!(
            parse_slack(Some(b"v1=00"), Some(b"1")),
            Err(SigError::Malformed)
        );
        assert_eq!(
            parse_slack(Some(sig.as_bytes()), Some(b"-1")),
            Err(SigError::Malformed)
        );
    }

    #[test]
    fn generic() {
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
        assert_eq!(
            parse_generic(b64.as_bytes(), "", Encoding::Base64, 64).unwrap(),
            [7u8; 64]
        );
        let h = format!("sig={HEX}");
        assert!(parse_generic(h.as_bytes(), "sig=", Encoding::Hex, 32).is_ok());
        assert_eq!(
            parse_generic(h.as_bytes(), "x=", Encoding::Hex, 32),
            Err(SigError::Malformed)
        );
        assert_eq!(
            parse_generic(b"!!", "", Encoding::Base64, 32),
            Err(SigError::Malformed)
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp(b"0"), Ok(0));
        assert_eq!(parse_timestamp(b"999999999999"), Ok(999_999_999_999));
        for bad in [&b""[..], b"1e9", b" 1", b"1234567890123"] {
            assert_eq!(parse_timestamp(bad), Err(SigError::Malformed));
        }
    }
}
