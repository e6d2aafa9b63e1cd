//! Builds a Rust function into its worker binary, once per code digest, in the cache.
//!
//! Data flow: the function folder (a bare `handler.rs`, or a cargo project with `Cargo.toml`)
//! is hashed together with the embedded SDK source and the cargo command → if
//! `rust/bin/<digest>` exists it is used as is; else the SDK is written to `rust/sdk-<digest>`
//! (from the sources embedded in this binary, so a deployed edgefn needs no checkout), the
//! function is copied (or, for `handler.rs`, wrapped in a generated project) under
//! `rust/src/<digest>.tmp…` (removed after the build), and `cargo build --release` runs with one target directory shared by
//! every Rust function (dependencies compile once), `--offline` first so a machine with a
//! warm registry cache needs no network. The binary is then copied to `rust/bin/<digest>` and
//! handed to the launcher through `EDGEFN_RUST_WORKER`. A failed build is a `DepsError` whose
//! message ends with the compiler's output; the pool answers 503 for the function.

use std::path::{Path, PathBuf};

use ring::digest;
use tokio::process::Command;

use super::deps::{self, cache_root, DepsEnv, DepsError};

/// The SDK crate's source files, embedded so the gateway can build functions anywhere.
const SDK_FILES: [(&str, &str); 7] = [
    ("lib.rs", include_str!("../../../edgefn-sdk/src/lib.rs")),
    ("adapt.rs", include_str!("../../../edgefn-sdk/src/adapt.rs")),
    (
        "base64.rs",
        include_str!("../../../edgefn-sdk/src/base64.rs"),
    ),
    (
        "channel.rs",
        include_str!("../../../edgefn-sdk/src/channel.rs"),
    ),
    ("event.rs", include_str!("../../../edgefn-sdk/src/event.rs")),
    (
        "response.rs",
        include_str!("../../../edgefn-sdk/src/response.rs"),
    ),
    ("serve.rs", include_str!("../../../edgefn-sdk/src/serve.rs")),
];
/// Standalone manifest for the written SDK (the workspace one inherits workspace keys).
const SDK_MANIFEST: &str = "[package]\nname = \"edgefn-sdk\"\nversion = \"0.1.0\"\n\
    edition = \"2021\"\n\n[dependencies]\nserde_json = \"1\"\n";
/// The env var naming the built binary for the launcher.
pub const WORKER_VAR: &str = "EDGEFN_RUST_WORKER";
/// A cargo project copied into the cache is bounded like any outside input.
const MAX_PROJECT_FILES: usize = 2000;
const MAX_PROJECT_BYTES: u64 = 64 << 20;
/// Folders of a cargo project that are never part of its source.
const SKIPPED: [&str; 3] = ["target", ".git", "node_modules"];

/// Builds (or finds) the function's worker binary. `handler` is the function's entry: its
/// `Cargo.toml`, or a `.rs` file (`handler.rs`, or a FastFN file route such as `get.rs`)
/// whose sibling `.rs` files are copied beside it for its `mod` declarations.
pub async fn ensure(dir: &Path, handler: &Path, cargo: &[String]) -> Result<DepsEnv, DepsError> {
    let project = handler.file_name().is_some_and(|n| n == "Cargo.toml");
    let files = if project {
        project_files(dir)?
    } else {
        source_files(dir, handler)?
    };
    let key = digest_of(dir, &files, cargo)?;
    let root = cache_root().join("rust");
    let bin = root.join("bin").join(&key);
    let _one = deps::install_lock(&bin).await;
    if !bin.is_file() {
        let sdk = write_sdk(&root)?;
        let src = deps::fresh_tmp(&root.join("src").join(&key))?;
        let name = if project {
            copy_project(dir, &files, &src)?
        } else {
            generate(dir, &files, &src, &key)?
        };
        let built = build(cargo, &src, &root.join("target"), &sdk).await;
        let _ = std::fs::remove_dir_all(&src);
        built?;
        deps::publish_binary(&root.join("target/release").join(&name), &bin)?;
    }
    Ok(DepsEnv {
        vars: vec![(WORKER_VAR, bin)],
    })
}

/// The handler file first (it becomes `src/handler.rs`), then its sibling `.rs` files.
fn source_files(dir: &Path, handler: &Path) -> Result<Vec<PathBuf>, DepsError> {
    let name = handler.file_name().map(PathBuf::from).unwrap_or_default();
    let mut siblings: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(dir_err(dir))?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| PathBuf::from(e.file_name()))
        .filter(|f| f.extension().is_some_and(|x| x == "rs") && *f != name)
        .filter(|f| !matches!(f.to_str(), Some("main.rs" | "handler.rs")))
        .collect();
    if siblings.len() > MAX_PROJECT_FILES {
        return Err(DepsError::Dir {
            dir: dir.to_path_buf(),
            source: std::io::Error::other("too many .rs files beside a Rust handler"),
        });
    }
    siblings.sort();
    siblings.insert(0, name);
    Ok(siblings)
}

fn dir_err(dir: &Path) -> impl Fn(std::io::Error) -> DepsError + '_ {
    move |source| DepsError::Dir {
        dir: dir.to_path_buf(),
        source,
    }
}

fn digest_of(dir: &Path, files: &[PathBuf], cargo: &[String]) -> Result<String, DepsError> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in cargo.iter().map(String::as_str).chain(Some(SDK_MANIFEST)) {
        ctx.update(part.as_bytes());
        ctx.update(&[0]);
    }
    for (name, text) in SDK_FILES {
        ctx.update(name.as_bytes());
        ctx.update(text.as_bytes());
    }
    for rel in files {
        let path = dir.join(rel);
        let bytes =
            std::fs::read(&path).map_err(|source| DepsError::Read { file: path, source })?;
        ctx.update(rel.to_string_lossy().as_bytes());
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(&bytes);
    }
    Ok(hex::encode(&ctx.finish().as_ref()[..12]))
}

/// The SDK's directory, written once per SDK version.
fn write_sdk(root: &Path) -> Result<PathBuf, DepsError> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(SDK_MANIFEST.as_bytes());
    SDK_FILES.iter().for_each(|(_, t)| ctx.update(t.as_bytes()));
    let sdk = root.join(format!("sdk-{}", hex::encode(&ctx.finish().as_ref()[..8])));
    if sdk.join(".complete").is_file() {
        return Ok(sdk);
    }
    let tmp = deps::fresh_tmp(&sdk)?;
    let err = dir_err(&tmp);
    std::fs::create_dir_all(tmp.join("src")).map_err(&err)?;
    std::fs::write(tmp.join("Cargo.toml"), SDK_MANIFEST).map_err(&err)?;
    for (name, text) in SDK_FILES {
        std::fs::write(tmp.join("src").join(name), text).map_err(&err)?;
    }
    deps::finish(&tmp, &sdk)?;
    Ok(sdk)
}

/// A project around a bare handler file: it is included at the crate root as
/// `src/handler.rs` (its siblings beside it, so `mod x;` finds `x.rs`) and its `handler`
/// is served by the SDK's `run`, which takes `fn(Event) -> Response` or FastFN's
/// `fn(serde_json::Value) -> serde_json::Value`. Like a user's own project it names
/// `edgefn-sdk = "0.1"`, which the build patches to the written SDK.
fn generate(dir: &Path, files: &[PathBuf], src: &Path, key: &str) -> Result<String, DepsError> {
    let err = dir_err(src);
    let name = format!("edgefn-fn-{key}");
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nedgefn-sdk = \"0.1\"\nserde_json = \"1\"\n\n[workspace]\n"
    );
    std::fs::create_dir_all(src.join("src")).map_err(&err)?;
    std::fs::write(src.join("Cargo.toml"), manifest).map_err(&err)?;
    for (i, rel) in files.iter().enumerate() {
        let to = if i == 0 {
            PathBuf::from("handler.rs")
        } else {
            rel.clone()
        };
        std::fs::copy(dir.join(rel), src.join("src").join(to)).map_err(&err)?;
    }
    std::fs::write(
        src.join("src/main.rs"),
        "include!(\"handler.rs\");\n\nfn main() {\n    edgefn_sdk::run(handler)\n}\n",
    )
    .map_err(&err)?;
    Ok(name)
}

/// Every file of a cargo project below `dir`, relative, bounded in count and size.
fn project_files(dir: &Path) -> Result<Vec<PathBuf>, DepsError> {
    let mut out = Vec::new();
    let mut total = 0u64;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let here = dir.join(&rel);
        let mut entries: Vec<_> = std::fs::read_dir(&here)
            .map_err(dir_err(&here))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let Ok(ft) = e.file_type() else { continue };
            let path = rel.join(&name);
            if ft.is_dir() && !SKIPPED.iter().any(|s| name == *s) {
                stack.push(path);
            } else if ft.is_file() {
                total += e.metadata().map(|m| m.len()).unwrap_or(0);
                out.push(path);
            }
            if out.len() > MAX_PROJECT_FILES || total > MAX_PROJECT_BYTES {
                return Err(DepsError::Dir {
                    dir: dir.to_path_buf(),
                    source: std::io::Error::other(format!(
                        "a Rust function folder is limited to {MAX_PROJECT_FILES} files and \
                         {} MiB (target/ and .git/ excluded)",
                        MAX_PROJECT_BYTES >> 20
                    )),
                });
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Copies the project (never building in the watched tree) and returns its binary's name:
/// the first `[[bin]]` name, else the package name.
fn copy_project(dir: &Path, files: &[PathBuf], src: &Path) -> Result<String, DepsError> {
    let err = dir_err(src);
    for rel in files {
        let to = src.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(&err)?;
        }
        std::fs::copy(dir.join(rel), &to).map_err(&err)?;
    }
    let manifest_path = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest_path).map_err(|source| DepsError::Read {
        file: manifest_path.clone(),
        source,
    })?;
    let manifest: toml::Table = text.parse().map_err(|e: toml::de::Error| DepsError::Read {
        file: manifest_path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    // Detached from any workspace the cache directory happens to sit in.
    if !manifest.contains_key("workspace") {
        let mut patched = text.clone();
        patched.push_str("\n[workspace]\n");
        std::fs::write(src.join("Cargo.toml"), patched).map_err(&err)?;
    }
    let bin = manifest
        .get("bin")
        .and_then(|b| b.as_array())
        .and_then(|b| b.first())
        .and_then(|b| b.get("name"))
        .or_else(|| manifest.get("package").and_then(|p| p.get("name")))
        .and_then(|n| n.as_str());
    bin.map(str::to_owned).ok_or_else(|| DepsError::Read {
        file: manifest_path,
        source: std::io::Error::other("names no [package] name and no [[bin]]"),
    })
}

/// `cargo build --release`, offline first; online only when offline lacked a crate.
async fn build(cargo: &[String], src: &Path, target: &Path, sdk: &Path) -> Result<(), DepsError> {
    let command = |offline: bool| {
        let mut cmd = Command::new(&cargo[0]);
        cmd.args(&cargo[1..])
            .args(["build", "--release", "--quiet", "--message-format", "short"])
            .arg("--config")
            .arg(format!(
                "patch.crates-io.edgefn-sdk.path={:?}",
                sdk.display().to_string()
            ))
            .arg("--target-dir")
            .arg(target)
            .current_dir(src);
        if offline {
            cmd.arg("--offline");
        }
        cmd
    };
    match deps::run(command(true), "cargo build --release --offline").await {
        Err(DepsError::Failed { output, .. }) if output.contains("offline") => {
            deps::run(command(false), "cargo build --release").await
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_files_skip_target_and_are_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "Cargo.toml",
            "src/main.rs",
            "src/a/b.rs",
            "target/release/x",
        ] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        let files = project_files(dir.path()).unwrap();
        let names: Vec<_> = files.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(names, ["Cargo.toml", "src/a/b.rs", "src/main.rs"]);
    }

    #[test]
    fn a_project_with_too_many_files_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        for i in 0..=MAX_PROJECT_FILES {
            std::fs::write(dir.path().join(format!("src/f{i}.rs")), "").unwrap();
        }
        let err = project_files(dir.path()).unwrap_err().to_string();
        assert!(err.contains("limited to 2000 files"), "{err}");
    }

    #[test]
    fn digest_changes_with_code_and_command() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("handler.rs"), "a").unwrap();
        let files = [PathBuf::from("handler.rs")];
        let cargo = ["cargo".to_owned()];
        let one = digest_of(dir.path(), &files, &cargo).unwrap();
        assert_eq!(one, digest_of(dir.path(), &files, &cargo).unwrap());
        assert_ne!(
            one,
            digest_of(dir.path(), &files, &["cargo2".to_owned()]).unwrap()
        );
        std::fs::write(dir.path().join("handler.rs"), "b").unwrap();
        assert_ne!(one, digest_of(dir.path(), &files, &cargo).unwrap());
    }
}
