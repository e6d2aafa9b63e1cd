//! Twilio's `X-Twilio-Signature`: base64 HMAC-SHA1 over the URL Twilio requested followed,
//! for a form POST, by every parameter as `name + value` sorted by name (then value). For a
//! JSON body the URL carries `bodySHA256=<hex>` and the signature covers the URL alone, so
//! the body is bound through that hash. The URL is the one the sender saw: the configured
//! `public_url` (scheme, host, any port or prefix) followed by the request's path and query.
//! Pure functions of outside input, fuzzed in `gateway/fuzz`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::hmac_schemes::{SigError, MAX_HEADER_LEN};

/// Most form parameters read from one body; a larger form is malformed.
pub const MAX_PARAMS: usize = 1024;
/// The query parameter binding a JSON body.
pub const BODY_HASH_PARAM: &str = "bodySHA256";

/// `X-Twilio-Signature: <base64 of 20 bytes>`.
pub fn parse_signature(value: &[u8]) -> Result<Vec<u8>, SigError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(SigError::Malformed);
    }
    let bytes = STANDARD
        .decode(value.trim_ascii())
        .map_err(|_| SigError::Malformed)?;
    if bytes.len() == 20 {
        Ok(bytes)
    } else {
        Err(SigError::Malformed)
    }
}

/// What the signature covers besides the URL.
pub enum Signed<'a> {
    /// A form POST: its decoded parameters are appended, sorted.
    Form(&'a [u8]),
    /// Anything else: only the URL (a body is bound by `bodySHA256`).
    UrlOnly,
}

/// The text Twilio signs.
pub fn signed_text(
    public_url: &str,
    path: &str,
    query: Option<&str>,
    signed: Signed<'_>,
) -> Result<String, SigError> {
    let mut s = String::with_capacity(public_url.len() + path.len() + 64);
    s.push_str(public_url);
    s.push_str(path);
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    if let Signed::Form(body) = signed {
        let mut params: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(body) {
            if params.len() == MAX_PARAMS {
                return Err(SigError::Malformed);
            }
            params.push((k.into_owned(), v.into_owned()));
        }
        // Names sorted by code point, then each name's distinct values sorted: the order
        // Twilio's own validators use.
        params.sort();
        params.dedup();
        for (k, v) in &params {
            s.push_str(k);
            s.push_str(v);
        }
    }
    Ok(s)
}

/// The `bodySHA256` value of the raw query, if present (first occurrence).
pub fn body_hash(query: Option<&str>) -> Option<Vec<u8>> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == BODY_HASH_PARAM)
        .and_then(|(_, v)| hex::decode(v.as_bytes()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_parameters_sorted_after_the_url() {
        let body = b"To=%2B1800&From=%2B1234&Digits=1234&Digits=1234&A=2&A=1";
        let s = signed_text("https://ex.com", "/hook", Some("x=1"), Signed::Form(body)).unwrap();
        assert_eq!(s, "https://ex.com/hook?x=1A1A2Digits1234From+1234To+1800");
        let s = signed_text("https://ex.com", "/", None, Signed::UrlOnly).unwrap();
        assert_eq!(s, "https://ex.com/");
    }

    #[test]
    fn too_many_parameters_is_malformed() {
        let body = "a=1&".repeat(MAX_PARAMS + 1);
        assert!(matches!(
            signed_text("u", "/", None, Signed::Form(body.as_bytes())),
            Err(SigError::Malformed)
        ));
    }

    #[test]
    fn signature_and_body_hash() {
        assert_eq!(
            parse_signature(b"RSOYDt4T1cUTdK1PDd93/VVr8B8=")
                .unwrap()
                .len(),
            20
        );
        assert_eq!(parse_signature(b"AAAA"), Err(SigError::Malformed));
        assert_eq!(
            parse_signature(&[b'A'; MAX_HEADER_LEN + 4]),
            Err(SigError::Malformed)
        );
        assert_eq!(
            body_hash(Some("a=1&bodySHA256=0aff")),
            Some(vec![0x0a, 0xff])
        );
        assert_eq!(body_hash(Some("bodySHA256=zz")), None);
        assert_eq!(body_hash(None), None);
    }
}
