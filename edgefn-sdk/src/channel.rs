//! Frames on the worker socket: `u32 BE total | u32 BE header length | JSON header | body`.
//! Sizes are checked before anything is allocated; writes are whole frames under one lock
//! so answers from several threads never interleave.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;

use serde_json::Value;

/// The largest request frame the gateway may send (64 MiB body + 1 MiB header).
pub const MAX_FRAME: usize = (64 << 20) + (1 << 20);

pub struct Reader(UnixStream);

impl Reader {
    pub fn new(stream: UnixStream) -> Reader {
        Reader(stream)
    }

    /// The next frame, or `None` when the gateway closed the socket.
    pub fn read(&mut self) -> io::Result<Option<(Value, Vec<u8>)>> {
        let mut head = [0u8; 8];
        match self.0.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let total = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let hlen = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if !(4..=MAX_FRAME).contains(&total) || hlen > total - 4 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("oversized or malformed frame from the gateway ({total} bytes)"),
            ));
        }
        let mut header = vec![0u8; hlen];
        self.0.read_exact(&mut header)?;
        let mut body = vec![0u8; total - 4 - hlen];
        self.0.read_exact(&mut body)?;
        let header = serde_json::from_slice(&header).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("frame header: {e}"))
        })?;
        Ok(Some((header, body)))
    }
}

pub struct Writer(Mutex<UnixStream>);

impl Writer {
    pub fn new(stream: UnixStream) -> Writer {
        Writer(Mutex::new(stream))
    }

    pub fn send(&self, header: &Value, body: &[u8]) -> io::Result<()> {
        let h = serde_json::to_vec(header)?;
        let mut frame = Vec::with_capacity(8 + h.len() + body.len());
        frame.extend_from_slice(&((4 + h.len() + body.len()) as u32).to_be_bytes());
        frame.extend_from_slice(&(h.len() as u32).to_be_bytes());
        frame.extend_from_slice(&h);
        frame.extend_from_slice(body);
        let mut stream = self.0.lock().unwrap_or_else(|p| p.into_inner());
        stream.write_all(&frame)
    }
}
