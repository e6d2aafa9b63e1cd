//! Two edgefn nodes sharing one real `redis-server` (started by the test, on loopback):
//! a client hammering both gets a function's limit once, a Stripe and a Standard Webhooks
//! delivery accepted by node A is `replayed` on node B, and with Redis stopped both nodes
//! keep serving on their share of the limit (replay-guarded functions answer 503), logged
//! once; when Redis returns, shared limits are back.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use support::redis::Redis;
use support::{
    client, concurrent, free_port, secret, tempdir, wait_until, write_tree, write_tree_owned,
    Gateway,
};

const HANDLER: &str = "def handler(event):\n    return {\"status\": 200, \"body\": \"ok\"}\n";
const STRIPE_SECRET: &str = "whsec_cluster-e2e";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const LONG: Duration = Duration::from_secs(60);

/// Rate-limited functions (burst N, practically no refill), two replay-guarded webhooks.
fn write_functions(root: &Path) {
    let mut files: Vec<(String, String)> = Vec::new();
    for (name, burst) in [("both", 10), ("solo", 6), ("outage", 6), ("restored", 6)] {
        files.push((
            format!("{name}/fn.config.json"),
            json!({"rate_limit": {"per_second": 0.001, "burst": burst}}).to_string(),
        ));
    }
    files.push((
        "stripe/fn.config.json".into(),
        json!({"methods": ["POST"], "auth": {"type": "hmac", "scheme": "stripe", "secret": "S"}})
            .to_string(),
    ));
    files.push((
        "stripe/fn.env.json".into(),
        json!({"S": secret(STRIPE_SECRET)}).to_string(),
    ));
    files.push((
        "standard/fn.config.json".into(),
        json!({"methods": ["POST"], "auth": {"type": "hmac", "scheme": "standard", "secret": "S"}})
            .to_string(),
    ));
    files.push((
        "standard/fn.env.json".into(),
        json!({"S": secret(WHSEC)}).to_string(),
    ));
    files.push(("open/fn.config.json".into(), "{}".into()));
    for name in [
        "both", "solo", "outage", "restored", "stripe", "standard", "open",
    ] {
        files.push((format!("{name}/handler.py"), HANDLER.into()));
    }
    write_tree_owned(root, &files);
}

/// A fresh folder with the functions and an `edgefn.toml` of one `[cluster]` table; every
/// node started on it shares that store.
struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    /// `settings`: the table's lines.
    fn new(settings: &str) -> Cluster {
        let dir = tempdir();
        write_functions(&dir.path().join("functions"));
        let config = format!("[cluster]\n{settings}");
        write_tree(dir.path(), &[("edgefn.toml", &config)]);
        Cluster { dir }
    }

    fn start(&self) -> Gateway {
        let root = self.dir.path();
        Gateway::start_with_config(&root.join("edgefn.toml"), &root.join("functions"))
    }

    /// A node that reached the store.
    fn node(&self) -> Gateway {
        let gw = self.start();
        assert!(
            wait_until(LONG, || gw.metric("edgefn_cluster_store_fallback")
                == Some(0.0)),
            "node never reached the store: {}",
            gw.logs()
        );
        gw
    }
}

/// Requests to `path` on `gw`, `n` times; how many were admitted (200). Anything but
/// 200 or 429 fails the test.
fn hammer(gw: &Gateway, path: &str, n: usize) -> usize {
    let c = client();
    (0..n)
        .filter(|_| {
            let status = c.get(gw.url(path)).send().unwrap().status().as_u16();
            assert!(status == 200 || status == 429, "{path}: {status}");
            status == 200
        })
        .count()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Stripe and Standard Webhooks headers from the publishers' libraries (tests/webhooks).
fn signed(body: &str, id: &str) -> (Value, Value) {
    let jobs = json!([
        {"op": "stripe", "secret": STRIPE_SECRET, "body": body, "timestamp": now()},
        {"op": "standard", "secret": WHSEC, "body": body, "timestamp": now(), "id": id},
    ]);
    let v = support::signers::run("python3", "sign.py", &jobs);
    (v[0].clone(), v[1].clone())
}

fn post(gw: &Gateway, path: &str, headers: &Value, body: &str) -> u16 {
    let mut rb = client().post(gw.url(path)).body(body.to_owned());
    for (k, v) in headers.as_object().unwrap() {
        rb = rb.header(k, v.as_str().unwrap());
    }
    rb.send().unwrap().status().as_u16()
}

fn replayed(gw: &Gateway, function: &str) -> Option<f64> {
    gw.metric(&format!(
        "edgefn_auth_failures_total{{function=\"{function}\",type=\"hmac\",reason=\"replayed\"}}"
    ))
}

#[test]
fn two_nodes_share_limits_and_replay_guards_and_survive_an_outage() {
    let mut redis = Redis::start();
    let cluster = Cluster::new(&format!(
        "store = \"{}\"\nnodes_hint = 2\ntimeout_ms = 5000\n",
        redis.url()
    ));
    let (a, b) = (cluster.node(), cluster.node());

    // A function with neither a limit nor a replay guard never calls the store.
    let calls = |gw: &Gateway| {
        ["rate_limit", "replay"].map(|op| {
            gw.metric(&format!(
                "edgefn_cluster_store_round_trip_seconds_count{{op=\"{op}\"}}"
            ))
            .unwrap_or(0.0)
        })
    };
    let before = calls(&a);
    assert_eq!(hammer(&a, "/open", 5), 5);
    assert_eq!(calls(&a), before, "no round trip for an unlimited function");

    // Hammering both nodes at once: the burst of 10 is granted once, not once per node.
    let admitted: usize = concurrent(2, |i| hammer(if i == 0 { &a } else { &b }, "/both", 20))
        .into_iter()
        .sum();
    assert_eq!(admitted, 10);
    // Spent on A, the bucket is empty on B too.
    assert_eq!(hammer(&a, "/solo", 10), 6);
    assert_eq!(hammer(&b, "/solo", 5), 0);

    // A delivery accepted by A is a replay on B, for both schemes.
    let body = r#"{"id":"evt_cluster"}"#;
    let (stripe, standard) = signed(body, "msg_cluster_1");
    assert_eq!(post(&a, "/stripe", &stripe, body), 200);
    assert_eq!(post(&b, "/stripe", &stripe, body), 401);
    assert_eq!(post(&a, "/standard", &standard, body), 200);
    assert_eq!(post(&b, "/standard", &standard, body), 401);
    assert_eq!(replayed(&b, "stripe"), Some(1.0));
    assert_eq!(replayed(&b, "standard"), Some(1.0));

    // Redis stops: each node falls back to its share (6 / 2 = 3) and keeps serving.
    redis.stop();
    assert_eq!(hammer(&a, "/outage", 8), 3, "{}", a.logs());
    assert_eq!(hammer(&b, "/outage", 8), 3, "{}", b.logs());
    let (stripe, standard) = signed(body, "msg_cluster_2");
    assert_eq!(post(&a, "/stripe", &stripe, body), 503);
    assert_eq!(post(&b, "/standard", &standard, body), 503);
    for gw in [&a, &b] {
        assert_eq!(gw.metric("edgefn_cluster_store_fallback"), Some(1.0));
        assert_eq!(
            gw.logs().matches("cluster store unreachable: ").count(),
            1,
            "logged once"
        );
    }

    // Redis returns: the probe restores shared limits (A alone gets the whole burst).
    let _redis = Redis::start_on(redis.port);
    for gw in [&a, &b] {
        assert!(
            wait_until(LONG, || gw.metric("edgefn_cluster_store_fallback")
                == Some(0.0)),
            "{}",
            gw.logs()
        );
        assert!(gw.wait_log("cluster store reachable", Duration::from_secs(10)));
    }
    assert_eq!(hammer(&a, "/restored", 10), 6);
    assert_eq!(hammer(&b, "/restored", 4), 0);
    // And the replay guard is shared again: the delivery refused with 503 now gets in once.
    assert_eq!(post(&a, "/stripe", &stripe, body), 200);
    assert_eq!(post(&b, "/stripe", &stripe, body), 401);
}

/// A store that never answers: the node serves from the start on its share of the limits,
/// says so once, and with `replay_fail_open` its own replay guard decides.
#[test]
fn unreachable_store_at_start_with_replay_fail_open() {
    // A port nothing listens on (bound, read, released).
    let port = free_port();
    let gw = Cluster::new(&format!(
        "store = \"redis://127.0.0.1:{port}/0\"\nnodes_hint = 2\nreplay_fail_open = true\n"
    ))
    .start();
    assert!(
        gw.wait_log("cluster store unreachable at start", LONG),
        "{}",
        gw.logs()
    );
    assert_eq!(gw.metric("edgefn_cluster_store_fallback"), Some(1.0));
    assert_eq!(hammer(&gw, "/solo", 8), 3, "burst 6 / nodes_hint 2");
    let body = r#"{"id":"evt_open"}"#;
    let (stripe, standard) = signed(body, "msg_open_1");
    assert_eq!(post(&gw, "/stripe", &stripe, body), 200);
    assert_eq!(post(&gw, "/stripe", &stripe, body), 401);
    assert_eq!(post(&gw, "/standard", &standard, body), 200);
    assert_eq!(post(&gw, "/standard", &standard, body), 401);
    assert_eq!(replayed(&gw, "stripe"), Some(1.0));
    assert_eq!(
        gw.logs().matches("cluster store unreachable").count(),
        1,
        "logged once"
    );
}

/// `lease_tokens`: a round trip takes several tokens and the node spends them locally.
/// Never more than the shared bucket granted, at most nodes × (lease − 1) fewer; fewer
/// round trips than requests.
#[test]
fn a_token_lease_saves_round_trips_within_its_bound() {
    let redis = Redis::start();
    let cluster = Cluster::new(&format!(
        "store = \"{}\"\nnodes_hint = 2\ntimeout_ms = 5000\nlease_tokens = 4\nlease_ms = 10000\n",
        redis.url()
    ));
    let (a, b) = (cluster.node(), cluster.node());
    let trips = |gw: &Gateway| {
        gw.metric("edgefn_cluster_store_round_trip_seconds_count{op=\"rate_limit\"}")
            .unwrap_or(0.0)
    };
    // One client on A, burst 6: trips grant 4 (1 + 3 leased), then 2 (1 + 1), then none,
    // and that refusal is repeated locally while the bucket stays empty.
    assert_eq!(hammer(&a, "/solo", 10), 6);
    assert_eq!(
        trips(&a),
        3.0,
        "10 requests: 4 from the lease, 3 refused without asking"
    );
    assert_eq!(hammer(&b, "/solo", 3), 0, "the bucket is shared");
    // Both nodes at once: never above the burst, at most 2 × 3 leased tokens stranded.
    let admitted: usize = concurrent(2, |i| hammer(if i == 0 { &a } else { &b }, "/both", 20))
        .into_iter()
        .sum();
    assert!((4..=10).contains(&admitted), "{admitted}");
}

/// Many concurrent clients on one node, per-request mode: their calls are combined into
/// batches (fewer round trips than requests), and the shared bucket still grants its burst
/// exactly once; the refusal is then repeated without a round trip.
#[test]
fn concurrent_requests_share_round_trips_and_hold_the_limit() {
    let redis = Redis::start();
    let cluster = Cluster::new(&format!("store = \"{}\"\ntimeout_ms = 5000\n", redis.url()));
    let a = cluster.node();
    let trips = || {
        a.metric("edgefn_cluster_store_round_trip_seconds_count{op=\"rate_limit\"}")
            .unwrap_or(0.0)
    };
    let admitted: usize = concurrent(16, |_| hammer(&a, "/both", 4)).into_iter().sum();
    assert_eq!(admitted, 10, "burst 10, 64 requests from 16 clients");
    let after = trips();
    assert!(after < 64.0, "{after} round trips for 64 requests");
    assert_eq!(hammer(&a, "/both", 5), 0);
    // At most one more ask: a refusal is repeated for up to a second before asking again.
    assert!(trips() <= after + 1.0, "a refusal in force asks nothing");
}
