//! The process's log writer: every formatted line (access log, function output, gateway
//! events) is appended to an in-memory buffer on the thread that logged it, and one
//! background thread writes the buffer to stderr in batches.
//!
//! A request never waits on stderr: appending is a copy under a mutex that the writer
//! holds only to swap buffers. When stderr is slower than the lines arrive (a full pipe,
//! a stalled collector) the buffer fills, and further lines are dropped whole and counted
//! (`edgefn_log_dropped_total`) instead of blocking. The writer writes on a [`TICK`]
//! (everything buffered, with one `write_all`), or as soon as the buffer is half full; a
//! request only wakes it for that, or for the first line after an idle spell (the writer
//! sleeps without a deadline while nothing is buffered, so an idle gateway does not wake
//! it at all). Under steady traffic no request pays for a wake-up. Event lines (warnings,
//! errors, function output: everything but the access log) are rare and read by people
//! waiting for them: the first one of a batch has the writer write at once.
//! [`LogSink::flush`] drains it synchronously at shutdown.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

use crate::metrics::names;

/// Bytes of formatted lines held while the writer is behind; past this, lines drop.
pub const BUFFER_BYTES: usize = 1 << 20;
/// The longest a line waits in the buffer before it is written (nginx's `flush=1s`).
pub const TICK: Duration = Duration::from_secs(1);

struct Shared {
    state: Mutex<State>,
    /// Signalled when the buffer passes half full, a flush is asked, or the first line
    /// lands while the writer sleeps without a deadline.
    wake: Condvar,
    /// Signalled by the writer after each batch it wrote.
    written: Condvar,
    dropped: AtomicU64,
}

struct State {
    buf: Vec<u8>,
    /// Batches the writer has taken out of `buf`, and of those, written: `flush` waits
    /// until the batch holding what is in `buf` now (or the one being written) is written.
    taken: u64,
    batches: u64,
    flush_asked: bool,
    /// The writer found nothing at its last tick and sleeps until a line arrives.
    writer_idle: bool,
    /// An event line is buffered: the writer writes without waiting for the tick.
    urgent: bool,
}

/// A cloneable handle: the `MakeWriter` of the subscriber and the shutdown flush.
#[derive(Clone)]
pub struct LogSink {
    shared: Arc<Shared>,
    capacity: usize,
}

impl LogSink {
    /// Starts the writer thread over `out` (stderr in the gateway, a pipe in tests).
    pub fn spawn<W: Write + Send + 'static>(out: W, capacity: usize) -> std::io::Result<LogSink> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buf: Vec::with_capacity(capacity),
                taken: 0,
                batches: 0,
                flush_asked: false,
                writer_idle: false,
                urgent: false,
            }),
            wake: Condvar::new(),
            written: Condvar::new(),
            dropped: AtomicU64::new(0),
        });
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_loop(&writer, out, capacity))?;
        Ok(LogSink { shared, capacity })
    }

    /// Lines dropped because the writer was behind, since start.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Appends one formatted line (or drops it whole when it does not fit), written by
    /// the next tick.
    pub(crate) fn append(&self, line: &[u8]) {
        self.push(line, false);
    }

    /// Appends an event line, written as soon as the writer gets to it.
    pub(crate) fn append_now(&self, line: &[u8]) {
        self.push(line, true);
    }

    fn push(&self, line: &[u8], now: bool) {
        let mut st = lock(&self.shared.state);
        let before = st.buf.len();
        if before + line.len() > self.capacity {
            drop(st);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(names::LOG_DROPPED_TOTAL).increment(1);
            return;
        }
        st.buf.extend_from_slice(line);
        let half = self.capacity / 2;
        let mut wake = (before == 0 && st.writer_idle) || (before < half && st.buf.len() >= half);
        if now && !st.urgent {
            st.urgent = true;
            wake = true;
        }
        if wake {
            st.writer_idle = false;
        }
        drop(st);
        if wake {
            self.shared.wake.notify_one();
        }
    }

    /// Writes everything appended so far; waits at most `limit` (a stuck stderr must not
    /// hold up shutdown forever).
    pub fn flush(&self, limit: Duration) {
        let mut st = lock(&self.shared.state);
        let target = st.taken + u64::from(!st.buf.is_empty());
        st.flush_asked = true;
        self.shared.wake.notify_one();
        let deadline = std::time::Instant::now() + limit;
        while st.batches < target {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            st = match self.shared.written.wait_timeout(st, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn write_loop<W: Write>(shared: &Shared, mut out: W, capacity: usize) {
    let mut spare: Vec<u8> = Vec::with_capacity(capacity);
    let half = capacity / 2;
    loop {
        let mut st = lock(&shared.state);
        let mut tick = Instant::now() + TICK;
        // Until the tick, unless the buffer fills or a flush is asked; past a tick with
        // nothing buffered, sleep until the next line, then give it a tick's company.
        while !st.flush_asked && !st.urgent && st.buf.len() < half {
            let now = Instant::now();
            if now < tick {
                st = match shared.wake.wait_timeout(st, tick - now) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            } else if st.buf.is_empty() {
                st.writer_idle = true;
                while st.writer_idle && !st.flush_asked && !st.urgent {
                    st = shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                st.writer_idle = false;
                tick = Instant::now() + TICK;
            } else {
                break;
            }
        }
        std::mem::swap(&mut st.buf, &mut spare);
        st.taken += 1;
        st.flush_asked = false;
        st.urgent = false;
        drop(st);
        if !spare.is_empty() {
            // A failed write (stderr closed) loses this batch; there is nowhere to report it.
            let _ = out.write_all(&spare).and_then(|()| out.flush());
            spare.clear();
        }
        let mut st = lock(&shared.state);
        st.batches += 1;
        drop(st);
        shared.written.notify_all();
    }
}

/// One writer per formatted event: tracing-subscriber formats a whole line into its
/// own buffer and writes it with one `write_all`, which lands here as one `append`.
pub struct LineWriter<'a> {
    sink: &'a LogSink,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.sink.append_now(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter { sink: self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A writer that blocks until the test lets it go, then forwards what it got.
    struct Gate {
        open: mpsc::Receiver<()>,
        out: mpsc::Sender<Vec<u8>>,
    }

    impl Write for Gate {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let _ = self.open.recv();
            let _ = self.out.send(b.to_vec());
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A 1 KiB sink over a gate already opened for 16 writes; the sender keeps it open.
    fn open_sink() -> (LogSink, mpsc::Receiver<Vec<u8>>, mpsc::Sender<()>) {
        let (open_tx, open) = mpsc::channel();
        let (out, rx) = mpsc::channel();
        let sink = LogSink::spawn(Gate { open, out }, 1024).unwrap();
        for _ in 0..16 {
            open_tx.send(()).unwrap();
        }
        (sink, rx, open_tx)
    }

    fn collect(rx: &mpsc::Receiver<Vec<u8>>) -> Vec<u8> {
        let mut all = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            all.extend(chunk);
        }
        all
    }

    #[test]
    fn lines_are_written_in_order_by_flush() {
        let (sink, rx, _open) = open_sink();
        let mut w = sink.make_writer();
        w.write_all(b"one\n").unwrap();
        w.write_all(b"two\n").unwrap();
        sink.flush(Duration::from_secs(10));
        assert_eq!(collect(&rx), b"one\ntwo\n");
        assert_eq!(sink.dropped(), 0);
    }

    #[test]
    fn a_stuck_writer_drops_whole_lines_and_counts_them() {
        let (open_tx, open) = mpsc::channel();
        let (out, rx) = mpsc::channel();
        let sink = LogSink::spawn(Gate { open, out }, 64).unwrap();
        let mut w = sink.make_writer();
        // The first batch is taken by the writer, which then blocks in `write`.
        w.write_all(b"first line\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !lock(&sink.shared.state).buf.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "writer never took the batch"
            );
            std::thread::yield_now();
        }
        // Now the buffer fills: 6 lines of 10 bytes fit in 64, the rest drop.
        for _ in 0..10 {
            w.write_all(b"123456789\n").unwrap();
        }
        assert_eq!(sink.dropped(), 4);
        for _ in 0..16 {
            open_tx.send(()).unwrap();
        }
        sink.flush(Duration::from_secs(10));
        let got = collect(&rx);
        assert_eq!(got.len(), 11 + 6 * 10, "{}", String::from_utf8_lossy(&got));
        assert!(got.starts_with(b"first line\n"));
    }

    #[test]
    fn lines_reach_the_writer_by_the_tick_without_a_flush() {
        let (sink, rx, _open) = open_sink();
        // The first line after an idle spell wakes the writer; the next ones ride along.
        for line in [&b"a\n"[..], b"b\n", b"c\n"] {
            sink.append(line);
        }
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + TICK * 10;
        while got.len() < 6 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            got.extend(rx.recv_timeout(left).expect("written by the tick"));
        }
        assert_eq!(got, b"a\nb\nc\n");
    }

    #[test]
    fn an_event_line_is_written_without_waiting_for_the_tick() {
        let (sink, rx, _open) = open_sink();
        // An access line waits for the tick; the event line after it takes it along.
        sink.append(b"access\n");
        sink.make_writer().write_all(b"warning\n").unwrap();
        let got = rx
            .recv_timeout(TICK * 3 / 4)
            .expect("written before the tick");
        assert_eq!(got, b"access\nwarning\n");
    }

    #[test]
    fn flush_gives_up_on_a_writer_that_never_returns() {
        let (_open_tx, open) = mpsc::channel();
        let (out, _rx) = mpsc::channel();
        let sink = LogSink::spawn(Gate { open, out }, 64).unwrap();
        sink.make_writer().write_all(b"x\n").unwrap();
        let t = std::time::Instant::now();
        sink.flush(Duration::from_millis(200));
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
