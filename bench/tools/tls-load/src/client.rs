//! The client side of one handshake, made as cheap as a real TLS 1.3 handshake allows, so
//! that one load core can keep a server core busy: one key-exchange group (its key share
//! is the only one sent), one cipher suite, no session store (nothing is ever offered for
//! resumption, so every handshake is a full one with the server's certificate signature),
//! and a certificate verifier that **does not check the chain** and, unless asked, does not
//! check the server's `CertificateVerify` signature either. The server's work is exactly
//! what any client causes: ECDHE, the signature, the key schedule, its session tickets
//! (the client offers `psk_dhe_ke` as every TLS 1.3 client does, so servers issue them).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{aws_lc_rs, ring, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// The key-exchange group the client offers (and sends its one key share for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    X25519,
    P256,
}

impl Group {
    pub fn parse(s: &str) -> Option<Group> {
        match s {
            "x25519" => Some(Group::X25519),
            "p256" | "secp256r1" => Some(Group::P256),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Group::X25519 => "x25519",
            Group::P256 => "p256",
        }
    }
}

/// The client's crypto library (the server's choice is its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    AwsLc,
    Ring,
}

impl Provider {
    pub fn parse(s: &str) -> Option<Provider> {
        match s {
            "aws-lc" => Some(Provider::AwsLc),
            "ring" => Some(Provider::Ring),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Provider::AwsLc => "aws-lc",
            Provider::Ring => "ring",
        }
    }
}

/// Accepts any certificate chain; checks the handshake signature only when told to.
#[derive(Debug)]
struct Unverified {
    algorithms: WebPkiSupportedAlgorithms,
    check_signature: bool,
}

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Only TLS 1.3 is offered.
        Err(rustls::Error::General("only TLS 1.3 is offered".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if self.check_signature {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        } else {
            Ok(HandshakeSignatureValid::assertion())
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// TLS 1.3 only, AES-128-GCM-SHA256 (what browsers negotiate), `group`, ALPN `http/1.1`.
pub fn config(provider: Provider, group: Group, check_signature: bool) -> Arc<ClientConfig> {
    let provider = match provider {
        Provider::AwsLc => CryptoProvider {
            kx_groups: vec![match group {
                Group::X25519 => aws_lc_rs::kx_group::X25519,
                Group::P256 => aws_lc_rs::kx_group::SECP256R1,
            }],
            cipher_suites: vec![aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256],
            ..aws_lc_rs::default_provider()
        },
        Provider::Ring => CryptoProvider {
            kx_groups: vec![match group {
                Group::X25519 => ring::kx_group::X25519,
                Group::P256 => ring::kx_group::SECP256R1,
            }],
            cipher_suites: vec![ring::cipher_suite::TLS13_AES_128_GCM_SHA256],
            ..ring::default_provider()
        },
    };
    let verifier = Unverified {
        algorithms: provider.signature_verification_algorithms,
        check_signature,
    };
    let mut cfg = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("both providers support TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    cfg.resumption = Resumption::disabled();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}
