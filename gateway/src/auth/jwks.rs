//! JWKS file (`jwt.jwks_file`) → verification keys. Each key serves exactly one JWS
//! algorithm, fixed by its type (`RSA` → RS256, `EC` P-256 → ES256, `OKP` Ed25519 → EdDSA,
//! `oct` → HS256): a token's `alg` must match the key's, which is what stops algorithm
//! confusion (an RSA public key can never be used as an HMAC secret).

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::{hmac, signature};
use serde::Deserialize;

pub const MAX_FILE_BYTES: u64 = 1 << 20;
pub const MAX_KEYS: usize = 64;

/// The JWS algorithms the gateway verifies. `none` is not one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwsAlg {
    Rs256,
    Es256,
    EdDsa,
    Hs256,
}

impl JwsAlg {
    pub const ALL: [JwsAlg; 4] = [JwsAlg::Rs256, JwsAlg::Es256, JwsAlg::EdDsa, JwsAlg::Hs256];

    pub fn parse(s: &str) -> Option<JwsAlg> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JwsAlg::Rs256 => "RS256",
            JwsAlg::Es256 => "ES256",
            JwsAlg::EdDsa => "EdDSA",
            JwsAlg::Hs256 => "HS256",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("is not a JWKS document ({{\"keys\": [...]}}): {message}")]
    Syntax { message: String },
    #[error("key {index}: {message}")]
    Key { index: usize, message: String },
    #[error("holds no signature key")]
    Empty,
    #[error("holds more than {MAX_KEYS} keys")]
    TooMany,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<RawJwk>,
}

/// Unknown members (`x5c`, `key_ops`, ...) are ignored, as RFC 7517 asks.
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    k: Option<String>,
}

/// One verification key.
pub struct Jwk {
    pub kid: Option<String>,
    pub alg: JwsAlg,
    material: Material,
}

enum Material {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec(Vec<u8>),
    Ed(Vec<u8>),
    Oct(hmac::Key),
}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Jwk {
    /// Checks `sig` over `msg` with this key's own algorithm.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match &self.material {
            Material::Rsa { n, e } => signature::RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, msg, sig)
                .is_ok(),
            Material::Ec(point) => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(msg, sig)
                    .is_ok()
            }
            Material::Ed(x) => signature::UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(msg, sig)
                .is_ok(),
            Material::Oct(key) => hmac::verify(key, msg, sig).is_ok(),
        }
    }
}

pub fn load(path: &Path) -> Result<Vec<Jwk>, JwksError> {
    let read_err = |message: String| JwksError::Read {
        path: path.display().to_string(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| read_err(e.to_string()))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(read_err(format!("over the {MAX_FILE_BYTES}-byte limit")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| read_err(e.to_string()))?;
    parse(&text)
}

pub fn parse(text: &str) -> Result<Vec<Jwk>, JwksError> {
    let raw: RawJwks = serde_json::from_str(text).map_err(|e| JwksError::Syntax {
        message: e.to_string(),
    })?;
    if raw.keys.len() > MAX_KEYS {
        return Err(JwksError::TooMany);
    }
    let mut keys = Vec::new();
    for (index, k) in raw.keys.into_iter().enumerate() {
        if k.use_.as_deref() == Some("enc") {
            continue;
        }
        keys.push(key(k).map_err(|message| JwksError::Key { index, message })?);
    }
    if keys.is_empty() {
        return Err(JwksError::Empty);
    }
    Ok(keys)
}

/// A JWKS fetched from an issuer: keys the gateway cannot use (other curves, encryption
/// keys, unsupported types) are skipped rather than failing the whole set, since issuers
/// publish keys for other consumers too. Still refused: bad JSON, too many keys, none usable.
pub fn parse_published(body: &[u8]) -> Result<Vec<Jwk>, JwksError> {
    if body.len() as u64 > MAX_FILE_BYTES {
        return Err(JwksError::TooMany);
    }
    let raw: RawJwks = serde_json::from_slice(body).map_err(|e| JwksError::Syntax {
        message: e.to_string(),
    })?;
    if raw.keys.len() > MAX_KEYS {
        return Err(JwksError::TooMany);
    }
    let keys: Vec<Jwk> = raw
        .keys
        .into_iter()
        .filter(|k| k.use_.as_deref() != Some("enc"))
        .filter_map(|k| key(k).ok())
        .collect();
    if keys.is_empty() {
        return Err(JwksError::Empty);
    }
    Ok(keys)
}

fn key(k: RawJwk) -> Result<Jwk, String> {
    let b64 = |name: &str, v: &Option<String>| -> Result<Vec<u8>, String> {
        let v = v
            .as_deref()
            .ok_or_else(|| format!("{} key lacks \"{name}\"", k.kty))?;
        URL_SAFE_NO_PAD
            .decode(v)
            .map_err(|_| format!("\"{name}\" is not unpadded base64url"))
    };
    let (alg, material) = match (k.kty.as_str(), k.crv.as_deref()) {
        ("RSA", _) => {
            let n = b64("n", &k.n)?;
            let e = b64("e", &k.e)?;
            let bits = n.iter().skip_while(|&&b| b == 0).count() * 8;
            if !(2048..=8192).contains(&bits) {
                return Err(format!(
                    "RSA modulus of about {bits} bits; use 2048 to 8192"
                ));
            }
            (JwsAlg::Rs256, Material::Rsa { n, e })
        }
        ("EC", Some("P-256")) => {
            let (x, y) = (b64("x", &k.x)?, b64("y", &k.y)?);
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates must be 32 bytes each".into());
            }
            (JwsAlg::Es256, Material::Ec([&[4u8][..], &x, &y].concat()))
        }
        ("OKP", Some("Ed25519")) => {
            let x = b64("x", &k.x)?;
            if x.len() != 32 {
                return Err("an Ed25519 key is 32 bytes".into());
            }
            (JwsAlg::EdDsa, Material::Ed(x))
        }
        ("oct", _) => {
            let secret = b64("k", &k.k)?;
            if secret.len() < 32 {
                return Err("an HS256 key must be at least 32 bytes (RFC 7518 §3.2)".into());
            }
            (
                JwsAlg::Hs256,
                Material::Oct(hmac::Key::new(hmac::HMAC_SHA256, &secret)),
            )
        }
        (kty, crv) => {
            return Err(format!(
                "kty {kty:?}{} is not supported; use RSA, EC P-256, OKP Ed25519 or oct",
                crv.map(|c| format!(" crv {c:?}")).unwrap_or_default()
            ))
        }
    };
    if let Some(a) = &k.alg {
        if JwsAlg::parse(a) != Some(alg) {
            return Err(format!(
                "\"alg\": {a:?} does not match the key type (expected {})",
                alg.as_str()
            ));
        }
    }
    Ok(Jwk {
        kid: k.kid,
        alg,
        material,
    })
}
