//! No loss: 500 async calls to a slow function, `kill -9` of a gateway while they run,
//! and every call still runs at least once and every callback arrives — with the
//! embedded store (the gateway restarted on the same data_dir) and with a real
//! `redis-server` shared by two nodes (one killed, the other claims its calls). Also the
//! Redis failure modes: unreachable at start, an outage later (503, then it resumes).

mod openfaas_support;
mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use openfaas_support::{marks, CallbackServer, ECHO_PY};
use support::redis::Redis;
use support::{client, concurrent, free_port, path_str, tempdir, wait_until, write_tree, Gateway};

const CALLS: usize = 500;

fn slow_tree(root: &Path, mark: &Path) {
    let env = format!(r#"{{"MARK": "{}", "SLEEP_MS": "40"}}"#, path_str(mark));
    write_tree(
        root,
        &[
            ("slow/handler.py", ECHO_PY),
            ("slow/fn.env.json", &env),
            (
                "slow/fn.config.json",
                r#"{"methods": ["POST"], "workers": {"min": 1, "max": 4}}"#,
            ),
        ],
    );
}

fn write_config(dir: &Path, store: &str) -> PathBuf {
    let p = dir.join("edgefn.toml");
    let text = format!(
        "[async]\nstore = \"{store}\"\ndata_dir = \"{}\"\nvisibility_timeout_ms = 3000\ncallback_allow = [\"127.0.0.1/32\"]\n",
        path_str(&dir.join("queue"))
    );
    std::fs::write(&p, text).unwrap();
    p
}

/// [`slow_tree`] and [`write_config`] for `store` in a fresh folder, and how to start a
/// node on them.
struct Slow {
    _dir: tempfile::TempDir,
    fns: PathBuf,
    mark: PathBuf,
    config: PathBuf,
}

impl Slow {
    fn new(store: &str) -> Slow {
        let dir = tempdir();
        let fns = dir.path().join("fns");
        let mark = dir.path().join("mark");
        slow_tree(&fns, &mark);
        let config = write_config(dir.path(), store);
        Slow {
            _dir: dir,
            fns,
            mark,
            config,
        }
    }

    fn start(&self) -> Gateway {
        Gateway::start_with_config(&self.config, &self.fns)
    }
}

/// Sends `CALLS` async calls over 10 threads through `gws[i % len]`; returns their ids.
fn enqueue_all(gws: &[&Gateway], callback: &str) -> Vec<String> {
    let per = CALLS / 10;
    let ids = concurrent(10, |t| {
        let c = client();
        (0..per)
            .map(|i| {
                let gw = gws[(t * per + i) % gws.len()];
                let r = c
                    .post(gw.url("/async-function/slow"))
                    .header("x-callback-url", callback)
                    .body(format!("call {t}-{i}"))
                    .send()
                    .unwrap();
                assert_eq!(r.status(), 202, "{}", r.text().unwrap_or_default());
                r.headers()["x-call-id"].to_str().unwrap().to_owned()
            })
            .collect::<Vec<_>>()
    });
    let ids: Vec<String> = ids.into_iter().flatten().collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), CALLS);
    ids
}

fn called_back(cb: &CallbackServer) -> HashSet<String> {
    cb.received()
        .iter()
        .map(|r| r.headers["x-call-id"].clone())
        .collect()
}

/// Waits until every id ran (the MARK file) and was called back.
fn assert_all_delivered(
    ids: &[String],
    mark: &Path,
    cb: &CallbackServer,
    logs: &dyn Fn() -> String,
) {
    let want: HashSet<String> = ids.iter().cloned().collect();
    let done = wait_until(Duration::from_secs(240), || {
        called_back(cb).is_superset(&want)
    });
    let ran: HashSet<String> = marks(mark).into_iter().collect();
    let missing_cb: Vec<_> = want.difference(&called_back(cb)).take(5).cloned().collect();
    let missing_run: Vec<_> = want.difference(&ran).take(5).cloned().collect();
    assert!(
        done && missing_run.is_empty(),
        "not delivered: callbacks missing {missing_cb:?}, runs missing {missing_run:?}\n{}",
        logs()
    );
    for r in cb.received() {
        assert_eq!(r.headers["x-function-status"], "200");
    }
}

#[test]
fn embedded_store_loses_nothing_across_kill_9() {
    let slow = Slow::new("embedded");
    let cb = CallbackServer::start(200);
    let mut gw = slow.start();
    let ids = enqueue_all(&[&gw], &cb.url("/cb"));
    assert!(
        wait_until(Duration::from_secs(120), || cb.count() >= 20),
        "{}",
        gw.logs()
    );
    gw.signal("KILL");
    assert!(gw.wait_exit(Duration::from_secs(10)).is_some());
    let at_kill = called_back(&cb).len();
    assert!(
        at_kill < CALLS,
        "the kill came after everything ran; slow the fixture down"
    );
    let gw = slow.start();
    assert_all_delivered(&ids, &slow.mark, &cb, &|| gw.logs());
}

#[test]
fn redis_store_two_nodes_lose_nothing_when_one_is_killed() {
    let redis = Redis::start();
    let slow = Slow::new(&redis.url());
    let cb = CallbackServer::start(200);
    let mut a = slow.start();
    let b = slow.start();
    let ids = enqueue_all(&[&a, &b], &cb.url("/cb"));
    assert!(
        wait_until(Duration::from_secs(120), || cb.count() >= 20),
        "{}",
        a.logs()
    );
    a.signal("KILL");
    assert!(a.wait_exit(Duration::from_secs(10)).is_some());
    assert!(
        called_back(&cb).len() < CALLS,
        "the kill came after everything ran"
    );
    assert_all_delivered(&ids, &slow.mark, &cb, &|| b.logs());
}

#[test]
fn redis_unreachable_at_start_is_an_error_and_an_outage_later_is_a_503() {
    let port = free_port();
    let slow = Slow::new(&format!("redis://127.0.0.1:{port}/0"));
    let extra = [
        "--config",
        &path_str(&slow.config),
        "--functions",
        &path_str(&slow.fns),
    ];
    let err = match Gateway::try_start(&extra, &[]) {
        Ok(_) => panic!("started without its Redis"),
        Err(e) => e,
    };
    assert!(err.contains("async.store"), "{err}");

    let mut redis = Redis::start_on(port);
    let gw = slow.start();
    let cb = CallbackServer::start(200);
    let c = client();
    let post = || {
        c.post(gw.url("/async-function/slow"))
            .header("x-callback-url", cb.url("/cb"))
            .send()
            .unwrap()
    };
    assert_eq!(post().status(), 202);
    assert!(wait_until(Duration::from_secs(60), || cb.count() == 1));
    redis.stop();
    let r = post();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let _redis = Redis::start_on(port);
    let mut accepted = None;
    assert!(
        wait_until(Duration::from_secs(60), || {
            let r = post();
            if r.status() == 202 {
                accepted = Some(r.headers()["x-call-id"].to_str().unwrap().to_owned());
            }
            accepted.is_some()
        }),
        "the gateway did not resume after Redis came back\n{}",
        gw.logs()
    );
    let id = accepted.unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || called_back(&cb).contains(&id)),
        "{}",
        gw.logs()
    );
}

/// Marks first, then sleeps: a second run started while the first sleeps is visible
/// before the first one's callback arrives.
const MARK_THEN_SLEEP_PY: &str = r#"import time
def handler(event):
    with open(event["env"]["MARK"], "a") as f:
        f.write(event["headers"].get("x-call-id", "-") + "\n")
    time.sleep(6)
    return {"status": 200, "body": "slept"}
"#;

#[test]
fn redis_live_nodes_keep_calls_longer_than_the_visibility_timeout() {
    let redis = Redis::start();
    let dir = tempdir();
    let fns = dir.path().join("fns");
    let mark = dir.path().join("mark");
    let env = format!(r#"{{"MARK": "{}"}}"#, path_str(&mark));
    write_tree(
        &fns,
        &[
            ("long/handler.py", MARK_THEN_SLEEP_PY),
            ("long/fn.env.json", &env),
            ("long/fn.config.json", r#"{"methods": ["POST"]}"#),
        ],
    );
    let p = dir.path().join("edgefn.toml");
    std::fs::write(
        &p,
        format!(
            "[async]\nstore = \"{}\"\nvisibility_timeout_ms = 1500\ncallback_allow = [\"127.0.0.1/32\"]\n",
            redis.url()
        ),
    )
    .unwrap();
    let a = Gateway::start_with_config(&p, &fns);
    let b = Gateway::start_with_config(&p, &fns);
    let cb = CallbackServer::start(200);
    let r = client()
        .post(a.url("/async-function/long"))
        .header("x-callback-url", cb.url("/cb"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    assert!(
        wait_until(Duration::from_secs(60), || cb.count() == 1),
        "{}\n{}",
        a.logs(),
        b.logs()
    );
    assert_eq!(
        marks(&mark).len(),
        1,
        "the call ran once: no node took it from a live one"
    );
}
