//! Runs a handler's `{"proxy": {...}}`: the request it describes (FastFN's fields `url` or
//! `path`, `method`, `headers`, `body` / `is_base64` + `body_base64`, `timeout_ms`,
//! `max_response_bytes`) is checked against the function's `edge` config and sent by the
//! gateway; the upstream's answer (status, headers less hop-by-hop ones, body) becomes
//! the response. Redirects are not followed, the answer is buffered up to the cap, and
//! unless `allow_private` only public addresses are connected to: the client's resolver
//! drops the others, so a name that resolves to a private address at connect time is
//! refused too.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;
use serde_json::Value;

use super::config::EdgeConfig;
use crate::net_class;
use crate::pool::WorkerResponse;

/// No proxied call waits longer than this, whatever `timeout_ms` says.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(120);
const MAX_URL_LEN: usize = 8192;
const MAX_HEADERS: usize = 64;

/// Why a proxy answer could not be served: a 502 with `edge proxy failed: <this>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgeError {
    #[error("this function has no \"edge\" config, so its handler may not answer with proxy")]
    Disabled,
    #[error("{0}")]
    Invalid(&'static str),
    #[error("proxy denied: {host} is not in edge.allow_hosts (nor edge.base_url's host)")]
    HostNotAllowed { host: String },
    #[error("proxy denied: control-plane path not allowed")]
    ControlPlane,
    #[error("proxy denied: {host} is a loopback, private or link-local address; set edge.allow_private to reach it")]
    Private { host: String },
    #[error("proxy request failed: {host} does not resolve")]
    Unresolved { host: String },
    #[error("proxy request failed: timed out after {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    #[error("proxy request failed: {detail}")]
    Transport { detail: String },
    #[error("upstream response is over the {limit}-byte edge.max_response_bytes limit")]
    TooLarge { limit: usize },
}

/// Request headers the gateway owns on the outbound call.
const NOT_SENT: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "content-length",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
];
/// Hop-by-hop and framing headers of the upstream's answer, dropped as FastFN drops them.
const NOT_RETURNED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
];
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// The outbound call a `proxy` object stands for, validated.
#[derive(Debug)]
pub struct Outbound {
    pub url: Url,
    pub method: Method,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub timeout: Duration,
    pub limit: usize,
}

/// Reads the handler's `proxy` object as FastFN does; `method` is the request's own, the
/// default; `timeout` the function's.
pub fn outbound(
    cfg: &EdgeConfig,
    proxy: &Value,
    method: &Method,
    timeout: Duration,
) -> Result<Outbound, EdgeError> {
    let p = proxy
        .as_object()
        .ok_or(EdgeError::Invalid("proxy must be an object"))?;
    let text = |k: &str| p.get(k).filter(|v| !v.is_null()).map(value_text);
    let url = text("url");
    let absolute = url
        .as_deref()
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"));
    let url = match absolute {
        Some(u) => u.to_owned(),
        None => {
            let path = match url.filter(|u| u.starts_with('/')) {
                Some(u) => u,
                None => text("path").unwrap_or_default(),
            };
            if !path.starts_with('/') {
                return Err(EdgeError::Invalid(
                    "proxy.url must be absolute (http/https) or proxy.path must start with /",
                ));
            }
            if path.contains("..") {
                return Err(EdgeError::Invalid("proxy.path may not include .."));
            }
            let base = cfg.base_url.as_ref().ok_or(EdgeError::Invalid(
                "edge.base_url is required for relative proxy paths",
            ))?;
            format!("{}{path}", base.as_str().trim_end_matches('/'))
        }
    };
    if url.len() > MAX_URL_LEN {
        return Err(EdgeError::Invalid("proxy url is longer than 8192 bytes"));
    }
    let url = Url::parse(&url).map_err(|_| EdgeError::Invalid("proxy url is not a valid URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(EdgeError::Invalid("proxy url must be http:// or https://"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EdgeError::Invalid("proxy url may not carry credentials"));
    }
    if control_plane(url.path()) {
        return Err(EdgeError::ControlPlane);
    }
    let method = match text("method") {
        None => method.clone(),
        Some(m) => {
            let upper = m.to_ascii_uppercase();
            if !METHODS.contains(&upper.as_str()) {
                return Err(EdgeError::Invalid("invalid proxy method"));
            }
            Method::from_bytes(upper.as_bytes()).expect("listed methods parse")
        }
    };
    let headers = headers(p.get("headers"));
    let body = if p.get("is_base64") == Some(&Value::Bool(true)) {
        let b64 = p.get("body_base64").and_then(Value::as_str).unwrap_or("");
        if b64.is_empty() {
            return Err(EdgeError::Invalid(
                "proxy.body_base64 must be a non-empty string when proxy.is_base64=true",
            ));
        }
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map(Bytes::from)
            .map_err(|_| EdgeError::Invalid("invalid proxy.body_base64"))?
    } else {
        Bytes::from(text("body").unwrap_or_default())
    };
    let timeout = match p.get("timeout_ms").and_then(Value::as_f64) {
        Some(ms) if ms >= 1.0 => Duration::from_millis(ms as u64),
        _ => timeout,
    }
    .min(MAX_TIMEOUT);
    // A handler may lower the cap for one call, never raise it past the config's.
    let limit = match p.get("max_response_bytes").and_then(Value::as_u64) {
        Some(n) if n > 0 => (n as usize).min(cfg.max_response_bytes),
        _ => cfg.max_response_bytes,
    };
    Ok(Outbound {
        url,
        method,
        headers,
        body,
        timeout,
        limit,
    })
}

/// Checks the target and sends the call.
pub async fn run(cfg: &EdgeConfig, out: Outbound) -> Result<WorkerResponse, EdgeError> {
    let host = out.url.host_str().unwrap_or_default().to_owned();
    if !cfg.host_allowed(&out.url) {
        return Err(EdgeError::HostNotAllowed { host });
    }
    if !cfg.allow_private {
        match out.url.host() {
            Some(url::Host::Ipv4(ip)) if !net_class::is_public(IpAddr::V4(ip)) => {
                return Err(EdgeError::Private { host })
            }
            Some(url::Host::Ipv6(ip)) if !net_class::is_public(IpAddr::V6(ip)) => {
                return Err(EdgeError::Private { host })
            }
            // Checked here for a clear error; the resolver checks again at connect.
            Some(url::Host::Domain(name)) => {
                let ips = net_class::resolve(name)
                    .await
                    .map_err(|()| EdgeError::Unresolved { host: host.clone() })?;
                if !ips.iter().any(|ip| net_class::is_public(*ip)) {
                    return Err(EdgeError::Private { host });
                }
            }
            _ => {}
        }
    }
    let timeout_ms = out.timeout.as_millis() as u64;
    let transport = |e: reqwest::Error| {
        if e.is_timeout() {
            EdgeError::Timeout { timeout_ms }
        } else {
            EdgeError::Transport {
                detail: error_chain(&e.without_url()),
            }
        }
    };
    let call = async {
        let mut resp = client(cfg.allow_private)
            .request(out.method, out.url)
            .headers(out.headers)
            .body(out.body)
            .send()
            .await
            .map_err(transport)?;
        if resp.content_length().is_some_and(|n| n > out.limit as u64) {
            return Err(EdgeError::TooLarge { limit: out.limit });
        }
        let status =
            StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut headers = HeaderMap::with_capacity(resp.headers().len());
        for (name, value) in resp.headers() {
            if !NOT_RETURNED.contains(&name.as_str()) {
                headers.append(name.clone(), value.clone());
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > out.limit {
                return Err(EdgeError::TooLarge { limit: out.limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(WorkerResponse {
            status,
            headers,
            body: Bytes::from(body),
            proxy: None,
        })
    };
    match tokio::time::timeout(out.timeout, call).await {
        Ok(r) => r,
        Err(_) => Err(EdgeError::Timeout { timeout_ms }),
    }
}

/// `/_fn...` and `/console...` are the gateway's own surfaces in FastFN: never proxied.
fn control_plane(path: &str) -> bool {
    ["/_fn", "/console"].iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// FastFN's header rule: names of `[A-Za-z0-9-]`, values without CR/LF; others dropped.
fn headers(raw: Option<&Value>) -> HeaderMap {
    let mut out = HeaderMap::new();
    let Some(obj) = raw.and_then(Value::as_object) else {
        return out;
    };
    for (k, v) in obj.iter().take(MAX_HEADERS) {
        let name_ok = !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let value = value_text(v);
        if !name_ok || value.contains(['\r', '\n']) {
            continue;
        }
        let Ok(name) = HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()) else {
            continue;
        };
        if NOT_SENT.contains(&name.as_str()) {
            continue;
        }
        if let Ok(value) = HeaderValue::from_str(&value) {
            out.insert(name, value);
        }
    }
    out
}

/// A JSON value as FastFN's `tostring` would hand it on: strings as they are.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out.chars().take(300).collect()
}

/// Two clients: one whose resolver keeps only public addresses, one for `allow_private`.
fn client(allow_private: bool) -> &'static reqwest::Client {
    static GUARDED: OnceLock<reqwest::Client> = OnceLock::new();
    static OPEN: OnceLock<reqwest::Client> = OnceLock::new();
    let build = |guarded: bool| {
        let b = crate::auth::http_fetch::builder().timeout(MAX_TIMEOUT);
        let b = if guarded {
            b.dns_resolver(Arc::new(PublicOnly))
        } else {
            b
        };
        b.build()
            .expect("a rustls client with default roots always builds")
    };
    if allow_private {
        OPEN.get_or_init(|| build(false))
    } else {
        GUARDED.get_or_init(|| build(true))
    }
}

/// Resolves a name to its public addresses only: the addresses actually connected to.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let ips = net_class::resolve(&host).await.map_err(
                |()| -> Box<dyn std::error::Error + Send + Sync> {
                    format!("{host} does not resolve").into()
                },
            )?;
            let ok: Vec<SocketAddr> = ips
                .into_iter()
                .filter(|ip| net_class::is_public(*ip))
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if ok.is_empty() {
                return Err(format!("{host} resolves only to private addresses").into());
            }
            let addrs: Addrs = Box::new(ok.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::config::{compile, RawEdge};

    fn cfg(s: &str) -> EdgeConfig {
        compile(&serde_json::from_str::<RawEdge>(s).unwrap()).unwrap()
    }

    fn build(c: &EdgeConfig, p: &str) -> Result<Outbound, EdgeError> {
        let v: Value = serde_json::from_str(p).unwrap();
        outbound(c, &v, &Method::POST, Duration::from_secs(2))
    }

    #[test]
    fn fields_read_as_fastfn_reads_them() {
        let c = cfg(r#"{"base_url": "http://127.0.0.1:8080/", "allow_private": true}"#);
        let o = build(
            &c,
            r#"{"path": "/x?a=1", "headers": {"x-a": 1, "Bad Header": "v", "x-b": "a\nb", "Host": "evil"},
                "body": "hi", "timeout_ms": 500}"#,
        )
        .unwrap();
        assert_eq!(o.url.as_str(), "http://127.0.0.1:8080/x?a=1");
        assert_eq!(o.method, Method::POST);
        assert_eq!(o.headers.len(), 1);
        assert_eq!(o.headers["x-a"], "1");
        assert_eq!(&o.body[..], b"hi");
        assert_eq!(o.timeout, Duration::from_millis(500));
        let o = build(
            &c,
            r#"{"url": "/y", "method": "delete", "is_base64": true, "body_base64": "AAE="}"#,
        )
        .unwrap();
        assert_eq!((o.url.path(), o.method), ("/y", Method::DELETE));
        assert_eq!(&o.body[..], [0, 1]);
        let o = build(
            &c,
            r#"{"url": "https://api.test/z", "max_response_bytes": 10}"#,
        )
        .unwrap();
        assert_eq!((o.url.as_str(), o.limit), ("https://api.test/z", 10));
    }

    #[test]
    fn refusals() {
        let c = cfg(r#"{"base_url": "http://127.0.0.1:8080"}"#);
        let err = |p: &str| build(&c, p).unwrap_err();
        assert_eq!(
            err(r#"{"path": "nope"}"#),
            EdgeError::Invalid(
                "proxy.url must be absolute (http/https) or proxy.path must start with /"
            )
        );
        assert_eq!(
            err(r#"{"path": "/a/../b"}"#),
            EdgeError::Invalid("proxy.path may not include ..")
        );
        assert_eq!(err(r#"{"path": "/_fn/health"}"#), EdgeError::ControlPlane);
        assert_eq!(err(r#"{"path": "/console"}"#), EdgeError::ControlPlane);
        assert!(build(&c, r#"{"path": "/_fnord"}"#).is_ok());
        assert_eq!(
            err(r#"{"path": "/x", "method": "TRACE"}"#),
            EdgeError::Invalid("invalid proxy method")
        );
        assert_eq!(
            err(r#"{"url": "http://u:p@h.test/"}"#),
            EdgeError::Invalid("proxy url may not carry credentials")
        );
        assert_eq!(err("[]"), EdgeError::Invalid("proxy must be an object"));
        let none = cfg("{}");
        assert_eq!(
            build(&none, r#"{"path": "/x"}"#).unwrap_err(),
            EdgeError::Invalid("edge.base_url is required for relative proxy paths")
        );
    }

    #[tokio::test]
    async fn private_targets_refused_before_connecting() {
        let c = cfg(r#"{"allow_hosts": ["127.0.0.1", "localhost", "169.254.169.254", "[::1]"]}"#);
        for url in [
            "http://127.0.0.1:9/",
            "http://localhost:9/",
            "http://169.254.169.254/latest",
            "http://[::1]:9/",
        ] {
            let o = build(&c, &format!(r#"{{"url": "{url}"}}"#)).unwrap();
            let e = run(&c, o).await.unwrap_err();
            assert!(matches!(e, EdgeError::Private { .. }), "{url}: {e}");
        }
        let o = build(&c, r#"{"url": "http://10.0.0.1/"}"#).unwrap();
        assert!(matches!(
            run(&c, o).await.unwrap_err(),
            EdgeError::HostNotAllowed { .. }
        ));
    }
}
