//! The stored forms of credentials, and `edgefn hash-key` which produces them:
//! - API keys: `sha256:<hex>` (a keys-file line is `<id> sha256:<hex>`). A plain digest is
//!   enough because API keys are long random strings, not passwords.
//! - Basic passwords: `pbkdf2-sha256$<iterations>$<b64 salt>$<b64 hash>` (PHC-like,
//!   unpadded standard base64), verified with `ring::pbkdf2::verify`.

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};

use super::keys_file;

pub const BASIC_SCHEME: &str = "pbkdf2-sha256";
/// What `hash-key --basic` writes. Successful checks are cached by the gateway, so the
/// cost is paid once per client per minute, not per request.
pub const DEFAULT_ITERATIONS: u32 = 100_000;
pub const MIN_ITERATIONS: u32 = 10_000;
pub const MAX_ITERATIONS: u32 = 5_000_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
/// Longest input `hash-key` accepts on stdin.
pub const MAX_INPUT: usize = 4096;

/// A parsed `pbkdf2-sha256$...` string.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicHash {
    pub iterations: NonZeroU32,
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
}

impl std::fmt::Debug for BasicHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BasicHash({} iterations)", self.iterations)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashFormatError {
    #[error("expected {BASIC_SCHEME}$<iterations>$<base64 salt>$<base64 hash> (from `edgefn hash-key --basic`)")]
    Syntax,
    #[error("iterations must be {MIN_ITERATIONS} to {MAX_ITERATIONS}")]
    Iterations,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashKeyError {
    #[error("nothing on stdin; pipe the key in, e.g. `printf %s \"$KEY\" | edgefn hash-key`")]
    Empty,
    #[error("input is over {MAX_INPUT} bytes")]
    TooLong,
    #[error("--basic reads `user:password` (or a password with --user USER)")]
    NoUser,
    #[error("user name {0:?} must be 1-64 characters without ':', spaces or control characters")]
    BadUser(String),
    #[error("key id {0:?} must be 1-64 characters of [A-Za-z0-9._-]")]
    BadId(String),
    #[error("the password must be UTF-8")]
    NotUtf8,
}

impl BasicHash {
    /// Constant-time check of `password` (inside `ring::pbkdf2::verify`).
    pub fn verify(&self, password: &[u8]) -> bool {
        pbkdf2::verify(
            pbkdf2::PBKDF2_HMAC_SHA256,
            self.iterations,
            &self.salt,
            password,
            &self.hash,
        )
        .is_ok()
    }
}

pub fn api_key_digest(key: &[u8]) -> String {
    format!("sha256:{}", hex::encode(super::secrets::sha256(key)))
}

pub fn basic_hash(password: &[u8], iterations: u32) -> String {
    let mut salt = [0u8; SALT_LEN];
    SystemRandom::new()
        .fill(&mut salt)
        .expect("the system RNG is available");
    let mut hash = [0u8; HASH_LEN];
    let n = NonZeroU32::new(iterations).expect("iterations are non-zero");
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, n, &salt, password, &mut hash);
    format!(
        "{BASIC_SCHEME}${iterations}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(hash)
    )
}

pub fn parse_basic_hash(s: &str) -> Result<BasicHash, HashFormatError> {
    let mut parts = s.split('$');
    let (Some(BASIC_SCHEME), Some(iter), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(HashFormatError::Syntax);
    };
    let b64 = |v: &str| {
        STANDARD_NO_PAD
            .decode(v.trim_end_matches('='))
            .map_err(|_| HashFormatError::Syntax)
    };
    let iterations: u32 = iter.parse().map_err(|_| HashFormatError::Syntax)?;
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        return Err(HashFormatError::Iterations);
    }
    let (salt, hash) = (b64(salt)?, b64(hash)?);
    if salt.len() < 8 || !(16..=64).contains(&hash.len()) {
        return Err(HashFormatError::Syntax);
    }
    Ok(BasicHash {
        iterations: NonZeroU32::new(iterations).ok_or(HashFormatError::Iterations)?,
        salt,
        hash,
    })
}

pub fn valid_user(u: &str) -> bool {
    !u.is_empty()
        && u.chars().count() <= 64
        && !u
            .chars()
            .any(|c| c == ':' || c.is_whitespace() || c.is_control())
}

/// `edgefn hash-key`: stdin (one trailing newline dropped) → the line to store.
pub fn run(
    basic: bool,
    user: Option<&str>,
    id: Option<&str>,
    input: &[u8],
) -> Result<String, HashKeyError> {
    if input.len() > MAX_INPUT {
        return Err(HashKeyError::TooLong);
    }
    let input = input.strip_suffix(b"\n").unwrap_or(input);
    let input = input.strip_suffix(b"\r").unwrap_or(input);
    if input.is_empty() {
        return Err(HashKeyError::Empty);
    }
    if !basic {
        let digest = api_key_digest(input);
        return match id {
            None => Ok(digest),
            Some(id) if keys_file::valid_id(id) => Ok(format!("{id} {digest}")),
            Some(id) => Err(HashKeyError::BadId(id.to_owned())),
        };
    }
    let text = std::str::from_utf8(input).map_err(|_| HashKeyError::NotUtf8)?;
    let (user, password) = match user {
        Some(u) => (u, text),
        None => text.split_once(':').ok_or(HashKeyError::NoUser)?,
    };
    if !valid_user(user) {
        return Err(HashKeyError::BadUser(user.chars().take(80).collect()));
    }
    if password.is_empty() {
        return Err(HashKeyError::Empty);
    }
    Ok(format!(
        "{user}:{}",
        basic_hash(password.as_bytes(), DEFAULT_ITERATIONS)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_digest_is_sha256() {
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(
            run(false, None, None, b"abc\n").unwrap(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(run(false, None, Some("ci-2026"), b"abc")
            .unwrap()
            .starts_with("ci-2026 sha256:ba78"));
        assert_eq!(
            run(false, None, Some("a b"), b"abc"),
            Err(HashKeyError::BadId("a b".into()))
        );
        assert_eq!(run(false, None, None, b"\n"), Err(HashKeyError::Empty));
    }

    #[test]
    fn basic_round_trip() {
        let line = run(true, None, None, b"alice:correct horse\n").unwrap();
        let (user, hash) = line.split_once(':').unwrap();
        assert_eq!(user, "alice");
        let h = parse_basic_hash(hash).unwrap();
        assert_eq!(h.iterations.get(), DEFAULT_ITERATIONS);
        assert!(h.verify(b"correct horse"));
        assert!(!h.verify(b"correct horse "));
        let with_user = run(true, Some("bob"), None, b"pw:with:colons").unwrap();
        let h = parse_basic_hash(with_user.strip_prefix("bob:").unwrap()).unwrap();
        assert!(h.verify(b"pw:with:colons"));
        assert_eq!(run(true, None, None, b"nouser"), Err(HashKeyError::NoUser));
        assert!(matches!(
            run(true, Some("a:b"), None, b"pw"),
            Err(HashKeyError::BadUser(_))
        ));
    }

    #[test]
    fn bad_hash_strings() {
        for bad in [
            "",
            "pbkdf2-sha256$100000$c2FsdHNhbHQ",
            "bcrypt$10$x$y",
            "pbkdf2-sha256$x$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            assert_eq!(parse_basic_hash(bad), Err(HashFormatError::Syntax), "{bad}");
        }
        assert_eq!(
            parse_basic_hash("pbkdf2-sha256$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"),
            Err(HashFormatError::Iterations)
        );
    }
}
