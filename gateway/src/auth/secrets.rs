//! Secrets named in `"auth"` and the constant-time set they are checked against.
//!
//! Config names env variables (`"secret": "API_KEY"` or a list, for rotation); this module
//! resolves them against `fn.env.json` at compile time, refusing missing, empty or
//! non-secret variables with an error naming the field. Accepted credentials are then kept
//! only as keyed digests in a [`SecretSet`], so the request path never compares a presented
//! value byte by byte with a stored one.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock};

use ring::{digest, hmac, rand};
use serde::Deserialize;

use super::AuthConfigError;
use crate::catalog::fn_env::FnEnv;

/// Most env names one `secret` may list (rotation needs two or three).
pub const MAX_SECRETS: usize = 16;

/// `"secret": "NAME"` or `"secret": ["OLD", "NEW"]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn names(&self) -> &[String] {
        match self {
            OneOrMany::One(s) => std::slice::from_ref(s),
            OneOrMany::Many(v) => v,
        }
    }
}

/// Resolves the env names of `field` to `(name, value)`; every problem goes to `errors`.
pub fn resolve(
    names: &OneOrMany,
    env: &FnEnv,
    field: &str,
    errors: &mut Vec<AuthConfigError>,
) -> Vec<(Arc<str>, Vec<u8>)> {
    let names = names.names();
    if names.is_empty() {
        errors.push(err(
            field,
            "is empty; name at least one variable of fn.env.json",
        ));
    }
    if names.len() > MAX_SECRETS {
        errors.push(err(
            field,
            &format!("lists {} names; at most {MAX_SECRETS}", names.len()),
        ));
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        match env.get(name) {
            None => errors.push(err(
                field,
                &format!("names {name:?}, which fn.env.json does not define"),
            )),
            Some(v) if v.value.is_empty() => {
                errors.push(err(field, &format!("variable {name:?} is empty")))
            }
            Some(v) if !v.secret => errors.push(err(
                field,
                &format!(
                    "variable {name:?} must be marked secret in fn.env.json \
                     ({{\"value\": \"...\", \"is_secret\": true}}) so it is masked everywhere"
                ),
            )),
            Some(v) => out.push((Arc::from(name.as_str()), v.value.as_bytes().to_vec())),
        }
    }
    out
}

pub fn err(field: &str, message: &str) -> AuthConfigError {
    AuthConfigError {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

/// SHA-256 of a credential: the form key files store and [`SecretSet`] is built from.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    out
}

/// Accepted credentials, each known only by `HMAC(k, SHA-256(credential))` under a key `k`
/// drawn at compile time.
///
/// Why this is constant time without comparing secrets: a lookup hashes the presented value
/// under `k` and probes a map. The probe's timing depends only on that keyed digest, which
/// an attacker cannot steer without knowing `k` ("double HMAC" comparison), so nothing is
/// learned about stored entries; the cost is one HMAC per request whatever the key count.
/// `ring::constant_time` is deprecated in ring 0.17.14, hence this construction.
pub struct SecretSet {
    key: hmac::Key,
    by_tag: HashMap<[u8; 32], Arc<str>, BuildHasherDefault<TagHasher>>,
}

/// The map's hash of a tag is the tag's first bytes: tags are keyed digests, already
/// uniform and beyond an attacker's steering, so hashing them again (SipHash) bought
/// nothing but a quarter of the lookup's cost.
#[derive(Default)]
struct TagHasher(u64);

impl Hasher for TagHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(5) ^ u64::from_ne_bytes(word);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl std::fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Ids only: never a digest, never a value.
        f.debug_struct("SecretSet")
            .field("ids", &self.by_tag.values().collect::<Vec<_>>())
            .finish()
    }
}

impl SecretSet {
    /// From `(id, SHA-256 digest)` pairs.
    pub fn from_digests(entries: impl IntoIterator<Item = (Arc<str>, [u8; 32])>) -> SecretSet {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rand::SystemRandom::new())
            .expect("the system RNG is available");
        let by_tag = entries
            .into_iter()
            .map(|(id, d)| (tag(&key, &d), id))
            .collect();
        SecretSet { key, by_tag }
    }

    /// From `(id, plaintext)` pairs (env values); the plaintext is not kept.
    pub fn from_values(entries: Vec<(Arc<str>, Vec<u8>)>) -> SecretSet {
        Self::from_digests(entries.into_iter().map(|(id, v)| (id, sha256(&v))))
    }

    /// The id of the entry `presented` matches, if any.
    pub fn find(&self, presented: &[u8]) -> Option<&Arc<str>> {
        self.by_tag.get(&tag(&self.key, &sha256(presented)))
    }

    pub fn len(&self) -> usize {
        self.by_tag.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_tag.is_empty()
    }
}

/// SHA-256 of the concatenation of `parts`, without building it.
pub fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Whether `a == b`, compared as `HMAC(k, a) == HMAC(k, b)` under a per-process random key
/// (the [`SecretSet`] construction): the comparison's timing depends only on keyed digests
/// an attacker cannot steer, so it leaks nothing about `a` (an expected signature).
pub fn blinded_eq(a: &[u8], b: &[u8]) -> bool {
    static KEY: OnceLock<hmac::Key> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        hmac::Key::generate(hmac::HMAC_SHA256, &rand::SystemRandom::new())
            .expect("the system RNG is available")
    });
    hmac::sign(key, a).as_ref() == hmac::sign(key, b).as_ref()
}

fn tag(key: &hmac::Key, digest: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(hmac::sign(key, digest).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::catalog::fn_env::EnvVar;

    fn env() -> FnEnv {
        let mut m = BTreeMap::new();
        for (k, v, s) in [
            ("A", "alpha", true),
            ("B", "beta", true),
            ("P", "plain", false),
        ] {
            m.insert(
                k.to_owned(),
                EnvVar {
                    value: v.to_owned(),
                    secret: s,
                },
            );
        }
        FnEnv::new(m)
    }

    #[test]
    fn resolves_and_matches() {
        let mut errors = Vec::new();
        let names = OneOrMany::Many(vec!["A".into(), "B".into()]);
        let set = SecretSet::from_values(resolve(&names, &env(), "secret", &mut errors));
        assert!(errors.is_empty());
        assert_eq!(set.find(b"alpha").map(|s| &**s), Some("A"));
        assert_eq!(set.find(b"beta").map(|s| &**s), Some("B"));
        assert_eq!(set.find(b"alph"), None);
        assert_eq!(set.find(b""), None);
    }

    #[test]
    fn refuses_missing_and_plain() {
        let mut errors = Vec::new();
        let names = OneOrMany::Many(vec!["NOPE".into(), "P".into()]);
        assert!(resolve(&names, &env(), "secret", &mut errors).is_empty());
        assert_eq!(errors.len(), 2);
        assert!(errors.iter().all(|e| e.field == "secret"));
        assert!(
            !format!("{errors:?}").contains("plain"),
            "no value in errors"
        );
    }
}
