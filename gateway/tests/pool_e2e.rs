//! The pool with real workers, proven by events rather than wall-clock bounds: barrier
//! handlers that answer only once N requests are inside them at once (so a 200 proves
//! the overlap), the v2 cancel keeping a Node worker's other requests alive, a broken
//! deploy keeping the old version, functions answering 503 while they start, and
//! SIGTERM during a dependency install.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{client, concurrent, path_str, tempdir, wait_until, write_tree, Gateway};

/// A handler that records its arrival in `dir` and answers 200 (its pid) once `n`
/// arrivals are there, or 500 after 30 s: every 200 proves `n` requests overlapped.
fn barrier_py(dir: &Path, n: usize, asynchronous: bool) -> String {
    let (def, sleep) = if asynchronous {
        ("async def", "await asyncio.sleep(0.02)")
    } else {
        ("def", "time.sleep(0.02)")
    };
    format!(
        "import asyncio, os, time, uuid\n\n{def} handler(event):\n    d = {dir:?}\n    open(os.path.join(d, uuid.uuid4().hex), 'w').close()\n    end = time.monotonic() + 30\n    while len(os.listdir(d)) < {n}:\n        if time.monotonic() > end:\n            return {{'status': 500, 'body': 'barrier timed out'}}\n        {sleep}\n    return {{'status': 200, 'body': str(os.getpid())}}\n",
        dir = path_str(dir),
    )
}

fn barrier_js(dir: &Path, n: usize) -> String {
    format!(
        "const fs = require('fs'), path = require('path');\nexports.handler = async (event) => {{\n  const d = {dir:?};\n  fs.writeFileSync(path.join(d, `${{process.pid}}-${{Math.random()}}`), '');\n  const end = Date.now() + 30000;\n  while (fs.readdirSync(d).length < {n}) {{\n    if (Date.now() > end) return {{ status: 500, body: 'barrier timed out' }};\n    await new Promise((r) => setTimeout(r, 20));\n  }}\n  return {{ status: 200, body: String(process.pid) }};\n}};\n",
        dir = path_str(dir),
    )
}

/// A Node handler that records each arrival as a file in `arrived`, never answers
/// `?hang=1`, and answers the others with its pid once `release` exists (500 after 60 s).
fn arrivals_js(arrived: &Path, release: &Path) -> String {
    format!(
        "const fs = require('fs'), path = require('path');\nexports.handler = async (event) => {{\n  fs.writeFileSync(path.join({arrived:?}, String(Math.random())), '');\n  if (event.query.hang) return new Promise(() => {{}});\n  const end = Date.now() + 60000;\n  while (!fs.existsSync({release:?})) {{\n    if (Date.now() > end) return {{ status: 500, body: 'never released' }};\n    await new Promise((r) => setTimeout(r, 20));\n  }}\n  return {{ status: 200, body: String(process.pid) }};\n}};\n",
        arrived = path_str(arrived),
        release = path_str(release),
    )
}

/// Serves `handler` as `/<name>` on one Node worker with `concurrency` slots.
fn one_node_worker(
    name: &str,
    handler: &str,
    concurrency: usize,
    timeout_ms: u64,
) -> (tempfile::TempDir, Gateway) {
    let dir = tempdir();
    let config = format!(
        r#"{{"workers": {{"min": 1, "max": 1}}, "concurrency": {concurrency}, "timeout_ms": {timeout_ms}}}"#
    );
    write_tree(
        dir.path(),
        &[
            (&format!("{name}/handler.js"), handler),
            (&format!("{name}/fn.config.json"), &config),
        ],
    );
    let gw = Gateway::start(dir.path());
    (dir, gw)
}

fn get(url: &str) -> (u16, String) {
    let r = client()
        .get(url)
        .timeout(Duration::from_secs(60))
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

#[test]
fn thirty_two_requests_grow_the_pool_to_exactly_four_workers() {
    let (dir, arrivals) = (tempdir(), tempdir());
    write_tree(
        dir.path(),
        &[
            ("work/handler.py", &barrier_py(arrivals.path(), 4, false)),
            (
                "work/fn.config.json",
                r#"{"workers": {"min": 1, "max": 4}, "timeout_ms": 60000}"#,
            ),
        ],
    );
    let gw = Gateway::start(dir.path());
    let url = gw.url("/work");
    let answers = concurrent(32, |_| get(&url));
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    let pids: HashSet<_> = answers.iter().map(|(_, p)| p).collect();
    assert_eq!(pids.len(), 4, "grew to exactly max=4 workers: {pids:?}");
}

#[test]
fn one_worker_serves_concurrently_in_node_async_python_and_threaded_python() {
    let (dir, a, b, c) = (tempdir(), tempdir(), tempdir(), tempdir());
    let one = r#"{"workers": {"min": 1, "max": 1}, "concurrency": 8, "timeout_ms": 60000}"#;
    write_tree(
        dir.path(),
        &[
            ("conc/handler.js", &barrier_js(a.path(), 8)),
            ("conc/fn.config.json", one),
            ("asy/handler.py", &barrier_py(b.path(), 8, true)),
            ("asy/fn.config.json", one),
            ("thr/handler.py", &barrier_py(c.path(), 8, false)),
            ("thr/fn.config.json", one),
        ],
    );
    let gw = Gateway::start(dir.path());
    for path in ["/conc", "/asy", "/thr"] {
        let url = gw.url(path);
        let answers = concurrent(8, |_| get(&url));
        assert!(
            answers.iter().all(|(s, _)| *s == 200),
            "{path}: {answers:?}"
        );
        let pids: HashSet<_> = answers.iter().map(|(_, p)| p).collect();
        assert_eq!(pids.len(), 1, "{path}: 8 at once on one worker");
    }
}

#[test]
fn sequential_requests_reuse_one_warm_worker() {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            (
                "warm/handler.py",
                "import os\n\ndef handler(event):\n    return {'status': 200, 'body': str(os.getpid())}\n",
            ),
            ("warm/fn.config.json", r#"{"workers": {"min": 2, "max": 4}}"#),
        ],
    );
    let gw = Gateway::start(dir.path());
    let pids: HashSet<String> = (0..10).map(|_| get(&gw.url("/warm")).1).collect();
    assert_eq!(pids.len(), 1, "one warm worker served all: {pids:?}");
}

/// Protocol v2: a timed-out request is cancelled on its worker; the 15 others in flight
/// on the same Node worker finish normally and the worker is not replaced.
#[test]
fn node_worker_with_sixteen_in_flight_times_out_one_and_serves_fifteen() {
    let flags = tempdir();
    let release = flags.path().join("release");
    let arrived = flags.path().join("arrived");
    std::fs::create_dir(&arrived).unwrap();
    let (_dir, gw) = one_node_worker("many", &arrivals_js(&arrived, &release), 16, 6000);
    let url = gw.url("/many");
    let hang = gw.url("/many?hang=1");
    let count = || std::fs::read_dir(&arrived).unwrap().count();
    let (results, hung) = std::thread::scope(|s| {
        let hung = s.spawn(|| get(&hang));
        assert!(wait_until(Duration::from_secs(30), || count() == 1));
        // A stagger, not a synchronisation: the fifteen must still be inside their own
        // 6 s when the hanging one's runs out, so they start half of it later.
        std::thread::sleep(Duration::from_secs(3));
        let fifteen: Vec<_> = (0..15).map(|_| s.spawn(|| get(&url))).collect();
        assert!(
            wait_until(Duration::from_secs(30), || count() == 16),
            "16 in flight on one worker"
        );
        let hung = hung.join().unwrap();
        // Only after the 504 (and the cancel) are the others allowed to answer.
        std::fs::write(&release, "").unwrap();
        let results: Vec<_> = fifteen.into_iter().map(|h| h.join().unwrap()).collect();
        (results, hung)
    });
    assert_eq!(hung.0, 504, "{hung:?}");
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    let pids: HashSet<_> = results.iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(pids.len(), 1);
    // The worker acknowledged the cancel: it was not killed, and keeps serving.
    let (status, pid) = get(&url);
    assert_eq!(status, 200);
    assert!(pids.contains(&pid), "the same worker: {pid} vs {pids:?}");
    assert!(
        !gw.metrics().contains("edgefn_worker_restarts_total{"),
        "{}",
        gw.logs()
    );
}

/// Issue 11 point 5: a broken deploy keeps the old version serving.
#[test]
fn a_syntax_error_saved_into_a_serving_handler_keeps_the_old_code() {
    let dir = tempdir();
    let v1 = "def handler(event):\n    return {'status': 200, 'body': 'v1'}\n";
    write_tree(dir.path(), &[("ver/handler.py", v1)]);
    let gw = Gateway::start(dir.path());
    assert_eq!(get(&gw.url("/ver")), (200, "v1".into()));
    write_tree(
        dir.path(),
        &[("ver/handler.py", "def handler(event:\n    return 1\n")],
    );
    assert!(
        gw.wait_log(
            "the new version cannot start its first worker",
            Duration::from_secs(30)
        ),
        "{}",
        gw.logs()
    );
    let logs = gw.logs();
    assert!(logs.contains("SyntaxError"), "{logs}");
    assert!(logs.contains("ver/handler.py"), "the file is named: {logs}");
    assert_eq!(get(&gw.url("/ver")), (200, "v1".into()));
    assert!(gw.metric(r#"edgefn_reload_total{result="error"}"#) >= Some(1.0));
    // Fixing the file swaps the new code in.
    write_tree(
        dir.path(),
        &[("ver/handler.py", &v1.replace("'v1'", "'v2'"))],
    );
    assert!(
        wait_until(Duration::from_secs(30), || get(&gw.url("/ver"))
            == (200, "v2".into())),
        "{}",
        gw.logs()
    );
}

/// A brand-new function that cannot start answers promptly (not after its timeout) what
/// FastFN's daemon answers: 500 with the import error's text.
#[test]
fn a_new_function_that_cannot_start_answers_500_promptly() {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("broken/handler.py", "import no_such_module_here\n"),
            (
                "broken/fn.config.json",
                r#"{"workers": {"min": 2, "max": 4}, "timeout_ms": 60000}"#,
            ),
        ],
    );
    let gw = Gateway::start(dir.path());
    let started = Instant::now();
    let answers = concurrent(4, |_| get(&gw.url("/broken")));
    let want = (
        500,
        r#"{"error":"No module named 'no_such_module_here'""#.to_owned(),
    );
    for (status, body) in &answers {
        assert_eq!(
            (
                *status,
                body.split(",\"request_id")
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            ),
            want,
            "{}",
            gw.logs()
        );
    }
    // Far below the 60 s timeout a queued request would otherwise wait.
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// A local package whose build blocks until `release` exists (no network: an in-tree
/// PEP 517 backend with no build requirements).
fn slow_install_tree(dir: &Path, started: &Path, release: &Path) {
    let backend = format!(
        "import os, time\n\ndef get_requires_for_build_wheel(config_settings=None):\n    open({started:?}, 'w').write(str(os.getpid()))\n    while not os.path.exists({release:?}):\n        time.sleep(0.05)\n    raise RuntimeError('released')\n\ndef build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n    raise RuntimeError('never built')\n",
        started = path_str(started),
        release = path_str(release),
    );
    write_tree(
        dir,
        &[
            ("slow/requirements.txt", "--no-index\n./slowpkg\n"),
            (
                "slow/slowpkg/pyproject.toml",
                "[build-system]\nrequires = []\nbuild-backend = \"slow_backend\"\nbackend-path = [\".\"]\n\n[project]\nname = \"slowpkg\"\nversion = \"0.1\"\n",
            ),
            ("slow/slowpkg/slow_backend.py", &backend),
            (
                "slow/handler.py",
                "def handler(event):\n    return {'status': 200, 'body': 'slow'}\n",
            ),
            (
                "fast/handler.py",
                "def handler(event):\n    return {'status': 200, 'body': 'fast'}\n",
            ),
        ],
    );
}

/// The gateway serves as soon as the tree is valid: the function whose install runs
/// answers 503 with Retry-After and `/readyz` lists it; the others serve. SIGTERM during
/// the install stops the gateway within `shutdown_grace_ms`.
#[test]
fn sigterm_while_a_dependency_install_runs_stops_within_the_grace() {
    let (dir, cache, flags) = (tempdir(), tempdir(), tempdir());
    let started = flags.path().join("started");
    let release = flags.path().join("release");
    slow_install_tree(dir.path(), &started, &release);
    let config = dir.path().join("edgefn.toml");
    std::fs::write(&config, "[server]\nshutdown_grace_ms = 2000\n").unwrap();
    let mut gw = Gateway::start_unsettled(
        &[
            "--config",
            &path_str(&config),
            "--functions",
            &path_str(dir.path()),
        ],
        &[("EDGEFN_CACHE_DIR", &path_str(cache.path()))],
    );
    assert!(
        wait_until(Duration::from_secs(60), || started.exists()),
        "the install began: {}",
        gw.logs()
    );
    assert!(
        wait_until(Duration::from_secs(30), || get(&gw.url("/fast"))
            == (200, "fast".into())),
        "the other function serves during the install: {}",
        gw.logs()
    );
    let r = client().get(gw.url("/slow")).send().unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let ready = gw.readyz();
    assert_eq!(ready["pending"], serde_json::json!(["slow"]), "{ready}");
    let t = Instant::now();
    gw.signal("TERM");
    let status = gw.wait_exit(Duration::from_secs(20));
    let took = t.elapsed();
    assert!(status.is_some(), "still running: {}", gw.logs());
    // The install's whole process group went with it: pip's build hook too.
    let hook = std::fs::read_to_string(&started).unwrap();
    let gone = wait_until(Duration::from_secs(10), || {
        !Path::new(&format!("/proc/{hook}")).exists()
    });
    std::fs::write(&release, "").unwrap();
    assert!(gone, "the build hook {hook} outlived the gateway");
    assert!(
        took < Duration::from_millis(2000) + Duration::from_secs(5),
        "stopped in {took:?}"
    );
}

/// A worker that answers `ready` without a version (protocol 1) is refused, naming both
/// versions; the init it got is protocol 2 with the function's env and runtime.
#[test]
fn a_protocol_1_worker_is_refused_naming_both_versions() {
    let (dir, rec) = (tempdir(), tempdir());
    let seen = rec.path().join("init.json");
    let fake = rec.path().join("fake_v1.py");
    std::fs::write(
        &fake,
        format!(
            "import json, os, socket, struct, sys\ns = socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[2])\ndef exact(n):\n    b = b''\n    while len(b) < n:\n        c = s.recv(n - len(b))\n        if not c:\n            sys.exit(0)\n        b += c\n    return b\ntotal, hlen = struct.unpack('>II', exact(8))\nopen({seen:?}, 'wb').write(exact(total - 4)[:hlen])\nh = json.dumps({{'type': 'ready', 'pid': os.getpid()}}).encode()\ns.sendall(struct.pack('>II', 4 + len(h), len(h)) + h)\ns.recv(1)\n",
            seen = path_str(&seen),
        ),
    )
    .unwrap();
    write_tree(
        dir.path(),
        &[
            (
                "old/handler.py",
                "def handler(event):\n    return {'status': 200}\n",
            ),
            ("old/fn.env.json", r#"{"K": "v"}"#),
        ],
    );
    let config = rec.path().join("edgefn.toml");
    std::fs::write(
        &config,
        format!(
            "[runtimes.python]\ncommand = [\"python3\", {:?}]\n",
            path_str(&fake)
        ),
    )
    .unwrap();
    let gw = Gateway::start_with_config(&config, dir.path());
    assert_eq!(get(&gw.url("/old")).0, 502);
    assert!(
        gw.wait_log("this gateway speaks protocol 2", Duration::from_secs(30)),
        "{}",
        gw.logs()
    );
    assert!(
        gw.logs().contains("the worker speaks protocol 1"),
        "{}",
        gw.logs()
    );
    let init: serde_json::Value = serde_json::from_slice(&std::fs::read(&seen).unwrap()).unwrap();
    assert_eq!(init["type"], "init");
    assert_eq!(init["version"], 2);
    assert_eq!(init["runtime"], "python");
    assert_eq!(init["function"], "old");
    assert_eq!(init["env"], serde_json::json!({"K": "v"}));
    assert!(init["handler_name"].is_null());
}

/// A client that hangs up cancels its request on the worker: the slot comes back with
/// the worker's acknowledgement, the worker is not killed, and the next request (which
/// could not run otherwise: one worker, one slot) is served by the same process.
#[test]
fn a_client_that_goes_away_cancels_its_request_on_the_worker() {
    let flags = tempdir();
    let (arrived, release) = (flags.path().join("arrived"), flags.path().join("release"));
    std::fs::create_dir(&arrived).unwrap();
    std::fs::write(&release, "").unwrap();
    let (_dir, gw) = one_node_worker("gone", &arrivals_js(&arrived, &release), 1, 600_000);
    let count = || std::fs::read_dir(&arrived).unwrap().count();
    let (_, pid) = get(&gw.url("/gone"));
    let s = support::raw_http::send(gw.public, b"GET /gone?hang=1 HTTP/1.1\r\nhost: x\r\n\r\n");
    assert!(wait_until(Duration::from_secs(30), || count() == 2));
    drop(s);
    assert_eq!(get(&gw.url("/gone")), (200, pid), "{}", gw.logs());
    assert!(!gw.metrics().contains("edgefn_worker_restarts_total{"));
}

/// One sync worker under 32 concurrent clients (the load prefetch hands it several
/// requests at once): a request that kills the worker mid-stream costs 502s only for what
/// that worker held, every other request is a 200, nothing hangs, and the replacement
/// serves.
#[test]
fn a_crash_under_concurrent_load_answers_every_request_and_the_pool_recovers() {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            (
                "busy/handler.py",
                "import os\n\ndef handler(event):\n    if event['query'].get('crash'):\n        os._exit(3)\n    return {'status': 200, 'body': str(os.getpid())}\n",
            ),
            ("busy/fn.config.json", r#"{"workers": {"min": 1, "max": 1}}"#),
        ],
    );
    let gw = Gateway::start(dir.path());
    let url = gw.url("/busy");
    let (status, first_pid) = get(&url);
    assert_eq!(status, 200);
    let answers = concurrent(32, |i| {
        (0..20)
            .map(|j| {
                let crash = i == 7 && j == 10;
                get(&format!("{url}{}", if crash { "?crash=1" } else { "" })).0
            })
            .collect::<Vec<u16>>()
    });
    let all: Vec<u16> = answers.into_iter().flatten().collect();
    assert_eq!(all.len(), 640);
    assert!(all.iter().all(|s| *s == 200 || *s == 502), "{all:?}");
    let failed = all.iter().filter(|s| **s == 502).count();
    assert!(failed >= 1, "the crash request itself answers 502");
    // 502 only for what the one worker held, its slot and its prefetch depth (1 + 16),
    // and what was written to its socket after it died, before its end was read: each of
    // those took a slot freed by a reply the worker wrote before dying (at most 17 more).
    assert!(failed <= 2 * 17 + 1, "{failed} requests failed");
    let (status, pid) = get(&url);
    assert_eq!(status, 200);
    assert_ne!(pid, first_pid, "a replacement worker serves");
}

/// Every thread of every worker runs under `SCHED_BATCH` (3), so a worker woken by a
/// request does not preempt the gateway mid-request; requests are answered as before.
#[test]
fn workers_run_as_sched_batch() {
    assert!(
        std::process::Command::new("chrt")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "chrt (util-linux) is needed: workers are set to SCHED_BATCH with it"
    );
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            (
                "py/handler.py",
                "import os\n\ndef handler(event):\n    return {'status': 200, 'body': str(os.getpid())}\n",
            ),
            (
                "js/handler.js",
                "exports.handler = async () => ({ status: 200, body: String(process.pid) });\n",
            ),
        ],
    );
    let gw = Gateway::start(dir.path());
    for path in ["/py", "/js"] {
        let r = client().get(gw.url(path)).send().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let pid: u32 = r.text().unwrap().parse().unwrap();
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
        let mut seen = 0;
        for task in tasks {
            let stat = std::fs::read_to_string(task.unwrap().path().join("stat")).unwrap();
            // Field 41, `policy`, counted from the state (field 3) after the name.
            let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
            assert_eq!(
                fields[38], "3",
                "{path}: worker {pid} thread policy: {stat}"
            );
            seen += 1;
        }
        assert!(seen >= 1, "{path}: no threads listed for {pid}");
    }
}
