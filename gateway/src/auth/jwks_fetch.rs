//! Key sets fetched from an issuer (`"discovery": true` or `"jwks_url"`), kept off the
//! request path. One [`RemoteKeys`] per source, shared by every function and every reload
//! that names it (a process-wide registry of weak references), so a reload does not start
//! from an empty set. A background task fetches at start, then again when the answer's
//! `Cache-Control: max-age` (bounded to [`MIN_REFRESH`]..[`MAX_REFRESH`]) runs out, or
//! sooner after a failure (doubling back-off up to [`MAX_BACKOFF`]). A request naming an
//! unknown `kid`, or arriving while no set has ever been fetched, may ask for a fetch at
//! once ([`RemoteKeys::refresh`]), at most once per [`DEMAND_INTERVAL`] per source; it
//! waits for that fetch and is then decided with what it brought. A failed fetch never
//! replaces the last good set. A discovery source also keeps the document's endpoints
//! (authorization, token, end-session) for OIDC login, fetched by the same task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tokio::sync::{watch, Notify};

use super::discovery::{self, DiscoveryError};
use super::http_fetch::{self, FetchError, UrlError};
use super::jwks::{self, Jwk, JwksError};

pub const MIN_REFRESH: Duration = Duration::from_secs(60);
pub const MAX_REFRESH: Duration = Duration::from_secs(24 * 3600);
/// Used when the answer carries no `max-age`.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(600);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Least time between two fetches asked for by requests (unknown `kid`, no set yet).
pub const DEMAND_INTERVAL: Duration = Duration::from_secs(5);
/// Largest JWKS document read.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// How long a request waits for the fetch it asked for.
const DEMAND_WAIT: Duration = Duration::from_secs(12);

/// Where the keys come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// `<issuer>/.well-known/openid-configuration` → `jwks_uri`.
    Discovery {
        issuer: String,
    },
    Url(String),
}

/// One fetched set; `generation` changes with every set stored, which is what the
/// verification cache compares.
#[derive(Debug)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
    pub generation: u64,
}

#[derive(Debug, thiserror::Error)]
enum FetchFailure {
    #[error(transparent)]
    Http(#[from] FetchError),
    #[error("discovery document {0}")]
    Discovery(#[from] DiscoveryError),
    #[error("jwks_uri {url:?} {error}")]
    JwksUri { url: String, error: UrlError },
    #[error("JWKS {0}")]
    Jwks(#[from] JwksError),
}

pub struct RemoteKeys {
    source: Source,
    allow_insecure: bool,
    current: ArcSwapOption<KeySet>,
    /// The last good discovery document (discovery sources only).
    endpoints: ArcSwapOption<discovery::Discovery>,
    /// Wakes the background task (a demand, or this value's drop).
    wake: Arc<Notify>,
    /// Counts finished fetch attempts, good or bad; waiters watch it.
    attempts: watch::Sender<u64>,
    /// When the last demand was made and the attempt count then.
    demand: Mutex<Option<(Instant, u64)>>,
    /// False when no runtime was there to run the task (`edgefn check`): no demand waits.
    fetching: bool,
}

impl std::fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Drop for RemoteKeys {
    fn drop(&mut self) {
        self.wake.notify_one();
    }
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

type Registry = Mutex<HashMap<(Source, bool), Weak<RemoteKeys>>>;

impl RemoteKeys {
    /// The shared key source for `source`, started on first use.
    pub fn shared(source: Source, allow_insecure: bool) -> Arc<RemoteKeys> {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        let mut reg = REGISTRY
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        reg.retain(|_, w| w.strong_count() > 0);
        let key = (source.clone(), allow_insecure);
        if let Some(existing) = reg.get(&key).and_then(Weak::upgrade) {
            return existing;
        }
        let runtime = tokio::runtime::Handle::try_current().ok();
        let keys = Arc::new(RemoteKeys {
            source,
            allow_insecure,
            current: ArcSwapOption::empty(),
            endpoints: ArcSwapOption::empty(),
            wake: Arc::new(Notify::new()),
            attempts: watch::channel(0).0,
            demand: Mutex::new(None),
            fetching: runtime.is_some(),
        });
        if let Some(rt) = runtime {
            rt.spawn(run(Arc::downgrade(&keys), keys.wake.clone()));
        }
        reg.insert(key, Arc::downgrade(&keys));
        keys
    }

    /// The last good set, if any fetch ever succeeded.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.current.load_full()
    }

    /// The issuer's endpoints from the last good discovery document, if any.
    pub fn endpoints(&self) -> Option<Arc<discovery::Discovery>> {
        self.endpoints.load_full()
    }

    /// Whether a request may wait for a fetch now: one is in flight, or the last demand is
    /// older than [`DEMAND_INTERVAL`].
    pub fn may_refresh(&self) -> bool {
        if !self.fetching {
            return false;
        }
        let demand = *self.demand.lock().unwrap_or_else(|e| e.into_inner());
        match demand {
            None => true,
            Some((at, seen)) => at.elapsed() >= DEMAND_INTERVAL || *self.attempts.borrow() == seen,
        }
    }

    /// Asks for a fetch (or joins the one in flight) and waits for it to finish, bounded.
    pub async fn refresh(&self) {
        if !self.fetching {
            return;
        }
        let mut rx = self.attempts.subscribe();
        let seen = *rx.borrow_and_update();
        {
            let mut demand = self.demand.lock().unwrap_or_else(|e| e.into_inner());
            match *demand {
                Some((_, at_demand)) if at_demand == seen => {} // in flight: join it
                Some((at, _)) if at.elapsed() < DEMAND_INTERVAL => return,
                _ => {
                    *demand = Some((Instant::now(), seen));
                    self.wake.notify_one();
                }
            }
        }
        let _ = tokio::time::timeout(DEMAND_WAIT, rx.changed()).await;
    }

    async fn fetch_once(&self) -> Result<Duration, FetchFailure> {
        let mut endpoints = None;
        let jwks_url = match &self.source {
            Source::Url(url) => url.clone(),
            Source::Discovery { issuer } => {
                let doc =
                    http_fetch::get(&discovery::url_for(issuer), discovery::MAX_DOCUMENT_BYTES)
                        .await?;
                let d = discovery::parse(&doc.body, issuer)?;
                http_fetch::check_url(&d.jwks_uri, self.allow_insecure).map_err(|error| {
                    FetchFailure::JwksUri {
                        url: d.jwks_uri.clone(),
                        error,
                    }
                })?;
                let url = d.jwks_uri.clone();
                endpoints = Some(d);
                url
            }
        };
        let got = http_fetch::get(&jwks_url, MAX_JWKS_BYTES).await?;
        let keys = jwks::parse_published(&got.body)?;
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        tracing::info!(source = ?self.source, keys = keys.len(), "JWKS fetched");
        self.current
            .store(Some(Arc::new(KeySet { keys, generation })));
        if let Some(d) = endpoints {
            self.endpoints.store(Some(Arc::new(d)));
        }
        Ok(refresh_after(got.max_age))
    }
}

/// When to fetch again after a good answer: its `max-age`, within bounds.
pub fn refresh_after(max_age: Option<Duration>) -> Duration {
    max_age
        .unwrap_or(DEFAULT_REFRESH)
        .clamp(MIN_REFRESH, MAX_REFRESH)
}

/// The background task: fetch, sleep until the next refresh or a demand, again; ends
/// when the last policy using these keys is gone.
async fn run(keys: Weak<RemoteKeys>, wake: Arc<Notify>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let next = {
            let Some(k) = keys.upgrade() else { return };
            let next = match k.fetch_once().await {
                Ok(refresh) => {
                    backoff = Duration::from_secs(1);
                    refresh
                }
                Err(e) => {
                    tracing::warn!(source = ?k.source, error = %e, "JWKS fetch failed; keeping the last good key set");
                    let wait = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wait
                }
            };
            k.attempts.send_modify(|n| *n += 1);
            next
        };
        tokio::select! {
            _ = tokio::time::sleep(next) => {}
            _ = wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_runtime_nothing_is_fetched_and_no_request_waits() {
        let k = RemoteKeys::shared(Source::Url("https://keys.invalid/jwks".into()), false);
        assert!(k.current().is_none());
        assert!(!k.may_refresh());
        let again = RemoteKeys::shared(Source::Url("https://keys.invalid/jwks".into()), false);
        assert!(Arc::ptr_eq(&k, &again), "one fetcher per source");
    }

    #[test]
    fn cache_control_is_bounded() {
        assert_eq!(refresh_after(None), DEFAULT_REFRESH);
        assert_eq!(refresh_after(Some(Duration::ZERO)), MIN_REFRESH);
        assert_eq!(
            refresh_after(Some(Duration::from_secs(7200))),
            Duration::from_secs(7200)
        );
        assert_eq!(
            refresh_after(Some(Duration::from_secs(u64::MAX / 4))),
            MAX_REFRESH
        );
    }

    /// A loopback JWKS server counting its requests.
    async fn jwks_server() -> (String, Arc<AtomicU64>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicU64::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            let body = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: max-age=3600\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body.as_bytes()).await;
            }
        });
        (url, hits)
    }

    /// Demands (unknown kid) fetch at once, but at most once per interval per source.
    #[tokio::test]
    async fn demands_fetch_at_once_and_are_rate_limited() {
        let (url, hits) = jwks_server().await;
        let k = RemoteKeys::shared(Source::Url(url), false);
        k.refresh().await; // joins (or follows) the start-up fetch
        assert!(k.current().is_some(), "the set arrived");
        let first = k.current().unwrap().generation;
        let after_start = hits.load(Ordering::SeqCst);
        assert!((1..=2).contains(&after_start), "{after_start}");
        // Within the interval: no new fetch, whatever the number of demands.
        let settled = hits.load(Ordering::SeqCst);
        for _ in 0..5 {
            k.refresh().await;
        }
        assert!(!k.may_refresh());
        assert!(hits.load(Ordering::SeqCst) <= settled + 1);
        assert!(k.current().unwrap().generation >= first);
    }
}
