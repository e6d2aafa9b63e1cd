//! `[runtimes]` settings, validated in `config::validate` and handed to the pool registry
//! at start-up. They live here (not in `pool/`) so `config` imports nothing from the
//! data plane.

use std::path::PathBuf;
use std::time::Duration;

/// Workers above `workers.min` idle this long are stopped (unless configured otherwise).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a worker has to acknowledge a `cancel` before it is killed.
pub const DEFAULT_CANCEL_GRACE: Duration = Duration::from_millis(1000);
/// Requests a busy Python worker may be handed beyond its `concurrency`.
pub const DEFAULT_PREFETCH: usize = 16;
pub const MAX_PREFETCH: usize = 64;

/// Commands that start each runtime (`[runtimes.*] command` in edgefn.toml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeCommands {
    pub python: Vec<String>,
    pub node: Vec<String>,
    /// `[runtimes.php] command`, `[runtimes.lua] command`, `[runtimes.rust] command` (cargo),
    /// `[runtimes.go] command` (the go tool).
    pub php: Vec<String>,
    pub lua: Vec<String>,
    pub cargo: Vec<String>,
    pub go: Vec<String>,
    /// Workers above `workers.min` idle this long are stopped
    /// (`[runtimes] worker_idle_timeout_ms`).
    pub idle_timeout: Duration,
    /// A worker that does not acknowledge a cancelled request within this is killed
    /// (`[runtimes] cancel_grace_ms`).
    pub cancel_grace: Duration,
    /// Requests a Python worker may hold beyond its `concurrency` while every worker of
    /// its pool is busy and the pool is at `workers.max` (`[runtimes] prefetch`).
    pub prefetch: usize,
    /// The esbuild that compiles TypeScript handlers (`[runtimes.typescript] esbuild`);
    /// `None`: the one `scripts/setup.sh` installs (see `pool::typescript`).
    pub esbuild: Option<PathBuf>,
}

impl Default for RuntimeCommands {
    fn default() -> Self {
        Self {
            python: vec!["python3".into()],
            node: vec!["node".into()],
            php: vec!["php".into()],
            lua: vec!["lua5.4".into()],
            cargo: vec!["cargo".into()],
            go: vec!["go".into()],
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            cancel_grace: DEFAULT_CANCEL_GRACE,
            prefetch: DEFAULT_PREFETCH,
            esbuild: None,
        }
    }
}

/// `[runtimes.typescript] esbuild`: an existing executable file.
pub fn esbuild_path(raw: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(raw);
    if raw.is_empty() {
        return Err("is empty; give the path of the esbuild binary".into());
    }
    if !path.is_file() {
        return Err(format!(
            "{raw:?} is not a file; give the path of the esbuild binary (scripts/setup.sh installs runtimes/node/tools/node_modules/.bin/esbuild)"
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esbuild_must_name_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("esbuild");
        std::fs::write(&tool, b"").unwrap();
        assert_eq!(esbuild_path(tool.to_str().unwrap()).unwrap(), tool);
        assert!(esbuild_path("").unwrap_err().contains("empty"));
        let missing = dir.path().join("absent");
        assert!(esbuild_path(missing.to_str().unwrap())
            .unwrap_err()
            .contains("not a file"));
    }
}
