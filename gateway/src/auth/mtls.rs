//! `"type": "mtls"`: admits a request whose connection presented a client certificate
//! that rustls verified against `server.tls.client_ca` during the handshake, and whose
//! subject common name is in `subjects` or one of whose DNS subject alternative names is in
//! `sans`. The names are read once per connection ([`ClientCert::from_der`]); the request
//! path compares strings. The subject handed to the function is the CN (else the SAN).

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use serde::Deserialize;
use serde_json::json;

use super::secrets;
use super::{AuthConfigError, AuthFailure, Identity};

/// Most names in `subjects` plus `sans`.
pub const MAX_NAMES: usize = 256;
/// Longest name kept from a certificate.
const MAX_NAME_LEN: usize = 256;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MtlsConfig {
    /// Accepted subject common names.
    #[serde(default)]
    pub subjects: Vec<String>,
    /// Accepted DNS subject alternative names.
    #[serde(default)]
    pub sans: Vec<String>,
}

/// The names of a verified client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub common_name: Option<String>,
    pub dns_names: Vec<String>,
}

impl ClientCert {
    /// `None` when the certificate cannot be parsed (rustls already verified it, so this
    /// is a certificate with no readable names).
    pub fn from_der(der: &[u8]) -> Option<ClientCert> {
        let cert = CertificateDer::from(der);
        let ee = webpki::EndEntityCert::try_from(&cert).ok()?;
        let dns_names = ee
            .valid_dns_names()
            .filter(|n| n.len() <= MAX_NAME_LEN)
            .take(MAX_NAMES)
            .map(str::to_owned)
            .collect();
        Some(ClientCert {
            common_name: common_name(ee.subject()),
            dns_names,
        })
    }
}

#[derive(Debug)]
pub struct MtlsPolicy {
    subjects: Vec<String>,
    sans: Vec<String>,
}

pub fn compile(cfg: &MtlsConfig) -> Result<MtlsPolicy, Vec<AuthConfigError>> {
    let mut errors = Vec::new();
    if cfg.subjects.is_empty() && cfg.sans.is_empty() {
        errors.push(secrets::err(
            "subjects",
            "list the accepted certificate subjects (CN) in \"subjects\" or DNS names in \"sans\"",
        ));
    }
    if cfg.subjects.len() + cfg.sans.len() > MAX_NAMES {
        errors.push(secrets::err(
            "subjects",
            &format!("more than {MAX_NAMES} names in subjects and sans"),
        ));
    }
    if errors.is_empty() {
        Ok(MtlsPolicy {
            subjects: cfg.subjects.clone(),
            sans: cfg.sans.iter().map(|s| s.to_ascii_lowercase()).collect(),
        })
    } else {
        Err(errors)
    }
}

impl MtlsPolicy {
    pub fn verify(&self, client: Option<&ClientCert>) -> Result<Identity, AuthFailure> {
        let cert = client.ok_or(AuthFailure::new("missing"))?;
        let by_cn = cert
            .common_name
            .as_ref()
            .filter(|cn| self.subjects.contains(cn));
        let by_san = || {
            cert.dns_names
                .iter()
                .find(|n| self.sans.contains(&n.to_ascii_lowercase()))
        };
        let matched = by_cn
            .or_else(by_san)
            .ok_or(AuthFailure::new("unknown_subject"))?;
        let subject = cert.common_name.as_ref().unwrap_or(matched);
        Ok(Identity {
            kind: "mtls",
            subject: Some(Arc::from(subject.as_str())),
        })
    }

    pub fn openapi_scheme(&self) -> serde_json::Value {
        json!({"type": "mutualTLS", "description": "a client certificate from the gateway's client CA"})
    }
}

/// The first `commonName` (OID 2.5.4.3) in a DER `Name` body (the RDN sequence without
/// its outer tag), if it is a UTF-8 / printable / IA5 string.
fn common_name(name: &[u8]) -> Option<String> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    let mut rdns = name;
    while let Some((0x31, set, rest)) = tlv(rdns) {
        rdns = rest;
        let mut atvs = set;
        while let Some((0x30, atv, rest)) = tlv(atvs) {
            atvs = rest;
            let Some((0x06, oid, value)) = tlv(atv) else {
                continue;
            };
            if oid != CN {
                continue;
            }
            let (tag, v, _) = tlv(value)?;
            // UTF8String, PrintableString, IA5String.
            if matches!(tag, 0x0c | 0x13 | 0x16) && v.len() <= MAX_NAME_LEN {
                return std::str::from_utf8(v).ok().map(str::to_owned);
            }
            return None;
        }
    }
    None
}

/// One DER tag-length-value: (tag, value, rest). Lengths up to 2 bytes (64 KiB).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        n if n < 0x80 => (usize::from(n), rest),
        0x81 => (usize::from(*rest.first()?), &rest[1..]),
        0x82 => {
            let b = rest.get(..2)?;
            ((usize::from(b[0]) << 8) | usize::from(b[1]), &rest[2..])
        }
        _ => return None,
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(cn: &str, sans: &[&str]) -> ClientCert {
        let mut params =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Partner Inc");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let c = params.self_signed(&key).unwrap();
        ClientCert::from_der(c.der()).unwrap()
    }

    #[test]
    fn names_from_a_real_certificate() {
        let c = cert("partner-a", &["a.partner.example"]);
        assert_eq!(c.common_name.as_deref(), Some("partner-a"));
        assert_eq!(c.dns_names, ["a.partner.example"]);
    }

    #[test]
    fn subjects_and_sans() {
        let p = compile(&MtlsConfig {
            subjects: vec!["partner-a".into()],
            sans: vec!["B.partner.example".into()],
        })
        .unwrap();
        let a = p.verify(Some(&cert("partner-a", &[]))).unwrap();
        assert_eq!(a.subject.as_deref(), Some("partner-a"));
        let b = p
            .verify(Some(&cert("other", &["b.partner.example"])))
            .unwrap();
        assert_eq!(b.subject.as_deref(), Some("other"));
        assert_eq!(
            p.verify(Some(&cert("partner-c", &["c.partner.example"])))
                .unwrap_err()
                .reason,
            "unknown_subject"
        );
        assert_eq!(p.verify(None).unwrap_err().reason, "missing");
        assert!(compile(&MtlsConfig {
            subjects: vec![],
            sans: vec![]
        })
        .is_err());
    }

    #[test]
    fn truncated_der_is_no_name() {
        assert_eq!(common_name(&[0x31, 0x05, 0x30]), None);
        assert_eq!(tlv(&[0x30, 0x83, 1, 2, 3]), None);
    }
}
