//! A v2 driver for one worker process: it plays the gateway's side of the socket (listen,
//! accept one connection, framed JSON headers and raw bodies) with generous deadlines, and
//! the per-runtime fixtures the worker tests share.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{repo_root, tempdir, wait_until};

const DEADLINE: Duration = Duration::from_secs(30);

/// How to start one runtime's worker, and its fixture handlers.
pub struct Rt {
    pub name: &'static str,
    pub program: &'static [&'static str],
    /// The worker script in the repository (none for a built Rust worker).
    pub script: &'static str,
    pub file: &'static str,
    pub echo: &'static str,
    pub broken: &'static str,
}

pub const PHP: Rt = Rt {
    name: "php",
    program: &["php"],
    script: "runtimes/php/edgefn-worker.php",
    file: "handler.php",
    echo: r#"<?php
function handler(array $event, array $params)
{
    switch ($event['query']['form'] ?? '') {
        case 'b64': return ['status' => 201, 'is_base64' => true, 'body' => base64_encode("\x01\x02\xff")];
        case 'json': return ['body' => ['ok' => true, 'n' => 3]];
        case 'text': return ['headers' => ['x-num' => 42], 'body' => 'plain'];
        case 'nil': return null;
        case 'multi': return ['headers' => ['set-cookie' => ['a=1', 'b=2']], 'body' => ''];
        case 'raise': throw new RuntimeException('boom-from-handler');
        case 'badstatus': return ['status' => 'x', 'body' => ''];
        case 'badb64': return ['is_base64' => true, 'body' => '***'];
    }
    $out = $event;
    $out['getenv'] = getenv('GREETING');
    $out['second_arg'] = $params['id'] ?? null;
    return ['status' => 200, 'body' => $out];
}

function custom_entry(array $event): string
{
    return 'custom';
}
"#,
    broken: "<?php\nthrow new RuntimeException('broken-on-load');\n",
};

pub const LUA: Rt = Rt {
    name: "lua",
    program: &["lua5.4"],
    script: "runtimes/lua/edgefn-worker.lua",
    file: "handler.lua",
    echo: r#"
local M = {}

function M.handler(event, params)
  local form = event.query and event.query.form
  if form == "b64" then return { status = 201, is_base64 = true, body = "AQL/" } end
  if form == "json" then return { body = { ok = true, n = 3 } } end
  if form == "text" then return { headers = { ["x-num"] = 42 }, body = "plain" } end
  if form == "nil" then return nil end
  if form == "multi" then return { headers = { ["set-cookie"] = { "a=1", "b=2" } }, body = "" } end
  if form == "raise" then error("boom-from-handler") end
  if form == "badstatus" then return { status = "x" } end
  if form == "badb64" then return { is_base64 = true, body = "***" } end
  local out = {}
  for k, v in pairs(event) do out[k] = v end
  out.getenv = os.getenv("GREETING")
  out.second_arg = params and params.id
  return { status = 200, body = out }
end

function custom_entry(event)
  return "custom"
end

return M
"#,
    broken: "error('broken-on-load')\n",
};

/// One worker process and the gateway end of its socket.
pub struct Driver {
    pub child: Child,
    stream: UnixStream,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Driver {
    pub fn frame(header: &Value, body: &[u8]) -> Vec<u8> {
        let h = serde_json::to_vec(header).unwrap();
        let mut out = Vec::with_capacity(8 + h.len() + body.len());
        out.extend(((4 + h.len() + body.len()) as u32).to_be_bytes());
        out.extend((h.len() as u32).to_be_bytes());
        out.extend(h);
        out.extend(body);
        out
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

    /// A worker of the SDK's echo example with `concurrency` threads.
    pub fn spawn_sdk(concurrency: usize) -> Driver {
        let dir = tempdir();
        let handler = dir.path().join("handler.rs");
        std::fs::write(&handler, "// built ahead of time\n").unwrap();
        let argv = [Self::sdk_echo_binary().display().to_string()];
        Self::spawn_argv(&argv, &handler, dir, concurrency)
    }

    pub fn init(rt: &Rt, env: Value, handler_name: Option<&str>) -> Value {
        json!({"type": "init", "version": 2, "function": "f", "runtime": rt.name, "env": env,
            "handler_name": handler_name, "a_future_field": true})
    }

    /// Writes `source` as the runtime's handler file and starts a worker on it.
    pub fn spawn(rt: &Rt, source: &str) -> Driver {
        let dir = tempdir();
        let handler = dir.path().join(rt.file);
        std::fs::write(&handler, source).unwrap();
        let mut argv: Vec<String> = rt.program.iter().map(|s| s.to_string()).collect();
        if !rt.script.is_empty() {
            argv.push(repo_root().join(rt.script).display().to_string());
        }
        Self::spawn_argv(&argv, &handler, dir, 1)
    }

    pub fn spawn_argv(
        argv: &[String],
        handler: &std::path::Path,
        dir: tempfile::TempDir,
        concurrency: usize,
    ) -> Driver {
        let sock = dir.path().join("w.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stderr = dir.path().join("stderr.txt");
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .arg(&sock)
            .arg(handler)
            .arg(concurrency.to_string())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e} (scripts/setup.sh installs it)",
                    argv[0]
                )
            });
        let mut accepted = None;
        let ok = wait_until(DEADLINE, || {
            accepted = listener.accept().ok().map(|(s, _)| s);
            accepted.is_some()
        });
        let stream = accepted.unwrap_or_else(|| {
            panic!(
                "{} never connected (ok={ok}); stderr: {}",
                argv[0],
                std::fs::read_to_string(&stderr).unwrap_or_default()
            )
        });
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        Driver {
            child,
            stream,
            stderr,
            _dir: dir,
        }
    }

    /// Starts a worker and completes the handshake, checking the ready frame.
    pub fn start(rt: &Rt, source: &str, env: Value, handler_name: Option<&str>) -> Driver {
        let mut d = Self::spawn(rt, source);
        d.handshake(rt.name, env, handler_name);
        d
    }

    pub fn handshake(&mut self, name: &str, env: Value, handler_name: Option<&str>) {
        let init = json!({"type": "init", "version": 2, "function": "f", "runtime": name, "env": env,
            "handler_name": handler_name, "a_future_field": true});
        self.send(&init, b"");
        let (ready, _) = self.recv();
        assert_eq!(
            ready["type"],
            "ready",
            "{name}: {ready}; stderr: {}",
            self.stderr_text()
        );
        assert_eq!(ready["version"], 2, "{name}: {ready}");
        assert_eq!(
            ready["pid"].as_u64(),
            Some(u64::from(self.child.id())),
            "{name}: {ready}"
        );
    }

    pub fn send(&mut self, header: &Value, body: &[u8]) {
        self.write_raw(&Self::frame(header, body));
    }

    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next frame from the worker (panics with its stderr on a deadline or EOF).
    pub fn recv(&mut self) -> (Value, Vec<u8>) {
        let mut head = [0u8; 8];
        if let Err(e) = self.stream.read_exact(&mut head) {
            panic!(
                "no frame from the worker: {e}; stderr: {}",
                self.stderr_text()
            );
        }
        let total = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
        let hlen = u32::from_be_bytes(head[4..].try_into().unwrap()) as usize;
        assert!(
            total <= (65 << 20) && hlen <= total - 4,
            "bad frame sizes {total} {hlen}"
        );
        let mut rest = vec![0u8; total - 4];
        self.stream.read_exact(&mut rest).unwrap();
        let body = rest.split_off(hlen);
        (serde_json::from_slice(&rest).unwrap(), body)
    }

    pub fn wait_exit(&mut self) -> Option<i32> {
        let started = Instant::now();
        while started.elapsed() < DEADLINE {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn stderr_has(&self, needle: &str) -> bool {
        wait_until(DEADLINE, || self.stderr_text().contains(needle))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
