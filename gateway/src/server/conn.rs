//! Serves one accepted connection: on the public listener first through the HTTP/1 front
//! (`front.rs`), then — from the first request the front hands over, or from the start on
//! the admin listener — with hyper's auto builder (HTTP/1.1, h2, h2c prior knowledge).
//! The handler gets the front's decision with the first request it handed over, and
//! `None` for every other request.
//! The connection ends gracefully on gateway shutdown or when idle; the `_drain` sender it
//! holds lets shutdown wait for every connection to finish.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::poll_fn;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};

use super::front::{Front, FrontCtx, Outcome};
use super::idle::{self, Activity};
use super::pipeline::Decided;
use crate::respond::Body;

/// Limits that apply to every connection of a listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The protocol settings. No h1 timer: the header-read and idle timeouts of
/// [`ConnLimits`] are enforced per connection in `idle` (hyper's own header timeout arms a
/// boxed timer for every request).
pub fn builder() -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    b.http1().keep_alive(true).max_buf_size(64 * 1024);
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .max_concurrent_streams(256)
        .max_header_list_size(64 * 1024);
    b
}

/// Serves one connection: through the HTTP/1 front first when `front` is given (the
/// public listener), then hyper for whatever the front hands over (or from the start).
pub async fn serve<I, H, Fut>(
    io: I,
    builder: Arc<Builder<TokioExecutor>>,
    handler: H,
    limits: ConnLimits,
    front: Option<FrontCtx>,
    mut shutdown: watch::Receiver<bool>,
    _drain: mpsc::Sender<()>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>, Option<Box<Decided>>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let activity = Activity::new();
    let svc_activity = activity.clone();
    // Built when hyper takes the connection, with the decision for its first request.
    let service = move |decided: Option<Box<Decided>>| {
        let first = Cell::new(decided);
        service_fn(move |req| {
            let in_flight = svc_activity.begin();
            let fut = handler(req, first.take());
            async move {
                let resp = fut.await;
                drop(in_flight);
                Ok::<_, Infallible>(resp)
            }
        })
    };
    let mut service = Some(service);
    let io = idle::Tracked::new(io, activity.clone());
    let io = if front.is_some() { io.for_front() } else { io };
    let mut conn = pin!(None);
    let mut front = match front {
        Some(ctx) => Some(Front::new(io, ctx, activity.clone())),
        None => {
            let svc = service.take().expect("service present")(None);
            conn.set(Some(builder.serve_connection(TokioIo::new(io), svc)));
            None
        }
    };
    let mut closing = *shutdown.borrow();
    if closing {
        match (front.as_mut(), conn.as_mut().as_pin_mut()) {
            (Some(f), _) => f.close(),
            (None, Some(c)) => c.graceful_shutdown(),
            (None, None) => {}
        }
    }
    // The side events (gateway shutdown, idle or slow head, the hard close after an idle
    // GOAWAY) are polled only when their own waker fired, not on every wake-up of the
    // connection: a `select!` here re-polled all of them for every request.
    let side = Arc::new(SideWake::default());
    let side_waker = Waker::from(side.clone());
    let mut changed = pin!(shutdown.changed());
    let mut watch = pin!(idle::watch(
        &activity,
        limits.idle_timeout,
        limits.header_read_timeout
    ));
    // An idle connection has nothing in flight; once told to go away it gets a moment to
    // read the GOAWAY (h2 waits for a PONG a silent client never sends), then is dropped.
    let mut hard_close: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let mut first = true;
    poll_fn(|cx| {
        if let Some(f) = front.as_mut() {
            match Pin::new(f).poll(cx) {
                Poll::Pending => {}
                Poll::Ready(Outcome::Closed) => return Poll::Ready(()),
                Poll::Ready(Outcome::Handover(io, rest, decided)) => {
                    front = None;
                    let svc = service.take().expect("the front hands over once")(decided);
                    conn.set(Some(
                        builder.serve_connection(TokioIo::new(io.rewound(rest)), svc),
                    ));
                    if closing {
                        if let Some(c) = conn.as_mut().as_pin_mut() {
                            c.graceful_shutdown();
                        }
                    }
                }
            }
        }
        if let Some(c) = conn.as_mut().as_pin_mut() {
            if let Poll::Ready(res) = c.poll(cx) {
                if let Err(e) = res {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
                return Poll::Ready(());
            }
        }
        if !(first || side.fired.swap(false, Ordering::AcqRel)) {
            return Poll::Pending;
        }
        if first {
            *side.task.lock().expect("side waker lock") = Some(cx.waker().clone());
            first = false;
        }
        let mut scx = Context::from_waker(&side_waker);
        if !closing {
            let why = if changed.as_mut().poll(&mut scx).is_ready() {
                Some(None)
            } else if let Poll::Ready(why) = watch.as_mut().poll(&mut scx) {
                Some(Some(why))
            } else {
                None
            };
            if let Some(why) = why {
                if why == Some(idle::Expired::HeaderRead) {
                    tracing::debug!("request head not received within the header-read timeout");
                    return Poll::Ready(());
                }
                closing = true;
                if why == Some(idle::Expired::Idle) {
                    hard_close = Some(Box::pin(tokio::time::sleep(IDLE_CLOSE_GRACE)));
                }
                if let Some(f) = front.as_mut() {
                    f.close();
                } else if let Some(c) = conn.as_mut().as_pin_mut() {
                    c.graceful_shutdown();
                }
                cx.waker().wake_by_ref();
            }
        }
        if let Some(h) = hard_close.as_mut() {
            if h.as_mut().poll(&mut scx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await
}

/// Wakes the connection task and records that a side event may be ready.
#[derive(Default)]
struct SideWake {
    fired: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for SideWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        if let Some(w) = self.task.lock().expect("side waker lock").as_ref() {
            w.wake_by_ref();
        }
    }
}
