//! Test support shared by the integration tests: starts the real `edgefn` binary on
//! port 0 against a fixture tree, learns its addresses from the start-up line, captures
//! its logs, and stops it on drop. Everything waits with deadlines, never fixed sleeps.
#![allow(dead_code)]

pub mod prometheus;
pub mod raw_http;
pub mod recording;
pub mod redis;
pub mod signers;
pub mod worker;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_edgefn");
/// Seconds a start may take before it is a failure; a test whose start compiles code
/// (Rust functions) raises it.
pub static START_DEADLINE_S: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(60);

pub struct Gateway {
    child: Child,
    pub public: SocketAddr,
    pub admin: SocketAddr,
    pub tls: bool,
    logs: Arc<Mutex<String>>,
}

/// Writes `files` (relative path → content) below `root`.
pub fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (rel, content) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

/// [`write_tree`] for paths and contents built at run time.
pub fn write_tree_owned(root: &Path, files: &[(String, String)]) {
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    write_tree(root, &refs);
}

impl Gateway {
    /// `edgefn serve --functions <dir>` on loopback port 0.
    pub fn start(functions: &Path) -> Gateway {
        Self::start_args(&["--functions", functions.to_str().unwrap()], &[])
    }

    /// With an edgefn.toml (written next to the functions dir by the caller).
    pub fn start_with_config(config: &Path, functions: &Path) -> Gateway {
        Self::start_args(
            &[
                "--config",
                config.to_str().unwrap(),
                "--functions",
                functions.to_str().unwrap(),
            ],
            &[],
        )
    }

    pub fn start_args(extra: &[&str], env: &[(&str, &str)]) -> Gateway {
        Self::try_start(extra, env).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_start(extra: &[&str], env: &[(&str, &str)]) -> Result<Gateway, String> {
        Self::try_start_on("127.0.0.1:0", extra, env)
    }

    /// Like [`Gateway::try_start`] with the public listener on `listen` (admin stays on
    /// loopback), e.g. an address of a test's own veth.
    pub fn try_start_on(
        listen: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Gateway, String> {
        Self::try_start_wrapped(&[], listen, extra, env)
    }

    /// Like [`Gateway::try_start_on`], run through `wrapper` (e.g. `setpriv ... --`).
    pub fn try_start_wrapped(
        wrapper: &[&str],
        listen: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Gateway, String> {
        let gw = Self::launch(wrapper, listen, extra, env)?;
        gw.wait_settled()?;
        Ok(gw)
    }

    /// Started, but not waiting for pending functions (installs, first workers): the
    /// gateway serves the others and answers 503 for those meanwhile.
    pub fn start_unsettled(extra: &[&str], env: &[(&str, &str)]) -> Gateway {
        Self::launch(&[], "127.0.0.1:0", extra, env).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Waits until `/readyz` lists no pending function (dependency installs and first
    /// workers done), so a test's first request meets a warm pool.
    pub fn wait_settled(&self) -> Result<(), String> {
        let settled = wait_until(Duration::from_secs(180), || {
            let r = client().get(self.admin_url("/readyz")).send();
            let Ok(v) = r.and_then(|r| r.json::<serde_json::Value>()) else {
                return false;
            };
            v["pending"].as_array().is_none_or(|p| p.is_empty())
        });
        if settled {
            Ok(())
        } else {
            Err(format!(
                "functions still pending after 180 s; logs:\n{}",
                self.logs()
            ))
        }
    }

    fn launch(
        wrapper: &[&str],
        listen: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Gateway, String> {
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        cmd.arg("serve")
            .args(["--listen", listen, "--admin-listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "info,edgefn=debug,gateway=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {BIN}: {e}"))?;
        let logs = Arc::new(Mutex::new(String::new()));
        let sink = logs.clone();
        let stderr = child.stderr.take().unwrap();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now()
            + Duration::from_secs(START_DEADLINE_S.load(std::sync::atomic::Ordering::Relaxed));
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with("edgefn listening on ") => {
                    let (public, admin, tls) = parse_banner(&line);
                    return Ok(Gateway {
                        child,
                        public,
                        admin,
                        tls,
                        logs,
                    });
                }
                Ok(_) => continue,
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    // The process is gone: its stderr reaches EOF and the reader finishes.
                    let _ = stderr_reader.join();
                    return Err(format!(
                        "edgefn did not start (status {status:?}); logs:\n{}",
                        logs.lock().unwrap()
                    ));
                }
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.public)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Waits until the logs contain `needle` `count` times.
    pub fn wait_log_count(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.logs().matches(needle).count() >= count)
    }

    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        self.wait_log_count(needle, 1, timeout)
    }

    /// Sends a signal by name (`HUP`, `TERM`, ...) with bash's builtin `kill`: no procps
    /// needed (minimal images lack it) and no unsafe code.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("bash")
            .args(["-c", "kill -s \"$0\" \"$1\""])
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -s {sig} failed");
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The admin listener's `/metrics` text.
    pub fn metrics(&self) -> String {
        client()
            .get(self.admin_url("/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap()
    }

    /// The value of one series, given as `name{labels}` exactly as exported.
    pub fn metric(&self, series: &str) -> Option<f64> {
        metric_in(&self.metrics(), series)
    }

    /// The snapshot generation reported by `/readyz`.
    pub fn generation(&self) -> u64 {
        self.readyz()["generation"].as_u64().unwrap()
    }

    /// `/readyz` as JSON (status, functions, generation, connection_limit).
    pub fn readyz(&self) -> serde_json::Value {
        client()
            .get(self.admin_url("/readyz"))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    /// The connection-limit layer `/readyz` reports.
    pub fn connection_limit(&self) -> String {
        self.readyz()["connection_limit"]
            .as_str()
            .expect("connection_limit in /readyz")
            .to_owned()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn parse_banner(line: &str) -> (SocketAddr, SocketAddr, bool) {
    // edgefn listening on http://127.0.0.1:1234 (admin http://127.0.0.1:5678, ...
    let rest = line.trim_start_matches("edgefn listening on ");
    let tls = rest.starts_with("https://");
    let public = rest
        .split("://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let admin = rest
        .split("admin http://")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    (public, admin, tls)
}

/// Polls `f` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// An `fn.env.json` entry marked secret (masked wherever the gateway logs it).
pub fn secret(value: &str) -> serde_json::Value {
    serde_json::json!({"value": value, "is_secret": true})
}

/// GETs `url` and reads its body as JSON.
pub fn get_json(url: &str) -> serde_json::Value {
    client().get(url).send().unwrap().json().unwrap()
}

/// The value of one series in a `/metrics` text (several reads from one scrape agree).
pub fn metric_in(text: &str, series: &str) -> Option<f64> {
    let want = prometheus::parse_series(series);
    prometheus::parse(text)
        .into_iter()
        .find(|(n, l, _)| (n, l) == (&want.0, &want.1))
        .map(|(_, _, v)| v)
}

/// A fresh functions tree holding `files`, served by a gateway with default settings; the
/// tree lives as long as the returned `TempDir`.
pub fn serve_tree(files: &[(&str, &str)]) -> (tempfile::TempDir, Gateway) {
    let dir = tempdir();
    write_tree(dir.path(), files);
    let gw = Gateway::start(dir.path());
    (dir, gw)
}

/// A loopback port that was free a moment ago (for a server the test starts next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs `f(i)` for `i in 0..n` on `n` threads at once and returns the results in order.
pub fn concurrent<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = (0..n).map(|i| s.spawn(move || f(i))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}
