//! The function catalog: discovery plus every per-function file parsed and compiled into
//! [`FunctionDef`]s. Pure (no processes, no sockets), so `edgefn check` and `edgefn
//! openapi` use it as is and the snapshot adds pools on top.

pub mod discover;
pub mod fn_config;
pub mod fn_env;
pub mod fn_env_parse;
pub mod runtime;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::digest;

use crate::auth::{AuthConfig, Policy};
use crate::limits::RateLimiter;
use discover::Segment;
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
    /// Route without the leading slash, folder names kept (`api/users/[id]`).
    pub name: Arc<str>,
    /// OpenAPI form (`/api/users/{id}`).
    pub route: String,
    pub segments: Vec<Segment>,
    pub runtime: Runtime,
    pub dir: PathBuf,
    pub handler: PathBuf,
    pub policy: FnPolicy,
    pub auth: Policy,
    pub rate_limit: Option<RateLimiter>,
    pub env: FnEnv,
    pub code_hash: [u8; 32],
}

impl FunctionDef {
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(p) => Some(p.as_str()),
            Segment::Static(_) => None,
        })
    }
}

/// Every function of a tree, sorted by route.
#[derive(Debug)]
pub struct Catalog {
    pub root: PathBuf,
    pub functions: Vec<FunctionDef>,
}

impl Catalog {
    /// Loads the whole tree; any error anywhere fails the load with all errors listed.
    pub fn load(root: &Path) -> Result<Catalog, Vec<CatalogError>> {
        let (found, mut errors) = discover::discover(root);
        let mut functions = Vec::with_capacity(found.len());
        for f in found {
            match load_function(f) {
                Ok(def) => functions.push(def),
                Err(mut e) => errors.append(&mut e),
            }
        }
        check_route_conflicts(&functions, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        functions.sort_by(|a, b| a.route.cmp(&b.route));
        Ok(Catalog {
            root: root.to_path_buf(),
            functions,
        })
    }
}

fn load_function(f: discover::Found) -> Result<FunctionDef, Vec<CatalogError>> {
    let mut errors = Vec::new();
    let cfg_path = f.dir.join("fn.config.json");
    let env_path = f.dir.join("fn.env.json");

    let raw: RawFnConfig = match read_optional(&cfg_path) {
        Ok(None) => RawFnConfig::default(),
        Ok(Some(text)) => match serde_json::from_str(&text) {
            Ok(raw) => raw,
            Err(e) => {
                errors.push(CatalogError::new(
                    &cfg_path,
                    json_error_field(&e),
                    format!("{e}; see \"fn.config.json\" in README.md"),
                ));
                RawFnConfig::default()
            }
        },
        Err(e) => {
            errors.push(CatalogError::new(&cfg_path, None, e));
            RawFnConfig::default()
        }
    };
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
    let policy = fn_config::validate(&raw, f.runtime).map_err(|errs| {
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
    let code_hash = code_hash(&f.dir);
    match (policy, auth, rate_limit) {
        (Ok(policy), Ok(auth), Ok(rate_limit)) if errors.is_empty() => {
            let name: String = f
                .segments
                .iter()
                .map(|s| match s {
                    Segment::Static(n) => n.clone(),
                    Segment::Param(p) => format!("[{p}]"),
                })
                .collect::<Vec<_>>()
                .join("/");
            let route = f
                .segments
                .iter()
                .map(|s| match s {
                    Segment::Static(n) => format!("/{n}"),
                    Segment::Param(p) => format!("/{{{p}}}"),
                })
                .collect::<String>();
            Ok(FunctionDef {
                name: Arc::from(name),
                route,
                segments: f.segments,
                runtime: f.runtime,
                dir: f.dir,
                handler: f.handler,
                policy,
                auth,
                rate_limit,
                env,
                code_hash,
            })
        }
        _ => Err(errors),
    }
}

/// Two folders that give the same route shape (`[id]` vs `[name]` at one level) conflict.
fn check_route_conflicts(functions: &[FunctionDef], errors: &mut Vec<CatalogError>) {
    let mut seen: std::collections::HashMap<Vec<Option<&str>>, &Path> = Default::default();
    for f in functions {
        let shape: Vec<Option<&str>> = f
            .segments
            .iter()
            .map(|s| match s {
                Segment::Static(n) => Some(n.as_str()),
                Segment::Param(_) => None,
            })
            .collect();
        if let Some(other) = seen.insert(shape, &f.dir) {
            errors.push(CatalogError::new(
                &f.dir,
                None,
                format!(
                    "route {} conflicts with {}; rename one of the parameter folders",
                    f.route,
                    other.display()
                ),
            ));
        }
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, String> {
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
            let nested_fn = discover::HANDLER_FILES
                .iter()
                .any(|(h, _)| path.join(h).exists());
            if !nested_fn && !discover::SKIPPED.contains(&name.as_str()) {
                collect_code(root, &path, depth + 1, out);
            }
        } else if ft.is_file() && !matches!(name.as_str(), "fn.config.json" | "fn.env.json") {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push((rel.to_string_lossy().into_owned(), path));
        }
    }
}
