//! The gateway's one outbound HTTP client, for identity documents (OpenID discovery,
//! JWKS). A fetch is a GET with connect and total timeouts, no redirects (a JWKS URL that
//! redirects is a configuration to fix, not to follow), no proxy from the environment, and
//! a body cap enforced while reading, so a hostile or broken issuer cannot hold a task or
//! memory. The answer's `Cache-Control: max-age` is handed back for the caller to bound.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::Url;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("GET {url} failed: {detail}")]
    Transport { url: String, detail: String },
    #[error("GET {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url}: the answer is over the {limit}-byte limit")]
    TooLarge { url: String, limit: usize },
}

/// A fetched body and how long the server says it stays fresh.
#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub max_age: Option<Duration>,
}

/// The one outbound client of the auth code (key sets, discovery, OIDC token endpoint):
/// no redirects, no proxy, bounded connect and total time.
pub(crate) fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        builder()
            .timeout(TOTAL_TIMEOUT)
            .build()
            .expect("a rustls client with default roots always builds")
    })
}

/// The settings every outbound client of the gateway shares (this module's, the `edge`
/// proxy's): no redirects, no proxy from the environment, a bounded connect.
pub(crate) fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .no_proxy()
}

pub async fn get(url: &str, limit: usize) -> Result<Fetched, FetchError> {
    let transport = |e: reqwest::Error| FetchError::Transport {
        url: url.to_owned(),
        detail: e.without_url().to_string(),
    };
    let mut resp = client()
        .get(url)
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(transport)?;
    if !resp.status().is_success() {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status: resp.status().as_u16(),
        });
    }
    let too_large = || FetchError::TooLarge {
        url: url.to_owned(),
        limit,
    };
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let max_age = resp
        .headers()
        .get(http::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(max_age);
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched { body, max_age })
}

/// `max-age=N` from a `Cache-Control` value; `no-store` / `no-cache` read as zero (the
/// caller's lower bound then applies).
pub fn max_age(value: &str) -> Option<Duration> {
    let mut out = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            out = n
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    out
}

/// Why an issuer or key URL is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("is not an absolute URL")]
    NotAUrl,
    #[error(
        "must use https (http only for a loopback host, or with \"allow_insecure_issuer\": true)"
    )]
    Insecure,
    #[error("must use https")]
    Scheme,
}

/// An `https://` URL, or `http://` on a loopback host or when explicitly allowed.
pub fn check_url(url: &str, allow_insecure: bool) -> Result<Url, UrlError> {
    let parsed = Url::parse(url).map_err(|_| UrlError::NotAUrl)?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if allow_insecure || is_loopback(&parsed) => Ok(parsed),
        "http" => Err(UrlError::Insecure),
        _ => Err(UrlError::Scheme),
    }
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control() {
        assert_eq!(
            max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=abc"), None);
    }

    #[test]
    fn only_https_or_loopback_http() {
        assert!(check_url("https://id.example.com", false).is_ok());
        assert!(check_url("http://127.0.0.1:9000/x", false).is_ok());
        assert!(check_url("http://[::1]:9000/x", false).is_ok());
        assert!(check_url("http://localhost/x", false).is_ok());
        assert_eq!(
            check_url("http://id.example.com", false).unwrap_err(),
            UrlError::Insecure
        );
        assert!(check_url("http://id.example.com", true).is_ok());
        assert_eq!(
            check_url("file:///etc/passwd", true).unwrap_err(),
            UrlError::Scheme
        );
        assert_eq!(
            check_url("id.example.com", false).unwrap_err(),
            UrlError::NotAUrl
        );
    }

    /// A real loopback server answering more than the cap: refused while reading.
    #[tokio::test]
    async fn oversized_answers_are_refused() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let body = vec![b'x'; 5000];
            let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s
                .write_all(format!("{:x}\r\n", body.len()).as_bytes())
                .await;
            let _ = s.write_all(&body).await;
            let _ = s.write_all(b"\r\n0\r\n\r\n").await;
        });
        let err = get(&format!("http://{addr}/jwks"), 4096).await.unwrap_err();
        assert!(
            matches!(err, FetchError::TooLarge { limit: 4096, .. }),
            "{err}"
        );
    }

    /// Redirects are not followed: a JWKS URL that moved is a configuration to fix.
    #[tokio::test]
    async fn redirects_are_not_followed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:1/elsewhere\r\ncontent-length: 0\r\n\r\n")
                .await;
        });
        let err = get(&format!("http://{addr}/jwks"), 4096).await.unwrap_err();
        assert!(
            matches!(err, FetchError::Status { status: 302, .. }),
            "{err}"
        );
    }
}
