//! Which addresses an outbound request of the gateway may reach on its own: loopback,
//! private, link-local (the cloud metadata address), unique-local, CGNAT, multicast,
//! reserved and unspecified addresses are not public. Shared by the async callbacks'
//! SSRF guard and the FastFN `edge` proxy, which both check the address actually
//! connected to (through their clients' resolvers), not only the name in the URL.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Every address of `name` (port irrelevant), with a deadline.
pub async fn resolve(name: &str) -> Result<Vec<IpAddr>, ()> {
    let lookup = tokio::net::lookup_host((name, 0));
    match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(addrs)) => {
            let v: Vec<IpAddr> = addrs.map(|a: SocketAddr| a.ip()).collect();
            if v.is_empty() {
                Err(())
            } else {
                Ok(v)
            }
        }
        _ => Err(()),
    }
}

/// `::ffff:10.0.0.1` is `10.0.0.1`.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

pub fn public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || o[0] >= 240)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || (s[0] == 0x64 && s[1] == 0xff9b))
}

/// A public address (IPv4-mapped IPv6 read as the IPv4 address it maps).
pub fn is_public(ip: IpAddr) -> bool {
    public(canonical(ip))
}
