//! Basic auth under a wrong-password flood, against the real binary: the flood comes from
//! 127.0.0.2 and a client with the right password from 127.0.0.3 (each socket bound to its
//! source address). The flood spends its own PBKDF2 budget and gets 429 + `Retry-After`;
//! the polite client keeps getting 200. Bounded in count and time.

mod support;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

const FLOOD_THREADS: usize = 4;
const FLOOD_MAX_PER_THREAD: usize = 5_000;
const GOOD_REQUESTS: usize = 100;

fn client_from(source: &str) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[test]
fn a_wrong_password_flood_from_one_address_does_not_lock_out_another() {
    let hash =
        gateway::auth::hash_key::basic_hash(b"right", gateway::auth::hash_key::MIN_ITERATIONS);
    let users = json!({"USERS": {"value": format!("ops:{hash}\n"), "is_secret": true}});
    let (_dir, gw) = serve_tree(&[
        (
            "staff/handler.py",
            "def handler(event):\n    return {'status': 200, 'body': 'in'}\n",
        ),
        (
            "staff/fn.config.json",
            r#"{"auth": {"type": "basic", "users": "USERS"}}"#,
        ),
        ("staff/fn.env.json", &users.to_string()),
    ]);
    let url = gw.url("/staff");
    let stop = AtomicBool::new(false);
    let sent = AtomicUsize::new(0);
    let throttled = AtomicUsize::new(0);
    let t0 = Instant::now();
    let (good, flood_elapsed) = std::thread::scope(|s| {
        for _ in 0..FLOOD_THREADS {
            s.spawn(|| {
                let c = client_from("127.0.0.2");
                let deadline = Instant::now() + Duration::from_secs(120);
                for _ in 0..FLOOD_MAX_PER_THREAD {
                    if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                        return;
                    }
                    let Ok(r) = c.get(&url).basic_auth("ops", Some("wrong")).send() else {
                        continue;
                    };
                    sent.fetch_add(1, Ordering::Relaxed);
                    if r.status() == 429 {
                        assert!(
                            r.headers().contains_key("retry-after"),
                            "429 without Retry-After"
                        );
                        throttled.fetch_add(1, Ordering::Relaxed);
                    } else {
                        assert_eq!(r.status(), 401);
                    }
                }
            });
        }
        // The flood is under way (its budget spent) before the polite client starts.
        assert!(
            wait_until(Duration::from_secs(60), || throttled
                .load(Ordering::Relaxed)
                >= 50),
            "the flood was never throttled ({} sent)",
            sent.load(Ordering::Relaxed)
        );
        let c = client_from("127.0.0.3");
        let mut answers = Vec::new();
        for _ in 0..GOOD_REQUESTS {
            let r = c.get(&url).basic_auth("ops", Some("right")).send();
            answers.push(r.map_or_else(|e| e.to_string(), |r| r.status().to_string()));
        }
        let good = answers.iter().filter(|a| a.starts_with("200")).count();
        if good < GOOD_REQUESTS {
            eprintln!("polite answers: {answers:?}");
        }
        stop.store(true, Ordering::Relaxed);
        (good, t0.elapsed())
    });
    let sent = sent.load(Ordering::Relaxed);
    let throttled = throttled.load(Ordering::Relaxed);
    let m = gw.metrics();
    let derived = metric_in(
        &m,
        "edgefn_auth_failures_total{function=\"staff\",type=\"basic\",reason=\"bad_password\"}",
    )
    .unwrap_or(0.0);
    eprintln!(
        "flood: {sent} requests in {flood_elapsed:?}, {throttled} throttled, {derived} derived; polite: {good}/{GOOD_REQUESTS} answered 200"
    );
    assert!(
        good * 100 >= GOOD_REQUESTS * 95,
        "only {good}/{GOOD_REQUESTS} correct-password requests answered 200 during the flood"
    );
    // The flood's derivations stay within its budget: burst + rate x time (+1 s slack).
    let budget = 5.0 + 2.0 * (flood_elapsed.as_secs_f64() + 1.0);
    assert!(
        derived <= budget,
        "{derived} derivations for the flood (budget {budget})"
    );
    let limited = metric_in(
        &m,
        "edgefn_rate_limited_total{function=\"staff\",layer=\"pbkdf2\"}",
    );
    assert_eq!(limited, Some(throttled as f64), "{m}");
}
