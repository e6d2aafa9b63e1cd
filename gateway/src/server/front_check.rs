//! A differential check of the HTTP/1 front for fuzzing (`gateway/fuzz`, target
//! `h1_pipelined`) and unit tests: many requests pipelined in one buffer are fed to a
//! real [`Front`] twice — in one read with every write taken whole, and in reads and
//! writes of a few bytes each (so the output bound and the backlog are exercised) — and
//! both runs must give the same answers (statuses, in order), the same outcome, and the
//! same bytes handed to hyper. The IO is in memory and always ready: no runtime needed.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use arc_swap::ArcSwap;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::body::BodyLimits;
use super::front::{Front, FrontCtx, Outcome};
use super::idle::Activity;
use super::pipeline::State;
use crate::metrics::{FrontMetrics, FunctionMetrics};
use crate::snapshot::Snapshot;

/// Always-ready IO over a fixed input, reading and writing at most `step` bytes a call.
struct MemIo {
    input: Vec<u8>,
    pos: usize,
    read_step: usize,
    write_step: usize,
    written: Vec<u8>,
}

impl AsyncRead for MemIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (self.input.len() - self.pos)
            .min(self.read_step)
            .min(buf.remaining());
        let pos = self.pos;
        buf.put_slice(&self.input[pos..pos + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MemIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let n = buf.len().min(self.write_step);
        self.written.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What one run gave: answer statuses in order, and the bytes left to hyper (if any).
#[derive(Debug, PartialEq, Eq)]
struct Run {
    statuses: Vec<u16>,
    handover: Option<Vec<u8>>,
}

fn run(state: &Arc<State>, input: &[u8], read_step: usize, write_step: usize) -> Run {
    let io = MemIo {
        input: input.to_vec(),
        pos: 0,
        read_step,
        write_step,
        written: Vec::new(),
    };
    let ctx = FrontCtx {
        state: state.clone(),
        peer: IpAddr::from([127, 0, 0, 1]),
    };
    let mut front = Front::new(io, ctx, Activity::new());
    let mut cx = Context::from_waker(Waker::noop());
    // Always-ready IO never leaves the front waiting: one poll runs it to the end.
    let (written, handover) = match Pin::new(&mut front).poll(&mut cx) {
        Poll::Ready(Outcome::Closed) => (front.into_io().written, None),
        Poll::Ready(Outcome::Handover(io, rest, _)) => {
            let mut rest = rest.to_vec();
            rest.extend_from_slice(&io.input[io.pos..]);
            (io.written, Some(rest))
        }
        Poll::Pending => panic!("the front waited on always-ready IO"),
    };
    Run {
        statuses: statuses(&written),
        handover,
    }
}

/// The statuses of the HTTP/1.1 answers in `out`, framed by their Content-Length.
fn statuses(mut out: &[u8]) -> Vec<u16> {
    let mut found = Vec::new();
    while !out.is_empty() {
        let mut fields = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut fields);
        let Ok(httparse::Status::Complete(n)) = resp.parse(out) else {
            let shown = &out[..out.len().min(300)];
            panic!(
                "the front wrote a broken answer: {:?}",
                String::from_utf8_lossy(shown)
            );
        };
        let len: usize = resp
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
            .unwrap_or(0);
        found.push(resp.code.unwrap_or(0));
        // A HEAD answer has no body: the next answer follows at once (a JSON body never
        // starts with a status line).
        let head_only = out[n..].starts_with(b"HTTP/1.1 ");
        let body = if head_only { 0 } else { len };
        out = &out[(n + body).min(out.len())..];
    }
    found
}

/// The state of a listener with no functions (every function path is a 404).
pub fn empty_state() -> Arc<State> {
    Arc::new(State {
        store: Arc::new(ArcSwap::from_pointee(Snapshot::empty())),
        unmatched: FunctionMetrics::unmatched(),
        front: FrontMetrics::register(),
        access_log: false,
        body: BodyLimits::default(),
        cluster: None,
        openfaas: false,
        async_queue: None,
        tls: false,
    })
}

/// `data[0]` picks the small read/write sizes, `data[1]` how often the rest is repeated
/// (pipelined); panics when the two runs disagree.
pub fn pipelined(state: &Arc<State>, data: &[u8]) {
    let [steps, repeat, rest @ ..] = data else {
        return;
    };
    let input = rest.repeat(usize::from(*repeat % 64) + 1);
    let whole = run(state, &input, usize::MAX, usize::MAX);
    let small = run(
        state,
        &input,
        usize::from(steps & 0x0f) + 1,
        usize::from(steps >> 4) * 97 + 1,
    );
    assert_eq!(whole, small, "chunking changed the answers");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_pipeline_answers_alike_in_any_chunking() {
        let state = empty_state();
        for req in [
            &b"GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n"[..],
            b"GET /_fn/health HTTP/1.1\r\nHost: t\r\n\r\nHEAD /x HTTP/1.1\r\nHost: t\r\n\r\n",
            b"GET /_fn/openapi.json HTTP/1.1\r\nHost: t\r\n\r\nPOST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        ] {
            for steps in [0u8, 0x13, 0xff] {
                let mut data = vec![steps, 63];
                data.extend_from_slice(req);
                pipelined(&state, &data);
            }
        }
    }

    #[test]
    fn a_burst_past_the_output_bound_is_answered_whole() {
        let state = empty_state();
        let input = b"GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n".repeat(2000);
        let r = run(&state, &input, 16 * 1024, 1);
        assert_eq!(r.statuses.len(), 2000);
        assert!(r.statuses.iter().all(|s| *s == 404));
    }
}
