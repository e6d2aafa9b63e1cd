//! Builds a Go function into its worker binary, once per code digest, in the cache.
//!
//! Data flow: the handler file, the `.go` files FastFN compiles with it ([`helpers`]), an
//! optional `go.mod` / `go.sum`, the embedded harness (`runtimes/go`) and the go command
//! are hashed → if `go/bin/<digest>` exists it is used as is; else they are copied under
//! `go/src/<digest>.tmp…` (removed after the build), each function file renamed and
//! headed by a `//line` directive naming the original, so compiler messages and panic
//! stacks name the function's own file; a one-line `main` hands the handler to the
//! harness, and `go build` runs there with `GOPROXY=off` first (a module cache that
//! holds the function's requirements needs no network), then with the operator's proxy
//! settings if a module was missing. The binary is copied to `go/bin/<digest>` and handed to the
//! launcher through `EDGEFN_GO_WORKER`. A failed build is a `DepsError` whose message
//! ends with the compiler's output; the pool answers 503 for the function, or keeps the
//! previous version serving.

use std::path::{Path, PathBuf};

use ring::digest;
use tokio::process::Command;

use super::deps::{self, cache_root, DepsEnv, DepsError};
use crate::catalog::file_route;

/// The harness's source files, embedded so the gateway can build functions anywhere.
/// Their names in the build folder cannot be a FastFN handler's (`__` is no route).
const HARNESS: [(&str, &str); 2] = [
    (
        "edgefn__worker.go",
        include_str!("../../../runtimes/go/worker.go"),
    ),
    (
        "edgefn__respond.go",
        include_str!("../../../runtimes/go/respond.go"),
    ),
];
const ENTRY_FILE: &str = "edgefn__main.go";
/// The env var naming the built binary for the launcher.
pub const WORKER_VAR: &str = "EDGEFN_GO_WORKER";
/// Files FastFN copies beside the sources for module-aware builds.
const MODULE_FILES: [&str; 2] = ["go.mod", "go.sum"];
/// FastFN's Go entry files: a folder holding one (or an `entrypoint`) makes the `.go`
/// files around it helpers rather than routes.
const ENTRY_NAMES: [&str; 2] = ["handler.go", "main.go"];
const MAX_HELPERS: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum GoError {
    #[error(
        "{file} defines no `func handler(event map[string]interface{{}}) ...` (nor `Handler`)"
    )]
    NoHandler { file: PathBuf },
    #[error("{file} defines no `func {name}(...)` (named by invoke.handler)")]
    NoNamedHandler { file: PathBuf, name: String },
    #[error("{dir} has more than {MAX_HELPERS} .go files beside the handler")]
    TooManyFiles { dir: PathBuf },
}

/// Builds (or finds) the function's worker binary. `root` is the functions directory
/// (FastFN looks up to it for an entry file); `name` is `invoke.handler`.
pub async fn ensure(
    root: &Path,
    dir: &Path,
    handler: &Path,
    name: Option<&str>,
    go: &[String],
) -> Result<DepsEnv, DepsError> {
    let source = std::fs::read_to_string(handler).map_err(|source| DepsError::Read {
        file: handler.to_path_buf(),
        source,
    })?;
    let symbol = match name {
        Some(n) if defines(&source, n) => n.to_owned(),
        Some(n) => {
            return Err(GoError::NoNamedHandler {
                file: handler.to_path_buf(),
                name: n.to_owned(),
            }
            .into())
        }
        None => ["handler", "Handler"]
            .into_iter()
            .find(|s| defines(&source, s))
            .ok_or_else(|| GoError::NoHandler {
                file: handler.to_path_buf(),
            })?
            .to_owned(),
    };
    let mut files = vec![handler.to_path_buf()];
    files.extend(helpers(root, dir, handler)?);
    let modules: Vec<PathBuf> = MODULE_FILES
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .collect();
    let key = digest_of(&files, &modules, &symbol, go)?;
    let root = cache_root().join("go");
    let bin = root.join("bin").join(&key);
    let _one = deps::install_lock(&bin).await;
    if !bin.is_file() {
        let src = deps::fresh_tmp(&root.join("src").join(&key))?;
        let built = build_in(&src, &files, &modules, &symbol, go, &root).await;
        let published = built.and_then(|b| deps::publish_binary(&b, &bin));
        let _ = std::fs::remove_dir_all(&src);
        published?;
    }
    Ok(DepsEnv {
        vars: vec![(WORKER_VAR, bin)],
    })
}

/// Whether the source declares `func <name>(` (FastFN's check: a regular expression,
/// no parsing).
fn defines(source: &str, name: &str) -> bool {
    source.match_indices("func").any(|(at, _)| {
        let before = source[..at].chars().next_back();
        let rest = &source[at + 4..];
        let spaced = rest.trim_start();
        before.is_none_or(|c| !c.is_alphanumeric() && c != '_')
            && spaced.len() < rest.len()
            && spaced
                .strip_prefix(name)
                .is_some_and(|r| r.trim_start().starts_with('('))
    })
}

/// FastFN's rule (go-daemon's support files): the `.go` files beside the handler that are
/// compiled with it. When the folder or one above it, up to the functions directory,
/// holds a Go entry file (or an `entrypoint`), every sibling that is not a route of its
/// own (no method prefix, entry name or `[param]` token); otherwise only the private
/// `_*.go` ones. `_test.go` files are Go's tests, never built.
fn helpers(root: &Path, dir: &Path, handler: &Path) -> Result<Vec<PathBuf>, DepsError> {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let in_entry_tree = dir
        .ancestors()
        .take_while(|d| d.starts_with(&root))
        .any(has_entry);
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| DepsError::Dir {
            dir: dir.to_path_buf(),
            source,
        })?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| p.as_path() != handler)
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            if !name.ends_with(".go") || name.ends_with("_test.go") || name.starts_with('.') {
                return false;
            }
            match file_route::parse(&name) {
                Err(file_route::NotRoute::Private) => true,
                Ok(f) => in_entry_tree && !f.is_explicit(),
                Err(_) => false,
            }
        })
        .collect();
    if out.len() > MAX_HELPERS {
        return Err(GoError::TooManyFiles {
            dir: dir.to_path_buf(),
        }
        .into());
    }
    out.sort();
    Ok(out)
}

fn has_entry(dir: &Path) -> bool {
    ENTRY_NAMES.iter().any(|f| dir.join(f).is_file()) || entrypoint_exists(dir)
}

fn entrypoint_exists(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join("fn.config.json")) else {
        return false;
    };
    let entry = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("entrypoint")?.as_str().map(str::to_owned));
    entry.is_some_and(|e| !e.is_empty() && !e.contains("..") && dir.join(e).is_file())
}

fn digest_of(
    files: &[PathBuf],
    modules: &[PathBuf],
    symbol: &str,
    go: &[String],
) -> Result<String, DepsError> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in go.iter().map(String::as_str).chain([symbol]) {
        ctx.update(part.as_bytes());
        ctx.update(&[0]);
    }
    for (name, text) in HARNESS {
        ctx.update(name.as_bytes());
        ctx.update(text.as_bytes());
    }
    for path in files.iter().chain(modules) {
        let bytes = std::fs::read(path).map_err(|source| DepsError::Read {
            file: path.clone(),
            source,
        })?;
        // The full path: the `//line` directives name it in the binary.
        ctx.update(path.to_string_lossy().as_bytes());
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(&bytes);
    }
    Ok(hex::encode(&ctx.finish().as_ref()[..12]))
}

/// Writes the build folder and runs `go build`; returns the built binary's path.
async fn build_in(
    src: &Path,
    files: &[PathBuf],
    modules: &[PathBuf],
    symbol: &str,
    go: &[String],
    cache: &Path,
) -> Result<PathBuf, DepsError> {
    let err = |source| DepsError::Dir {
        dir: src.to_path_buf(),
        source,
    };
    let mut names = Vec::with_capacity(files.len() + HARNESS.len() + 1);
    for (name, text) in HARNESS {
        std::fs::write(src.join(name), text).map_err(err)?;
        names.push(name.to_owned());
    }
    // Renamed: the go tool ignores files whose name starts with `_`, even when named on
    // its command line (FastFN's `_shared.go`); the `//line` header keeps the real name.
    for (i, path) in files.iter().enumerate() {
        let text = std::fs::read_to_string(path).map_err(|source| DepsError::Read {
            file: path.clone(),
            source,
        })?;
        let name = format!("fn{i}.go");
        let headed = format!("//line {}:1:1\n{text}", path.display());
        std::fs::write(src.join(&name), headed).map_err(err)?;
        names.push(name);
    }
    for path in modules {
        std::fs::copy(path, src.join(path.file_name().unwrap_or_default())).map_err(err)?;
    }
    let entry = format!(
        "//line edgefn calls {symbol}(event map[string]interface{{}}):1:1\n\
         package main\n\nfunc main() {{ edgefnServe(edgefnWrap({symbol})) }}\n"
    );
    std::fs::write(src.join(ENTRY_FILE), entry).map_err(err)?;
    names.push(ENTRY_FILE.to_owned());
    let out = src.join("edgefn-go-worker");
    let command = |offline: bool| {
        let mut cmd = Command::new(&go[0]);
        cmd.args(&go[1..])
            .args(["build", "-o"])
            .arg(&out)
            .args(&names)
            .current_dir(src)
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-mod=mod");
        // Go needs a build cache; a service without HOME gets one in edgefn's cache.
        let has_home = ["GOCACHE", "XDG_CACHE_HOME", "HOME"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
        if !has_home {
            cmd.env("GOCACHE", cache.join("gocache"))
                .env("GOPATH", cache.join("gopath"));
        }
        if offline {
            cmd.env("GOPROXY", "off");
        }
        cmd
    };
    match deps::run(command(true), "go build").await {
        Err(DepsError::Failed { output, .. }) if output.contains("GOPROXY=off") => {
            deps::run(command(false), "go build").await?
        }
        other => other?,
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_symbols_are_found_as_fastfn_finds_them() {
        assert!(defines(
            "func handler(e map[string]interface{}) any",
            "handler"
        ));
        assert!(defines("package main\nfunc  handler (e M) any", "handler"));
        assert!(!defines("func handlerX(e M) any", "handler"));
        assert!(!defines("func (s *S) handler(e M) any", "handler"));
        assert!(!defines("myfunc handler(", "handler"));
        assert!(!defines("funchandler(", "handler"));
    }

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "package main\n").unwrap();
        }
        dir
    }

    fn names(root: &Path, handler: &str) -> Vec<String> {
        let root = root.canonicalize().unwrap();
        let h = root.join(handler);
        helpers(&root, h.parent().unwrap(), &h)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_file_tree_compiles_only_its_private_helpers() {
        let t = tree(&[
            "products/get.go",
            "products/post.go",
            "products/_shared.go",
            "products/list.go",
            "products/x_test.go",
            "products/[id]/get.go",
        ]);
        assert_eq!(names(t.path(), "products/get.go"), ["_shared.go"]);
        assert_eq!(
            names(t.path(), "products/[id]/get.go"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn beside_an_entry_file_every_sibling_that_is_no_route_is_a_helper() {
        let t = tree(&[
            "api/handler.go",
            "api/util.go",
            "api/_more.go",
            "api/get.extra.go",
            "api/[id].go",
            "api/sub/get.go",
            "api/sub/lib.go",
        ]);
        assert_eq!(names(t.path(), "api/handler.go"), ["_more.go", "util.go"]);
        assert_eq!(names(t.path(), "api/get.extra.go"), ["_more.go", "util.go"]);
        // Below an entry folder, up to the functions directory.
        assert_eq!(names(t.path(), "api/sub/get.go"), ["lib.go"]);
    }

    #[test]
    fn digest_changes_with_code_symbol_and_command() {
        let t = tree(&["f/handler.go"]);
        let files = [t.path().join("f/handler.go")];
        let go = ["go".to_owned()];
        let one = digest_of(&files, &[], "handler", &go).unwrap();
        assert_eq!(one, digest_of(&files, &[], "handler", &go).unwrap());
        assert_ne!(one, digest_of(&files, &[], "Handler", &go).unwrap());
        assert_ne!(
            one,
            digest_of(&files, &[], "handler", &["go1".into()]).unwrap()
        );
        std::fs::write(&files[0], "package main // changed\n").unwrap();
        assert_ne!(one, digest_of(&files, &[], "handler", &go).unwrap());
    }
}
