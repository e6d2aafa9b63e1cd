//! The worker's end of a Unix socket, split so that the gateway is woken only when a
//! reply arrives. A tokio `UnixStream` is registered for readability and writability
//! together, edge-triggered, so every time the worker reads a request the freed send
//! space wakes the gateway for nothing (an extra `epoll_wait` and two context switches
//! per request when both share a core). Here the reading side is registered for
//! readability only, and the writing side writes straight to the non-blocking socket,
//! registering for writability only while a frame does not fit in the socket buffer.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, Interest, ReadBuf};

/// Reads; registered for readability only.
pub struct ReadHalf(AsyncFd<UnixStream>);

/// Writes; never registered while writes succeed at once.
pub struct WriteHalf(UnixStream);

/// Splits an accepted (non-blocking) stream; the halves share one socket.
pub fn split(stream: tokio::net::UnixStream) -> io::Result<(ReadHalf, WriteHalf)> {
    let stream = stream.into_std()?;
    let writer = stream.try_clone()?;
    let reader = register(stream, Interest::READABLE)?;
    Ok((ReadHalf(reader), WriteHalf(writer)))
}

/// tokio's safe registration (deprecated for types whose descriptor may be closed while
/// registered). Sound here: the reader owns its stream, and the writer's registration
/// is a local of a method borrowing the stream that owns the descriptor.
#[allow(deprecated)]
fn register<T: AsRawFd>(fd: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    AsyncFd::with_interest(fd, interest)
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let want = unfilled.len();
            match guard.try_io(|fd| fd.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    // A short read drained the socket: the next read waits for the next
                    // edge instead of trying (and failing) once more, as tokio's own
                    // streams do.
                    if n > 0 && n < want {
                        guard.clear_ready();
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl WriteHalf {
    /// Writes every byte of `bufs` (one `writev` when the socket has room).
    pub async fn write_all_vectored(&self, bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
        let mut bufs = bufs;
        let mut parked: Option<AsyncFd<RawFd>> = None;
        while !bufs.is_empty() {
            let written = match &parked {
                None => (&self.0).write_vectored(bufs),
                Some(fd) => {
                    let mut guard = fd.writable().await?;
                    match guard.try_io(|_| (&self.0).write_vectored(bufs)) {
                        Ok(r) => r,
                        Err(_would_block) => continue,
                    }
                }
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut bufs, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && parked.is_none() => {
                    // Registering reports the socket writable at once if room appeared
                    // meanwhile: no wake-up is lost.
                    parked = Some(register(self.0.as_raw_fd(), Interest::WRITABLE)?);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub async fn write_all(&self, frame: &[u8]) -> io::Result<()> {
        self.write_all_vectored(&mut [IoSlice::new(frame)]).await
    }

    /// Ends the gateway's side: the worker reads EOF and exits on its own.
    pub fn shutdown(&self) -> io::Result<()> {
        self.0.shutdown(std::net::Shutdown::Write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A frame larger than the socket buffer is written whole while the peer reads
    /// slowly; a short read leaves nothing unread.
    #[tokio::test]
    async fn large_writes_park_and_finish() {
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        let (_ra, wa) = split(a).unwrap();
        let (mut rb, _wb) = split(b).unwrap();
        let big = vec![7u8; 4 << 20];
        let write = async {
            let (head, body) = big.split_at(10);
            let mut bufs = [IoSlice::new(head), IoSlice::new(body)];
            wa.write_all_vectored(&mut bufs).await.unwrap();
            wa.shutdown().unwrap();
        };
        let read = async {
            let mut got = Vec::new();
            rb.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((), got) = tokio::join!(write, read);
        assert_eq!(got.len(), big.len());
        assert!(got.iter().all(|&b| b == 7));
    }
}
