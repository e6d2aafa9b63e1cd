//! Warm runtime worker pools. Flow: reload asks the [`PoolRegistry`] for a pool per
//! function ([`PoolRegistry::ensure`] returns at once: the function's [`Pool`] handle,
//! unchanged when the spec is, else with a new version starting in the background —
//! dependencies installed, first workers started — that replaces the serving version
//! only once it is ready); the request path calls [`Pool::dispatch`], which takes a worker
//! slot, sends one frame and waits for the reply within the function's timeout; after
//! the new snapshot is stored, functions no longer in it drain and stop.
//!
//! Modules: `types` (spec, request, response, errors), `handle` (one function across
//! versions), `function_pool` (one version's IO) around `machine` (its pure state),
//! `seam` (the spawn / channel traits), `worker` (one process and its channel), `launch`
//! (embedded runtime scripts, interpreter), `deps` (pip / npm installs), `protocol`
//! (frames), `output` (captured stdout/stderr with secrets masked), `id_map` (maps keyed
//! by the pool's own ids).

mod deps;
pub mod event;
mod function_pool;
mod go_build;
mod handle;
mod id_map;
mod json_text;
mod launch;
mod machine;
mod output;
mod php;
pub mod protocol;
mod reply_scan;
mod rust_build;
mod seam;
mod socket;
mod types;
mod typescript;
mod worker;

/// Re-exported for callers of the pool API (the settings type itself lives in `config`).
pub use crate::config::RuntimeCommands;
pub use handle::Pool;
pub use types::{AuthContext, PoolError, PoolSpec, WorkerRequest, WorkerResponse};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use tokio::task::JoinHandle;

use function_pool::{FunctionPool, Timing};
use handle::Serving;
use launch::Launcher;

pub use crate::catalog::runtime::Runtime;

/// One function's entry: its handle, the spec last asked for (serving, starting, or
/// refused: the same spec is not retried until its files change), and the start task.
struct Entry {
    pool: Arc<Pool>,
    spec: PoolSpec,
    start: Option<JoinHandle<()>>,
}

struct Shared {
    commands: RuntimeCommands,
    launcher: OnceCell<Result<Arc<Launcher>, Arc<str>>>,
    serial: Arc<AtomicU64>,
}

/// All pools; reload asks it for a pool per function and it reuses unchanged ones.
pub struct PoolRegistry {
    shared: Arc<Shared>,
    entries: Mutex<HashMap<Arc<str>, Entry>>,
    stopping: AtomicBool,
}

impl std::fmt::Debug for PoolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolRegistry").finish_non_exhaustive()
    }
}

impl PoolRegistry {
    pub fn new(commands: RuntimeCommands) -> Self {
        Self {
            shared: Arc::new(Shared {
                commands,
                launcher: OnceCell::new(),
                serial: Arc::new(AtomicU64::new(0)),
            }),
            entries: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
        }
    }

    /// The function's pool handle. A spec not seen before starts a new version in the
    /// background (never under this lock, so installs and starts run concurrently and
    /// never hold up reload or shutdown).
    pub fn ensure(&self, spec: PoolSpec) -> Arc<Pool> {
        let mut entries = self.entries.lock().expect("registry lock");
        if let Some(e) = entries.get(&spec.function) {
            if e.spec == spec {
                return e.pool.clone();
            }
        }
        let entry = entries
            .entry(spec.function.clone())
            .or_insert_with(|| Entry {
                pool: Arc::new(Pool::new(spec.function.clone())),
                spec: spec.clone(),
                start: None,
            });
        if let Some(previous) = entry.start.take() {
            previous.abort();
        }
        entry.spec = spec.clone();
        if !self.stopping.load(Ordering::Acquire) {
            let (shared, pool) = (self.shared.clone(), entry.pool.clone());
            entry.start = Some(tokio::spawn(start_version(shared, pool, spec)));
        }
        entry.pool.clone()
    }

    /// After a new snapshot is stored: drain and stop the functions not in `live`.
    /// In-flight requests finish on the old workers; the drain runs in the background.
    pub async fn retire_except(&self, live: &[Arc<Pool>]) {
        let gone: Vec<Entry> = {
            let mut entries = self.entries.lock().expect("registry lock");
            let names: Vec<Arc<str>> = entries
                .iter()
                .filter(|(_, e)| !live.iter().any(|l| Arc::ptr_eq(l, &e.pool)))
                .map(|(k, _)| k.clone())
                .collect();
            names.iter().filter_map(|n| entries.remove(n)).collect()
        };
        for e in gone {
            if let Some(t) = e.start {
                t.abort();
            }
            // A request that loaded the previous snapshot may still arrive: the draining
            // version serves it if it can.
            if let Some(p) = e.pool.live() {
                tokio::spawn(async move { p.retire().await });
            }
        }
    }

    /// Graceful shutdown: abandon pending installs and starts, stop every worker.
    pub async fn shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
        let entries: Vec<Entry> = self
            .entries
            .lock()
            .expect("registry lock")
            .drain()
            .map(|(_, e)| e)
            .collect();
        let mut all = tokio::task::JoinSet::new();
        for e in entries {
            if let Some(t) = e.start {
                t.abort();
            }
            // Connections are closed by now: nothing in flight is waited for.
            if let Some(p) = e.pool.live() {
                all.spawn(async move { p.stop().await });
            }
        }
        while all.join_next().await.is_some() {}
        if let Some(Ok(l)) = self.shared.launcher.get() {
            l.cleanup();
        }
    }
}

async fn launcher(shared: &Shared) -> Result<Arc<Launcher>, Arc<str>> {
    shared
        .launcher
        .get_or_init(|| async {
            Launcher::new(&shared.commands)
                .await
                .map(Arc::new)
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot prepare worker processes");
                    Arc::from("the gateway cannot start workers; see its log")
                })
        })
        .await
        .clone()
}

/// Installs a version's dependencies, starts its first workers and, once they are
/// ready, makes it the one that serves. A version that cannot start leaves the previous
/// one serving (and is counted as a failed reload); a brand-new function that cannot
/// start serves its failing pool, which answers 502 at once and keeps retrying.
async fn start_version(shared: Arc<Shared>, pool: Arc<Pool>, spec: PoolSpec) {
    let previous = pool.live();
    let spec = Arc::new(spec);
    let refuse = |what: &str, error: &str| {
        tracing::error!(
            function = %spec.function,
            file = %spec.handler.display(),
            error,
            "{what}; still serving the previous version until the files change again"
        );
        crate::metrics::reload("error");
    };
    let launcher = match launcher(&shared).await {
        Ok(l) => l,
        Err(reason) => {
            pool.swap(Serving::Unavailable(reason));
            return;
        }
    };
    let interpreter = launcher.interpreter(spec.runtime).to_vec();
    // A compiled runtime's load step is its build (dependencies included).
    let (step, failed) = if matches!(spec.runtime, Runtime::Rust | Runtime::Go) {
        ("build", "its build failed")
    } else {
        ("dependency install", "its dependencies failed to install")
    };
    let deps = match deps::ensure_with_packs(&spec, &interpreter).await {
        Ok(d) => d,
        Err(e) => {
            if previous.is_some() {
                refuse(&format!("the new version's {step} failed"), &e.to_string());
                return;
            }
            tracing::error!(
                function = %spec.function,
                dir = %spec.dir.display(),
                error = %e,
                "{step} failed; this function answers 503 until it is fixed"
            );
            pool.swap(Serving::Unavailable(Arc::from(format!(
                "{failed}; see the gateway log"
            ))));
            return;
        }
    };
    let timing = Timing {
        idle_timeout: shared.commands.idle_timeout,
        cancel_grace: shared.commands.cancel_grace,
        prefetch: shared.commands.prefetch,
    };
    // A version that replaces another proves itself with at least one worker.
    let warm = if previous.is_some() {
        spec.min_workers.max(1)
    } else {
        spec.min_workers
    };
    let spawner = Arc::new(worker::ProcessSpawner(worker::SpawnCtx {
        masker: output::Masker::new(&spec.secrets),
        spec: spec.clone(),
        launcher,
        deps,
        serial: shared.serial.clone(),
    }));
    let next = Arc::new(FunctionPool::start(spec.clone(), spawner, timing, warm));
    match next.wait_ready(warm).await {
        Ok(()) => {}
        Err(e) if previous.is_some() => {
            refuse("the new version cannot start its first worker", &e);
            next.stop().await;
            return;
        }
        // A brand-new function: its pool answers 502 promptly and retries with backoff.
        Err(_) => {}
    }
    if let Some(old) = pool.swap(Serving::Live(next)) {
        tokio::spawn(async move { old.retire().await });
    }
}
