//! OpenFaaS routes and async invocation against the real binary and real Python workers:
//! `/function/` shares every policy of the function's own route, `/async-function/`
//! queues after the same checks and calls back, the SSRF guard, a full queue, dead
//! letters, and the admin `/async` endpoints.

mod openfaas_support;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use openfaas_support::{marks, CallbackServer, CRASH_PY, ECHO_PY};
use serde_json::Value;
use support::{client, get_json, path_str, tempdir, wait_until, write_tree, Gateway, BIN};

const KEY: &str = "k-123";

fn tree(root: &Path, mark: &Path) {
    let env = format!(
        r#"{{"MARK": "{}", "API_KEY": {{"value": "{KEY}", "is_secret": true}}}}"#,
        path_str(mark)
    );
    write_tree(
        root,
        &[
            ("hello/handler.py", ECHO_PY),
            ("hello/fn.env.json", &env),
            (
                "hello/fn.config.json",
                r#"{"methods": ["GET", "POST"], "max_body_bytes": 64}"#,
            ),
            ("secured/handler.py", ECHO_PY),
            ("secured/fn.env.json", &env),
            (
                "secured/fn.config.json",
                r#"{"methods": ["GET", "POST"], "auth": {"type": "api_key", "secret": "API_KEY"}}"#,
            ),
            ("api/users/[id]/handler.py", ECHO_PY),
            ("crash/handler.py", CRASH_PY),
        ],
    );
}

fn config(dir: &Path, extra: &str) -> PathBuf {
    let p = dir.join("edgefn.toml");
    let text = format!(
        "[async]\ndata_dir = \"{}\"\nmax_attempts = 2\ncallback_allow = [\"127.0.0.1/32\"]\n{extra}",
        path_str(&dir.join("queue"))
    );
    std::fs::write(&p, text).unwrap();
    p
}

/// A gateway on [`tree`] plus `more` with [`config`] plus `extra`; the folder it returns
/// holds `fns/`, the queue and the `MARK` file (returned second).
fn serve(extra: &str, more: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf, Gateway) {
    let dir = tempdir();
    let fns = dir.path().join("fns");
    let mark = dir.path().join("mark");
    tree(&fns, &mark);
    write_tree(&fns, more);
    let gw = Gateway::start_with_config(&config(dir.path(), extra), &fns);
    (dir, mark, gw)
}

#[test]
fn function_route_shares_every_policy_of_the_own_route() {
    let (_dir, mark, gw) = serve("", &[]);
    let c = client();

    let r = c.get(gw.url("/function/hello/a/b?x=1")).send().unwrap();
    assert_eq!(r.status(), 200);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(r.headers()["x-call-id"].to_str().unwrap(), rid);
    assert!(
        r.headers()["x-start-time"]
            .to_str()
            .unwrap()
            .parse::<u128>()
            .unwrap()
            > 0
    );
    let took: f64 = r.headers()["x-duration-seconds"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(took >= 0.0);
    assert_eq!(r.headers()["x-fn"], "echo");
    let v: Value = r.json().unwrap();
    assert_eq!(v["path"], "/a/b");
    assert_eq!(v["query"]["x"], "1");

    let r = c
        .get(gw.url("/function/hello"))
        .header("x-call-id", "caller-id-1")
        .send()
        .unwrap();
    assert_eq!(r.headers()["x-call-id"], "caller-id-1");
    assert_eq!(r.json::<Value>().unwrap()["path"], "/");

    let v: Value = get_json(&gw.url("/function/api/users/42"));
    assert_eq!(v["params"]["id"], "42");

    // Refusals are the own route's, decided before any worker runs.
    let before = marks(&mark).len();
    for path in ["/secured", "/function/secured", "/function/secured/x"] {
        let r = c.get(gw.url(path)).send().unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let r = c
            .get(gw.url(path))
            .header("x-api-key", "wrong")
            .send()
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    assert_eq!(marks(&mark).len(), before, "no worker ran for a 401");
    let r = c
        .get(gw.url("/function/secured"))
        .header("x-api-key", KEY)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["auth"]["type"], "api_key");
    // The own route answers FastFN's 404 for a method it does not serve; the OpenFaaS
    // route keeps its 405.
    for (path, status) in [("/hello", 404), ("/function/hello", 405)] {
        let r = c.delete(gw.url(path)).send().unwrap();
        assert_eq!(r.status(), status, "{path}");
        let r = c.post(gw.url(path)).body(vec![b'x'; 65]).send().unwrap();
        assert_eq!(r.status(), 413, "{path}");
    }
    assert_eq!(
        c.get(gw.url("/function/nope")).send().unwrap().status(),
        404
    );
    assert_eq!(c.get(gw.url("/function/")).send().unwrap().status(), 404);
}

#[test]
fn openfaas_routes_can_be_turned_off() {
    let (_dir, _, gw) = serve("[openfaas]\nenabled = false\n", &[]);
    let c = client();
    assert_eq!(c.get(gw.url("/hello")).send().unwrap().status(), 200);
    assert_eq!(
        c.get(gw.url("/function/hello")).send().unwrap().status(),
        404
    );
    assert_eq!(
        c.post(gw.url("/async-function/hello"))
            .send()
            .unwrap()
            .status(),
        404
    );
}

#[test]
fn folders_named_like_the_prefixes_are_refused_at_load() {
    let dir = tempdir();
    write_tree(dir.path(), &[("function/handler.py", ECHO_PY)]);
    let out = Command::new(BIN)
        .args(["check", "--functions", &path_str(dir.path())])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("collide with OpenFaaS"), "{err}");
}

#[test]
fn async_calls_are_queued_after_every_check_and_call_back() {
    let (dir, mark, gw) = serve("", &[]);
    let cb = CallbackServer::start(200);
    let c = client();

    let mut ids = Vec::new();
    for i in 0..5 {
        let r = c
            .post(gw.url(&format!("/async-function/hello/sub?i={i}")))
            .header("x-callback-url", cb.url("/done"))
            .body(format!("payload-{i}"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 202);
        ids.push(r.headers()["x-call-id"].to_str().unwrap().to_owned());
    }
    assert!(
        wait_until(Duration::from_secs(60), || cb.count() >= 5),
        "callbacks: {:?}\n{}",
        cb.received(),
        gw.logs()
    );
    for got in cb.received() {
        assert_eq!(got.path, "/done");
        let id = &got.headers["x-call-id"];
        assert!(ids.contains(id), "{id}");
        assert_eq!(got.headers["x-function-status"], "200");
        assert_eq!(got.headers["x-function-name"], "hello");
        assert!(got.headers["x-duration-seconds"].parse::<f64>().is_ok());
        assert_eq!(
            got.headers["x-fn"], "echo",
            "the function's headers come along"
        );
        let v: Value = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(v["path"], "/sub");
        assert_eq!(&v["call_id"], id.as_str());
        assert!(v["body"].as_str().unwrap().starts_with("payload-"));
    }
    let s: Value = get_json(&gw.admin_url(&format!("/async/{}", ids[0])));
    assert_eq!(s["state"], "done");
    assert_eq!(s["attempts"], 1);
    assert_eq!(s["last_status"], 200);
    assert_eq!(
        c.get(gw.admin_url("/async/unknown"))
            .send()
            .unwrap()
            .status(),
        404
    );
    assert!(gw
        .metric(r#"edgefn_async_callbacks_total{result="delivered"}"#)
        .is_some_and(|n| n >= 5.0));
    assert!(gw
        .metric(r#"edgefn_async_calls_total{function="hello",result="done"}"#)
        .is_some_and(|n| n >= 5.0));

    // Refused synchronously, nothing queued: auth, method, body limit, SSRF.
    let runs = marks(&mark).len();
    let post = |path: &str| c.post(gw.url(path));
    assert_eq!(
        post("/async-function/secured").send().unwrap().status(),
        401
    );
    assert_eq!(
        c.get(gw.url("/async-function/hello"))
            .send()
            .unwrap()
            .status(),
        405
    );
    let r = post("/async-function/hello")
        .body(vec![b'x'; 65])
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
    for refused in [
        "http://10.0.0.1/cb",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9/cb",
        "http://127.0.0.2:9/cb",
        "file:///etc/passwd",
    ] {
        let r = post("/async-function/hello")
            .header("x-callback-url", refused)
            .send()
            .unwrap();
        assert_eq!(r.status(), 400, "{refused}");
    }
    let long = format!("http://127.0.0.1/{}", "a".repeat(3000));
    let r = post("/async-function/hello")
        .header("x-callback-url", long)
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = post("/async-function/secured")
        .header("x-api-key", KEY)
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.headers()["x-call-id"].to_str().unwrap().to_owned();
    assert!(wait_until(Duration::from_secs(60), || {
        get_json(&gw.admin_url(&format!("/async/{id}")))["state"] == "done"
    }));
    assert_eq!(marks(&mark).len(), runs + 1, "only the admitted call ran");
    let stored = std::fs::read(dir.path().join("queue/queue.redb")).unwrap();
    let key = KEY.as_bytes();
    assert!(
        !stored.windows(key.len()).any(|w| w == key),
        "the api key is not written to the queue"
    );
    let r = post("/async-function/hello")
        .header("x-call-id", &id)
        .send()
        .unwrap();
    assert_eq!(r.status(), 409, "a call id is used once");
}

#[test]
fn crashing_calls_are_retried_then_dead_lettered() {
    let (_dir, _, gw) = serve("", &[]);
    let cb = CallbackServer::start(200);
    let c = client();
    let r = c
        .post(gw.url("/async-function/crash"))
        .header("x-callback-url", cb.url("/dead"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.headers()["x-call-id"].to_str().unwrap().to_owned();
    let status = |id: &str| -> Value { get_json(&gw.admin_url(&format!("/async/{id}"))) };
    assert!(
        wait_until(Duration::from_secs(90), || status(&id)["state"] == "dead"),
        "{}\n{}",
        status(&id),
        gw.logs()
    );
    let s = status(&id);
    assert_eq!(s["attempts"], 2);
    assert_eq!(s["last_status"], 502);
    let dead: Value = get_json(&gw.admin_url("/async?state=dead"));
    assert!(dead["calls"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["call_id"] == id.as_str()));
    assert!(wait_until(Duration::from_secs(30), || cb.count() == 1));
    assert_eq!(cb.received()[0].headers["x-function-status"], "502");
    assert!(gw
        .metric(r#"edgefn_async_calls_total{function="crash",result="dead"}"#)
        .is_some_and(|n| n >= 1.0));
    assert!(gw
        .metric(r#"edgefn_async_calls_total{function="crash",result="retry"}"#)
        .is_some_and(|n| n >= 1.0));
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let dir = tempdir();
    let fns = dir.path().join("fns");
    write_tree(
        &fns,
        &[
            ("slow/handler.py", ECHO_PY),
            ("slow/fn.env.json", r#"{"SLEEP_MS": "20000"}"#),
            (
                "slow/fn.config.json",
                r#"{"workers": {"min": 1, "max": 1}}"#,
            ),
        ],
    );
    let gw = Gateway::start_with_config(&config(dir.path(), "max_queued = 2\n"), &fns);
    let c = client();
    for _ in 0..2 {
        assert_eq!(
            c.post(gw.url("/async-function/slow"))
                .send()
                .unwrap()
                .status(),
            202
        );
    }
    let r = c.post(gw.url("/async-function/slow")).send().unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(gw.metric("edgefn_async_queued"), Some(2.0));
}

const SECRET_FILES_PY: &str = r#"import os
def handler(event):
    d = os.environ.get("secret_mount_path", "")
    mode = oct(os.stat(d).st_mode & 0o777)
    with open(os.path.join(d, "TOKEN")) as f:
        v = f.read()
    print("the token is " + v, flush=True)
    fixed = None
    if os.path.exists("/var/openfaas/secrets/TOKEN"):
        with open("/var/openfaas/secrets/TOKEN") as f:
            fixed = f.read() == v
    return {"status": 200, "body": {"dir": d, "mode": mode, "same": v == event["env"]["TOKEN"],
        "fixed": fixed, "plain_file": os.path.exists(os.path.join(d, "PLAIN"))}}
"#;

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

#[test]
fn secrets_are_files_under_secret_mount_path() {
    const TOKEN: &str = "tok-98765-secret";
    let dir = tempdir();
    let fns = dir.path().join("fns");
    let env = format!(r#"{{"TOKEN": {{"value": "{TOKEN}", "is_secret": true}}, "PLAIN": "x"}}"#);
    write_tree(
        &fns,
        &[
            ("reader/handler.py", SECRET_FILES_PY),
            ("reader/fn.env.json", &env),
        ],
    );
    let gw = Gateway::start_with_config(&config(dir.path(), ""), &fns);
    let r = client().get(gw.url("/function/reader")).send().unwrap();
    let text = r.text().unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{text}\n{}", gw.logs()));
    assert_eq!(v["mode"], "0o700");
    assert_eq!(v["same"], true);
    assert_eq!(
        v["plain_file"], false,
        "only is_secret entries become files"
    );
    if running_as_root() {
        assert_eq!(v["dir"], "/var/openfaas/secrets");
        assert_eq!(v["fixed"], true);
        assert!(
            !Path::new("/var/openfaas/secrets/TOKEN").exists(),
            "the bind mount stays in the worker's own mount namespace"
        );
    } else {
        assert!(v["dir"].as_str().unwrap().contains("secrets-"));
    }
    assert!(
        gw.wait_log("the token is ***", Duration::from_secs(10)),
        "{}",
        gw.logs()
    );
    assert!(!gw.logs().contains(TOKEN), "masked in captured output");
}

#[test]
fn callbacks_are_retried_on_5xx_and_huge_answers_are_cut() {
    let (_dir, _, gw) = serve(
        "",
        &[
            ("limited/handler.py", ECHO_PY),
            (
                "limited/fn.config.json",
                r#"{"methods": ["POST"], "rate_limit": {"per_second": 1, "burst": 1, "by": "ip"}}"#,
            ),
        ],
    );
    let c = client();
    // max_attempts = 2: one 503, then delivered.
    let flaky = CallbackServer::start_with(openfaas_support::Behaviour {
        status: 200,
        fail_first: 1,
        reply_bytes: 0,
    });
    let r = c
        .post(gw.url("/async-function/hello"))
        .header("x-callback-url", flaky.url("/flaky"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    assert!(
        wait_until(Duration::from_secs(60), || flaky.count() == 2),
        "{}",
        gw.logs()
    );
    let got = flaky.received();
    assert_eq!(got[0].headers["x-call-id"], got[1].headers["x-call-id"]);
    assert!(wait_until(Duration::from_secs(10), || {
        gw.metric(r#"edgefn_async_callbacks_total{result="failed"}"#) == Some(1.0)
    }));

    // A receiver answering 64 MiB: read up to the cap, then the call is done.
    let huge = CallbackServer::start_with(openfaas_support::Behaviour {
        status: 200,
        fail_first: 0,
        reply_bytes: 64 << 20,
    });
    let r = c
        .post(gw.url("/async-function/hello"))
        .header("x-callback-url", huge.url("/huge"))
        .send()
        .unwrap();
    let id = r.headers()["x-call-id"].to_str().unwrap().to_owned();
    assert!(
        wait_until(Duration::from_secs(60), || {
            get_json(&gw.admin_url(&format!("/async/{id}")))["state"] == "done"
        }),
        "{}",
        gw.logs()
    );
    assert_eq!(huge.count(), 1, "an accepted delivery is not repeated");

    // The rate limit applies before anything is queued.
    let statuses: Vec<u16> = (0..3)
        .map(|_| {
            c.post(gw.url("/async-function/limited"))
                .send()
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
}
