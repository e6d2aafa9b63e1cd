//! Secrets as files, as OpenFaaS functions read them. For a function with `is_secret`
//! entries, the pool's worker command is wrapped once, at spawn: the values are written to
//! a private 0700 directory (one file per entry, 0600, also under its Kubernetes-style
//! name: `API_KEY` is `api-key` too) under the launcher's private
//! directory (removed when the gateway stops), and the worker starts with
//! `secret_mount_path` naming it. As root, the worker also runs in its own mount namespace
//! (`unshare --mount` from util-linux, then `mount --bind`) where that directory is
//! `/var/openfaas/secrets`, so templates that hard-code the path work; the host's mount
//! table never sees it. A wrapper `exec`s the interpreter, so the pid stays the worker's.
//! Functions without secrets are spawned as before.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tokio::process::Command;

use crate::pool::PoolSpec;

pub const MOUNT_POINT: &str = "/var/openfaas/secrets";

/// Bind-mounts the directory (`$1`) on the mount point when it can, then runs the worker.
const MOUNT_SCRIPT: &str = r#"d=$1; shift
if mount --bind "$d" /var/openfaas/secrets 2>/dev/null; then d=/var/openfaas/secrets; fi
exec env "secret_mount_path=$d" "$@""#;

/// The worker command for `spec`: `inner` unchanged without secrets, else wrapped.
/// `base` is the launcher's private directory.
pub fn command(inner: Command, base: Option<&Path>, spec: &PoolSpec) -> Command {
    let secrets: Vec<(&str, &str)> = spec
        .env
        .iter()
        .filter(|(_, v)| spec.secrets.contains(v))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let Some(base) = base else { return inner };
    if secrets.is_empty() {
        return inner;
    }
    let dir = match write_dir(base, spec, &secrets) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(function = %spec.function, error = %e,
                "cannot write the secrets directory; the worker starts without secret files");
            return inner;
        }
    };
    let std = inner.as_std();
    let mut cmd = if namespaces_usable() {
        let mut c = Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(MOUNT_SCRIPT)
            .arg("edgefn-secrets")
            .arg(&dir);
        c
    } else {
        let mut c = Command::new("env");
        c.arg(format!("secret_mount_path={}", dir.display()));
        c
    };
    cmd.arg(std.get_program()).args(std.get_args());
    cmd
}

/// `base/secrets-<digest>`: one directory per function version and secret set.
fn write_dir(base: &Path, spec: &PoolSpec, secrets: &[(&str, &str)]) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(spec.function.as_bytes());
    ctx.update(&spec.code_hash);
    for (k, v) in secrets {
        ctx.update(&(k.len() as u64).to_le_bytes());
        ctx.update(k.as_bytes());
        ctx.update(&(v.len() as u64).to_le_bytes());
        ctx.update(v.as_bytes());
    }
    let dir = base.join(format!(
        "secrets-{}",
        hex::encode(&ctx.finish().as_ref()[..12])
    ));
    if dir.is_dir() {
        return Ok(dir);
    }
    let tmp = base.join(format!("secrets-tmp-{:016x}", rand::random::<u64>()));
    std::fs::DirBuilder::new().mode(0o700).create(&tmp)?;
    for (name, value) in secrets {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            continue;
        }
        for file in [name.to_string(), kubernetes_name(name)] {
            let p = tmp.join(&file);
            if p.exists() {
                continue;
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(p)?;
            f.write_all(value.as_bytes())?;
        }
    }
    // Whole or not at all: a worker never sees a half-written directory.
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        Err(_) if dir.is_dir() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => Err(e),
    }
}

/// OpenFaaS secret names are Kubernetes names (`api-key`); fn.env.json names cannot hold a
/// `-`, so `API_KEY` is also written as `api-key` (lower case, `_` → `-`).
pub fn kubernetes_name(env_name: &str) -> String {
    env_name.to_ascii_lowercase().replace('_', "-")
}

/// Root, with `unshare` working here (a container without CAP_SYS_ADMIN refuses it) and
/// the mount point present: probed once.
fn namespaces_usable() -> bool {
    static USABLE: OnceLock<bool> = OnceLock::new();
    *USABLE.get_or_init(|| {
        if !is_root() || std::fs::create_dir_all(MOUNT_POINT).is_err() {
            return false;
        }
        std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "true"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// The effective uid is 0 (from `/proc/self/status`; no libc call needed).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}
