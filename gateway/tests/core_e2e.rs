//! The gateway core against the real binary: endpoints, error shapes, OpenAPI, hot
//! reload, TLS on h1 and h2, timeouts and graceful shutdown.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{client, get_json, tempdir, wait_until, write_tree, Gateway};

const HELLO: &str = "def handler(event):\n    return {\"status\": 200, \"body\": \"hello\"}\n";

fn fixture() -> tempfile::TempDir {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("hello/handler.py", HELLO),
            (
                "api/users/[id]/index.js",
                "exports.handler = async (e) => ({status: 200, body: e.params.id});\n",
            ),
            (
                "api/users/[id]/fn.config.json",
                r#"{"methods": ["GET", "DELETE"], "summary": "One user"}"#,
            ),
        ],
    );
    dir
}

fn assert_error_shape(resp: reqwest::blocking::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    let rid = resp
        .headers()
        .get("x-request-id")
        .expect("x-request-id on every response")
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let body: Value = resp.json().unwrap();
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    assert_eq!(body["request_id"].as_str(), Some(rid.as_str()));
    body
}

#[test]
fn health_404_and_request_ids() {
    let dir = fixture();
    let gw = Gateway::start(dir.path());
    let c = client();

    let r = c.get(gw.url("/_fn/health")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(
        r.json::<Value>().unwrap(),
        serde_json::json!({"status": "ok"})
    );

    assert_error_shape(c.get(gw.url("/nope")).send().unwrap(), 404);
    assert_error_shape(c.get(gw.url("/hello/extra")).send().unwrap(), 404);

    // A method the route does not serve is not found, as in FastFN.
    let r = c.put(gw.url("/api/users/7")).send().unwrap();
    assert!(r.headers().get("allow").is_none());
    assert_error_shape(r, 404);

    // A caller's well-formed request id is kept so traces join up.
    let r = c
        .get(gw.url("/nope"))
        .header("x-request-id", "trace-abc-1")
        .send()
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-abc-1");

    for path in ["/healthz", "/readyz"] {
        let r = c.get(gw.admin_url(path)).send().unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let ready = gw.readyz();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["functions"], 2);
}

#[test]
fn openapi_lists_every_route_method_and_parameter() {
    let dir = fixture();
    let gw = Gateway::start(dir.path());
    let doc: Value = get_json(&gw.url("/_fn/openapi.json"));
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let paths = doc["paths"].as_object().unwrap();
    let mut keys: Vec<_> = paths.keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["/_fn/health", "/api/users/{id}", "/hello"]);
    let hello = paths["/hello"].as_object().unwrap();
    let mut methods: Vec<_> = hello.keys().cloned().collect();
    methods.sort();
    assert_eq!(methods, ["get", "post"]);
    let user = &paths["/api/users/{id}"];
    assert!(user.get("post").is_none());
    let get = &user["get"];
    assert_eq!(get["summary"], "One user");
    assert_eq!(get["parameters"][0]["name"], "id");
    assert_eq!(get["parameters"][0]["in"], "path");
    assert_eq!(get["parameters"][0]["required"], true);
    assert!(
        user["delete"]["responses"]["502"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap()
            .starts_with("#/components/schemas/")
    );
    // Every operationId is unique, as OpenAPI requires.
    let mut ids: Vec<&str> = paths
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n);

    // The CLI prints the same document.
    let out = Command::new(support::BIN)
        .args(["openapi", "--functions", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let cli_doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli_doc, doc);
}

#[test]
fn reload_adds_and_removes_functions_and_keeps_serving_on_errors() {
    let dir = fixture();
    let gw = Gateway::start(dir.path());
    let c = client();
    let status = |path: &str| c.get(gw.url(path)).send().unwrap().status().as_u16();
    assert_eq!(status("/added"), 404);

    write_tree(dir.path(), &[("added/handler.py", HELLO)]);
    let t = Instant::now();
    assert!(
        wait_until(Duration::from_secs(2), || status("/added") == 200),
        "added function not routed within 2 s"
    );
    eprintln!("added after {:?}", t.elapsed());

    std::fs::remove_dir_all(dir.path().join("added")).unwrap();
    assert!(
        wait_until(Duration::from_secs(2), || status("/added") == 404),
        "removed function still routed after 2 s"
    );

    // A broken config anywhere refuses the whole reload: old routes keep serving.
    let generation = gw.generation();
    write_tree(
        dir.path(),
        &[(
            "hello/fn.config.json",
            r#"{"methods": ["GET"], "timeuot_ms": 5}"#,
        )],
    );
    assert!(
        gw.wait_log("reload refused", Duration::from_secs(3)),
        "no refusal logged:\n{}",
        gw.logs()
    );
    assert!(gw.wait_log("unknown field `timeuot_ms`", Duration::from_secs(10)));
    assert_eq!(gw.generation(), generation);
    assert_eq!(status("/hello"), 200);
    // POST is still allowed: the old policy, not the half-read new one, is in force.
    assert_eq!(
        c.post(gw.url("/hello")).send().unwrap().status().as_u16(),
        200
    );

    // Fixing the file is picked up.
    write_tree(
        dir.path(),
        &[("hello/fn.config.json", r#"{"methods": ["GET"]}"#)],
    );
    assert!(wait_until(Duration::from_secs(2), || {
        c.post(gw.url("/hello")).send().unwrap().status() == 404
    }));
}

#[test]
fn sighup_reloads() {
    let dir = fixture();
    let gw = Gateway::start(dir.path());
    let before = gw.generation();
    gw.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(5), || gw.generation() > before),
        "SIGHUP did not reload"
    );
}

#[test]
fn check_reports_every_mistake_and_exits_1() {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("good/handler.py", HELLO),
            ("two/handler.py", HELLO),
            ("two/index.js", "exports.handler = async () => ({})"),
            ("cfg/handler.py", HELLO),
            ("cfg/fn.config.json", r#"{"workers": {"min": 9, "max": 2}}"#),
            ("bad name/handler.py", HELLO),
        ],
    );
    let out = Command::new(support::BIN)
        .args(["check", "--functions", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 error(s)"), "{err}");
    assert!(err.contains("keep exactly one handler per folder"), "{err}");
    assert!(err.contains("fn.config.json: workers.min"), "{err}");
    assert!(err.contains("\"bad name\" cannot be a route"), "{err}");

    std::fs::remove_dir_all(dir.path().join("two")).unwrap();
    std::fs::remove_dir_all(dir.path().join("cfg")).unwrap();
    std::fs::remove_dir_all(dir.path().join("bad name")).unwrap();
    let out = Command::new(support::BIN)
        .args(["check", "--functions", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("GET") && table.contains("/good") && table.contains("python"));
}

#[test]
fn symlink_leaving_the_tree_is_refused() {
    let dir = tempdir();
    let outside = tempdir();
    write_tree(outside.path(), &[("handler.py", HELLO)]);
    write_tree(dir.path(), &[("ok/handler.py", HELLO)]);
    std::os::unix::fs::symlink(outside.path(), dir.path().join("escape")).unwrap();
    let out = Command::new(support::BIN)
        .args(["check", "--functions", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside the functions directory"));
}

/// A gateway serving TLS with a fresh self-signed `localhost` certificate (the folder is
/// returned to live as long as the gateway).
fn tls_gateway() -> (tempfile::TempDir, rcgen::CertifiedKey, Gateway) {
    let dir = fixture();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    write_tree(
        dir.path(),
        &[
            ("tls/cert.pem", &cert.cert.pem()),
            ("tls/key.pem", &cert.key_pair.serialize_pem()),
            (
                "edgefn.toml",
                "[server]\ntls = { cert = \"tls/cert.pem\", key = \"tls/key.pem\" }\n",
            ),
        ],
    );
    let fns = dir.path().join("fns");
    write_tree(&fns, &[("hello/handler.py", HELLO)]);
    let gw = Gateway::start_with_config(&dir.path().join("edgefn.toml"), &fns);
    (dir, cert, gw)
}

#[test]
fn tls_serves_http1_and_h2() {
    let (_dir, cert, gw) = tls_gateway();
    assert!(gw.tls);
    let root = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
    let url = format!("https://localhost:{}/_fn/health", gw.public.port());
    for (h1_only, want) in [
        (true, reqwest::Version::HTTP_11),
        (false, reqwest::Version::HTTP_2),
    ] {
        let mut b = reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(root.clone())
            .resolve("localhost", gw.public);
        if h1_only {
            b = b.http1_only();
        }
        let r = b.build().unwrap().get(&url).send().unwrap();
        assert_eq!(r.version(), want);
        assert_eq!(r.status(), 200);
        assert!(r.headers().contains_key("x-request-id"));
    }
}

/// A rustls client trusting `root`, TLS 1.3 only; `sessions` is its session store (none:
/// every handshake is a full one).
fn tls13_client(
    root: &rcgen::CertifiedKey,
    sessions: Option<std::sync::Arc<dyn rustls::client::ClientSessionStore>>,
) -> std::sync::Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.cert.der().clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.resumption = match sessions {
        Some(store) => rustls::client::Resumption::store(store),
        None => rustls::client::Resumption::disabled(),
    };
    std::sync::Arc::new(cfg)
}

/// One `GET /_fn/health` on a new connection (reading the answer also takes in the
/// session tickets sent after the handshake); returns how the handshake went.
fn tls_health(
    cfg: &std::sync::Arc<rustls::ClientConfig>,
    addr: std::net::SocketAddr,
) -> rustls::HandshakeKind {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(cfg.clone(), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, TcpStream::connect(addr).unwrap());
    tls.write_all(b"GET /_fn/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    match tls.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => panic!("reading the answer: {e}"),
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 200 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    tls.conn.handshake_kind().expect("the handshake finished")
}

/// TLS 1.3 session tickets resume, also after many full handshakes of other clients in
/// between (a bounded server-side session cache would have forgotten the session).
#[test]
fn tls_sessions_resume_after_other_handshakes() {
    let (_dir, cert, gw) = tls_gateway();
    let store: std::sync::Arc<dyn rustls::client::ClientSessionStore> =
        std::sync::Arc::new(rustls::client::ClientSessionMemoryCache::new(16));
    let resuming = tls13_client(&cert, Some(store));
    let fresh = tls13_client(&cert, None);
    assert_eq!(
        tls_health(&resuming, gw.public),
        rustls::HandshakeKind::Full
    );
    // rustls' default server cache holds 256 sessions, two per full handshake.
    for _ in 0..200 {
        assert_eq!(tls_health(&fresh, gw.public), rustls::HandshakeKind::Full);
    }
    assert_eq!(
        tls_health(&resuming, gw.public),
        rustls::HandshakeKind::Resumed
    );
    assert_eq!(
        tls_health(&resuming, gw.public),
        rustls::HandshakeKind::Resumed
    );
}

#[test]
fn h2c_prior_knowledge() {
    let dir = fixture();
    let gw = Gateway::start(dir.path());
    let c = reqwest::blocking::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = c.get(gw.url("/_fn/health")).send().unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
}

#[test]
fn idle_and_header_read_timeouts_close_connections() {
    let dir = fixture();
    write_tree(
        dir.path(),
        &[(
            "edgefn.toml",
            "[server]\nidle_timeout_ms = 300\nheader_read_timeout_ms = 300\n",
        )],
    );
    let gw = Gateway::start_with_config(&dir.path().join("edgefn.toml"), dir.path());

    // Idle keep-alive connection: closed by the server after the idle timeout.
    let mut s = TcpStream::connect(gw.public).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /_fn/health HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let t = Instant::now();
    assert_eq!(
        s.read(&mut buf).unwrap_or(0),
        0,
        "expected the server to close"
    );
    assert!(t.elapsed() < Duration::from_secs(4));

    // An idle h2c connection is closed too (GOAWAY, then EOF).
    let mut s = TcpStream::connect(gw.public).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let t = Instant::now();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "idle h2 connection kept"
    );
    assert!(all.len() >= 9, "no h2 frames before close");

    // A client that never finishes its headers is dropped.
    let mut s = TcpStream::connect(gw.public).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /_fn/health HTTP/1.1\r\nhost").unwrap();
    let t = Instant::now();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    assert!(t.elapsed() < Duration::from_secs(4), "slow headers not cut");
}

#[test]
fn graceful_shutdown_finishes_the_request_in_flight() {
    let dir = fixture();
    let mut gw = Gateway::start(dir.path());
    let mut s = TcpStream::connect(gw.public).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // `Expect: 100-continue` tells us when the gateway is inside the request (reading
    // the body), so the signal provably arrives mid-request.
    s.write_all(
        b"POST /hello HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    gw.signal("TERM");
    assert!(gw.wait_log("shutting down", Duration::from_secs(5)));
    // New connections are refused while the old one finishes.
    assert!(
        wait_until(Duration::from_secs(5), || TcpStream::connect(gw.public)
            .is_err()),
        "still accepting after SIGTERM"
    );
    s.write_all(b"hello").unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    assert!(
        text.starts_with("HTTP/1.1 "),
        "no answer to the in-flight request: {text:?}"
    );
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("gateway exits");
    assert!(status.success(), "{status:?}");
}

#[test]
fn bad_config_names_file_key_and_fix() {
    let dir = fixture();
    write_tree(
        dir.path(),
        &[(
            "edgefn.toml",
            "[server]\nlisten = \"nowhere\"\n[admin]\nport = 1\n",
        )],
    );
    let out = Command::new(support::BIN)
        .args(["serve", "--config"])
        .arg(dir.path().join("edgefn.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("edgefn.toml"), "{err}");
    assert!(err.contains("unknown field `port`"), "{err}");
}

#[test]
fn connection_cap_holds_new_connections_until_one_closes() {
    let dir = fixture();
    write_tree(
        dir.path(),
        &[("edgefn.toml", "[server]\nmax_connections = 1\n")],
    );
    let gw = Gateway::start_with_config(&dir.path().join("edgefn.toml"), dir.path());
    let request = b"GET /_fn/health HTTP/1.1\r\nhost: x\r\n\r\n";
    let mut first = TcpStream::connect(gw.public).unwrap();
    first.write_all(request).unwrap();
    let mut buf = [0u8; 1024];
    assert!(first.read(&mut buf).unwrap() > 0);

    // The second connection waits in the kernel backlog: no answer while the first is open.
    let mut second = TcpStream::connect(gw.public).unwrap();
    second.write_all(request).unwrap();
    second
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(second.read(&mut buf).is_err(), "answered above the cap");

    drop(first);
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let n = second.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

#[test]
fn header_read_timeout_is_separate_from_idle_and_spares_h2() {
    let dir = fixture();
    write_tree(
        dir.path(),
        &[(
            "edgefn.toml",
            "[server]\nidle_timeout_ms = 20000\nheader_read_timeout_ms = 300\n",
        )],
    );
    let gw = Gateway::start_with_config(&dir.path().join("edgefn.toml"), dir.path());
    let mut buf = [0u8; 4096];

    // A head that never completes, on a fresh connection and after a served request.
    for warm in [false, true] {
        let mut s = TcpStream::connect(gw.public).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        if warm {
            s.write_all(b"GET /_fn/health HTTP/1.1\r\nhost: x\r\n\r\n")
                .unwrap();
            let n = s.read(&mut buf).unwrap();
            assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        }
        s.write_all(b"GET /_fn/health HTTP/1.1\r\nhost").unwrap();
        let t = Instant::now();
        assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "warm={warm}");
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "slow head not cut (warm={warm}): {:?}",
            t.elapsed()
        );
    }

    // An h2c connection sending no request is idle, not a slow head: still open well past
    // the header-read timeout.
    let mut s = TcpStream::connect(gw.public).unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => panic!("h2 connection closed by the header-read timeout"),
            Ok(_) => {}
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "{e}"
            ),
        }
    }
}

/// `[server] runtime`: `auto` runs on one thread when the process may use one CPU only
/// (started under `taskset -c 0`), and either flavour can be forced; each serves workers'
/// answers, refusals and many clients at once the same way.
#[test]
fn runtime_flavor_follows_the_cpu_affinity_and_can_be_forced() {
    let dir = fixture();
    let cases = [
        ("auto", true, "current_thread"),
        ("multi_thread", true, "multi_thread"),
        ("current_thread", false, "current_thread"),
    ];
    for (flavor, pinned, expected) in cases {
        let toml = dir.path().join(format!("edgefn-{flavor}.toml"));
        std::fs::write(&toml, format!("[server]\nruntime = \"{flavor}\"\n")).unwrap();
        let wrapper: &[&str] = if pinned { &["taskset", "-c", "0"] } else { &[] };
        let args = [
            "--config",
            toml.to_str().unwrap(),
            "--functions",
            dir.path().to_str().unwrap(),
        ];
        let gw = Gateway::try_start_wrapped(wrapper, "127.0.0.1:0", &args, &[])
            .unwrap_or_else(|e| panic!("{flavor} (taskset from util-linux needed): {e}"));
        assert!(
            gw.wait_log(&format!("runtime=\"{expected}\""), Duration::from_secs(10)),
            "{flavor}, pinned {pinned}: expected {expected}:\n{}",
            gw.logs()
        );
        let answers = support::concurrent(16, |i| {
            let path = if i % 2 == 0 { "/hello" } else { "/nope" };
            let r = client().get(gw.url(path)).send().unwrap();
            (r.status().as_u16(), r.text().unwrap())
        });
        for (i, (status, body)) in answers.iter().enumerate() {
            match i % 2 {
                0 => assert_eq!((*status, body.as_str()), (200, "hello"), "{flavor}"),
                _ => assert_eq!(*status, 404, "{flavor}: {body}"),
            }
        }
    }
}
