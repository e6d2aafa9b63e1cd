//! The gateway's side of the worker protocol, for tests that talk to a real worker process
//! directly: bind a Unix socket, start the worker script from `runtimes/` on it, exchange
//! frames. Every wait has a generous deadline and fails with the worker's stderr.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(30);
const MAX_FRAME: usize = (64 << 20) + (1 << 20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Python,
    Node,
}

pub struct Worker {
    child: Child,
    stream: UnixStream,
    stderr: Arc<(Mutex<String>, Condvar)>,
    _dir: tempfile::TempDir,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

impl Worker {
    /// Writes `source` as `file` in a fresh folder and starts the worker for it.
    pub fn spawn(lang: Lang, file: &str, source: &str, concurrency: usize) -> Worker {
        let (program, script) = match lang {
            Lang::Python => ("python3", "runtimes/python/edgefn_worker.py"),
            Lang::Node => ("node", "runtimes/node/edgefn-worker.js"),
        };
        let script = repo_root().join(script);
        Worker::spawn_argv(
            &[program.into(), script.display().to_string()],
            file,
            source,
            concurrency,
        )
    }

    /// Like [`Worker::spawn`] for any worker command (`argv` before `<socket> <handler>
    /// <concurrency>`), e.g. another runtime's interpreter and script, or a built binary.
    pub fn spawn_argv(argv: &[String], file: &str, source: &str, concurrency: usize) -> Worker {
        let dir = tempfile::tempdir().unwrap();
        let handler = dir.path().join(file);
        std::fs::write(&handler, source).unwrap();
        let sock = dir.path().join("w.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let program = &argv[0];
        let mut child = Command::new(program)
            .args(&argv[1..])
            .arg(&sock)
            .arg(&handler)
            .arg(concurrency.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
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
        listener.set_nonblocking(true).unwrap();
        let start = Instant::now();
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("accept: {e}"),
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("{program} worker exited before connecting ({status})");
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{program} worker never connected"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        Worker {
            child,
            stream,
            stderr,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a v2 `init` with `env`; returns the pid from `ready`.
    pub fn init(&mut self, env: Value) -> u32 {
        self.send(
            &json!({"type": "init", "version": 2, "function": "t", "runtime": "test",
                    "env": env, "handler_name": null}),
            b"",
        );
        let (h, _) = self.recv();
        assert_eq!(h["type"], "ready", "{h}; stderr: {}", self.stderr());
        assert_eq!(h["version"], 2, "{h}");
        h["pid"].as_u64().unwrap() as u32
    }

    pub fn send(&mut self, header: &Value, body: &[u8]) {
        let h = serde_json::to_vec(header).unwrap();
        let mut frame = Vec::with_capacity(8 + h.len() + body.len());
        frame.extend_from_slice(&((4 + h.len() + body.len()) as u32).to_be_bytes());
        frame.extend_from_slice(&(h.len() as u32).to_be_bytes());
        frame.extend_from_slice(&h);
        frame.extend_from_slice(body);
        self.send_raw(&frame);
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next frame from the worker (header, body).
    pub fn recv(&mut self) -> (Value, Vec<u8>) {
        let mut head = [0u8; 8];
        if let Err(e) = self.stream.read_exact(&mut head) {
            panic!("no frame from the worker ({e}); stderr: {}", self.stderr());
        }
        let total = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
        let hlen = u32::from_be_bytes(head[4..].try_into().unwrap()) as usize;
        assert!(
            (4..=MAX_FRAME).contains(&total) && hlen <= total - 4,
            "bad frame"
        );
        let mut rest = vec![0u8; total - 4];
        self.stream.read_exact(&mut rest).unwrap();
        let body = rest.split_off(hlen);
        (serde_json::from_slice(&rest).unwrap(), body)
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < DEADLINE, "the worker did not exit");
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
