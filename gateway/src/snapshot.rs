//! The one immutable value the request path reads: routes, compiled functions with their
//! pools and metric handles, and the pre-rendered OpenAPI document. Built off the request
//! path, swapped in whole with `ArcSwap::store`.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderValue, Method};

use crate::catalog::{Catalog, FunctionDef};
use crate::metrics::FunctionMetrics;
use crate::openapi;
use crate::pool::event::EventMeta;
use crate::pool::{Pool, PoolRegistry, PoolSpec};
use crate::router::{RouteSpec, Router};

pub type Store = ArcSwap<Snapshot>;

/// FastFN's 409 on an ambiguous route does not depend on the method.
const ANY_METHOD: &[Method] = &[
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
];

/// A function ready to serve.
#[derive(Debug)]
pub struct Function {
    pub def: FunctionDef,
    pub pool: Arc<Pool>,
    pub metrics: FunctionMetrics,
    /// `Allow` header for 405 answers, rendered once.
    pub allow: HeaderValue,
    /// The event's per-function fields, shared by every request.
    pub event_meta: Arc<EventMeta>,
}

#[derive(Debug)]
pub struct Snapshot {
    /// 0 before the first load; +1 per successful reload.
    pub generation: u64,
    pub router: Router,
    /// Routes FastFN answers 409 for (two runtime folders claim them), asked on a miss.
    pub ambiguous: Router,
    pub functions: Vec<Function>,
    pub openapi: Bytes,
    /// `/_fn/catalog`, rendered once.
    pub catalog: Bytes,
    /// FastFN's top-level `assets`, in memory.
    pub assets: Option<Arc<crate::assets::Assets>>,
}

impl Snapshot {
    /// What the gateway serves before its first load finished: no routes, not ready.
    pub fn empty() -> Snapshot {
        Snapshot {
            generation: 0,
            router: Router::default(),
            ambiguous: Router::default(),
            functions: Vec::new(),
            openapi: Bytes::from(openapi::render(&[])),
            catalog: Bytes::from(crate::fn_catalog::render(&[])),
            assets: None,
        }
    }

    /// Starts (or reuses) a pool per function and assembles the snapshot.
    pub async fn build(catalog: Catalog, registry: &PoolRegistry, generation: u64) -> Snapshot {
        for w in &catalog.warnings {
            tracing::warn!(warning = %w, "fn.config.json");
        }
        let router = Router::new(catalog.functions.iter().enumerate().flat_map(|(index, f)| {
            f.routes.iter().map(move |r| RouteSpec {
                index,
                segments: r,
                methods: &f.policy.methods,
            })
        }));
        let ambiguous = Router::new(catalog.ambiguous.iter().map(|r| RouteSpec {
            index: 0,
            segments: r,
            methods: ANY_METHOD,
        }));
        let openapi = Bytes::from(openapi::render(&catalog.functions));
        let catalog_doc = Bytes::from(crate::fn_catalog::render(&catalog.functions));
        let assets = catalog.assets.clone();
        let root = catalog.root.clone();
        let leaders = shared_pool_leaders(&catalog.functions);
        let mut functions: Vec<Function> = Vec::with_capacity(catalog.functions.len());
        for (i, def) in catalog.functions.into_iter().enumerate() {
            let mut meta = event_meta(&def);
            let pool = match leaders[i] {
                Some(j) => {
                    meta.handler = Some(Arc::from(def.handler.to_string_lossy()));
                    meta.prerender(&functions[j].def.name);
                    functions[j].pool.clone()
                }
                None => {
                    meta.prerender(&def.name);
                    registry.ensure(pool_spec(&def, &root))
                }
            };
            let allow = def
                .policy
                .methods
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            functions.push(Function {
                event_meta: Arc::new(meta),
                metrics: FunctionMetrics::new(&def.name),
                allow: HeaderValue::from_str(&allow).expect("method names are header-safe"),
                pool,
                def,
            });
        }
        Snapshot {
            generation,
            router,
            ambiguous,
            functions,
            openapi,
            catalog: catalog_doc,
            assets,
        }
    }

    pub fn pools(&self) -> Vec<Arc<Pool>> {
        let mut out: Vec<Arc<Pool>> = Vec::with_capacity(self.functions.len());
        for f in &self.functions {
            if !out.iter().any(|p| Arc::ptr_eq(p, &f.pool)) {
                out.push(f.pool.clone());
            }
        }
        out
    }
}

/// FastFN runs a folder's Node handlers in one process, and every Python handler in its one
/// daemon (each file its own module, the modules they import shared), so a module beside
/// them (`showcase/_state.js` required by `get.form.js` and `put.form.js`, `_state.py`
/// imported by `get.py` and `post.py`) holds one state for all of them: such functions
/// share the pool of the first one, each request naming its handler file. Only functions
/// whose pools would be alike but for the handler share.
fn shared_pool_leaders(defs: &[FunctionDef]) -> Vec<Option<usize>> {
    use crate::catalog::runtime::Runtime;
    let mut out = vec![None; defs.len()];
    for (i, def) in defs.iter().enumerate() {
        if !matches!(def.runtime, Runtime::Node | Runtime::Python) {
            continue;
        }
        let mut mine = pool_spec(def, Path::new(""));
        for (j, other) in defs[..i].iter().enumerate() {
            if out[j].is_some() || other.runtime != def.runtime || other.dir != def.dir {
                continue;
            }
            let leader = pool_spec(other, Path::new(""));
            mine.function = leader.function.clone();
            mine.handler = leader.handler.clone();
            if mine == leader {
                out[i] = Some(j);
                break;
            }
        }
    }
    out
}

fn event_meta(def: &FunctionDef) -> EventMeta {
    let base = def.name.split('@').next().unwrap_or(&def.name);
    EventMeta {
        function_name: Arc::from(base),
        runtime: def.runtime.as_str(),
        version: Arc::from(def.version.as_deref().unwrap_or("default")),
        timeout_ms: def.policy.timeout.as_millis() as u64,
        max_body_bytes: def.policy.max_body_bytes,
        debug: def.policy.debug_headers,
        handler: None,
        rendered: Default::default(),
    }
}

fn pool_spec(def: &FunctionDef, root: &Path) -> PoolSpec {
    PoolSpec {
        function: def.name.clone(),
        runtime: def.runtime,
        handler: def.handler.clone(),
        dir: def.dir.clone(),
        root: root.to_path_buf(),
        env: def
            .env
            .iter()
            .map(|(k, v)| (k.to_owned(), v.value.clone()))
            .collect(),
        secrets: def.env.secret_values(),
        min_workers: def.policy.min_workers,
        max_workers: def.policy.max_workers,
        concurrency: def.policy.concurrency,
        timeout: def.policy.timeout,
        code_hash: def.code_hash,
        handler_name: def.handler_name.clone(),
        shared_deps: def.shared_deps.clone(),
        overflow_status: def.policy.overflow_status,
        max_queue: def.policy.max_queue,
        queue_timeout: def.policy.queue_timeout,
        idle_timeout: def.policy.idle_timeout,
    }
}
