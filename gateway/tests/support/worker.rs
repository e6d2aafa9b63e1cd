//! The gateway's side of the worker protocol (`runtimes/PROTOCOL.md`), for tests that talk
//! to a real worker process directly: bind a Unix socket, start the worker on it, exchange
//! v2 frames. Every wait has a generous deadline and fails with the worker's stderr.

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{repo_root, tempdir, wait_until};

const DEADLINE: Duration = Duration::from_secs(30);
/// The largest frame a worker may send: 64 MiB of body plus room for its header.
const MAX_FRAME: usize = (64 << 20) + (1 << 20);

/// How to start one runtime's worker from the repository.
#[derive(Debug, PartialEq, Eq)]
pub struct Runtime {
    /// What `init` names as the runtime, and what failure messages say.
    pub name: &'static str,
    pub program: &'static str,
    pub script: &'static str,
    /// The handler's file name in the function folder.
    pub file: &'static str,
}

pub const PYTHON: Runtime = Runtime {
    name: "python",
    program: "python3",
    script: "runtimes/python/edgefn_worker.py",
    file: "handler.py",
};

pub const NODE: Runtime = Runtime {
    name: "node",
    program: "node",
    script: "runtimes/node/edgefn-worker.js",
    file: "handler.js",
};

pub const PHP: Runtime = Runtime {
    name: "php",
    program: "php",
    script: "runtimes/php/edgefn-worker.php",
    file: "handler.php",
};

pub const LUA: Runtime = Runtime {
    name: "lua",
    program: "lua5.4",
    script: "runtimes/lua/edgefn-worker.lua",
    file: "handler.lua",
};

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// One length-prefixed frame: `u32 total | u32 header length | JSON header | body`.
pub fn frame(header: &Value, body: &[u8]) -> Vec<u8> {
    let h = serde_json::to_vec(header).unwrap();
    let mut out = Vec::with_capacity(8 + h.len() + body.len());
    out.extend(((4 + h.len() + body.len()) as u32).to_be_bytes());
    out.extend((h.len() as u32).to_be_bytes());
    out.extend(h);
    out.extend(body);
    out
}

/// A v2 `init` for `runtime`; the unknown field proves workers ignore fields added later.
pub fn init_frame(runtime: &str, env: Value, handler_name: Option<&str>) -> Value {
    json!({"type": "init", "version": 2, "function": "f", "runtime": runtime, "env": env,
        "handler_name": handler_name, "a_future_field": true})
}

/// Builds the SDK's echo example (once per test binary) and returns its path.
pub fn sdk_echo_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sdk-example");
            let out = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "edgefn-sdk",
                    "--example",
                    "echo",
                    "--target-dir",
                ])
                .arg(&target)
                .current_dir(repo_root())
                .output()
                .expect("cargo runs");
            assert!(
                out.status.success(),
                "building the SDK example failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            target.join("debug/examples/echo")
        })
        .clone()
}

/// Builds the Go harness (`runtimes/go`) with `source` as the handler, the way the gateway
/// does (`pool/go_build.rs`), into a folder of this test run; returns the binary.
pub fn go_worker_binary(source: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "go-worker-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for name in ["worker.go", "respond.go"] {
        std::fs::copy(repo_root().join("runtimes/go").join(name), dir.join(name)).unwrap();
        files.push(name);
    }
    std::fs::write(dir.join("handler.go"), source).unwrap();
    std::fs::write(
        dir.join("main.go"),
        "package main\n\nfunc main() { edgefnServe(edgefnWrap(handler)) }\n",
    )
    .unwrap();
    files.extend(["handler.go", "main.go"]);
    let out = Command::new("go")
        .args(["build", "-o", "worker"])
        .args(&files)
        .current_dir(&dir)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .output()
        .unwrap_or_else(|e| panic!("cannot run go: {e} (scripts/setup.sh installs golang-go)"));
    assert!(
        out.status.success(),
        "go build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("worker")
}

/// One worker process and the gateway end of its socket; killed on drop.
pub struct Worker {
    /// The runtime `init` names.
    runtime: String,
    child: Child,
    stream: UnixStream,
    stderr: Arc<(Mutex<String>, Condvar)>,
    _dir: tempfile::TempDir,
}

impl Worker {
    /// Writes `source` as the runtime's handler file in a fresh folder and starts its
    /// worker with `concurrency` slots.
    pub fn spawn(rt: &Runtime, source: &str, concurrency: usize) -> Worker {
        let script = repo_root().join(rt.script).display().to_string();
        let argv = [rt.program.into(), script];
        Worker::spawn_argv(rt.name, &argv, rt.file, source, concurrency)
    }

    /// A worker of the SDK's echo example (built ahead of time) with `concurrency` threads.
    pub fn spawn_sdk(concurrency: usize) -> Worker {
        let argv = [sdk_echo_binary().display().to_string()];
        Worker::spawn_argv(
            "rust",
            &argv,
            "handler.rs",
            "// built ahead of time\n",
            concurrency,
        )
    }

    /// A Go worker: `source` built with the harness ([`go_worker_binary`]).
    pub fn spawn_go(source: &str, concurrency: usize) -> Worker {
        let argv = [go_worker_binary(source).display().to_string()];
        Worker::spawn_argv("go", &argv, "handler.go", source, concurrency)
    }

    /// Like [`Worker::spawn`] for any worker command (`argv` before `<socket> <handler>
    /// <concurrency>`), e.g. another runtime's interpreter and script, or a built binary;
    /// `runtime` is what its `init` will name.
    pub fn spawn_argv(
        runtime: &str,
        argv: &[String],
        file: &str,
        source: &str,
        concurrency: usize,
    ) -> Worker {
        let dir = tempdir();
        let handler = dir.path().join(file);
        std::fs::write(&handler, source).unwrap();
        let sock = dir.path().join("w.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        listener.set_nonblocking(true).unwrap();
        let program = &argv[0];
        let mut child = Command::new(program)
            .args(&argv[1..])
            .arg(&sock)
            .arg(&handler)
            .arg(concurrency.to_string())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {program}: {e} (scripts/setup.sh installs it)")
            });
        let stderr = Arc::new((Mutex::new(String::new()), Condvar::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.0
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
                sink.1.notify_all();
            }
        });
        let mut accepted = None;
        let mut exited = None;
        wait_until(DEADLINE, || {
            exited = child.try_wait().unwrap();
            // Accepting after the exit check: a worker that connected and then exited is
            // still accepted from the backlog.
            accepted = listener.accept().ok().map(|(s, _)| s);
            accepted.is_some() || exited.is_some()
        });
        let worker = match accepted {
            Some(stream) => Worker {
                runtime: runtime.to_owned(),
                child,
                stream,
                stderr,
                _dir: dir,
            },
            None => {
                let _ = child.kill();
                let status = exited.or_else(|| child.wait().ok());
                let text = stderr.0.lock().unwrap().clone();
                panic!("{program} worker never connected (exit {status:?}); stderr: {text}");
            }
        };
        worker.stream.set_nonblocking(false).unwrap();
        worker.stream.set_read_timeout(Some(DEADLINE)).unwrap();
        worker
    }

    /// Starts a worker and completes the handshake.
    pub fn start(rt: &Runtime, source: &str, env: Value, handler_name: Option<&str>) -> Worker {
        let mut w = Worker::spawn(rt, source, 1);
        w.handshake(env, handler_name);
        w
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends [`init_frame`] and checks the `ready` answer: protocol 2, this process's pid.
    /// Returns the pid `ready` named.
    pub fn handshake(&mut self, env: Value, handler_name: Option<&str>) -> u32 {
        self.send(&init_frame(&self.runtime, env, handler_name), b"");
        let runtime = self.runtime.clone();
        let (ready, _) = self.recv();
        assert_eq!(
            ready["type"],
            "ready",
            "{runtime}: {ready}; stderr: {}",
            self.stderr()
        );
        assert_eq!(ready["version"], 2, "{runtime}: {ready}");
        let pid = ready["pid"].as_u64();
        assert_eq!(pid, Some(u64::from(self.pid())), "{runtime}: {ready}");
        pid.unwrap() as u32
    }

    pub fn send(&mut self, header: &Value, body: &[u8]) {
        self.send_raw(&frame(header, body));
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next frame from the worker (header, body); panics with its stderr on a
    /// deadline or EOF.
    pub fn recv(&mut self) -> (Value, Vec<u8>) {
        let mut head = [0u8; 8];
        if let Err(e) = self.stream.read_exact(&mut head) {
            panic!("no frame from the worker ({e}); stderr: {}", self.stderr());
        }
        let total = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
        let hlen = u32::from_be_bytes(head[4..].try_into().unwrap()) as usize;
        assert!(
            (4..=MAX_FRAME).contains(&total) && hlen <= total - 4,
            "bad frame sizes {total} {hlen}"
        );
        let mut rest = vec![0u8; total - 4];
        self.stream.read_exact(&mut rest).unwrap();
        let body = rest.split_off(hlen);
        (serde_json::from_slice(&rest).unwrap(), body)
    }

    /// Waits for the worker to exit by itself.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "the worker did not exit; stderr: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.0.lock().unwrap().clone()
    }

    /// Waits until the worker's stderr contains `needle`.
    pub fn wait_stderr(&self, needle: &str) -> bool {
        let (lock, cond) = &*self.stderr;
        let guard = lock.lock().unwrap();
        let (guard, _) = cond
            .wait_timeout_while(guard, DEADLINE, |s| !s.contains(needle))
            .unwrap();
        guard.contains(needle)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
