//! POSTs a finished call's answer to its `X-Callback-Url`: the function's status, headers
//! and body plus `X-Call-Id`, `X-Function-Status`, `X-Function-Name` and
//! `X-Duration-Seconds`. Redirects are not followed, every delivery has a deadline, the
//! receiver's answer is read up to a cap and dropped, and the client's resolver applies
//! the SSRF guard to the addresses it is about to connect to.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::machine::Delivery;
use super::ssrf::{self, Guard};
use crate::openfaas::headers as of;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);
/// The receiver's answer is read (and discarded) up to this many bytes.
const MAX_REPLY_BYTES: usize = 64 << 10;

/// Hop-by-hop and framing headers of the function's answer not copied to the callback.
const NOT_FORWARDED: &[&str] = &["connection", "content-length", "transfer-encoding", "host"];

pub struct Callbacks {
    client: reqwest::Client,
    guard: Arc<Guard>,
}

/// What the callback carries.
pub struct Report<'a> {
    pub call_id: &'a str,
    pub function: &'a str,
    pub status: u16,
    pub headers: &'a HeaderMap,
    pub body: bytes::Bytes,
    pub duration: Duration,
}

struct GuardedResolver {
    guard: Arc<Guard>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let ips = ssrf::resolve(&host).await.map_err(
                |()| -> Box<dyn std::error::Error + Send + Sync> {
                    format!("{host} does not resolve").into()
                },
            )?;
            let listed = guard.host_listed(&host);
            let ok: Vec<SocketAddr> = ips
                .into_iter()
                .filter(|ip: &IpAddr| listed || guard.address_allowed(*ip))
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if ok.is_empty() {
                return Err("callback host resolves only to refused addresses".into());
            }
            let addrs: Addrs = Box::new(ok.into_iter());
            Ok(addrs)
        })
    }
}

impl Callbacks {
    pub fn new(guard: Arc<Guard>) -> Callbacks {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(DELIVERY_TIMEOUT)
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                guard: guard.clone(),
            }))
            .build()
            .expect("the callback client builds with static settings");
        Callbacks { client, guard }
    }

    /// One delivery attempt.
    pub async fn deliver(&self, url: &str, r: &Report<'_>) -> Delivery {
        let Ok(url) = reqwest::Url::parse(url) else {
            return Delivery::Refused;
        };
        // Literal addresses never reach the resolver: judge them here.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if literal.is_some_and(|ip| !self.guard.address_allowed(ip)) {
            return Delivery::Refused;
        }
        let mut headers = HeaderMap::with_capacity(r.headers.len() + 4);
        for (k, v) in r.headers {
            if !NOT_FORWARDED.contains(&k.as_str()) {
                headers.append(k.clone(), v.clone());
            }
        }
        if let Ok(v) = HeaderValue::from_str(r.call_id) {
            headers.insert(of::CALL_ID.clone(), v);
        }
        headers.insert(of::FUNCTION_STATUS.clone(), HeaderValue::from(r.status));
        if let Ok(v) = HeaderValue::from_str(r.function) {
            headers.insert(of::FUNCTION_NAME.clone(), v);
        }
        headers.insert(of::DURATION.clone(), of::seconds(r.duration));
        let sent = self
            .client
            .post(url)
            .headers(headers)
            .body(r.body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let status = resp.status();
                drain(resp).await;
                if status.is_server_error() {
                    Delivery::Failed
                } else {
                    Delivery::Accepted
                }
            }
            Err(e) if is_refusal(&e) => Delivery::Refused,
            Err(_) => Delivery::Failed,
        }
    }
}

/// Reads the receiver's answer up to the cap, so the connection can be reused.
async fn drain(mut resp: reqwest::Response) {
    let mut read = 0usize;
    while let Ok(Some(chunk)) = resp.chunk().await {
        read += chunk.len();
        if read > MAX_REPLY_BYTES {
            break;
        }
    }
}

fn is_refusal(e: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if s.to_string().contains("only to refused addresses") {
            return true;
        }
        source = s.source();
    }
    false
}
