//! Raw HTTP/1 over a plain TCP socket, for what an HTTP client library will not do
//! (hang up mid-request, send malformed or partial requests).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Connects and writes `request` as is; the caller decides when to read or hang up.
pub fn send(addr: SocketAddr, request: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request).expect("write request");
    s
}

/// Sends `request` and reads until the server closes (send `Connection: close`).
pub fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = send(addr, request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}
