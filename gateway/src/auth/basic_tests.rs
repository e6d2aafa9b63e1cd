//! Basic policy tests: good, cached, wrong password, unknown user, missing and malformed
//! headers, realm challenge, config errors that never echo the secret value.

use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::auth::test_support::{env, headers, req};

fn policy(realm: Option<&str>) -> BasicPolicy {
    let users = format!(
        "# demo users\nalice:{}\nbob:{}\n",
        hash_key::basic_hash(b"wonderland", hash_key::MIN_ITERATIONS),
        hash_key::basic_hash(b"builder", hash_key::MIN_ITERATIONS)
    );
    let cfg = BasicConfig {
        users: "USERS".into(),
        realm: realm.map(str::to_owned),
    };
    compile(&cfg, &env(&[("USERS", &users)])).unwrap()
}

fn basic(user_pw: &str) -> String {
    format!("Basic {}", STANDARD.encode(user_pw))
}

/// A fresh client address per call: the PBKDF2 budget is per address and process-wide,
/// and these tests are not about it (`budget_*` below are).
fn fresh_peer() -> std::net::IpAddr {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::net::IpAddr::from((0xc612_0000u32 | n).to_be_bytes())
}

/// One verification; a `busy` refusal (the PBKDF2 slots are process-wide and other tests
/// run in parallel) is retried until a deadline, as a client would, each time from a new
/// address so the retries do not spend one address's budget.
fn check(p: &BasicPolicy, auth: Option<&str>) -> Result<Identity, AuthFailure> {
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match check_from(p, auth, fresh_peer()) {
            Err(f) if f.reason == "busy" && Instant::now() < deadline => std::thread::yield_now(),
            other => return other,
        }
    }
}

/// One attempt from `peer`.
fn check_from(
    p: &BasicPolicy,
    auth: Option<&str>,
    peer: std::net::IpAddr,
) -> Result<Identity, AuthFailure> {
    let h = headers(&auth.map(|a| vec![("authorization", a)]).unwrap_or_default());
    let mut r = req(&h, b"", 0);
    r.peer = peer;
    p.verify(&r)
}

#[test]
fn good_then_cached() {
    let p = policy(Some("staff"));
    let id = check(&p, Some(&basic("alice:wonderland"))).unwrap();
    assert_eq!((id.kind, id.subject.as_deref()), ("basic", Some("alice")));
    assert_eq!(p.cache.len(), 1);
    assert_eq!(
        check(&p, Some(&basic("alice:wonderland")))
            .unwrap()
            .subject
            .as_deref(),
        Some("alice")
    );
    assert_eq!(
        check(&p, Some(&basic("bob:builder")))
            .unwrap()
            .subject
            .as_deref(),
        Some("bob")
    );
    // Unpadded base64 is accepted too.
    let unpadded = format!(
        "Basic {}",
        STANDARD.encode("bob:builder").trim_end_matches('=')
    );
    assert!(check(&p, Some(&unpadded)).is_ok());
}

#[test]
fn failures_carry_the_realm() {
    let p = policy(Some("staff"));
    let cases = [
        (None, "missing"),
        (Some("Bearer abc".to_owned()), "wrong_scheme"),
        (Some("Basic !!!".to_owned()), "malformed"),
        (Some(basic("no-colon")), "malformed"),
        (Some(basic("alice:wrong")), "bad_password"),
        (Some(basic("mallory:wonderland")), "unknown_user"),
        (Some(basic("alice:wonderland ")), "bad_password"),
    ];
    for (auth, reason) in cases {
        let f = check(&p, auth.as_deref()).unwrap_err();
        assert_eq!(f.reason, reason, "{auth:?}");
        assert_eq!(
            f.challenge.unwrap(),
            r#"Basic realm="staff", charset="UTF-8""#
        );
    }
    assert!(p.cache.is_empty(), "failures are never cached");
    assert_eq!(p.openapi_scheme()["scheme"], "basic");
}

#[test]
fn config_errors_name_line_not_value() {
    let value = "alice:plaintext-password\nbob:pbkdf2-sha256$10$x$y\n";
    let cfg = BasicConfig {
        users: "USERS".into(),
        realm: Some("bad\"realm".into()),
    };
    let errs = compile(&cfg, &env(&[("USERS", value)])).unwrap_err();
    let text = format!("{errs:?}");
    assert_eq!(errs.len(), 3, "{text}");
    assert!(errs.iter().any(|e| e.field == "realm"));
    assert!(text.contains("line 1") && text.contains("line 2"), "{text}");
    assert!(!text.contains("plaintext-password"), "{text}");
    let missing = BasicConfig {
        users: "NOPE".into(),
        realm: None,
    };
    assert_eq!(compile(&missing, &env(&[])).unwrap_err()[0].field, "users");
}

#[test]
fn credentials_longer_than_the_limit_are_malformed() {
    let p = policy(None);
    // Every padding length at the boundary: exactly the limit is judged on its merits.
    for pad in 0..3 {
        let at_limit = format!("mallory:{}", "x".repeat(MAX_CREDENTIALS - 8 - pad));
        let over = format!("{at_limit}{}", "y".repeat(pad + 1));
        assert_ne!(
            check(&p, Some(&basic(&at_limit))).unwrap_err().reason,
            "malformed"
        );
        assert_eq!(
            check(&p, Some(&basic(&over))).unwrap_err().reason,
            "malformed"
        );
    }
}

/// Spends `peer`'s whole PBKDF2 budget, as a flood from it would.
fn exhaust(peer: std::net::IpAddr) {
    while crate::limits::pbkdf2_budget::admit(peer) {}
}

#[test]
fn an_address_without_budget_is_throttled_and_others_are_not() {
    let p = policy(None);
    let flood = fresh_peer();
    exhaust(flood);
    for creds in ["alice:wrong", "mallory:x", "alice:wonderland"] {
        let f = check_from(&p, Some(&basic(creds)), flood).unwrap_err();
        assert_eq!(f.reason, THROTTLED, "{creds}");
        assert!(f.challenge.is_some());
    }
    // Another address still gets its derivation.
    let other = check(&p, Some(&basic("alice:wonderland")));
    assert_eq!(other.unwrap().subject.as_deref(), Some("alice"));
}

#[test]
fn budget_never_applies_to_cached_good_credentials() {
    let p = policy(None);
    let peer = fresh_peer();
    assert!(check(&p, Some(&basic("bob:builder"))).is_ok());
    exhaust(peer);
    assert_eq!(
        check_from(&p, Some(&basic("bob:wrong")), peer)
            .unwrap_err()
            .reason,
        THROTTLED
    );
    for _ in 0..50 {
        let id = check_from(&p, Some(&basic("bob:builder")), peer).unwrap();
        assert_eq!(id.subject.as_deref(), Some("bob"));
    }
}
