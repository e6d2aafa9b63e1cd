//! Per-function dependencies: `requirements.txt` → `pip install --target`, `package.json`
//! → `npm install --omit=dev`, each into a cache directory named by the digest of the
//! manifest (and lock file), so an install happens once per content, at load, never per
//! request, and never writes into the watched functions tree.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use ring::digest;
use tokio::process::Command;

use super::Runtime;

/// An install that takes longer than this is abandoned (the function reports the error).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// Keep the tail of the installer's output for the error message.
const OUTPUT_TAIL: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot prepare {dir}: {source}")]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{command}` did not finish within {} s", INSTALL_TIMEOUT.as_secs())]
    Timeout { command: String },
    #[error("`{command}` failed ({status}); its output ends with:\n{output}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        output: String,
    },
    #[error(transparent)]
    TypeScript(#[from] super::typescript::TsError),
    #[error(transparent)]
    Go(#[from] super::go_build::GoError),
}

/// Environment additions that make the installed packages importable.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DepsEnv {
    pub vars: Vec<(&'static str, PathBuf)>,
}

/// Where installs are cached: `$EDGEFN_CACHE_DIR`, else `$XDG_CACHE_HOME/edgefn`, else
/// `~/.cache/edgefn`, else the temp dir.
pub fn cache_root() -> PathBuf {
    if let Some(d) = std::env::var_os("EDGEFN_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("edgefn");
    }
    if let Some(d) = std::env::var_os("HOME") {
        return PathBuf::from(d).join(".cache/edgefn");
    }
    std::env::temp_dir().join("edgefn-cache")
}

/// Installs the function's dependencies if it declares any (or builds its binary, for the
/// compiled runtimes); returns the env to add.
pub async fn ensure(spec: &super::PoolSpec, interpreter: &[String]) -> Result<DepsEnv, DepsError> {
    let (dir, handler) = (spec.dir.as_path(), spec.handler.as_path());
    match spec.runtime {
        Runtime::Python => python(dir, interpreter).await,
        Runtime::Node => node(dir).await,
        Runtime::TypeScript => typescript(dir, interpreter).await,
        Runtime::Php => super::php::composer(dir, interpreter).await,
        Runtime::Rust => super::rust_build::ensure(dir, handler, interpreter).await,
        Runtime::Go => {
            let name = spec.handler_name.as_deref();
            super::go_build::ensure(&spec.root, dir, handler, name, interpreter).await
        }
        Runtime::Lua => Ok(DepsEnv::default()),
    }
}

/// [`ensure`], then each `shared_deps` pack (its manifest installed the same way, its own
/// `.deps` / `node_modules` folder if it ships one), searched after the function's own.
pub async fn ensure_with_packs(
    spec: &super::PoolSpec,
    interpreter: &[String],
) -> Result<DepsEnv, DepsError> {
    let mut env = ensure(spec, interpreter).await?;
    for pack in &spec.shared_deps {
        let (installed, shipped, var) = match spec.runtime {
            Runtime::Python => (python(pack, interpreter).await?, ".deps", "PYTHONPATH"),
            Runtime::Node | Runtime::TypeScript => (node(pack).await?, "node_modules", "NODE_PATH"),
            _ => continue,
        };
        for (k, v) in installed.vars {
            append_path(&mut env, k, v);
        }
        let own = pack.join(shipped);
        if own.is_dir() {
            append_path(&mut env, var, own);
        }
    }
    Ok(env)
}

/// Adds a search path after the ones already set for `var`.
fn append_path(env: &mut DepsEnv, var: &'static str, path: PathBuf) {
    match env.vars.iter_mut().find(|(k, _)| *k == var) {
        Some((_, existing)) => {
            let joined = format!("{}:{}", existing.display(), path.display());
            *existing = PathBuf::from(joined);
        }
        None => env.vars.push((var, path)),
    }
}

async fn python(dir: &Path, interpreter: &[String]) -> Result<DepsEnv, DepsError> {
    let manifest = dir.join("requirements.txt");
    if !manifest.is_file() {
        return Ok(DepsEnv::default());
    }
    let key = digest_of(&[&manifest], interpreter)?;
    let target = cache_root().join("python").join(&key);
    let _one = install_lock(&target).await;
    if !target.join(".complete").is_file() {
        let tmp = fresh_tmp(&target)?;
        let mut cmd = Command::new(&interpreter[0]);
        cmd.args(&interpreter[1..])
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--no-input", "--target"])
            .arg(&tmp)
            .arg("-r")
            .arg(&manifest)
            .current_dir(dir)
            .env("PIP_NO_CACHE_DIR", "1");
        run(cmd, "pip install -r requirements.txt").await?;
        finish(&tmp, &target)?;
    }
    Ok(DepsEnv {
        vars: vec![("PYTHONPATH", target)],
    })
}

async fn node(dir: &Path) -> Result<DepsEnv, DepsError> {
    let manifest = dir.join("package.json");
    if !manifest.is_file() {
        return Ok(DepsEnv::default());
    }
    let lock = dir.join("package-lock.json");
    let files: Vec<&Path> = if lock.is_file() {
        vec![&manifest, &lock]
    } else {
        vec![&manifest]
    };
    let key = digest_of(&files, &[])?;
    let target = cache_root().join("node").join(&key);
    let _one = install_lock(&target).await;
    if !target.join(".complete").is_file() {
        let tmp = fresh_tmp(&target)?;
        for f in &files {
            let to = tmp.join(f.file_name().expect("manifest has a name"));
            std::fs::copy(f, &to).map_err(|source| DepsError::Dir {
                dir: tmp.clone(),
                source,
            })?;
        }
        let mut cmd = Command::new("npm");
        cmd.args([
            "install",
            "--omit=dev",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ])
        .current_dir(&tmp);
        run(cmd, "npm install --omit=dev").await?;
        finish(&tmp, &target)?;
    }
    Ok(DepsEnv {
        vars: vec![("NODE_PATH", target.join("node_modules"))],
    })
}

/// A TypeScript function: its npm dependencies, then its handler compiled into the cache
/// by `esbuild` (the launcher's command for TypeScript; empty when none was found).
async fn typescript(dir: &Path, esbuild: &[String]) -> Result<DepsEnv, DepsError> {
    let mut env = node(dir).await?;
    let esbuild = esbuild.first().map(Path::new);
    let compiled = super::typescript::compile(dir, &cache_root(), esbuild).await?;
    env.vars.push(("EDGEFN_TS_OUTPUT", compiled));
    Ok(env)
}

pub(super) fn digest_of(files: &[&Path], salt: &[String]) -> Result<String, DepsError> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for s in salt {
        ctx.update(s.as_bytes());
        ctx.update(&[0]);
    }
    for f in files {
        let bytes = std::fs::read(f).map_err(|source| DepsError::Read {
            file: f.to_path_buf(),
            source,
        })?;
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(&bytes);
    }
    Ok(hex::encode(&ctx.finish().as_ref()[..12]))
}

/// Versions start concurrently: two functions with the same manifest must not install
/// into the same directory at once. The second waits, then finds the install complete.
pub(super) async fn install_lock(target: &Path) -> tokio::sync::OwnedMutexGuard<()> {
    static LOCKS: std::sync::Mutex<Vec<(PathBuf, Arc<tokio::sync::Mutex<()>>)>> =
        std::sync::Mutex::new(Vec::new());
    let lock = {
        let mut locks = LOCKS.lock().expect("install locks");
        // Forget the locks nobody holds or waits for.
        locks.retain(|(_, l)| Arc::strong_count(l) > 1);
        match locks.iter().find(|(p, _)| p == target) {
            Some((_, l)) => l.clone(),
            None => {
                let l = Arc::new(tokio::sync::Mutex::new(()));
                locks.push((target.to_path_buf(), l.clone()));
                l
            }
        }
    };
    lock.lock_owned().await
}

pub(super) fn fresh_tmp(target: &Path) -> Result<PathBuf, DepsError> {
    // Unique per call: pools start concurrently, and two functions may share a digest.
    let tmp = target.with_extension(format!(
        "tmp{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let err = |source| DepsError::Dir {
        dir: tmp.clone(),
        source,
    };
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(err)?;
    }
    std::fs::create_dir_all(&tmp).map_err(err)?;
    Ok(tmp)
}

/// Publishes a finished install atomically (rename), marking it complete.
pub(super) fn finish(tmp: &Path, target: &Path) -> Result<(), DepsError> {
    let err = |source| DepsError::Dir {
        dir: target.to_path_buf(),
        source,
    };
    // Another start of the same digest finished first (before this check, or between it
    // and the rename): keep its install (a worker may already be using it), drop this copy.
    let theirs = || {
        let done = target.join(".complete").is_file();
        if done {
            let _ = std::fs::remove_dir_all(tmp);
        }
        done
    };
    if theirs() {
        return Ok(());
    }
    std::fs::write(tmp.join(".complete"), b"").map_err(err)?;
    if target.exists() {
        std::fs::remove_dir_all(target).map_err(err)?;
    }
    match std::fs::rename(tmp, target) {
        Err(_) if theirs() => Ok(()),
        other => other.map_err(err),
    }
}

/// An installer runs in its own process group; an install abandoned (shutdown, a newer
/// version, its timeout) takes the whole group down, build helpers pip or npm started
/// included, so none outlives it.
struct GroupGuard {
    pgid: Option<u32>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

pub(super) async fn run(mut cmd: Command, what: &str) -> Result<(), DepsError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let program = format!("{:?}", cmd.as_std().get_program());
    let child = cmd
        .spawn()
        .map_err(|source| DepsError::Spawn { program, source })?;
    let mut group = GroupGuard { pgid: child.id() };
    let out = tokio::time::timeout(INSTALL_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| DepsError::Timeout {
            command: what.into(),
        })?
        .map_err(|source| DepsError::Spawn {
            program: what.into(),
            source,
        })?;
    group.pgid = None;
    if out.status.success() {
        return Ok(());
    }
    Err(DepsError::Failed {
        command: what.into(),
        status: out.status,
        output: output_tail(&out, OUTPUT_TAIL),
    })
}

/// The last `limit` bytes (at a character boundary) of a tool's stderr then stdout: what
/// the log shows of a failed install or compile, bounded whatever the tool printed.
pub(super) fn output_tail(out: &std::process::Output, limit: usize) -> String {
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    let start = text.len().saturating_sub(limit);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].trim().to_owned()
}

/// Copies a built binary (Rust or Go function) out of its build folder into `bin`,
/// atomically: a worker starting meanwhile runs the old binary or the new one, never half.
pub(super) fn publish_binary(built: &Path, bin: &Path) -> Result<(), DepsError> {
    let parent = bin.parent().expect("bin has a parent");
    let err = |source| DepsError::Dir {
        dir: parent.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(parent).map_err(err)?;
    let tmp = bin.with_extension(format!(
        "tmp{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::copy(built, &tmp).map_err(|source| DepsError::Read {
        file: built.to_path_buf(),
        source,
    })?;
    std::fs::rename(&tmp, bin).map_err(err)
}
