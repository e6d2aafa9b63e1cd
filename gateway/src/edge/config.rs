//! `edge` in `fn.config.json` (FastFN's edge proxy): where a handler's `{"proxy": {...}}`
//! may send the gateway. Compiled at load: `base_url` parsed, hosts normalised, the
//! response cap bounded.

use reqwest::Url;
use serde::Deserialize;

/// FastFN's default cap on a proxied answer.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 2 << 20;
/// No configuration may buffer more than this per proxied answer.
pub const MAX_RESPONSE_CEILING: usize = 64 << 20;
const MAX_HOSTS: usize = 256;
const MAX_HOST_LEN: usize = 200;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawEdge {
    pub base_url: Option<String>,
    pub allow_hosts: Option<Vec<String>>,
    pub allow_private: Option<bool>,
    pub max_response_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeConfig {
    /// Prefix of a relative `proxy.path`.
    pub base_url: Option<Url>,
    /// `host` or `host:port` entries, lower-cased; `base_url`'s own authority is one.
    pub allow_hosts: Vec<String>,
    /// Loopback, private, link-local and unique-local addresses may be reached.
    pub allow_private: bool,
    pub max_response_bytes: usize,
}

impl EdgeConfig {
    /// The URL's host (bare, IPv6 without brackets) or `host:port` is listed.
    pub fn host_allowed(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let authority = url.port().map(|p| format!("{host}:{p}"));
        self.allow_hosts
            .iter()
            .any(|h| h == bare || h == &host || Some(h) == authority.as_ref())
    }
}

/// Validates `edge`; `(field, message)` pairs on failure.
pub fn compile(raw: &RawEdge) -> Result<EdgeConfig, Vec<(String, String)>> {
    let mut errors = Vec::new();
    let mut allow_hosts = Vec::new();
    let base_url = match raw.base_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => match Url::parse(text) {
            Ok(u)
                if matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.username().is_empty()
                    && u.password().is_none()
                    && u.query().is_none() =>
            {
                allow_hosts.push(authority(&u));
                Some(u)
            }
            _ => {
                errors.push((
                    "edge.base_url".into(),
                    format!("{text:?} is not an http:// or https:// URL with a host (no credentials, no query)"),
                ));
                None
            }
        },
    };
    let listed = raw.allow_hosts.as_deref().unwrap_or_default();
    if listed.len() > MAX_HOSTS {
        errors.push((
            "edge.allow_hosts".into(),
            format!("lists {} hosts; at most {MAX_HOSTS}", listed.len()),
        ));
    }
    for h in listed {
        let h = h.trim().to_ascii_lowercase();
        if h.is_empty() || h.len() > MAX_HOST_LEN || h.contains(['/', '@', ' ', '?', '#']) {
            errors.push((
                "edge.allow_hosts".into(),
                format!("{h:?} is not a host or host:port (e.g. \"api.example.com\")"),
            ));
        } else if !allow_hosts.contains(&h) {
            allow_hosts.push(h);
        }
    }
    let max_response_bytes = match raw.max_response_bytes {
        None | Some(0) => DEFAULT_MAX_RESPONSE_BYTES,
        Some(n) if n as usize > MAX_RESPONSE_CEILING => {
            errors.push((
                "edge.max_response_bytes".into(),
                format!("{n} is over the {MAX_RESPONSE_CEILING}-byte ceiling"),
            ));
            DEFAULT_MAX_RESPONSE_BYTES
        }
        Some(n) => n as usize,
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(EdgeConfig {
        base_url,
        allow_hosts,
        allow_private: raw.allow_private == Some(true),
        max_response_bytes,
    })
}

/// `host:port` when the URL names a port, else the host; lower-cased, IPv6 bare.
fn authority(u: &Url) -> String {
    let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
    match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> RawEdge {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn base_url_host_is_allowed_and_lists_are_exact() {
        let c = compile(&raw(
            r#"{"base_url": "http://127.0.0.1:8080", "allow_hosts": ["API.example.com", "x.test:8443"]}"#,
        ))
        .unwrap();
        let ok = |u: &str| c.host_allowed(&Url::parse(u).unwrap());
        assert!(ok("http://127.0.0.1:8080/a"));
        assert!(!ok("http://127.0.0.1:9090/a"));
        assert!(ok("https://api.example.com/x"));
        assert!(ok("https://x.test:8443/"));
        assert!(!ok("https://x.test/"));
        assert!(!ok("https://evil.test/"));
        assert_eq!(c.max_response_bytes, DEFAULT_MAX_RESPONSE_BYTES);
        assert!(!c.allow_private);
    }

    #[test]
    fn bad_values_are_named() {
        let e = compile(&raw(
            r#"{"base_url": "ftp://x", "allow_hosts": ["a/b"], "max_response_bytes": 999999999999}"#,
        ))
        .unwrap_err();
        let fields: Vec<_> = e.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "edge.base_url",
                "edge.allow_hosts",
                "edge.max_response_bytes"
            ]
        );
        assert!(serde_json::from_str::<RawEdge>(r#"{"allow_host": []}"#).is_err());
    }
}
