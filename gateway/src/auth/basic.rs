//! `"type": "basic"`: `Authorization: Basic`, users from one env variable holding
//! `user:pbkdf2-sha256$...` lines (from `edgefn hash-key --basic`).
//!
//! PBKDF2 is slow on purpose, so four things keep it from pinning the gateway's cores:
//! successful checks are cached for a minute ([`VerifiedCache`]) and a cached credential
//! goes straight through; every other check first spends one token of its client
//! address's budget (`limits::pbkdf2_budget`; none left: [`THROTTLED`], answered 429 with
//! `Retry-After` before any derivation), so one address's flood cannot take the slots from
//! the others; at most [`max_concurrent_pbkdf2`] derivations run at once across the process
//! (a check waits briefly for a slot, see `basic_slots`; past that, a 401 with reason
//! `busy`); and unknown users cost the same derivation as
//! known ones, so timing doesn't reveal which user names exist.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use http::HeaderValue;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use serde_json::json;

use super::authorization;
use super::basic_cache::VerifiedCache;
use super::basic_slots;
use super::hash_key::{self, BasicHash};
use super::secrets::{self, OneOrMany};
use super::{AuthConfigError, AuthFailure, AuthRequest, Identity};
use crate::catalog::fn_env::FnEnv;
use crate::limits::pbkdf2_budget;

pub const DEFAULT_REALM: &str = "edgefn";
pub const MAX_USERS: usize = 1000;
/// Longest decoded `user:password` accepted.
pub const MAX_CREDENTIALS: usize = 1024;
/// The failure reason when the client address has no PBKDF2 budget left; the pipeline
/// answers it with 429 (`limits::pbkdf2_budget::RETRY_AFTER`), not 401.
pub const THROTTLED: &str = "throttled";

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BasicConfig {
    /// Env name whose value holds `user:hash` lines.
    pub users: String,
    pub realm: Option<String>,
}

#[derive(Debug)]
pub struct BasicPolicy {
    users: HashMap<String, BasicHash>,
    /// Verified for unknown users, so they cost what known ones do.
    decoy: BasicHash,
    challenge: HeaderValue,
    realm: String,
    cache: VerifiedCache,
}

pub use super::basic_slots::max_concurrent_pbkdf2;

/// Decodes standard base64, padded or not (clients differ).
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub fn compile(cfg: &BasicConfig, env: &FnEnv) -> Result<BasicPolicy, Vec<AuthConfigError>> {
    let mut errors = Vec::new();
    let realm = cfg
        .realm
        .clone()
        .unwrap_or_else(|| DEFAULT_REALM.to_owned());
    let challenge = valid_realm(&realm)
        .then(|| HeaderValue::from_str(&format!("Basic realm=\"{realm}\", charset=\"UTF-8\"")).ok())
        .flatten()
        .unwrap_or_else(|| {
            errors.push(secrets::err(
                "realm",
                "must be 1-128 printable ASCII characters without '\"' or '\\'",
            ));
            HeaderValue::from_static("Basic")
        });
    let mut users = HashMap::new();
    let names = OneOrMany::One(cfg.users.clone());
    if let Some((name, value)) = secrets::resolve(&names, env, "users", &mut errors).pop() {
        let text = String::from_utf8_lossy(&value);
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // Messages name the variable and line only: the value is secret.
            let at = format!("variable {name:?} line {}", i + 1);
            let Some((user, hash)) = line.split_once(':') else {
                errors.push(secrets::err("users", &format!("{at}: expected user:hash")));
                continue;
            };
            if !hash_key::valid_user(user) {
                errors.push(secrets::err("users", &format!("{at}: invalid user name")));
                continue;
            }
            match hash_key::parse_basic_hash(hash) {
                Ok(h) => {
                    if users.insert(user.to_owned(), h).is_some() {
                        errors.push(secrets::err("users", &format!("{at}: user listed twice")));
                    }
                }
                Err(e) => errors.push(secrets::err("users", &format!("{at}: {e}"))),
            }
        }
        if users.is_empty() && errors.is_empty() {
            errors.push(secrets::err(
                "users",
                &format!("variable {name:?} lists no user"),
            ));
        }
        if users.len() > MAX_USERS {
            errors.push(secrets::err(
                "users",
                &format!("more than {MAX_USERS} users"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let iterations = users
        .values()
        .map(|h| h.iterations)
        .max()
        .unwrap_or(NonZeroU32::new(hash_key::DEFAULT_ITERATIONS).expect("non-zero"));
    let mut random = [0u8; 48];
    SystemRandom::new()
        .fill(&mut random)
        .expect("the system RNG is available");
    Ok(BasicPolicy {
        users,
        decoy: BasicHash {
            iterations,
            salt: random[..16].to_vec(),
            hash: random[16..].to_vec(),
        },
        challenge,
        realm,
        cache: VerifiedCache::default(),
    })
}

fn valid_realm(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 128
        && r.bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

impl BasicPolicy {
    pub fn verify(&self, req: &AuthRequest<'_>) -> Result<Identity, AuthFailure> {
        let fail = |reason| AuthFailure {
            reason,
            challenge: Some(self.challenge.clone()),
        };
        let b64 = authorization::credentials(req.headers, "basic").map_err(|e| fail(e.reason()))?;
        // Decoded on the stack: no allocation per request, and an over-long value is refused
        // by its size before any decoding (the slack covers base64's length estimate).
        let mut buf = [0u8; MAX_CREDENTIALS + 3];
        let n = B64
            .decode_slice(b64, &mut buf)
            .map_err(|_| fail("malformed"))?;
        if n > MAX_CREDENTIALS {
            return Err(fail("malformed"));
        }
        let raw = &buf[..n];
        let key = self.cache.key_of(raw);
        let now = Instant::now();
        if let Some(user) = self.cache.get(&key, now) {
            return Ok(identity(user));
        }
        let text = std::str::from_utf8(raw).map_err(|_| fail("malformed"))?;
        let (user, password) = text.split_once(':').ok_or_else(|| fail("malformed"))?;
        // Budget first, spent only once a slot is held: a throttled flood never queues
        // for a slot, and a `busy` refusal costs a client nothing.
        if !pbkdf2_budget::has_budget(req.peer) {
            return Err(fail(THROTTLED));
        }
        basic_slots::blocking(|| {
            let _slot = basic_slots::acquire().ok_or_else(|| fail("busy"))?;
            if !pbkdf2_budget::admit(req.peer) {
                return Err(fail(THROTTLED));
            }
            match self.users.get_key_value(user) {
                Some((name, hash)) if hash.verify(password.as_bytes()) => {
                    let name: Arc<str> = Arc::from(name.as_str());
                    self.cache.insert(key, name.clone(), now);
                    Ok(identity(name))
                }
                Some(_) => Err(fail("bad_password")),
                None => {
                    let _ = self.decoy.verify(password.as_bytes());
                    Err(fail("unknown_user"))
                }
            }
        })
    }

    pub fn openapi_scheme(&self) -> serde_json::Value {
        json!({"type": "http", "scheme": "basic", "description": format!("HTTP Basic, realm \"{}\"", self.realm)})
    }
}

fn identity(user: Arc<str>) -> Identity {
    Identity {
        kind: "basic",
        subject: Some(user),
    }
}

#[cfg(test)]
#[path = "basic_tests.rs"]
mod tests;
