//! The HTTP/1.1 front of a public connection. Every plain-HTTP/1 connection starts here:
//! a request the gateway answers alone (401, 404, 405, its own endpoints) is parsed with
//! `httparse` straight from the read buffer and answered from it, without hyper's
//! per-request machinery (a `HeaderMap`, a `Request`, a body channel, a service future,
//! its encoder). Refused requests are what an edge gateway meets most, in floods, and
//! this keeps each one cheaper than hyper's own minimum.
//!
//! A request the front admits (a worker or the assets folder answers it) is served by the
//! front too when it is plain: no body, or a `Content-Length` body of at most `MAX_BODY`
//! that has arrived with its head. The front builds the head the worker path reads, runs
//! the same future hyper's service would (`pipeline::serve_front`, from the front's own
//! [`Decided`]), and writes the full answer as hyper's encoder would. One such request is
//! in flight at a time; pipelined requests behind it wait, unparsed, as a backlog.
//!
//! The first request the front does not take — a body still arriving (hyper reads it
//! under the body-read limits), a chunked body, an upgrade, h2, anything unusual or
//! malformed — is handed to hyper together with every byte already read, and hyper serves
//! the rest of the connection. The handover happens at most once and only between
//! requests, after the front's answers are flushed, so the client sees one ordered stream
//! of responses. A request the front admitted goes with its [`Decided`]: hyper's service
//! serves it from that decision, never a second one.
//!
//! Between requests a connection holds no input buffer: reads land in a per-thread scratch
//! buffer, and only the bytes of a head still arriving are kept. The output buffer keeps
//! its capacity up to `KEEP_OUT` (4 KiB) so a keep-alive client's answers reuse it.
//!
//! Pipelined requests are answered only while fewer than `MAX_PENDING_OUT` bytes of
//! answers wait to be written: past it the front keeps the unparsed rest of the read
//! (at most one scratch buffer) as a backlog, flushes, and parses the backlog before it
//! reads again. A client that pipelines and never reads therefore pins one bounded
//! output buffer, not one answer per request it sent.

use std::cell::RefCell;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::Method;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::h1;
use super::idle::{Activity, InFlight};
use super::pipeline::{self, Decided, Decision, Handled, Head, State};
use crate::auth::headers::Headers;
use crate::request_id;

/// The most header bytes the front buffers for one request before leaving it to hyper,
/// whose own limit (`max_buf_size`) then applies.
const MAX_HEAD: usize = 16 * 1024;
/// Header fields the front parses; a request with more is left to hyper.
const MAX_HEADERS: usize = 48;
/// The largest body the front reads itself (one that came with its head); a larger one
/// is hyper's, under the body-read limits.
const MAX_BODY: u64 = 16 * 1024;
const SCRATCH_LEN: usize = 16 * 1024;
/// Output capacity kept between requests; a larger burst (pipelining) is given back.
const KEEP_OUT: usize = 4096;
/// Answers waiting to be written past which the front stops parsing until they are
/// flushed (one more answer may overshoot it).
pub const MAX_PENDING_OUT: usize = 32 * 1024;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_LEN].into_boxed_slice());
}

/// What the front needs to decide: the listener's shared state and the client address.
pub struct FrontCtx {
    pub state: Arc<State>,
    pub peer: IpAddr,
}

pub enum Outcome<I> {
    Closed,
    /// hyper serves the rest, starting with these bytes; the first request comes with the
    /// front's decision when the front admitted it.
    Handover(I, Bytes, Option<Box<Decided>>),
}

enum Then {
    Read,
    Close,
    Handover(Bytes, Option<Box<Decided>>),
}

/// The admitted request the front serves, while its answer is made.
struct InService {
    answer: Handled,
    head_only: bool,
    close: bool,
    _in_flight: InFlight,
}

/// One complete request as read: its bytes, and the target, fields and body within them.
#[derive(Clone, Copy)]
struct Raw<'r, 'h> {
    whole: &'r [u8],
    target: &'r str,
    fields: &'h [httparse::Header<'r>],
    body: &'r [u8],
}

/// What the front did with one complete request.
enum Step {
    /// Answered at once (written to `out`).
    Answered,
    /// Admitted and in service: its answer follows when ready.
    Serving,
    /// hyper serves it, with the front's decision when the front admitted it.
    Handover(Option<Box<Decided>>),
}

pub struct Front<I> {
    io: Option<I>,
    ctx: FrontCtx,
    activity: Arc<Activity>,
    /// A head that has not fully arrived; empty (and unallocated) between requests.
    partial: Vec<u8>,
    out: Vec<u8>,
    written: usize,
    then: Then,
    closing: bool,
    /// `partial` holds complete requests left unparsed because `out` was full or a
    /// request is in service: parse them after the flush, before reading anything more.
    backlog: bool,
    /// `partial` ends in a head whose body has not all arrived: read on while bytes are
    /// ready, and hand the request to hyper when the socket has none.
    body_waiting: bool,
    serving: Option<InService>,
}

impl<I> Front<I> {
    pub fn new(io: I, ctx: FrontCtx, activity: Arc<Activity>) -> Self {
        Front {
            io: Some(io),
            ctx,
            activity,
            partial: Vec::new(),
            out: Vec::new(),
            written: 0,
            then: Then::Read,
            closing: false,
            backlog: false,
            body_waiting: false,
            serving: None,
        }
    }

    /// The IO back, once the front has finished (for checks that inspect it).
    pub fn into_io(self) -> I {
        self.io.expect("io present until the front hands it over")
    }

    /// Gateway shutdown or idle: finish writing the answers made, read nothing more.
    pub fn close(&mut self) {
        self.closing = true;
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> Future for Front<I> {
    type Output = Outcome<I>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<I>> {
        let this = self.get_mut();
        loop {
            let io = this.io.as_mut().expect("front polled after it finished");
            while this.written < this.out.len() {
                match Pin::new(&mut *io).poll_write(cx, &this.out[this.written..]) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                        return Poll::Ready(Outcome::Closed)
                    }
                    Poll::Ready(Ok(n)) => this.written += n,
                    Poll::Pending => return Poll::Pending,
                }
            }
            this.out.clear();
            this.written = 0;
            if let Some(s) = this.serving.as_mut() {
                let Poll::Ready(resp) = Pin::new(&mut s.answer).poll(cx) else {
                    if this.client_gone(cx) {
                        // Dropping the answer cancels the request on its worker.
                        return Poll::Ready(Outcome::Closed);
                    }
                    return Poll::Pending;
                };
                let s = this.serving.take().expect("in service");
                // Told to go away meanwhile: this answer is the last, and says so.
                let close = s.close || this.closing;
                let now = Instant::now();
                if h1::write_response(&mut this.out, resp, s.head_only, close, now) {
                    this.then = Then::Close;
                }
                this.activity.answered_at(now);
                continue;
            }
            if this.out.capacity() > KEEP_OUT {
                this.out = Vec::new();
            }
            match std::mem::replace(&mut this.then, Then::Read) {
                Then::Read => {}
                Then::Close => this.closing = true,
                Then::Handover(rest, decided) => {
                    let io = this.io.take().expect("io present until the front finishes");
                    return Poll::Ready(Outcome::Handover(io, rest, decided));
                }
            }
            if this.closing {
                // Errors do not matter here: the connection ends either way.
                return Pin::new(io).poll_shutdown(cx).map(|_| Outcome::Closed);
            }
            match this.read_and_answer(cx) {
                Poll::Ready(true) => {}
                Poll::Ready(false) => return Poll::Ready(Outcome::Closed),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> Front<I> {
    fn io_mut(&mut self) -> &mut I {
        self.io
            .as_mut()
            .expect("io present until the front finishes")
    }

    /// One read (or the backlog left by a full output buffer), then every complete
    /// request in the bytes at hand. `Ready(false)`: the client closed (or the read failed).
    fn read_and_answer(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        if self.backlog {
            self.backlog = false;
            let bytes = std::mem::take(&mut self.partial);
            let used = self.answer(&bytes);
            self.keep(&bytes[used..]);
            return Poll::Ready(true);
        }
        if self.partial.is_empty() {
            return SCRATCH.with_borrow_mut(|scratch| {
                let mut rb = ReadBuf::new(&mut scratch[..]);
                match Pin::new(self.io_mut()).poll_read(cx, &mut rb) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(_)) => return Poll::Ready(false),
                    Poll::Ready(Ok(())) => {}
                }
                let bytes = rb.filled();
                if bytes.is_empty() {
                    return Poll::Ready(false);
                }
                let used = self.answer(bytes);
                self.keep(&bytes[used..]);
                Poll::Ready(true)
            });
        }
        let old = self.partial.len();
        self.partial.resize(old + 4096, 0);
        let mut rb = ReadBuf::new(&mut self.partial[old..]);
        let res = Pin::new(self.io.as_mut().expect("io present")).poll_read(cx, &mut rb);
        let n = rb.filled().len();
        self.partial.truncate(old + n);
        match res {
            Poll::Pending if self.body_waiting => {
                // The rest of the body is not here yet: hyper reads it, under the
                // body-read limits, and decides the request.
                let bytes = std::mem::take(&mut self.partial);
                self.hand_over(&bytes, None);
                return Poll::Ready(true);
            }
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(false),
            Poll::Ready(Ok(())) if n == 0 => return Poll::Ready(false),
            Poll::Ready(Ok(())) => {}
        }
        let bytes = std::mem::take(&mut self.partial);
        let used = self.answer(&bytes);
        self.keep(&bytes[used..]);
        Poll::Ready(true)
    }

    /// While a request is in service and nothing is buffered: one read, to learn whether
    /// the client hung up (as hyper does mid-message). What arrives instead is the start
    /// of the next request, parsed after the answer; with bytes buffered the front reads
    /// no more until then.
    fn client_gone(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.partial.is_empty() {
            return false;
        }
        SCRATCH.with_borrow_mut(|scratch| {
            let mut rb = ReadBuf::new(&mut scratch[..]);
            match Pin::new(self.io_mut()).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if rb.filled().is_empty() => true,
                Poll::Ready(Ok(())) => {
                    self.partial = rb.filled().to_vec();
                    self.backlog = true;
                    false
                }
                Poll::Ready(Err(_)) => true,
                Poll::Pending => false,
            }
        })
    }

    /// Keeps the unconsumed bytes: a backlog of whole requests (their answers wait for
    /// the flush; the idle timeout covers a client that never reads), or the start of a
    /// head still arriving, whose header-read clock starts now.
    fn keep(&mut self, rest: &[u8]) {
        if rest.is_empty() {
            return;
        }
        self.partial = rest.to_vec();
        if !self.backlog {
            self.activity.head_waiting();
        }
    }

    /// Answers the complete requests at the start of `bytes` and returns how many bytes
    /// it consumed; what remains is the start of a head still arriving. Sets `then` when
    /// the connection closes or goes to hyper (everything counts as consumed then).
    fn answer(&mut self, bytes: &[u8]) -> usize {
        let mut pos = 0;
        self.body_waiting = false;
        while pos < bytes.len() {
            if self.out.len() >= MAX_PENDING_OUT {
                self.backlog = true;
                return pos;
            }
            let start = Instant::now();
            let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut fields);
            let len = match req.parse(&bytes[pos..]) {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) if bytes.len() - pos < MAX_HEAD => return pos,
                // Too long, too many fields, or malformed: hyper answers.
                _ => return self.hand_over(&bytes[pos..], None),
            };
            let Some(plain) = h1::screen(&req) else {
                return self.hand_over(&bytes[pos..], None);
            };
            let body_start = pos + len;
            if plain.body_len > MAX_BODY {
                return self.hand_over(&bytes[pos..], None);
            }
            // At most MAX_BODY: the cast cannot truncate.
            let body_end = body_start + plain.body_len as usize;
            if body_end > bytes.len() {
                self.body_waiting = true;
                return pos;
            }
            let target = req.path.unwrap_or_default();
            let body = &bytes[body_start..body_end];
            let raw = Raw {
                whole: &bytes[pos..body_end],
                target,
                fields: req.headers,
                body,
            };
            match self.respond(&plain, raw, start) {
                Step::Answered => {}
                Step::Handover(decided) => return self.hand_over(&bytes[pos..], decided),
                Step::Serving if plain.close => return bytes.len(),
                Step::Serving => {
                    self.backlog = body_end < bytes.len();
                    return body_end;
                }
            }
            pos = body_end;
            if plain.close {
                self.then = Then::Close;
                return bytes.len();
            }
        }
        pos
    }

    fn hand_over(&mut self, rest: &[u8], decided: Option<Box<Decided>>) -> usize {
        self.ctx.state.front.handover.increment(1);
        self.then = Then::Handover(Bytes::copy_from_slice(rest), decided);
        rest.len()
    }

    /// Decides the request and writes the answer, or starts serving it when admitted
    /// (hyper serves what the front cannot: an OIDC route, a body past the function's
    /// limit, a field `HeaderValue` refuses).
    fn respond(&mut self, plain: &h1::Plain<'_>, raw: Raw<'_, '_>, start: Instant) -> Step {
        let headers = Headers::Raw(raw.fields);
        let state = &*self.ctx.state;
        let snap = state.store.load();
        let fresh;
        let rid = match request_id::given(headers) {
            Some(given) => given,
            None => {
                fresh = request_id::new_id_bytes();
                &fresh[..]
            }
        };
        let head = Head {
            method: &plain.method,
            path: plain.path,
            query: plain.query,
            headers,
            // Connections with a client certificate are served by hyper alone.
            client: None,
            openfaas: state.openfaas,
            shared_limits: state.cluster.is_some(),
        };
        let (answer, now) = match pipeline::decide(&snap, &head, self.ctx.peer, rid) {
            Decision::Endpoint(answer) => (answer, Instant::now()),
            Decision::Refused(answer, func) => {
                let now =
                    pipeline::record(state, func, &plain.method, answer.status, start, rid, None);
                (answer, now)
            }
            Decision::Admitted(a) => {
                return self.serve(plain, raw, Decided::admitted(a, &snap, rid, start))
            }
            Decision::Asset(file) => {
                return self.serve(plain, raw, Decided::asset(file, &snap, rid, start))
            }
            // The callback and logout post to the provider: hyper's path decides them.
            Decision::Oidc(_) => return Step::Handover(None),
        };
        let head_only = plain.method == Method::HEAD;
        h1::write_answer(&mut self.out, &answer, rid, head_only, plain.close, now);
        state.front.answered.increment(1);
        self.activity.answered_at(now);
        Step::Answered
    }

    /// Starts the worker path for an admitted request, from the front's decision.
    fn serve(&mut self, plain: &h1::Plain<'_>, raw: Raw<'_, '_>, decided: Decided) -> Step {
        if decided
            .body_limit()
            .is_some_and(|limit| plain.body_len > limit)
        {
            return Step::Handover(Some(Box::new(decided)));
        }
        let Some((parts, body)) =
            h1::request_parts(plain, raw.whole, raw.target, raw.fields, raw.body)
        else {
            return Step::Handover(Some(Box::new(decided)));
        };
        let state = &self.ctx.state;
        let answer = pipeline::serve_front(state, parts, body, self.ctx.peer, decided);
        state.front.served.increment(1);
        self.serving = Some(InService {
            answer,
            head_only: plain.method == Method::HEAD,
            close: plain.close,
            _in_flight: self.activity.begin(),
        });
        Step::Serving
    }
}
