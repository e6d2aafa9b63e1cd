//! OpenID Connect discovery document (`<issuer>/.well-known/openid-configuration`) →
//! the endpoints the gateway uses. The document's `issuer` must equal the configured one
//! exactly (OpenID Connect Discovery §4.3), which stops a document served elsewhere from
//! redirecting key lookups to keys its author controls.

use serde::Deserialize;

/// Largest discovery document read.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("is not an OpenID discovery document: {message}")]
    Syntax { message: String },
    #[error("names issuer {found:?}, not the configured {expected:?}")]
    WrongIssuer { expected: String, found: String },
}

/// What the gateway reads from the document; other members are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub end_session_endpoint: Option<String>,
}

/// The well-known URL for `issuer` (a trailing `/` is not doubled).
pub fn url_for(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

pub fn parse(body: &[u8], issuer: &str) -> Result<Discovery, DiscoveryError> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(DiscoveryError::Syntax {
            message: format!("over {MAX_DOCUMENT_BYTES} bytes"),
        });
    }
    let doc: Discovery = serde_json::from_slice(body).map_err(|e| DiscoveryError::Syntax {
        message: e.to_string(),
    })?;
    if doc.issuer != issuer {
        return Err(DiscoveryError::WrongIssuer {
            expected: issuer.to_owned(),
            found: doc.issuer,
        });
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_jwks_uri_and_checks_issuer() {
        let doc = br#"{"issuer":"https://id.example","jwks_uri":"https://id.example/jwks","x":1}"#;
        let d = parse(doc, "https://id.example").unwrap();
        assert_eq!(d.jwks_uri, "https://id.example/jwks");
        assert!(matches!(
            parse(doc, "https://other.example"),
            Err(DiscoveryError::WrongIssuer { .. })
        ));
        assert!(parse(br#"{"issuer":"https://id.example"}"#, "https://id.example").is_err());
        assert!(parse(&vec![b' '; MAX_DOCUMENT_BYTES + 1], "x").is_err());
        assert_eq!(
            url_for("https://id.example/"),
            "https://id.example/.well-known/openid-configuration"
        );
    }
}
