//! A real `redis-server` for the tests of shared state (cluster limits, OpenFaaS queues).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_until};

/// A `redis-server` child on a loopback port, without persistence; stopped on drop.
pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    /// On a free port.
    pub fn start() -> Redis {
        Self::start_on(free_port())
    }

    /// On `port`, e.g. the port of a server stopped before, to bring it back.
    pub fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server cannot start ({e}); scripts/setup.sh --test installs it")
            });
        let r = Redis { child, port };
        assert!(
            wait_until(Duration::from_secs(60), || r.ping()),
            "redis-server did not answer PING on port {port}"
        );
        r
    }

    pub fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
