//! Where callbacks may go. A callback URL is checked at enqueue (a refusal is a 400) and
//! its host's addresses again at every delivery, by the callback client's resolver, so a
//! name that later resolves to a private address is still refused. Loopback, private,
//! link-local (the cloud metadata address), unique-local, CGNAT, multicast and unspecified
//! addresses are refused unless `[async] callback_allow` lists their range or the host.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::openfaas::AllowEntry;
pub use crate::net_class::resolve;
use crate::net_class::{canonical, public};

/// Longest `X-Callback-Url` accepted.
pub const MAX_URL_LEN: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    #[error("X-Callback-Url is longer than {MAX_URL_LEN} bytes")]
    TooLong,
    #[error("X-Callback-Url is not an http:// or https:// URL with a host")]
    Malformed,
    #[error("X-Callback-Url's host does not resolve")]
    Unresolved,
    #[error("X-Callback-Url points at a loopback, private or link-local address; list it in [async] callback_allow to allow it")]
    Forbidden,
}

#[derive(Debug, Clone, Default)]
pub struct Guard {
    nets: Vec<IpNet>,
    hosts: Vec<String>,
}

impl Guard {
    pub fn new(allow: &[AllowEntry]) -> Guard {
        let mut g = Guard::default();
        for e in allow {
            match e {
                AllowEntry::Net(n) => g.nets.push(*n),
                AllowEntry::Host(h) => g.hosts.push(h.clone()),
            }
        }
        g
    }

    /// The host is listed by name: any address it resolves to is allowed.
    pub fn host_listed(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    pub fn address_allowed(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        public(ip) || self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The enqueue-time check: shape, then every resolved address.
    pub async fn check(&self, raw: &[u8]) -> Result<reqwest::Url, UrlRefusal> {
        if raw.len() > MAX_URL_LEN {
            return Err(UrlRefusal::TooLong);
        }
        let text = std::str::from_utf8(raw).map_err(|_| UrlRefusal::Malformed)?;
        let url = reqwest::Url::parse(text).map_err(|_| UrlRefusal::Malformed)?;
        if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() {
            return Err(UrlRefusal::Malformed);
        }
        let addrs = match url.host() {
            None => return Err(UrlRefusal::Malformed),
            Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            Some(url::Host::Domain(name)) => {
                if self.host_listed(name) {
                    return Ok(url);
                }
                resolve(name).await.map_err(|()| UrlRefusal::Unresolved)?
            }
        };
        if addrs.iter().all(|ip| self.address_allowed(*ip)) {
            Ok(url)
        } else {
            Err(UrlRefusal::Forbidden)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_ranges_refused_public_allowed() {
        let g = Guard::default();
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!g.address_allowed(ip(refused)), "{refused}");
        }
        for allowed in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(g.address_allowed(ip(allowed)), "{allowed}");
        }
    }

    #[test]
    fn allow_list_opens_ranges_and_hosts() {
        let g = Guard::new(&[
            AllowEntry::Net("127.0.0.0/8".parse().unwrap()),
            AllowEntry::Host("hooks.internal".into()),
        ]);
        assert!(g.address_allowed(ip("127.0.0.1")));
        assert!(!g.address_allowed(ip("10.0.0.1")));
        assert!(g.host_listed("HOOKS.internal"));
    }

    #[tokio::test]
    async fn enqueue_check() {
        let g = Guard::default();
        let refused = |s: &str| s.as_bytes().to_vec();
        assert_eq!(
            g.check(&refused("http://127.0.0.1:9/cb")).await,
            Err(UrlRefusal::Forbidden)
        );
        assert_eq!(
            g.check(&refused("http://localhost:9/cb")).await,
            Err(UrlRefusal::Forbidden)
        );
        assert_eq!(
            g.check(&refused("http://[::ffff:169.254.169.254]/")).await,
            Err(UrlRefusal::Forbidden)
        );
        assert_eq!(
            g.check(&refused("ftp://8.8.8.8/")).await,
            Err(UrlRefusal::Malformed)
        );
        assert_eq!(
            g.check(&refused("http://u:p@8.8.8.8/")).await,
            Err(UrlRefusal::Malformed)
        );
        let long = format!("http://8.8.8.8/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(g.check(long.as_bytes()).await, Err(UrlRefusal::TooLong));
        assert!(g.check(b"http://8.8.8.8/cb").await.is_ok());
    }
}
