//! Idle and header-read tracking for one connection, at request boundaries: the service
//! stamps the start and end of every request and counts those in flight (the HTTP/1 front
//! stamps each answer it writes), and [`watch`]
//! resolves once no request has started or ended for the idle timeout and none is in
//! flight (a slow function is not idle). IO does not count as activity: h2 keep-alive
//! pings would otherwise keep an unused connection open for ever.
//!
//! The HTTP/1 header-read timeout lives here too: [`Tracked`] stamps the first bytes read
//! while no request is in flight, and a head not complete within the timeout closes the
//! connection. A new connection starts with its clock running, so one that sends nothing
//! at all is closed at the header-read timeout too (not only at the idle timeout); an h2
//! preface stops it. hyper's own timeout arms a boxed timer per request; this costs one atomic
//! per read and one timer per connection.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

static EPOCH: OnceLock<Instant> = OnceLock::new();

fn now_ms() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

#[derive(Debug)]
pub struct Activity {
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
    /// When the bytes of a not-yet-parsed request head started arriving (0: none).
    head_started_ms: AtomicU64,
    /// Set from the first bytes: an h2 connection has no header-read timeout.
    h2: AtomicBool,
    seen_first_read: AtomicBool,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            last_ms: AtomicU64::new(now_ms()),
            in_flight: AtomicUsize::new(0),
            head_started_ms: AtomicU64::new(now_ms().max(1)),
            h2: AtomicBool::new(false),
            seen_first_read: AtomicBool::new(false),
        })
    }

    fn touch(&self) {
        self.last_ms.store(now_ms(), Ordering::Relaxed);
        self.head_started_ms.store(0, Ordering::Relaxed);
    }

    fn on_read(&self, first_bytes: &[u8], stamp_head: bool) {
        if !self.seen_first_read.load(Ordering::Relaxed) {
            self.seen_first_read.store(true, Ordering::Relaxed);
            const PREFACE: &[u8] = b"PRI * HTTP/2.0";
            let n = first_bytes.len().min(PREFACE.len());
            if n > 0 && first_bytes[..n] == PREFACE[..n] {
                self.h2.store(true, Ordering::Relaxed);
                self.head_started_ms.store(0, Ordering::Relaxed);
            }
        }
        if stamp_head
            && self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started_ms.load(Ordering::Relaxed) == 0
            && !self.h2.load(Ordering::Relaxed)
        {
            self.head_started_ms
                .store(now_ms().max(1), Ordering::Relaxed);
        }
    }

    /// A request answered at `now` without entering the service (the HTTP/1 front, which
    /// has just read the clock for its metrics).
    pub fn answered_at(&self, now: Instant) {
        let ms = now
            .saturating_duration_since(*EPOCH.get_or_init(Instant::now))
            .as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
        self.head_started_ms.store(0, Ordering::Relaxed);
    }

    /// The start of a further head is already buffered: its header-read clock runs from
    /// now, not from the next read (which a slow client may never send).
    pub fn head_waiting(&self) {
        if self.head_started_ms.load(Ordering::Relaxed) == 0 {
            self.head_started_ms
                .store(now_ms().max(1), Ordering::Relaxed);
        }
    }

    /// Marks a request in flight until the returned guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }
}

pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// Why [`watch`] resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// No request for the idle timeout: close gracefully.
    Idle,
    /// An HTTP/1 request head did not arrive within the header-read timeout: drop.
    HeaderRead,
}

/// Resolves when the connection has been idle for `idle`, or a request head has been
/// arriving for longer than `header_read`.
pub async fn watch(activity: &Activity, idle: Duration, header_read: Duration) -> Expired {
    let idle_ms = idle.as_millis() as u64;
    let header_ms = header_read.as_millis() as u64;
    loop {
        let now = now_ms();
        if activity.in_flight.load(Ordering::Relaxed) == 0 {
            let head = activity.head_started_ms.load(Ordering::Relaxed);
            if head != 0 && now.saturating_sub(head) >= header_ms {
                return Expired::HeaderRead;
            }
            if now.saturating_sub(activity.last_ms.load(Ordering::Relaxed)) >= idle_ms {
                return Expired::Idle;
            }
        }
        let idle_for = now.saturating_sub(activity.last_ms.load(Ordering::Relaxed));
        // Wake at least every half header timeout so a head that starts trickling in
        // during a long idle wait is still cut within 1.5x the header timeout.
        let wait = idle_ms
            .saturating_sub(idle_for)
            .max(idle_ms / 4)
            .min(header_ms / 2)
            .max(1);
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

/// The connection's IO, stamping reads into its [`Activity`]. It also carries the bytes
/// the HTTP/1 front read but left to hyper ([`Tracked::rewound`]): hyper reads those first,
/// then the socket (they were stamped when they first arrived).
pub struct Tracked<I> {
    io: I,
    activity: Arc<Activity>,
    rewound: Bytes,
    /// Whether a read starts a head's header-read clock. Not while the HTTP/1 front reads:
    /// it parses every read at once and stamps only a head left incomplete
    /// ([`Activity::head_waiting`]), so a complete request costs no clock read here.
    stamp_heads: bool,
}

impl<I> Tracked<I> {
    pub fn new(io: I, activity: Arc<Activity>) -> Self {
        Tracked {
            io,
            activity,
            rewound: Bytes::new(),
            stamp_heads: true,
        }
    }

    /// The IO of a connection the HTTP/1 front reads first.
    pub fn for_front(mut self) -> Self {
        self.stamp_heads = false;
        self
    }

    /// The same IO with `bytes` to be read again before anything new: hyper's from here
    /// on, so its reads stamp heads again.
    pub fn rewound(mut self, bytes: Bytes) -> Self {
        self.rewound = bytes;
        self.stamp_heads = true;
        self
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.rewound.is_empty() {
            let n = self.rewound.len().min(buf.remaining());
            buf.put_slice(&self.rewound[..n]);
            self.rewound.advance(n);
            if self.rewound.is_empty() {
                // An emptied view still holds the whole copy: an idle connection keeps none.
                self.rewound = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let res = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res {
            if buf.filled().len() > before {
                self.activity
                    .on_read(&buf.filled()[before..], self.stamp_heads);
            }
        }
        res
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn rewound_bytes_come_first_then_the_stream() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b" world").await.unwrap();
        drop(a);
        let mut io = Tracked::new(b, Activity::new()).rewound(Bytes::from_static(b"hello"));
        let mut s = String::new();
        io.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "hello world");
    }
}
