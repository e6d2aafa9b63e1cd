//! TypeScript handlers (`handler.ts` / `index.ts`): compiled once per code digest, at load,
//! with esbuild into the cache dir (`<cache>/typescript/<digest>/handler.js` plus its
//! source map), never into the watched functions tree. The Node worker is told the compiled
//! file through `EDGEFN_TS_OUTPUT` and runs with `--enable-source-maps`, so a stack trace
//! names `.ts` lines. A compile error fails the function's pool (503) with esbuild's
//! message in the log.
//!
//! esbuild is `[runtimes.typescript] esbuild` when configured, else `$EDGEFN_ESBUILD`, else
//! the one `scripts/setup.sh` installs (`npm ci --prefix runtimes/node/tools`), found at
//! `runtimes/node/tools/node_modules/.bin/esbuild` below the working directory or an
//! ancestor of the `edgefn` executable's folder.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ring::digest;
use tokio::process::Command;

/// A compile that takes longer than this is abandoned (the function reports the error).
const COMPILE_TIMEOUT: Duration = Duration::from_secs(120);
const OUTPUT_TAIL: usize = 4000;
/// The digest covers the function folder's sources up to these bounds.
const MAX_FILES: usize = 2000;
const MAX_DEPTH: usize = 8;
const SOURCE_EXTENSIONS: [&str; 9] = ["ts", "tsx", "mts", "cts", "js", "mjs", "cjs", "jsx", "json"];
const SKIPPED: [&str; 2] = ["node_modules", ".git"];
const ENTRIES: [&str; 2] = ["handler.ts", "index.ts"];
const TOOL_PATH: &str = "runtimes/node/tools/node_modules/.bin/esbuild";

#[derive(Debug, thiserror::Error)]
pub enum TsError {
    #[error("no handler.ts or index.ts in {dir}")]
    NoEntry { dir: PathBuf },
    #[error("esbuild not found (no [runtimes.typescript] esbuild, $EDGEFN_ESBUILD or {TOOL_PATH}); run scripts/setup.sh")]
    NoCompiler,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the function folder has more than {MAX_FILES} source files")]
    TooManyFiles,
    #[error("cannot write the compiled handler under {dir}: {source}")]
    Write {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run esbuild ({program}): {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("esbuild did not finish within {} s", COMPILE_TIMEOUT.as_secs())]
    Timeout,
    #[error("esbuild could not compile {entry}:\n{output}")]
    Compile { entry: PathBuf, output: String },
}

/// Compiles the folder's TypeScript entry unless this digest is already in the cache;
/// returns the compiled file.
pub async fn compile(dir: &Path, cache: &Path, esbuild: Option<&Path>) -> Result<PathBuf, TsError> {
    let entry = ENTRIES
        .iter()
        .map(|e| dir.join(e))
        .find(|p| p.is_file())
        .ok_or_else(|| TsError::NoEntry {
            dir: dir.to_path_buf(),
        })?;
    let esbuild = esbuild.ok_or(TsError::NoCompiler)?;
    let key = digest_of(dir, &entry, esbuild)?;
    let target = cache.join("typescript").join(&key);
    let output = target.join("handler.js");
    if target.join(".complete").is_file() {
        return Ok(output);
    }
    let tmp = target.with_extension(format!("tmp{:016x}", rand::random::<u64>()));
    let write_err = |source| TsError::Write {
        dir: tmp.clone(),
        source,
    };
    std::fs::create_dir_all(&tmp).map_err(write_err)?;
    let result = run_esbuild(esbuild, dir, &entry, &tmp.join("handler.js")).await;
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    std::fs::write(tmp.join(".complete"), b"").map_err(write_err)?;
    // Another pool may have published the same digest meanwhile: theirs is as good.
    if std::fs::rename(&tmp, &target).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    tracing::info!(entry = %entry.display(), digest = %key, "compiled TypeScript handler");
    Ok(output)
}

/// The default esbuild: `$EDGEFN_ESBUILD`, else the one setup.sh installs.
pub fn find_esbuild() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("EDGEFN_ESBUILD") {
        return Some(PathBuf::from(p));
    }
    let mut roots: Vec<PathBuf> = std::env::current_dir().into_iter().collect();
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    roots
        .into_iter()
        .map(|r| r.join(TOOL_PATH))
        .find(|p| p.is_file())
}

async fn run_esbuild(esbuild: &Path, dir: &Path, entry: &Path, out: &Path) -> Result<(), TsError> {
    let mut cmd = Command::new(esbuild);
    cmd.arg(entry)
        .args([
            "--bundle",
            "--platform=node",
            "--format=cjs",
            "--packages=external",
            "--sourcemap",
            "--log-level=warning",
            "--color=false",
        ])
        .arg(format!("--outfile={}", out.display()))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|source| TsError::Spawn {
        program: esbuild.to_path_buf(),
        source,
    })?;
    let out = tokio::time::timeout(COMPILE_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| TsError::Timeout)?
        .map_err(|source| TsError::Spawn {
            program: esbuild.to_path_buf(),
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(TsError::Compile {
        entry: entry.to_path_buf(),
        output: super::deps::output_tail(&out, OUTPUT_TAIL),
    })
}

/// SHA-256 over the compiler's path, the entry's name and every source file of the folder
/// (relative path and content), in a stable order.
fn digest_of(dir: &Path, entry: &Path, esbuild: &Path) -> Result<String, TsError> {
    let mut files = Vec::new();
    collect(dir, 0, &mut files)?;
    files.sort();
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [esbuild.as_os_str(), entry.as_os_str()] {
        ctx.update(part.as_encoded_bytes());
        ctx.update(&[0]);
    }
    for f in &files {
        let bytes = std::fs::read(f).map_err(|source| TsError::Read {
            path: f.clone(),
            source,
        })?;
        let rel = f.strip_prefix(dir).unwrap_or(f);
        ctx.update(rel.as_os_str().as_encoded_bytes());
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(&bytes);
    }
    Ok(hex::encode(&ctx.finish().as_ref()[..12]))
}

fn collect(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), TsError> {
    let entries = std::fs::read_dir(dir).map_err(|source| TsError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() {
            if depth < MAX_DEPTH && !SKIPPED.contains(&name.as_ref()) {
                collect(&path, depth + 1, out)?;
            }
        } else if kind.is_file()
            && path
                .extension()
                .is_some_and(|e| SOURCE_EXTENSIONS.iter().any(|s| e == *s))
        {
            if out.len() >= MAX_FILES {
                return Err(TsError::TooManyFiles);
            }
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_follows_sources_only() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("handler.ts");
        std::fs::write(&entry, "export const handler = () => 1;\n").unwrap();
        let es = Path::new("/x/esbuild");
        let a = digest_of(dir.path(), &entry, es).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a source").unwrap();
        std::fs::create_dir(dir.path().join("node_modules")).unwrap();
        std::fs::write(dir.path().join("node_modules/x.js"), "ignored").unwrap();
        assert_eq!(digest_of(dir.path(), &entry, es).unwrap(), a);
        std::fs::write(dir.path().join("lib.ts"), "export const x = 2;\n").unwrap();
        assert_ne!(digest_of(dir.path(), &entry, es).unwrap(), a);
    }
}
