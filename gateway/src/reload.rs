//! Builds new snapshots off the request path and swaps them in. Triggers: a debounced
//! file watcher on the functions tree, and SIGHUP. An invalid tree keeps the old snapshot
//! and logs every error; reloads are serialised so two never race.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::{Mutex, Notify};

use crate::catalog::{Catalog, CatalogError};
use crate::config::{Config, Overrides};
use crate::metrics;
use crate::pool::PoolRegistry;
use crate::snapshot::{Snapshot, Store};
use crate::xdp::ConnectionGuard;

/// Quiet time after the last file event before a reload: editors write in bursts.
const DEBOUNCE: Duration = Duration::from_millis(200);

pub struct Reloader {
    pub store: Arc<Store>,
    pub registry: Arc<PoolRegistry>,
    pub functions_dir: PathBuf,
    pub config_path: Option<PathBuf>,
    pub overrides: Overrides,
    pub guard: Arc<ConnectionGuard>,
    generation: AtomicU64,
    serial: Mutex<()>,
}

impl Reloader {
    pub fn new(
        store: Arc<Store>,
        registry: Arc<PoolRegistry>,
        config: &Config,
        config_path: Option<PathBuf>,
        overrides: Overrides,
        guard: Arc<ConnectionGuard>,
    ) -> Reloader {
        Reloader {
            store,
            registry,
            functions_dir: config.functions_dir.clone(),
            config_path,
            overrides,
            guard,
            generation: AtomicU64::new(0),
            serial: Mutex::new(()),
        }
    }

    /// Loads the tree and, when valid, stores the new snapshot and retires stale pools.
    pub async fn reload(&self, why: &str) -> Result<u64, Vec<CatalogError>> {
        let _serial = self.serial.lock().await;
        let dir = self.functions_dir.clone();
        let loaded = tokio::task::spawn_blocking(move || Catalog::load(&dir))
            .await
            .unwrap_or_else(|e| {
                Err(vec![CatalogError::new(
                    Path::new("-"),
                    None,
                    format!("loader panicked: {e}"),
                )])
            });
        let catalog = match loaded {
            Ok(c) => c,
            Err(errors) => {
                metrics::reload("error");
                let keep = self.store.load().generation;
                for e in &errors {
                    tracing::error!(error = %e, "invalid function tree");
                }
                tracing::error!(
                    trigger = why,
                    errors = errors.len(),
                    "reload refused; still serving generation {keep}"
                );
                return Err(errors);
            }
        };
        self.reload_config();
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let snapshot = Snapshot::build(catalog, &self.registry, generation).await;
        let functions = snapshot.functions.len();
        let live = snapshot.pools();
        self.store.store(Arc::new(snapshot));
        metrics::reload("ok");
        tracing::info!(trigger = why, generation, functions, "snapshot loaded");
        self.registry.retire_except(&live).await;
        Ok(generation)
    }

    /// Re-reads edgefn.toml for the sections that apply live (`[xdp]`).
    fn reload_config(&self) {
        let Some(path) = &self.config_path else {
            return;
        };
        match Config::load(Some(path), &self.overrides) {
            Ok(cfg) => self.guard.reconfigure(&cfg.xdp),
            Err(errors) => {
                for e in errors {
                    tracing::error!(error = %e, "config not reloaded; keeping the running [xdp] settings");
                }
            }
        }
    }
}

/// Starts the watcher and SIGHUP tasks. The returned watcher must be kept alive.
pub fn spawn(reloader: Arc<Reloader>) -> Option<notify::RecommendedWatcher> {
    let trigger = Arc::new(Notify::new());
    let sighup = trigger.clone();
    let hup_reloader = reloader.clone();
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP; reload only on file changes");
            return;
        };
        while hup.recv().await.is_some() {
            let _ = hup_reloader.reload("sighup").await;
        }
        drop(sighup);
    });

    let notify_trigger = trigger.clone();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            // Reading the tree during a reload emits access events: only changes count.
            let change = matches!(
                ev.kind,
                notify::EventKind::Create(_)
                    | notify::EventKind::Modify(_)
                    | notify::EventKind::Remove(_)
                    | notify::EventKind::Any
            );
            if change && ev.paths.iter().any(|p| relevant(p)) {
                notify_trigger.notify_one();
            }
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "file watcher unavailable; reload with SIGHUP");
            return None;
        }
    };
    let mut paths = vec![reloader.functions_dir.clone()];
    paths.extend(reloader.config_path.clone());
    for p in &paths {
        if let Err(e) = watcher.watch(p, RecursiveMode::Recursive) {
            tracing::warn!(path = %p.display(), error = %e, "cannot watch; reload with SIGHUP");
        }
    }
    tokio::spawn(async move {
        loop {
            trigger.notified().await;
            while tokio::time::timeout(DEBOUNCE, trigger.notified())
                .await
                .is_ok()
            {}
            let _ = reloader.reload("file change").await;
        }
    });
    Some(watcher)
}

/// Interpreter caches and dependency folders change under a running worker; ignore them.
fn relevant(p: &Path) -> bool {
    !p.components().any(|c| {
        let s = c.as_os_str().to_string_lossy();
        s == "__pycache__" || s == "node_modules" || s.starts_with(".#") || s.ends_with('~')
    })
}
