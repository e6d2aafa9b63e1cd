//! rustls server config from PEM files, ALPN h2 then http/1.1; with `client_ca`, client
//! certificates are verified by rustls's WebPKI verifier during the handshake and the
//! verified leaf's names are handed to the connection's requests.
//!
//! The crypto provider is aws-lc-rs, not ring (which the rest of the gateway uses for its
//! own primitives): a full handshake's largest cost is the X25519 key exchange, where
//! aws-lc's is cheaper (about 11% fewer instructions per handshake in
//! `bench/instructions.sh`), and its random numbers come from a user-space DRBG where
//! ring makes a `getrandom(2)` call for each of the handshake's random values.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::auth::mtls::ClientCert;
use crate::config::{ClientAuth, TlsPaths};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate found; give a PEM file with -----BEGIN CERTIFICATE-----")]
    NoCertificate { path: String },
    #[error("{path}: no PEM private key found (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { path: String },
    #[error("server.tls: certificate and key do not form a usable pair: {source}")]
    Rustls { source: rustls::Error },
    #[error("server.tls: cannot make the session-ticket key: {source}")]
    Ticketer { source: rustls::Error },
    #[error("server.tls.client_ca: {path}: not a usable CA bundle: {message}")]
    ClientCa { path: String, message: String },
}

pub fn acceptor(paths: &TlsPaths) -> Result<TlsAcceptor, TlsError> {
    let certs = load_certs(&paths.cert)?;
    let key = load_key(&paths.key)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rustls { source })?;
    let builder = match &paths.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            builder.with_client_cert_verifier(client_verifier(ca, paths.client_auth, provider)?)
        }
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|source| TlsError::Rustls { source })?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Stateless TLS 1.3 tickets, sealed under a key rotated every 6 hours: a client's
    // session survives any number of other handshakes, where rustls' default in-memory
    // cache (256 sessions, two taken by every full handshake) forgets it after ~128.
    cfg.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
        .map_err(|source| TlsError::Ticketer { source })?;
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// Client certificates chaining to the CA bundle; with `optional`, clients without one
/// complete the handshake too (their requests carry no client identity).
fn client_verifier(
    ca: &Path,
    mode: ClientAuth,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let ca_err = |message: String| TlsError::ClientCa {
        path: ca.display().to_string(),
        message,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
    }
    let builder =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let builder = match mode {
        ClientAuth::Optional => builder.allow_unauthenticated(),
        ClientAuth::Required => builder,
    };
    builder.build().map_err(|e| ca_err(e.to_string()))
}

/// The verified client certificate of a finished handshake, as names policies match.
pub fn client_cert(conn: &rustls::ServerConnection) -> Option<Arc<ClientCert>> {
    let der = conn.peer_certificates()?.first()?;
    ClientCert::from_der(der.as_ref()).map(Arc::new)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| TlsError::NoKey {
            path: path.display().to_string(),
        })
}
