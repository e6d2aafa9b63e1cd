//! Limiter tests: config validation naming fields, per-IP and per-key buckets, Retry-After,
//! IPv6 /64 grouping, bounded memory.

use super::*;

fn limiter(json: &str) -> RateLimiter {
    RateLimiter::compile(&serde_json::from_str(json).unwrap()).unwrap()
}

const S: u64 = 1_000_000_000;

#[test]
fn validation_names_fields() {
    for (json, field) in [
        (r#"{"per_second": 0}"#, "per_second"),
        (r#"{"per_second": -1}"#, "per_second"),
        (r#"{"per_second": 1e9}"#, "per_second"),
        (r#"{"per_second": 1, "burst": 0}"#, "burst"),
        (r#"{"per_second": 1, "burst": 1000000}"#, "burst"),
    ] {
        let e = RateLimiter::compile(&serde_json::from_str(json).unwrap()).unwrap_err();
        assert!(e.starts_with(field), "{json}: {e}");
    }
    // Any valid per_second works without a burst: its default stays within the burst limit.
    assert!(
        RateLimiter::compile(&serde_json::from_str(r#"{"per_second": 1000000}"#).unwrap()).is_ok()
    );
    assert!(serde_json::from_str::<RateLimitConfig>(r#"{"per_second": 1, "by": "user"}"#).is_err());
    assert!(serde_json::from_str::<RateLimitConfig>(r#"{"rate": 1}"#).is_err());
}

#[test]
fn per_ip_with_retry_after() {
    let l = limiter(r#"{"per_second": 1, "burst": 2}"#);
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let b: IpAddr = "192.0.2.2".parse().unwrap();
    let t = 5 * S;
    assert!(l.check_at(a, None, t).is_ok());
    assert!(l.check_at(a, Some("ignored"), t).is_ok());
    assert_eq!(l.check_at(a, None, t), Err(Duration::from_secs(1)));
    assert!(
        l.check_at(b, None, t).is_ok(),
        "another client has its own bucket"
    );
    assert!(l.check_at(a, None, t + S).is_ok());
}

#[test]
fn per_key_falls_back_to_ip() {
    let l = limiter(r#"{"per_second": 1, "burst": 1, "by": "key"}"#);
    assert_eq!(l.by(), RateLimitBy::Key);
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    let t = 5 * S;
    assert!(l.check_at(ip, Some("alice"), t).is_ok());
    assert!(l.check_at(ip, Some("alice"), t).is_err());
    assert!(l.check_at(ip, Some("bob"), t).is_ok(), "same IP, other key");
    assert!(l.check_at(ip, None, t).is_ok());
    assert!(l.check_at(ip, None, t).is_err());
}

#[test]
fn ipv6_grouped_by_64() {
    let l = limiter(r#"{"per_second": 1, "burst": 1}"#);
    let t = 5 * S;
    assert!(l
        .check_at("2001:db8:1:2::1".parse().unwrap(), None, t)
        .is_ok());
    assert!(l
        .check_at("2001:db8:1:2::ffff".parse().unwrap(), None, t)
        .is_err());
    assert!(l
        .check_at("2001:db8:1:3::1".parse().unwrap(), None, t)
        .is_ok());
}

#[test]
fn memory_is_bounded() {
    let l = limiter(r#"{"per_second": 1000, "burst": 1}"#);
    let t = 5 * S;
    for i in 0..MAX_ENTRIES as u32 {
        assert!(l.check_at(IpAddr::from(i.to_be_bytes()), None, t).is_ok());
    }
    assert_eq!(l.len(), MAX_ENTRIES);
    // Table full of live buckets: a newcomer uses the shared overflow bucket.
    let newcomer = IpAddr::from([10, 255, 255, 1]);
    let other = IpAddr::from([10, 255, 255, 2]);
    assert!(l.check_at(newcomer, None, t).is_ok());
    assert!(
        l.check_at(other, None, t).is_err(),
        "overflow bucket shared"
    );
    assert_eq!(l.len(), MAX_ENTRIES);
    // Once the buckets are idle, the sweep frees them and newcomers get their own.
    assert!(l.check_at(newcomer, None, t + S).is_ok());
    assert!(l.len() <= 1, "idle buckets swept: {}", l.len());
}

#[test]
fn node_share_divides_rate_and_burst_rounding_up() {
    let l = limiter(r#"{"per_second": 10, "burst": 5}"#);
    assert!(
        std::ptr::eq(l.node_share(1), &l),
        "one node: the limit itself"
    );
    let share = l.node_share(2);
    let ip = IpAddr::from([192, 0, 2, 9]);
    let t = 5 * S;
    // Burst ceil(5 / 2) = 3, then one request per 2 / 10 s.
    for _ in 0..3 {
        assert!(share.check_at(ip, None, t).is_ok());
    }
    assert_eq!(share.check_at(ip, None, t), Err(Duration::from_millis(200)));
    assert!(std::ptr::eq(share, l.node_share(2)), "built once");
    assert_eq!(l.gcra_us(), (100_000, 400_000));
}

#[test]
fn client_keys_are_bounded_and_hide_subjects() {
    let by_key = limiter(r#"{"per_second": 1, "by": "key"}"#);
    let ip = IpAddr::from([192, 0, 2, 9]);
    let k = by_key.client_key(ip, Some("alice@example.com"));
    assert!(
        k.starts_with("k:") && k.len() == 34 && !k.contains("alice"),
        "{k}"
    );
    assert_eq!(by_key.client_key(ip, None), "ip:192.0.2.9");
    let by_ip = limiter(r#"{"per_second": 1}"#);
    assert_eq!(
        by_ip.client_key("2001:db8:1:2::9".parse().unwrap(), Some("alice")),
        "ip:2001:db8:1:2::"
    );
}
