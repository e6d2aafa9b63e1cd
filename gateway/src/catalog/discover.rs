//! Walks the functions tree and finds handler folders. Only names, handlers and folder
//! safety are decided here; file contents are parsed by the catalog.

use std::path::{Path, PathBuf};

use super::runtime::Runtime;
use super::CatalogError;

/// Deep trees are a mistake, and unbounded recursion over outside input is not allowed.
pub const MAX_DEPTH: usize = 16;
pub const MAX_FUNCTIONS: usize = 10_000;
pub(crate) const HANDLER_FILES: [(&str, Runtime); 12] = [
    ("handler.py", Runtime::Python),
    ("handler.js", Runtime::Node),
    ("index.js", Runtime::Node),
    ("handler.ts", Runtime::TypeScript),
    ("index.ts", Runtime::TypeScript),
    ("handler.php", Runtime::Php),
    ("index.php", Runtime::Php),
    ("handler.lua", Runtime::Lua),
    ("main.lua", Runtime::Lua),
    ("index.lua", Runtime::Lua),
    ("handler.rs", Runtime::Rust),
    ("Cargo.toml", Runtime::Rust),
];
/// Folders that hold dependencies or caches, never functions.
pub(crate) const SKIPPED: [&str; 4] = ["node_modules", "__pycache__", "site-packages", "venv"];

/// One path segment of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Static(String),
    Param(String),
}

/// A folder holding exactly one handler.
#[derive(Debug, Clone)]
pub struct Found {
    pub segments: Vec<Segment>,
    pub dir: PathBuf,
    pub handler: PathBuf,
    pub runtime: Runtime,
}

/// Finds every function below `root`, collecting every problem.
pub fn discover(root: &Path) -> (Vec<Found>, Vec<CatalogError>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    let canon_root = match root.canonicalize() {
        Ok(r) => r,
        Err(e) => {
            errors.push(CatalogError::new(
                root,
                None,
                format!("cannot open the functions directory: {e}"),
            ));
            return (found, errors);
        }
    };
    walk(
        &canon_root,
        &canon_root,
        &mut Vec::new(),
        &mut found,
        &mut errors,
    );
    if found.len() > MAX_FUNCTIONS {
        errors.push(CatalogError::new(
            root,
            None,
            format!(
                "{} functions found; the limit is {MAX_FUNCTIONS}",
                found.len()
            ),
        ));
    }
    found.sort_by(|a, b| a.dir.cmp(&b.dir));
    (found, errors)
}

fn walk(
    root: &Path,
    dir: &Path,
    segments: &mut Vec<Segment>,
    found: &mut Vec<Found>,
    errors: &mut Vec<CatalogError>,
) {
    if segments.len() > MAX_DEPTH {
        errors.push(CatalogError::new(
            dir,
            None,
            format!("nested deeper than {MAX_DEPTH} folders; flatten the tree"),
        ));
        return;
    }
    let mut entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(Result::ok).collect::<Vec<_>>(),
        Err(e) => {
            errors.push(CatalogError::new(dir, None, format!("cannot list: {e}")));
            return;
        }
    };
    entries.sort_by_key(|e| e.file_name());

    let handlers: Vec<(PathBuf, Runtime)> = HANDLER_FILES
        .iter()
        .map(|(name, rt)| (dir.join(name), *rt))
        .filter(|(p, _)| p.symlink_metadata().is_ok())
        .collect();
    match handlers.as_slice() {
        [] => {}
        [(handler, runtime)] if !segments.is_empty() => {
            if let Err(e) = check_inside(root, handler) {
                errors.push(e);
            } else {
                found.push(Found {
                    segments: segments.clone(),
                    dir: dir.to_path_buf(),
                    handler: handler.clone(),
                    runtime: *runtime,
                });
            }
        }
        [_] => errors.push(CatalogError::new(
            dir,
            None,
            "a handler at the top of the functions directory has no route; move it into a folder named after the function".into(),
        )),
        many => {
            let names: Vec<_> = many
                .iter()
                .filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            errors.push(CatalogError::new(
                dir,
                None,
                format!(
                    "has {} handlers ({}); keep exactly one handler per folder",
                    names.len(),
                    names.join(", ")
                ),
            ));
        }
    }

    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        let is_dir = if ft.is_symlink() {
            match check_inside(root, &path) {
                Ok(()) => path.is_dir(),
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            }
        } else {
            ft.is_dir()
        };
        if !is_dir || name.starts_with('.') || SKIPPED.contains(&name.as_str()) {
            continue;
        }
        match parse_segment(&name) {
            Ok(seg) => {
                if segments.is_empty() && name == "_fn" {
                    errors.push(CatalogError::new(
                        &path,
                        None,
                        "the route /_fn is reserved for the gateway; rename the folder".into(),
                    ));
                    continue;
                }
                if segments.is_empty() && (name == "function" || name == "async-function") {
                    errors.push(CatalogError::new(
                        &path,
                        None,
                        format!("the route /{name} would collide with OpenFaaS's /{name}/<name> routes; rename the folder"),
                    ));
                    continue;
                }
                segments.push(seg);
                walk(root, &path, segments, found, errors);
                segments.pop();
            }
            Err(msg) => errors.push(CatalogError::new(&path, None, msg)),
        }
    }
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

/// Folder names become URL segments: `[A-Za-z0-9._-]`, or `[param]` for a path parameter.
pub fn parse_segment(name: &str) -> Result<Segment, String> {
    if let Some(inner) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        let ok = inner
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && inner.len() <= 64;
        return if ok {
            Ok(Segment::Param(inner.to_owned()))
        } else {
            Err(format!(
                "parameter folder {name:?} must be [name] with letters, digits and _ (e.g. [id])"
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
            "folder name {name:?} cannot be a route; use only A-Z a-z 0-9 . _ - (or [param])"
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
        assert!(parse_segment("..").is_err());
        assert!(parse_segment("a b").is_err());
        assert!(parse_segment("[1x]").is_err());
        assert!(parse_segment("[]").is_err());
    }

    #[test]
    fn openfaas_prefixes_are_refused_as_folders() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["function", "async-function", "functions"] {
            std::fs::create_dir_all(dir.path().join(f)).unwrap();
            std::fs::write(dir.path().join(f).join("handler.py"), "").unwrap();
        }
        let (found, errors) = discover(dir.path());
        assert_eq!(found.len(), 1, "only `functions` is served");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors
            .iter()
            .all(|e| e.message.contains("collide with OpenFaaS")));
    }
}
