//! The function catalog: discovery plus every per-function file parsed and compiled into
//! [`FunctionDef`]s. Pure (no processes, no sockets), so `edgefn check` and `edgefn
//! openapi` use it as is and the snapshot adds pools on top.

mod conflicts;
mod declared_name;
pub mod discover;
mod enabled_runtimes;
pub mod fastfn_keys;
pub mod file_route;
pub mod fn_config;
pub mod fn_env;
pub mod fn_env_parse;
pub mod runtime;
pub mod shared_deps;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::digest;

use crate::auth::{AuthConfig, Policy};
use crate::limits::RateLimiter;
use discover::{Origin, Segment};
use fn_config::{FnPolicy, RawFnConfig};
use fn_env::FnEnv;
use runtime::Runtime;

/// Largest `fn.config.json` / `fn.env.json` read.
const MAX_FILE_BYTES: u64 = 1 << 20;
/// Largest code file hashed; a bigger tree is still served, only hashed by size and mtime.
const MAX_HASHED_BYTES: u64 = 64 << 20;

/// One problem, naming the file (or folder), the field when there is one, and the fix.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{}{}: {message}", path.display(), field.as_deref().map(|f| format!(": {f}")).unwrap_or_default())]
pub struct CatalogError {
    pub path: PathBuf,
    pub field: Option<String>,
    pub message: String,
}

impl CatalogError {
    pub fn new(path: &Path, field: Option<String>, message: String) -> Self {
        Self {
            path: path.to_path_buf(),
            field,
            message,
        }
    }
}

/// A function, fully parsed and compiled, without its running pool.
#[derive(Debug)]
pub struct FunctionDef {
    /// Unique name: the folder path (`api/users/[id]`), a file route's path without its
    /// extension (`products/get`), or `name@version`.
    pub name: Arc<str>,
    /// OpenAPI form of the first route (`/api/users/{id}`).
    pub route: String,
    /// The first route.
    pub segments: Vec<Segment>,
    /// Every route the function serves (the first is `segments`): `invoke.routes` gives
    /// several.
    pub routes: Vec<Vec<Segment>>,
    /// `invoke.handler`: the callable the worker runs instead of `handler`.
    pub handler_name: Option<String>,
    /// A runtime-grouped version (`v2`), `None` for the default.
    pub version: Option<String>,
    pub origin: Origin,
    /// FastFN's `schedule`, when enabled: the gateway invokes the function on time.
    pub schedule: Option<Arc<crate::schedule::Schedule>>,
    /// FastFN's `keep_warm`, when on: the scheduler's ping entry for this function.
    pub keep_warm: Option<Arc<crate::schedule::Schedule>>,
    pub runtime: Runtime,
    pub dir: PathBuf,
    pub handler: PathBuf,
    pub policy: FnPolicy,
    pub auth: Policy,
    pub rate_limit: Option<RateLimiter>,
    pub env: FnEnv,
    pub code_hash: [u8; 32],
    /// FastFN's `shared_deps`: the pack folders whose dependencies the workers also see.
    pub shared_deps: Vec<PathBuf>,
}

impl FunctionDef {
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(p) | Segment::CatchAll(p) | Segment::OptionalCatchAll(p) => {
                Some(p.as_str())
            }
            Segment::Static(_) => None,
        })
    }
}

/// `/api/users/{id}`: the OpenAPI (and `edgefn check`) form of a route.
pub fn route_text(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| match s {
            Segment::Static(n) => format!("/{n}"),
            Segment::Param(p) | Segment::CatchAll(p) | Segment::OptionalCatchAll(p) => {
                format!("/{{{p}}}")
            }
        })
        .collect()
}

/// `/api/users/:id`, `/blog/:slug*`: FastFN's form, for `/_fn/catalog`.
pub fn fastfn_route_text(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| match s {
            Segment::Static(n) => format!("/{n}"),
            Segment::Param(p) => format!("/:{p}"),
            Segment::CatchAll(p) | Segment::OptionalCatchAll(p) => format!("/:{p}*"),
        })
        .collect()
}

/// Every function of a tree, sorted by route.
#[derive(Debug)]
pub struct Catalog {
    pub root: PathBuf,
    pub functions: Vec<FunctionDef>,
    /// Routes two runtime folders both claim (`python/x`, `node/x`): 409, as in FastFN.
    pub ambiguous: Vec<Vec<Segment>>,
    /// FastFN keys accepted without effect, and files FastFN too would ignore: printed
    /// by `edgefn check`, logged at every load.
    pub warnings: Vec<CatalogError>,
    /// The top-level `assets` folder, read into memory.
    pub assets: Option<Arc<crate::assets::Assets>>,
}

impl Catalog {
    /// Loads the whole tree; any error anywhere fails the load with all errors listed.
    pub fn load(root: &Path) -> Result<Catalog, Vec<CatalogError>> {
        let (mut found, mut errors, mut warnings) = discover::discover(root);
        enabled_runtimes::apply(&mut found, root, &mut errors, &mut warnings);
        let assets = root_config(root, &mut errors, &mut warnings);
        let mut functions = Vec::with_capacity(found.len());
        for f in found {
            match load_function(f, root, &mut warnings) {
                Ok(def) => functions.push(def),
                Err(mut e) => errors.append(&mut e),
            }
        }
        let ambiguous = conflicts::check(&mut functions, &mut errors, &mut warnings);
        // Discovery may look at a folder twice (probing a runtime folder, then walking it).
        let mut seen = std::collections::HashSet::new();
        errors.retain(|e| seen.insert(e.to_string()));
        let mut seen = std::collections::HashSet::new();
        warnings.retain(|e| seen.insert(e.to_string()));
        if !errors.is_empty() {
            return Err(errors);
        }
        functions.sort_by(|a, b| a.route.cmp(&b.route).then(a.name.cmp(&b.name)));
        Ok(Catalog {
            root: root.to_path_buf(),
            functions,
            ambiguous,
            warnings,
            assets,
        })
    }
}

/// A `fn.config.json` at the top of the tree holds FastFN's tree-wide keys (`assets`):
/// checked like any other, so a typo there is an error and an unimplemented key a warning.
fn root_config(
    root: &Path,
    errors: &mut Vec<CatalogError>,
    warnings: &mut Vec<CatalogError>,
) -> Option<Arc<crate::assets::Assets>> {
    let path = root.join("fn.config.json");
    let raw = read_config(&path, errors)?;
    warnings.extend(
        fastfn_keys::unimplemented(&raw)
            .into_iter()
            .filter(|(field, _)| field != "assets")
            .map(|(field, msg)| CatalogError::new(&path, Some(field), msg)),
    );
    let canon = root.canonicalize().ok()?;
    match crate::assets::Assets::load(&canon, raw.assets.as_ref()?, warnings) {
        Ok(a) => Some(Arc::new(a)),
        Err(mut e) => {
            errors.append(&mut e);
            None
        }
    }
}

/// Parses a `fn.config.json` strictly; `None` (with the error pushed) when it is invalid.
fn read_config(path: &Path, errors: &mut Vec<CatalogError>) -> Option<RawFnConfig> {
    match read_optional(path) {
        Ok(None) => None,
        Ok(Some(text)) => match serde_json::from_str(&text) {
            Ok(raw) => Some(raw),
            Err(e) => {
                let hint = fastfn_keys::did_you_mean(&e.to_string())
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default();
                errors.push(CatalogError::new(
                    path,
                    json_error_field(&e),
                    format!("{e}{hint}; see \"fn.config.json\" in README.md"),
                ));
                None
            }
        },
        Err(e) => {
            errors.push(CatalogError::new(path, None, e));
            None
        }
    }
}

fn load_function(
    f: discover::Found,
    root: &Path,
    warnings: &mut Vec<CatalogError>,
) -> Result<FunctionDef, Vec<CatalogError>> {
    let mut errors = Vec::new();
    let cfg_path = f.dir.join("fn.config.json");
    let env_path = f.dir.join("fn.env.json");

    let raw: RawFnConfig = if cfg_path.exists() {
        read_config(&cfg_path, &mut errors).unwrap_or_default()
    } else {
        RawFnConfig::default()
    };
    warnings.extend(
        fastfn_keys::unimplemented(&raw)
            .into_iter()
            .map(|(field, msg)| CatalogError::new(&cfg_path, Some(field), msg)),
    );
    let env = match read_optional(&env_path) {
        Ok(None) => FnEnv::default(),
        Ok(Some(text)) => fn_env_parse::parse(&text).unwrap_or_else(|errs| {
            errors.extend(
                errs.into_iter()
                    .map(|(field, msg)| CatalogError::new(&env_path, Some(field), msg)),
            );
            FnEnv::default()
        }),
        Err(e) => {
            errors.push(CatalogError::new(&env_path, None, e));
            FnEnv::default()
        }
    };
    let policy = fn_config::validate(&raw, f.runtime, f.method.clone()).map_err(|errs| {
        errors.extend(
            errs.into_iter()
                .map(|(field, msg)| CatalogError::new(&cfg_path, Some(field), msg)),
        );
    });
    let auth = Policy::compile(raw.auth.as_ref().unwrap_or(&AuthConfig::None), &env, &f.dir)
        .map_err(|errs| {
            errors.extend(errs.into_iter().map(|e| {
                CatalogError::new(&cfg_path, Some(format!("auth.{}", e.field)), e.message)
            }));
        });
    let rate_limit = match &raw.rate_limit {
        None => Ok(None),
        Some(rl) => RateLimiter::compile(rl).map(Some).map_err(|msg| {
            errors.push(CatalogError::new(
                &cfg_path,
                Some("rate_limit".into()),
                msg.to_string(),
            ));
        }),
    };
    let schedule = raw
        .schedule
        .as_ref()
        .and_then(|v| compile_schedule(v, &cfg_path, &mut errors, warnings));
    let keep_warm = match (&raw.keep_warm, f.origin) {
        (Some(v), _) => compile_keep_warm(v, &cfg_path, &mut errors, warnings),
        // A version without its own takes its function's, as FastFN's `effective_keep_warm`
        // does (the function's own load reports that file's problems).
        (None, Origin::Version) => inherited_keep_warm(&f.dir),
        (None, _) => None,
    };
    let shared_deps = match raw.shared_deps.as_ref() {
        None => Vec::new(),
        Some(v) => match shared_deps::resolve(v, root, f.runtime) {
            Ok((packs, note)) => {
                if let Some(note) = note {
                    warnings.push(CatalogError::new(
                        &cfg_path,
                        Some("shared_deps".into()),
                        note,
                    ));
                }
                packs
            }
            Err(errs) => {
                errors.extend(
                    errs.into_iter()
                        .map(|(field, msg)| CatalogError::new(&cfg_path, Some(field), msg)),
                );
                Vec::new()
            }
        },
    };
    let code_hash = code_hash(&f.dir);
    match (policy, auth, rate_limit) {
        (Ok(mut policy), Ok(auth), Ok(rate_limit)) if errors.is_empty() => {
            // A pinged function keeps a worker for the pings to find warm.
            if keep_warm.is_some() {
                policy.min_workers = policy.min_workers.max(1);
            }
            let keep_warm = keep_warm.map(|k| Arc::new(k.schedule(&policy.methods)));
            let mut routes = match &policy.routes {
                Some(r) if f.origin != Origin::File => r.clone(),
                _ if f.segments.is_empty() => Vec::new(),
                _ => vec![f.segments.clone()],
            };
            if let Err(e) = conflicts::check_shapes(&f.handler, &routes) {
                return Err(vec![e]);
            }
            // A version keeps `/name@v2` beside its own `invoke.routes`.
            if f.origin == Origin::Version && policy.routes.is_some() && !f.segments.is_empty() {
                routes.insert(0, f.segments.clone());
            }
            let segments = routes.first().cloned().unwrap_or_default();
            Ok(FunctionDef {
                name: Arc::from(f.name),
                route: route_text(&segments),
                segments,
                routes,
                handler_name: policy.handler_name.clone(),
                version: f.version,
                origin: f.origin,
                schedule,
                keep_warm,
                runtime: f.runtime,
                dir: f.dir,
                handler: f.handler,
                policy,
                auth,
                rate_limit,
                env,
                code_hash,
                shared_deps,
            })
        }
        _ => Err(errors),
    }
}

/// `schedule`: compiled (`None` when not enabled), keys FastFN ignores warned about.
fn compile_schedule(
    v: &serde_json::Value,
    cfg_path: &Path,
    errors: &mut Vec<CatalogError>,
    warnings: &mut Vec<CatalogError>,
) -> Option<Arc<crate::schedule::Schedule>> {
    for k in crate::schedule::config::ignored_keys(v) {
        warnings.push(CatalogError::new(
            cfg_path,
            Some(format!("schedule.{k}")),
            "is not a schedule key FastFN or edgefn reads; ignored (as FastFN does)".into(),
        ));
    }
    match crate::schedule::config::compile(v) {
        Ok(s) => s.map(Arc::new),
        Err(errs) => {
            errors.extend(
                errs.into_iter()
                    .map(|(field, msg)| CatalogError::new(cfg_path, Some(field), msg)),
            );
            None
        }
    }
}

/// The `keep_warm` of a version folder's function (the folder above), when it is on.
fn inherited_keep_warm(version_dir: &Path) -> Option<crate::schedule::keep_warm::KeepWarm> {
    let text = read_optional(&version_dir.parent()?.join("fn.config.json")).ok()??;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    crate::schedule::keep_warm::compile(v.get("keep_warm")?)
        .ok()?
        .0
}

/// `keep_warm`: compiled when on; off with a reason a reader could miss is warned about.
fn compile_keep_warm(
    v: &serde_json::Value,
    cfg_path: &Path,
    errors: &mut Vec<CatalogError>,
    warnings: &mut Vec<CatalogError>,
) -> Option<crate::schedule::keep_warm::KeepWarm> {
    match crate::schedule::keep_warm::compile(v) {
        Ok((k, why)) => {
            if let Some(why) = why {
                warnings.push(CatalogError::new(cfg_path, Some("keep_warm".into()), why));
            }
            k
        }
        Err(errs) => {
            errors.extend(
                errs.into_iter()
                    .map(|(field, msg)| CatalogError::new(cfg_path, Some(field), msg)),
            );
            None
        }
    }
}

pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read: {e}")),
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "is {} bytes, over the {MAX_FILE_BYTES}-byte limit",
            meta.len()
        ));
    }
    std::fs::read_to_string(path)
        .map(Some)
        .map_err(|e| format!("cannot read as UTF-8: {e}"))
}

/// serde_json names the offending key only in prose: lift `unknown field `x`` into the field.
fn json_error_field(e: &serde_json::Error) -> Option<String> {
    let msg = e.to_string();
    let start = msg.find("field `")? + "field `".len();
    let len = msg[start..].find('`')?;
    Some(msg[start..start + len].to_owned())
}

/// Digest of the folder's code (not its nested functions, caches or config): a change
/// restarts the pool; config and env changes reach the pool through its spec instead.
pub fn code_hash(dir: &Path) -> [u8; 32] {
    let mut files = Vec::new();
    collect_code(dir, dir, 0, &mut files);
    files.sort();
    let mut ctx = digest::Context::new(&digest::SHA256);
    for (rel, path) in files {
        ctx.update(rel.as_bytes());
        ctx.update(&[0]);
        match std::fs::metadata(&path) {
            Ok(m) if m.len() <= MAX_HASHED_BYTES => {
                if let Ok(bytes) = std::fs::read(&path) {
                    ctx.update(&(bytes.len() as u64).to_be_bytes());
                    ctx.update(&bytes);
                }
            }
            Ok(m) => {
                ctx.update(&m.len().to_be_bytes());
                if let Ok(t) = m.modified() {
                    ctx.update(format!("{t:?}").as_bytes());
                }
            }
            Err(_) => {}
        }
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn collect_code(root: &Path, dir: &Path, depth: usize, out: &mut Vec<(String, PathBuf)>) {
    if depth > discover::MAX_DEPTH {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        if name.starts_with('.') || ft.is_symlink() {
            continue;
        }
        if ft.is_dir() {
            // The same rules as discovery: a nested function is its own, dependency and
            // cache folders (virtualenvs included) are not code.
            // A cargo project's own folders (`src/main.rs`) are its code, not functions.
            let cargo = dir.join("Cargo.toml").is_file();
            let nested_fn = !cargo && discover::has_entry_file(&path);
            if !nested_fn && !discover::SKIPPED.contains(&name.as_str()) {
                collect_code(root, &path, depth + 1, out);
            }
        } else if ft.is_file() && !matches!(name.as_str(), "fn.config.json" | "fn.env.json") {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push((rel.to_string_lossy().into_owned(), path));
        }
    }
}

#[cfg(test)]
mod keep_warm_tests {
    use super::*;

    #[test]
    fn keep_warm_is_a_ping_entry_and_keeps_a_worker() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::create_dir(&f).unwrap();
        std::fs::write(f.join("handler.py"), "def handler(e):\n    return 'ok'\n").unwrap();
        // Pool-based execution would start no worker (FastFN's min_warm default, 0).
        std::fs::write(
            f.join("fn.config.json"),
            r#"{"methods": ["POST"], "worker_pool": {"max_workers": 2},
                "keep_warm": {"enabled": true, "ping_every_seconds": 3}}"#,
        )
        .unwrap();
        let cat = Catalog::load(dir.path()).unwrap();
        let def = &cat.functions[0];
        assert_eq!(def.policy.min_workers, 1);
        let ping = def.keep_warm.as_ref().expect("a ping entry");
        assert_eq!(ping.method, http::Method::POST);
        assert!(cat.warnings.is_empty(), "{:?}", cat.warnings);
        std::fs::write(
            f.join("fn.config.json"),
            r#"{"worker_pool": {"max_workers": 2}, "keep_warm": {"enabled": true, "min_warm": 0}}"#,
        )
        .unwrap();
        let cat = Catalog::load(dir.path()).unwrap();
        assert!(cat.functions[0].keep_warm.is_none());
        assert_eq!(cat.functions[0].policy.min_workers, 0);
        assert!(cat.warnings[0].to_string().contains("keep_warm is off"));
    }

    #[test]
    fn a_version_takes_its_functions_keep_warm_unless_it_has_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write(
            "python/hello/handler.py",
            "def handler(e):\n    return 'ok'\n",
        );
        write(
            "python/hello/fn.config.json",
            r#"{"keep_warm": {"enabled": true, "ping_every_seconds": 7}}"#,
        );
        write(
            "python/hello/v2/handler.py",
            "def handler(e):\n    return 'ok'\n",
        );
        write(
            "python/hello/v3/handler.py",
            "def handler(e):\n    return 'ok'\n",
        );
        write(
            "python/hello/v3/fn.config.json",
            r#"{"keep_warm": {"enabled": false}}"#,
        );
        let cat = Catalog::load(dir.path()).unwrap();
        let by = |n: &str| cat.functions.iter().find(|f| &*f.name == n).unwrap();
        let every = |n: &str| match by(n).keep_warm.as_ref().map(|s| &s.trigger) {
            Some(crate::schedule::config::Trigger::KeepWarm { ping_every, .. }) => {
                Some(ping_every.as_secs())
            }
            _ => None,
        };
        assert_eq!(every("hello"), Some(7));
        assert_eq!(every("hello@v2"), Some(7));
        assert_eq!(every("hello@v3"), None);
    }
}
