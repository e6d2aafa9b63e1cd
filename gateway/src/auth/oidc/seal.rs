//! Cookie sealing with a rotating key ring. A cookie value is
//! `base64url(nonce ‖ ciphertext ‖ tag)` under CHACHA20_POLY1305 with a fresh random
//! 96-bit nonce; the cookie's purpose (e.g. `session:<function>`) is the AAD, so a cookie
//! minted for one function or purpose does not open as another. The first key seals;
//! every key opens, so a new key can be put in front while old cookies stay valid.
//! The length cap is checked before any decoding.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// Browsers keep at most about 4 KB per cookie (name, value and attributes).
pub const MAX_COOKIE_VALUE: usize = 3800;
/// More keys than this is a misconfiguration, and each one costs an open attempt.
pub const MAX_KEYS: usize = 8;
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KeyRingError {
    #[error("no key given (expected base64 of 32 random bytes, comma-separated for rotation)")]
    Empty,
    #[error("key {index} is not base64")]
    NotBase64 { index: usize },
    #[error("key {index} is {len} bytes, expected 32")]
    WrongLength { index: usize, len: usize },
    #[error("{count} keys given, at most {MAX_KEYS}")]
    TooMany { count: usize },
}

/// Why a cookie did not open. Bounded metric reasons, never the value.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error("cookie too large")]
    TooLarge,
    #[error("cookie malformed")]
    Malformed,
    #[error("cookie not sealed by any configured key")]
    Forged,
}

impl OpenError {
    pub fn reason(self) -> &'static str {
        match self {
            OpenError::TooLarge => "cookie_too_large",
            OpenError::Malformed => "cookie_malformed",
            OpenError::Forged => "cookie_forged",
        }
    }
}

pub struct KeyRing {
    keys: Vec<LessSafeKey>,
    rng: SystemRandom,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyRing({} keys)", self.keys.len())
    }
}

impl KeyRing {
    /// Parses `"k1,k2"` (the env value): standard or URL-safe base64, padding optional.
    pub fn parse(value: &str) -> Result<Self, KeyRingError> {
        let parts: Vec<&str> = value
            .split([',', '\n', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        Self::from_parts(&parts)
    }

    pub fn from_parts(parts: &[&str]) -> Result<Self, KeyRingError> {
        if parts.is_empty() {
            return Err(KeyRingError::Empty);
        }
        if parts.len() > MAX_KEYS {
            return Err(KeyRingError::TooMany { count: parts.len() });
        }
        let mut keys = Vec::with_capacity(parts.len());
        for (index, p) in parts.iter().enumerate() {
            let bytes = decode_b64(p).ok_or(KeyRingError::NotBase64 { index })?;
            if bytes.len() != KEY_LEN {
                return Err(KeyRingError::WrongLength {
                    index,
                    len: bytes.len(),
                });
            }
            let unbound = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| {
                KeyRingError::WrongLength {
                    index,
                    len: bytes.len(),
                }
            })?;
            keys.push(LessSafeKey::new(unbound));
        }
        Ok(KeyRing {
            keys,
            rng: SystemRandom::new(),
        })
    }

    /// Seals `plain` for `purpose` with the first key. `None` only if the system RNG fails
    /// or the result would exceed [`MAX_COOKIE_VALUE`].
    pub fn seal(&self, purpose: &[u8], plain: &[u8]) -> Option<String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut buf = Vec::with_capacity(NONCE_LEN + plain.len() + TAG_LEN);
        buf.extend_from_slice(plain);
        self.keys[0]
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose),
                &mut buf,
            )
            .ok()?;
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        let value = URL_SAFE_NO_PAD.encode(out);
        (value.len() <= MAX_COOKIE_VALUE).then_some(value)
    }

    /// Opens a cookie value sealed by any key of the ring for `purpose`.
    pub fn open(&self, purpose: &[u8], value: &str) -> Result<Vec<u8>, OpenError> {
        if value.len() > MAX_COOKIE_VALUE {
            return Err(OpenError::TooLarge);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(value.as_bytes())
            .map_err(|_| OpenError::Malformed)?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError::Malformed)?;
        for key in &self.keys {
            let mut buf = sealed.to_vec();
            if let Ok(plain) = key.open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose),
                &mut buf,
            ) {
                let n = plain.len();
                buf.truncate(n);
                return Ok(buf);
            }
        }
        Err(OpenError::Forged)
    }
}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    let std_form: String = s
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let pad = (4 - std_form.len() % 4) % 4;
    STANDARD
        .decode(format!("{std_form}{}", "=".repeat(pad)))
        .ok()
}

/// Random URL-safe token of `n` bytes (session ids, `state`, `nonce`, PKCE verifier).
pub fn random_token(n: usize) -> Option<String> {
    let mut b = vec![0u8; n];
    SystemRandom::new().fill(&mut b).ok()?;
    Some(URL_SAFE_NO_PAD.encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn seals_and_opens_for_its_purpose_only() {
        let ring = KeyRing::parse(&key(1)).unwrap();
        let c = ring.seal(b"session:a", b"hello").unwrap();
        assert_eq!(ring.open(b"session:a", &c).unwrap(), b"hello");
        assert_eq!(ring.open(b"session:b", &c), Err(OpenError::Forged));
        // Two seals of the same text differ (random nonce).
        assert_ne!(c, ring.seal(b"session:a", b"hello").unwrap());
    }

    #[test]
    fn cookie_sealed_with_an_old_key_opens_after_rotation() {
        let old = KeyRing::parse(&key(1)).unwrap();
        let c = old.seal(b"p", b"x").unwrap();
        let rotated = KeyRing::parse(&format!("{}, {}", key(2), key(1))).unwrap();
        assert_eq!(rotated.open(b"p", &c).unwrap(), b"x");
        // New cookies are sealed with the new first key: the old ring cannot open them.
        let fresh = rotated.seal(b"p", b"y").unwrap();
        assert_eq!(old.open(b"p", &fresh), Err(OpenError::Forged));
        // Once the old key is dropped, its cookies stop opening.
        let dropped = KeyRing::parse(&key(2)).unwrap();
        assert_eq!(dropped.open(b"p", &c), Err(OpenError::Forged));
    }

    #[test]
    fn tampered_truncated_and_oversized_cookies_are_refused() {
        let ring = KeyRing::parse(&key(7)).unwrap();
        let c = ring.seal(b"p", b"payload").unwrap();
        let mut bytes = c.clone().into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(ring.open(b"p", &tampered), Err(OpenError::Forged));
        assert_eq!(ring.open(b"p", &c[..10]), Err(OpenError::Malformed));
        assert_eq!(ring.open(b"p", "!!!"), Err(OpenError::Malformed));
        let huge = "A".repeat(MAX_COOKIE_VALUE + 1);
        assert_eq!(ring.open(b"p", &huge), Err(OpenError::TooLarge));
        // Sealing refuses to produce a cookie over the cap.
        assert!(ring.seal(b"p", &vec![0u8; MAX_COOKIE_VALUE]).is_none());
    }

    #[test]
    fn key_ring_errors() {
        assert_eq!(KeyRing::parse(" ,").unwrap_err(), KeyRingError::Empty);
        assert_eq!(
            KeyRing::parse("%%%").unwrap_err(),
            KeyRingError::NotBase64 { index: 0 }
        );
        assert_eq!(
            KeyRing::parse(&format!("{},{}", key(1), STANDARD.encode([0u8; 16]))).unwrap_err(),
            KeyRingError::WrongLength { index: 1, len: 16 }
        );
        let many = vec![key(1); MAX_KEYS + 1].join(",");
        assert_eq!(
            KeyRing::parse(&many).unwrap_err(),
            KeyRingError::TooMany {
                count: MAX_KEYS + 1
            }
        );
        // URL-safe, unpadded keys are accepted too.
        assert!(KeyRing::parse(&URL_SAFE_NO_PAD.encode([0xfb; 32])).is_ok());
    }
}
