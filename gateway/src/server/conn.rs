//! Serves one accepted connection with hyper's auto builder (HTTP/1.1, h2, h2c prior
//! knowledge). The connection ends gracefully on gateway shutdown or when idle; the
//! `_drain` sender it holds lets shutdown wait for every connection to finish.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};

use super::idle::{self, Activity};
use crate::respond::Body;

/// Limits that apply to every connection of a listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

pub fn builder(limits: ConnLimits) -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    // No h1 timer: the header-read timeout is enforced per connection in `idle` (hyper's
    // would arm a boxed timer for every request).
    let _ = limits;
    b.http1().keep_alive(true).max_buf_size(64 * 1024);
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .max_concurrent_streams(256)
        .max_header_list_size(64 * 1024);
    b
}

pub async fn serve<I, H, Fut>(
    io: I,
    builder: Arc<Builder<TokioExecutor>>,
    handler: H,
    limits: ConnLimits,
    mut shutdown: watch::Receiver<bool>,
    _drain: mpsc::Sender<()>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let activity = Activity::new();
    let svc_activity = activity.clone();
    let svc = service_fn(move |req| {
        let in_flight = svc_activity.begin();
        let fut = handler(req);
        async move {
            let resp = fut.await;
            drop(in_flight);
            Ok::<_, Infallible>(resp)
        }
    });
    let io = idle::Tracked::new(io, activity.clone());
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let mut closing = *shutdown.borrow();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
    // An idle connection has nothing in flight; once told to go away it gets a moment to
    // read the GOAWAY (h2 waits for a PONG a silent client never sends), then is dropped.
    let mut idle_deadline: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = shutdown.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            why = idle::watch(&activity, limits.idle_timeout, limits.header_read_timeout), if !closing => {
                if why == idle::Expired::HeaderRead {
                    tracing::debug!("request head not received within the header-read timeout");
                    return;
                }
                closing = true;
                idle_deadline = Some(tokio::time::Instant::now() + IDLE_CLOSE_GRACE);
                conn.as_mut().graceful_shutdown();
            }
            _ = sleep_until_opt(idle_deadline), if idle_deadline.is_some() => return,
        }
    }
}
