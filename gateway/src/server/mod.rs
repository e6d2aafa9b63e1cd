//! Listeners and process lifetime: bind, load the first snapshot, serve the public and
//! admin listeners, reload on change, and on SIGTERM/SIGINT stop accepting, let every
//! in-flight request finish (up to the grace period), then stop the workers.

pub mod admin;
pub mod async_admin;
pub mod body;
pub mod conn;
pub mod debug_headers;
pub mod front;
pub mod front_check;
pub mod h1;
pub mod idle;
pub mod oidc_routes;
pub mod pipeline;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::async_queue::{dispatcher, AsyncQueue};
use crate::config::{Config, Overrides};
use crate::metrics::{Exporter, FrontMetrics, FunctionMetrics};
use crate::pool::PoolRegistry;
use crate::reload::{self, Reloader};
use crate::snapshot::Snapshot;
use crate::xdp::ConnectionGuard;
use admin::AdminState;
use conn::ConnLimits;
use front::FrontCtx;
use pipeline::State;

/// Runs until SIGTERM/SIGINT. Errors only for start-up failures (bind, TLS, first load).
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    overrides: Overrides,
) -> anyhow::Result<()> {
    let exporter = Exporter::install();
    let tls = match &config.tls {
        Some(paths) => Some(tls::acceptor(paths)?),
        None => None,
    };
    let public = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("server.listen: cannot bind {}", config.listen))?;
    let admin_listener = TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("admin.listen: cannot bind {}", config.admin_listen))?;
    let public_addr = public.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;

    let async_queue = match config.openfaas.enabled {
        true => Some(
            AsyncQueue::open(&config.async_queue)
                .await
                .with_context(|| {
                    format!(
                        "async.store: cannot open the queue ({:?})",
                        config.async_queue.store
                    )
                })?,
        ),
        false => None,
    };
    let store = Arc::new(ArcSwap::from_pointee(Snapshot::empty()));
    let registry = Arc::new(PoolRegistry::new(config.runtimes.clone()));
    let admin_state = Arc::new(AdminState {
        exporter,
        store: store.clone(),
        ready: false.into(),
        connection_limit: OnceLock::new(),
        async_queue: async_queue.clone(),
    });
    let limits = ConnLimits {
        header_read_timeout: config.header_read_timeout,
        idle_timeout: config.idle_timeout,
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (drain_tx, mut drain_rx) = mpsc::channel::<()>(1);

    let admin_task = {
        let st = admin_state.clone();
        let handler = move |req: http::Request<hyper::body::Incoming>, _| {
            let st = st.clone();
            async move { admin::serve(&st, req).await }
        };
        let acceptor = Acceptor {
            listener: admin_listener,
            tls: None,
            limits,
            permits: Arc::new(Semaphore::new(256)),
            guard: None,
            front: None,
        };
        tokio::spawn(acceptor.run(
            handler_factory(handler),
            shutdown_rx.clone(),
            drain_tx.clone(),
        ))
    };

    let guard = Arc::new(ConnectionGuard::start(&config.xdp, &[public_addr.port()]));
    let _ = admin_state.connection_limit.set(guard.layer().to_string());
    let reloader = Arc::new(Reloader::new(
        store.clone(),
        registry.clone(),
        &config,
        config_path,
        overrides,
        guard.clone(),
    ));
    if let Err(errors) = reloader.reload("start").await {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::bail!(
            "the functions tree has {} error(s):\n  {}",
            list.len(),
            list.join("\n  ")
        );
    }
    admin_state.ready.store(true, Ordering::Release);
    let dispatcher = async_queue
        .clone()
        .map(|q| tokio::spawn(dispatcher::run(q, store.clone())));
    let _watcher = reload::spawn(reloader.clone());
    let _scheduler = crate::schedule::spawn(store.clone());

    body::register_metrics();
    let state = Arc::new(State {
        store: store.clone(),
        unmatched: FunctionMetrics::unmatched(),
        front: FrontMetrics::register(),
        access_log: config.access_log,
        body: body::BodyLimits {
            timeout: config.body_read_timeout,
            min_bytes_per_s: config.min_body_bytes_per_s,
        },
        cluster: crate::cluster::ClusterStore::start(&config.cluster).map_err(|e| {
            anyhow::anyhow!("cluster.store: cannot use the Redis URL ({:?})", e.kind())
        })?,
        openfaas: config.openfaas.enabled,
        async_queue,
        tls: config.tls.is_some(),
    });
    let public_task = {
        let acceptor = Acceptor {
            listener: public,
            tls,
            limits,
            permits: Arc::new(Semaphore::new(config.max_connections)),
            guard: Some(guard.clone()),
            front: config.http1_fast_path.then(|| state.clone()),
        };
        let factory = move |peer: SocketAddr| {
            let st = state.clone();
            move |req: http::Request<hyper::body::Incoming>, decided| {
                pipeline::handle(&st, req, peer.ip(), decided)
            }
        };
        tokio::spawn(acceptor.run(factory, shutdown_rx.clone(), drain_tx.clone()))
    };
    drop(drain_tx);

    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let runtime = match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => "current_thread",
        _ => "multi_thread",
    };
    tracing::info!(
        %public_addr, %admin_addr, connection_limit = %guard.layer(), runtime,
        functions = store.load().functions.len(), "edgefn ready"
    );
    // Everything logged while starting (fallbacks, refused functions) is on stderr before
    // the banner that says the gateway is up.
    crate::logging::flush(Duration::from_secs(1));
    println!(
        "edgefn listening on {scheme}://{public_addr} (admin http://{admin_addr}, {} functions, connection limit: {})",
        store.load().functions.len(),
        guard.layer()
    );

    wait_for_stop().await;
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    let _ = shutdown_tx.send(true);
    let drained = tokio::time::timeout(config.shutdown_grace, drain_rx.recv()).await;
    if drained.is_err() {
        tracing::warn!(
            grace_ms = config.shutdown_grace.as_millis() as u64,
            "grace period over; closing remaining connections"
        );
    }
    public_task.abort();
    admin_task.abort();
    if let Some(d) = dispatcher {
        d.abort();
    }
    registry.shutdown().await;
    guard.shutdown();
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_stop() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Admin handlers ignore the peer address.
fn handler_factory<H: Clone>(h: H) -> impl Fn(SocketAddr) -> H {
    move |_| h.clone()
}

struct Acceptor {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: ConnLimits,
    /// `server.max_connections`: when all are taken we stop accepting (the kernel backlog
    /// holds the rest) instead of accepting and dropping.
    permits: Arc<Semaphore>,
    guard: Option<Arc<ConnectionGuard>>,
    /// The public listener's pipeline state, when the HTTP/1 front answers refusals.
    front: Option<Arc<State>>,
}

impl Acceptor {
    async fn run<F, H, Fut>(
        self,
        factory: F,
        mut shutdown: watch::Receiver<bool>,
        drain: mpsc::Sender<()>,
    ) where
        F: Fn(SocketAddr) -> H,
        H: Fn(http::Request<hyper::body::Incoming>, Option<Box<pipeline::Decided>>) -> Fut
            + Clone
            + Send
            + Sync
            + 'static,
        Fut: std::future::Future<Output = http::Response<crate::respond::Body>> + Send + 'static,
    {
        let builder = Arc::new(conn::builder());
        loop {
            let permit = tokio::select! {
                p = self.permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                _ = shutdown.changed() => return,
            };
            let (stream, peer) = tokio::select! {
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
                _ = shutdown.changed() => return,
            };
            if let Some(g) = &self.guard {
                if !g.admit(peer.ip()) {
                    continue;
                }
            }
            let _ = stream.set_nodelay(true);
            let handler = factory(peer);
            let front = self.front.as_ref().map(|state| FrontCtx {
                state: state.clone(),
                peer: peer.ip(),
            });
            let tls = self.tls.clone();
            let builder = builder.clone();
            let limits = self.limits;
            let shutdown = shutdown.clone();
            let drain = drain.clone();
            tokio::spawn(async move {
                let _permit = permit;
                serve_stream(
                    stream, tls, builder, handler, limits, front, shutdown, drain,
                )
                .await;
            });
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve_stream<H, Fut>(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    builder: Arc<Builder<TokioExecutor>>,
    handler: H,
    limits: ConnLimits,
    front: Option<FrontCtx>,
    shutdown: watch::Receiver<bool>,
    drain: mpsc::Sender<()>,
) where
    H: Fn(http::Request<hyper::body::Incoming>, Option<Box<pipeline::Decided>>) -> Fut
        + Clone
        + Send
        + Sync
        + 'static,
    Fut: std::future::Future<Output = http::Response<crate::respond::Body>> + Send + 'static,
{
    match tls {
        None => conn::serve(stream, builder, handler, limits, front, shutdown, drain).await,
        // Boxed: the TLS state machine is several KB, and an unboxed branch would make
        // every plain connection's task that large too (idle keep-alive memory).
        Some(acceptor) => {
            Box::pin(async move {
                // The handshake shares the header-read budget: a silent client is dropped.
                match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream))
                    .await
                {
                    Ok(Ok(tls_stream)) => match tls::client_cert(tls_stream.get_ref().1) {
                        None => {
                            conn::serve(
                                tls_stream, builder, handler, limits, front, shutdown, drain,
                            )
                            .await
                        }
                        // mTLS: every request of the connection carries the verified
                        // certificate's names; hyper serves it all (the front never sees it).
                        Some(cert) => {
                            let with_cert =
                                move |mut req: http::Request<hyper::body::Incoming>, decided| {
                                    req.extensions_mut().insert(cert.clone());
                                    handler(req, decided)
                                };
                            conn::serve(
                                tls_stream, builder, with_cert, limits, None, shutdown, drain,
                            )
                            .await
                        }
                    },
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                }
            })
            .await
        }
    }
}
