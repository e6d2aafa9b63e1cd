//! Walks the functions tree the way FastFN does (`routes.lua`): folder functions (an entry
//! file `handler.*`, `main.*`, `index.*`, or the `entrypoint` key), file routes
//! (`get.items.py`, `[id].js`, `hello.js`), and runtime-grouped trees (`python/hello/…`,
//! versions `hello/v2` served at `/hello@v2`). Only names, handlers and folder safety are
//! decided here; file contents are parsed by the catalog.

use std::path::{Path, PathBuf};

use http::Method;

use super::declared_name;
use super::file_route::{self, NotRoute};
use super::runtime::Runtime;
use super::CatalogError;

/// Deep trees are a mistake, and unbounded recursion over outside input is not allowed.
pub const MAX_DEPTH: usize = 16;
pub const MAX_FUNCTIONS: usize = 10_000;
/// The entry of a Rust function that is a cargo project (`pool/rust_build.rs`).
const CARGO_MANIFEST: &str = "Cargo.toml";
/// Folders that hold dependencies or caches, never functions.
pub(crate) const SKIPPED: [&str; 4] = ["node_modules", "__pycache__", "site-packages", "venv"];
/// FastFN looks this deep below a runtime folder for namespaced functions.
const MAX_NAMESPACE_DEPTH: usize = 3;
/// The parameter name FastFN gives the `/*` tail of a runtime-grouped function.
pub const WILDCARD: &str = "wildcard";

/// One path segment of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Static(String),
    Param(String),
    /// `[...name]`: one or more segments, always last.
    CatchAll(String),
    /// `[[...name]]`: zero or more segments, always last.
    OptionalCatchAll(String),
}

/// How a function was found, which decides its default routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A folder with an entry file.
    Folder,
    /// A file route (`get.items.py`, `hello.js`).
    File,
    /// `<runtime>/<name>/…`: `/name` and `/name/*`.
    RuntimeGrouped,
    /// `<runtime>/<name>/<version>/…`: `/name@version`.
    Version,
    /// A folder whose `fn.config.json` declares a `name`: `/name` and `/name/*`.
    Named,
}

/// One handler file and the route it serves.
#[derive(Debug, Clone)]
pub struct Found {
    /// Unique: the folder path for folder functions, the file path without extension for
    /// file routes, `name@version` for versions.
    pub name: String,
    pub segments: Vec<Segment>,
    /// The folder whose `fn.config.json` / `fn.env.json` apply.
    pub dir: PathBuf,
    pub handler: PathBuf,
    pub runtime: Runtime,
    /// A file's method prefix: the only method it serves.
    pub method: Option<Method>,
    pub version: Option<String>,
    pub origin: Origin,
}

/// FastFN's explicit route map (`"GET /items": "list.js"`): not read yet, so warned.
const ROUTE_MANIFEST: &str = "fn.routes.json";

/// Finds every function below `root`, collecting every problem (and FastFN's warnings).
pub fn discover(root: &Path) -> (Vec<Found>, Vec<CatalogError>, Vec<CatalogError>) {
    let mut w = Walker {
        assets: None,
        root: PathBuf::new(),
        found: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    match root.canonicalize() {
        Ok(r) => w.root = r,
        Err(e) => {
            w.errors.push(CatalogError::new(
                root,
                None,
                format!("cannot open the functions directory: {e}"),
            ));
            return (w.found, w.errors, w.warnings);
        }
    }
    let top = w.root.clone();
    w.assets = assets_directory(&top).map(|d| top.join(d));
    w.walk(&top, &mut Vec::new(), &mut Vec::new(), false);
    if w.found.len() > MAX_FUNCTIONS {
        w.errors.push(CatalogError::new(
            root,
            None,
            format!(
                "{} functions found; the limit is {MAX_FUNCTIONS}",
                w.found.len()
            ),
        ));
    }
    w.found
        .sort_by(|a, b| a.dir.cmp(&b.dir).then(a.handler.cmp(&b.handler)));
    same_names(&w.found, &mut w.errors);
    (w.found, w.errors, w.warnings)
}

struct Walker {
    root: PathBuf,
    /// The top-level `assets.directory`: static files, never functions (as in FastFN).
    assets: Option<PathBuf>,
    found: Vec<Found>,
    errors: Vec<CatalogError>,
    warnings: Vec<CatalogError>,
}

struct Listing {
    files: Vec<(String, PathBuf)>,
    dirs: Vec<(String, PathBuf)>,
}

impl Walker {
    fn walk(&mut self, dir: &Path, rel: &mut Vec<String>, segs: &mut Vec<Segment>, mixed: bool) {
        if rel.len() > MAX_DEPTH {
            self.errors.push(CatalogError::new(
                dir,
                None,
                format!("nested deeper than {MAX_DEPTH} folders; flatten the tree"),
            ));
            return;
        }
        let Some(listing) = self.list(dir) else {
            return;
        };
        let found_before = self.found.len();
        let entry = self.entry_of(dir, &listing);
        let mut named = None;
        if let Some((handler, runtime)) = &entry {
            if segs.is_empty() {
                self.errors.push(CatalogError::new(
                    handler,
                    None,
                    "a handler at the top of the functions directory has no route; move it into a folder named after the function".into(),
                ));
            } else {
                let (name, segments, origin) = match declared_name::read(dir) {
                    None => (rel.join("/"), segs.clone(), Origin::Folder),
                    Some(Err(msg)) => {
                        self.errors.push(config_error(dir, msg));
                        (rel.join("/"), segs.clone(), Origin::Folder)
                    }
                    Some(Ok(d)) => {
                        if let Some(note) = d.note {
                            self.warnings.push(config_error(dir, note));
                        }
                        named = Some(d.name.clone());
                        (d.name, d.segments, Origin::Named)
                    }
                };
                self.found.push(Found {
                    name,
                    segments,
                    dir: dir.to_path_buf(),
                    handler: handler.clone(),
                    runtime: *runtime,
                    method: None,
                    version: None,
                    origin,
                });
            }
        } else if !rel.is_empty() && declared_name::read(dir).is_some() {
            self.warnings.push(config_error(
                dir,
                "has no effect: the folder has no entry file (handler.*, main.*, index.* or entrypoint), and FastFN names only such a folder's function".into(),
            ));
        }
        if entry.as_ref().is_some_and(|(h, _)| is_cargo_manifest(h)) {
            // A cargo project is one function: its `src/` holds modules, not routes.
            return;
        }
        let mixed = mixed || entry.is_some();
        // A nested tree's own `assets` folder (FastFN skips it too): static files, never
        // functions. Only the top-level one is served.
        let local_assets = if rel.is_empty() {
            None
        } else {
            assets_directory(dir)
        };
        self.file_routes(
            dir,
            &listing,
            rel,
            segs,
            mixed,
            entry.as_ref().map(|e| &e.0),
        );
        for (name, path) in &listing.dirs {
            if local_assets.as_deref().and_then(|a| a.split('/').next()) == Some(name.as_str()) {
                continue;
            }
            if rel.is_empty() && name == "_fn" {
                self.errors.push(CatalogError::new(
                    path,
                    None,
                    "the route /_fn is reserved for the gateway; rename the folder".into(),
                ));
                continue;
            }
            if rel.is_empty() && (name == "function" || name == "async-function") {
                self.errors.push(CatalogError::new(
                    path,
                    None,
                    format!("the route /{name} would collide with OpenFaaS's /{name}/<name> routes; rename the folder"),
                ));
                continue;
            }
            if rel.is_empty() {
                if let Some(rt) = runtime_folder(name) {
                    if !self.exposes_file_routes(path, 0) && self.has_function_child(path) {
                        self.runtime_grouped(path, rt, &mut Vec::new(), 1);
                        continue;
                    }
                }
            }
            match parse_segment(name) {
                Ok(seg) => {
                    rel.push(name.clone());
                    segs.push(seg);
                    self.walk(path, rel, segs, mixed);
                    segs.pop();
                    rel.pop();
                }
                Err(msg) => self.errors.push(CatalogError::new(path, None, msg)),
            }
        }
        if let Some(name) = named {
            let others = self.found.len() - found_before - 1;
            if others > 0 {
                self.warnings.push(config_error(
                    dir,
                    format!("the {others} other route(s) of this folder and its subfolders keep the folder's path /{}; FastFN also serves them below /{name}, edgefn does not yet", rel.join("/")),
                ));
            }
        }
    }

    /// Every code file of a folder that is a route of its own.
    fn file_routes(
        &mut self,
        dir: &Path,
        listing: &Listing,
        rel: &[String],
        segs: &[Segment],
        mixed: bool,
        entry: Option<&PathBuf>,
    ) {
        for (file, path) in &listing.files {
            if entry == Some(path) {
                continue;
            }
            let parsed = match file_route::parse(file) {
                Ok(p) => p,
                Err(NotRoute::NotCode | NotRoute::Private) => continue,
                Err(NotRoute::AmbiguousMethod) => {
                    self.warnings.push(CatalogError::new(
                        path,
                        None,
                        "names two methods; ignored (as FastFN does): keep one method prefix"
                            .into(),
                    ));
                    continue;
                }
            };
            if (mixed && !parsed.is_explicit()) || parsed.is_entry() {
                // A helper beside an entry file, or a second entry file (refused by
                // `entry_of` already).
                continue;
            }
            let mut route = segs.to_vec();
            let mut bad = false;
            for t in &parsed.tokens {
                match parse_segment(t) {
                    Ok(s) => route.push(s),
                    Err(msg) => {
                        self.errors.push(CatalogError::new(path, None, msg));
                        bad = true;
                    }
                }
            }
            if bad {
                continue;
            }
            if route.is_empty() {
                self.errors.push(CatalogError::new(
                    path,
                    None,
                    "is at the top of the functions directory and has no route; name it after the route (hello.js) or move it into a folder".into(),
                ));
                continue;
            }
            if let Err(e) = check_inside(&self.root, path) {
                self.errors.push(e);
                continue;
            }
            let mut name = rel.to_vec();
            name.push(parsed.stem.clone());
            self.found.push(Found {
                name: name.join("/"),
                segments: route,
                dir: dir.to_path_buf(),
                handler: path.clone(),
                runtime: parsed.runtime,
                method: parsed.method,
                version: None,
                origin: Origin::File,
            });
        }
    }

    /// `<runtime>/<ns…>/<name>/entry` → function `ns…/name`, versions below it.
    fn runtime_grouped(&mut self, dir: &Path, rt: Runtime, prefix: &mut Vec<String>, depth: usize) {
        let Some(listing) = self.list(dir) else {
            return;
        };
        for (name, path) in &listing.dirs {
            let Some(sub) = self.list(path) else { continue };
            let entry = self.entry_of(path, &sub);
            let versions: Vec<(String, PathBuf, PathBuf, Runtime)> = sub
                .dirs
                .iter()
                .filter(|(v, _)| looks_like_version(v))
                .filter_map(|(v, vp)| {
                    let l = self.list(vp)?;
                    let (h, r) = self.entry_of(vp, &l)?;
                    Some((v.clone(), vp.clone(), h, r))
                })
                .collect();
            prefix.push(name.clone());
            if entry.is_none() && versions.is_empty() {
                if depth < MAX_NAMESPACE_DEPTH {
                    self.runtime_grouped(path, rt, prefix, depth + 1);
                }
                prefix.pop();
                continue;
            }
            let fn_name = prefix.join("/");
            let mut segs = Vec::new();
            for p in prefix.iter() {
                match parse_segment(p) {
                    Ok(s) => segs.push(s),
                    Err(msg) => self.errors.push(CatalogError::new(path, None, msg)),
                }
            }
            if let Some((handler, runtime)) = entry {
                // TypeScript runs on Node: FastFN keeps `.ts` handlers in its `node/` folder.
                let in_its_folder =
                    runtime == rt || (rt == Runtime::Node && runtime == Runtime::TypeScript);
                if !in_its_folder {
                    self.errors.push(CatalogError::new(
                        &handler,
                        None,
                        format!(
                            "is a {} handler inside the {} folder; move it or rename the file",
                            runtime.as_str(),
                            rt.as_str()
                        ),
                    ));
                } else {
                    if declared_name::read(path).is_some() {
                        self.warnings.push(config_error(
                            path,
                            format!("has no effect: a function in the {} folder is named by its path ({fn_name:?}), as in FastFN", rt.as_str()),
                        ));
                    }
                    let mut route = segs.clone();
                    route.push(Segment::OptionalCatchAll(WILDCARD.into()));
                    self.found.push(Found {
                        name: fn_name.clone(),
                        segments: route,
                        dir: path.clone(),
                        handler: handler.clone(),
                        runtime,
                        method: None,
                        version: None,
                        origin: Origin::RuntimeGrouped,
                    });
                }
                let rel: Vec<String> = prefix.clone();
                self.file_routes(path, &sub, &rel, &segs, true, Some(&handler));
            }
            for (ver, vdir, handler, runtime) in versions {
                let versioned = format!("{fn_name}@{ver}");
                // FastFN serves `/<name>@<version>` for single-segment names only.
                let segments = if prefix.len() == 1 {
                    vec![Segment::Static(versioned.clone())]
                } else {
                    Vec::new()
                };
                self.found.push(Found {
                    name: versioned,
                    segments,
                    dir: vdir,
                    handler,
                    runtime,
                    method: None,
                    version: Some(ver),
                    origin: Origin::Version,
                });
            }
            prefix.pop();
        }
    }

    /// A runtime-grouped tree has a plainly named function right below the runtime folder
    /// (`python/hello/handler.py`); without one (`node/api/[id]/handler.js`,
    /// `node/[id]/handler.js`) the folder is an ordinary route prefix, as edgefn always
    /// read it.
    fn has_function_child(&mut self, dir: &Path) -> bool {
        let Some(l) = self.list(dir) else {
            return false;
        };
        // FastFN names grouped functions plainly; `python/[id]/handler.py` is a route
        // parameter below a prefix, as edgefn always read it.
        l.dirs
            .iter()
            .filter(|(n, _)| !n.starts_with('['))
            .any(|(_, p)| {
                let Some(sub) = self.list(p) else {
                    return false;
                };
                self.entry_of(p, &sub).is_some()
                    || sub.dirs.iter().any(|(v, vp)| {
                        looks_like_version(v)
                            && self
                                .list(vp)
                                .is_some_and(|l| self.entry_of(vp, &l).is_some())
                    })
            })
    }

    /// Whether a runtime-named top folder is a plain namespace (`php/get.export.php`)
    /// rather than a runtime-grouped tree.
    fn exposes_file_routes(&mut self, dir: &Path, depth: usize) -> bool {
        if depth > 6 {
            return false;
        }
        let Some(l) = self.list(dir) else {
            return false;
        };
        if depth > 0 && self.entry_of(dir, &l).is_some() {
            return false;
        }
        if l.files.iter().any(|(f, _)| file_route::parse(f).is_ok()) {
            return true;
        }
        l.dirs
            .iter()
            .any(|(_, p)| self.exposes_file_routes(p, depth + 1))
    }

    /// The folder's entry file: `entrypoint` from its `fn.config.json`, else the first
    /// of `handler.*`, `main.*`, `index.*`. Two entry files are refused, naming both.
    fn entry_of(&mut self, dir: &Path, listing: &Listing) -> Option<(PathBuf, Runtime)> {
        if let Some(ep) = configured_entrypoint(dir) {
            let path = dir.join(&ep);
            let runtime = Path::new(&ep)
                .extension()
                .and_then(|e| Runtime::from_extension(&e.to_string_lossy()));
            let safe = !ep.starts_with('/') && !ep.split('/').any(|s| s == ".." || s.is_empty());
            return match runtime {
                Some(rt) if safe && path.is_file() => match check_inside(&self.root, &path) {
                    Ok(()) => Some((path, rt)),
                    Err(e) => {
                        self.errors.push(e);
                        None
                    }
                },
                _ => {
                    self.errors.push(CatalogError::new(
                        &dir.join("fn.config.json"),
                        Some("entrypoint".into()),
                        format!("{ep:?} is not a handler file inside this folder (py, js, ts, php, lua, rs, go)"),
                    ));
                    None
                }
            };
        }
        let mut entries: Vec<(usize, &String, &PathBuf, Runtime)> = listing
            .files
            .iter()
            .filter_map(|(f, p)| {
                let parsed = file_route::parse(f).ok()?;
                let order = file_route::ENTRY_STEMS
                    .iter()
                    .position(|s| *s == parsed.stem.to_ascii_lowercase())?;
                parsed.is_entry().then_some((order, f, p, parsed.runtime))
            })
            .collect();
        entries.sort_by_key(|e| e.0);
        match entries.as_slice() {
            // A Rust function may be a cargo project: its manifest is the entry.
            [] => listing
                .files
                .iter()
                .find(|(f, _)| f == CARGO_MANIFEST)
                .and_then(|(_, p)| match check_inside(&self.root, p) {
                    Ok(()) => Some((p.clone(), Runtime::Rust)),
                    Err(e) => {
                        self.errors.push(e);
                        None
                    }
                }),
            [(_, _, path, rt)] => match check_inside(&self.root, path) {
                Ok(()) => Some(((*path).clone(), *rt)),
                Err(e) => {
                    self.errors.push(e);
                    None
                }
            },
            many => {
                let names: Vec<&str> = many.iter().map(|e| e.1.as_str()).collect();
                self.errors.push(CatalogError::new(
                    dir,
                    None,
                    format!(
                        "has {} entry files ({}) for one route; keep exactly one handler per folder (FastFN answers 409 here)",
                        names.len(),
                        names.join(", ")
                    ),
                ));
                None
            }
        }
    }

    fn list(&mut self, dir: &Path) -> Option<Listing> {
        let mut entries = match std::fs::read_dir(dir) {
            Ok(rd) => rd.filter_map(Result::ok).collect::<Vec<_>>(),
            Err(e) => {
                self.errors
                    .push(CatalogError::new(dir, None, format!("cannot list: {e}")));
                return None;
            }
        };
        entries.sort_by_key(|e| e.file_name());
        let mut l = Listing {
            files: Vec::new(),
            dirs: Vec::new(),
        };
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let Ok(ft) = entry.file_type() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let is_dir = if ft.is_symlink() {
                match check_inside(&self.root, &path) {
                    Ok(()) => path.is_dir(),
                    Err(e) => {
                        self.errors.push(e);
                        continue;
                    }
                }
            } else {
                ft.is_dir()
            };
            if is_dir {
                if !SKIPPED.contains(&name.as_str()) && self.assets.as_ref() != Some(&path) {
                    l.dirs.push((name, path));
                }
            } else {
                if name == ROUTE_MANIFEST {
                    // Listed more than once on some walks; the catalog drops repeats.
                    self.warnings.push(CatalogError::new(
                        &path,
                        None,
                        "is a FastFN route manifest edgefn does not implement yet; its routes are not served".into(),
                    ));
                }
                l.files.push((name, path));
            }
        }
        Some(l)
    }
}

/// Whether a folder holds a function of its own (used to keep nested functions out of
/// a parent's code hash).
pub fn has_entry_file(dir: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    rd.filter_map(Result::ok)
        .any(|e| file_route::parse(&e.file_name().to_string_lossy()).is_ok_and(|f| f.is_entry()))
        || configured_entrypoint(dir).is_some()
        || dir.join(CARGO_MANIFEST).is_file()
}

/// A `name` that another function has too: refused naming both, where FastFN would keep
/// one of them without a word.
fn same_names(found: &[Found], errors: &mut Vec<CatalogError>) {
    for (i, f) in found.iter().enumerate() {
        for g in &found[i + 1..] {
            let named = f.origin == Origin::Named || g.origin == Origin::Named;
            if named && f.name == g.name && f.handler != g.handler {
                let (named, other) = if f.origin == Origin::Named {
                    (f, g)
                } else {
                    (g, f)
                };
                errors.push(config_error(
                    &named.dir,
                    format!(
                        "declares the function name {:?}, which {} has too; rename one of them",
                        named.name,
                        other.handler.display()
                    ),
                ));
            }
        }
    }
}

/// An error or warning about a folder's `name` key.
fn config_error(dir: &Path, msg: String) -> CatalogError {
    CatalogError::new(&dir.join("fn.config.json"), Some("name".into()), msg)
}

/// `entrypoint` from a folder's `fn.config.json`, read leniently: the catalog parses the
/// file strictly and reports its errors.
fn configured_entrypoint(dir: &Path) -> Option<String> {
    let text = super::read_optional(&dir.join("fn.config.json")).ok()??;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("entrypoint")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `assets.directory` of the top-level `fn.config.json`, when it is a plain relative path.
fn assets_directory(root: &Path) -> Option<String> {
    let text = super::read_optional(&root.join("fn.config.json")).ok()??;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let dir = v.get("assets")?.get("directory")?.as_str()?;
    let dir = dir.trim_start_matches("./").trim_end_matches('/');
    let safe = !dir.is_empty() && !dir.starts_with('/') && !dir.split('/').any(|s| s == "..");
    safe.then(|| dir.to_owned())
}

/// FastFN's runtime folder names.
fn runtime_folder(name: &str) -> Option<Runtime> {
    match name {
        "python" => Some(Runtime::Python),
        "node" => Some(Runtime::Node),
        "php" => Some(Runtime::Php),
        "lua" => Some(Runtime::Lua),
        "rust" => Some(Runtime::Rust),
        "go" => Some(Runtime::Go),
        _ => None,
    }
}

/// `v2`, `2`, `v1.1-beta`: FastFN's version folder labels.
fn looks_like_version(name: &str) -> bool {
    let rest = name.strip_prefix('v').unwrap_or(name);
    rest.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn is_cargo_manifest(handler: &Path) -> bool {
    handler.file_name().is_some_and(|n| n == CARGO_MANIFEST)
}

/// A symlink may point anywhere inside the tree, never outside it.
fn check_inside(root: &Path, path: &Path) -> Result<(), CatalogError> {
    match path.canonicalize() {
        Ok(target) if target.starts_with(root) => Ok(()),
        Ok(target) => Err(CatalogError::new(
            path,
            None,
            format!(
                "is a symlink to {} outside the functions directory; copy the code in instead",
                target.display()
            ),
        )),
        Err(e) => Err(CatalogError::new(
            path,
            None,
            format!("cannot be resolved: {e}"),
        )),
    }
}

/// Folder names and file tokens become URL segments: `[A-Za-z0-9._-]`, `[param]`,
/// `[...rest]` or `[[...rest]]`.
pub fn parse_segment(name: &str) -> Result<Segment, String> {
    let param_ok = |inner: &str| {
        inner
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && inner.len() <= 64
    };
    if let Some(inner) = name.strip_prefix('[') {
        let (kind, inner): (fn(String) -> Segment, _) = if let Some(i) = inner
            .strip_prefix("[...")
            .and_then(|n| n.strip_suffix("]]"))
        {
            (Segment::OptionalCatchAll, i)
        } else if let Some(i) = inner.strip_prefix("...").and_then(|n| n.strip_suffix(']')) {
            (Segment::CatchAll, i)
        } else if let Some(i) = inner.strip_suffix(']') {
            (Segment::Param, i)
        } else {
            return Err(format!("parameter {name:?} is missing its closing ]"));
        };
        return if param_ok(inner) {
            Ok(kind(inner.to_owned()))
        } else {
            Err(format!(
                "parameter {name:?} must be [name], [...name] or [[...name]] with letters, digits and _ (e.g. [id])"
            ))
        };
    }
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !name.chars().all(|c| c == '.');
    if ok {
        Ok(Segment::Static(name.to_owned()))
    } else {
        Err(format!(
            "name {name:?} cannot be a route segment; use only A-Z a-z 0-9 . _ - (or [param])"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments() {
        assert_eq!(parse_segment("users"), Ok(Segment::Static("users".into())));
        assert_eq!(parse_segment("[id]"), Ok(Segment::Param("id".into())));
        assert_eq!(
            parse_segment("[...slug]"),
            Ok(Segment::CatchAll("slug".into()))
        );
        assert_eq!(
            parse_segment("[[...slug]]"),
            Ok(Segment::OptionalCatchAll("slug".into()))
        );
        assert!(parse_segment("..").is_err());
        assert!(parse_segment("a b").is_err());
        assert!(parse_segment("[1x]").is_err());
        assert!(parse_segment("[]").is_err());
        assert!(parse_segment("[...]").is_err());
        assert!(parse_segment("[id").is_err());
    }

    #[test]
    fn versions() {
        assert!(looks_like_version("v2"));
        assert!(looks_like_version("2"));
        assert!(looks_like_version("v1.1-beta"));
        assert!(!looks_like_version("hello"));
        assert!(!looks_like_version("v"));
    }

    #[test]
    fn runtime_folders_with_a_parameter_child_stay_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("node/[id]")).unwrap();
        std::fs::write(dir.path().join("node/[id]/handler.js"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("rsproj/src")).unwrap();
        std::fs::write(dir.path().join("rsproj/Cargo.toml"), "").unwrap();
        std::fs::write(dir.path().join("rsproj/src/main.rs"), "").unwrap();
        let (found, errors, _) = discover(dir.path());
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["node/[id]", "rsproj"]);
        assert_eq!(found[0].segments[0], Segment::Static("node".into()));
        assert!(found[1].handler.ends_with("Cargo.toml"));
        assert_eq!(found[1].runtime, Runtime::Rust);
    }

    #[test]
    fn name_is_warned_where_fastfn_ignores_it() {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("python/hello/handler.py", "");
        write("python/hello/fn.config.json", r#"{"name": "other"}"#);
        write("lib/get.items.py", "");
        write("lib/fn.config.json", r#"{"name": "lib2"}"#);
        write("a/b/handler.py", "");
        write("a/b/fn.config.json", r#"{"name": "/abs"}"#);
        write("n/handler.py", "");
        write("n/get.extra.py", "");
        write("n/fn.config.json", r#"{"name": "named"}"#);
        let (found, errors, warnings) = discover(dir.path());
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["b", "lib/get.items", "n/get.extra", "named", "hello"]
        );
        assert_eq!(found[0].origin, Origin::Named);
        let w: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(w.len(), 4, "{w:?}");
        assert!(
            w.iter().any(|m| m.contains("1 other route(s)")
                && m.contains("/n;")
                && m.contains("below /named")),
            "{w:?}"
        );
        assert!(w.iter().any(|m| m.contains("not a relative path")), "{w:?}");
        assert!(w.iter().any(|m| m.contains("no entry file")), "{w:?}");
        assert!(w.iter().any(|m| m.contains("named by its path")), "{w:?}");
    }

    #[test]
    fn a_nested_assets_folder_holds_no_functions() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        std::fs::create_dir_all(site.join("public/js")).unwrap();
        std::fs::create_dir_all(site.join("api")).unwrap();
        std::fs::write(
            site.join("fn.config.json"),
            r#"{"assets": {"directory": "./public/"}}"#,
        )
        .unwrap();
        std::fs::write(site.join("public/app.js"), "").unwrap();
        std::fs::write(site.join("public/js/index.js"), "").unwrap();
        std::fs::write(site.join("api/handler.py"), "").unwrap();
        let (found, errors, _) = discover(dir.path());
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["site/api"]);
    }

    #[test]
    fn the_node_folder_holds_typescript_handlers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("node/ts-hello")).unwrap();
        std::fs::write(dir.path().join("node/ts-hello/handler.ts"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("node/py-here")).unwrap();
        std::fs::write(dir.path().join("node/py-here/handler.py"), "").unwrap();
        let (found, errors, _) = discover(dir.path());
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["ts-hello"]);
        assert_eq!(found[0].runtime, Runtime::TypeScript);
        assert_eq!(found[0].origin, Origin::RuntimeGrouped);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0]
            .message
            .contains("python handler inside the node folder"));
    }

    #[test]
    fn openfaas_prefixes_are_refused_as_folders() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["function", "async-function", "functions"] {
            std::fs::create_dir_all(dir.path().join(f)).unwrap();
            std::fs::write(dir.path().join(f).join("handler.py"), "").unwrap();
        }
        let (found, errors, _) = discover(dir.path());
        assert_eq!(found.len(), 1, "only `functions` is served");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors
            .iter()
            .all(|e| e.message.contains("collide with OpenFaaS")));
    }
}
