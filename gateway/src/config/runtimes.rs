//! `[runtimes]` settings, validated in `config::validate` and handed to the pool registry
//! at start-up. They live here (not in `pool/`) so `config` imports nothing from the
//! data plane.

use std::time::Duration;

/// Workers above `workers.min` idle this long are stopped (unless configured otherwise).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a worker has to acknowledge a `cancel` before it is killed.
pub const DEFAULT_CANCEL_GRACE: Duration = Duration::from_millis(1000);

/// Commands that start each runtime (`[runtimes.*] command` in edgefn.toml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeCommands {
    pub python: Vec<String>,
    pub node: Vec<String>,
    /// `[runtimes.php] command`, `[runtimes.lua] command`, `[runtimes.rust] command` (cargo).
    pub php: Vec<String>,
    pub lua: Vec<String>,
    pub cargo: Vec<String>,
    /// Workers above `workers.min` idle this long are stopped
    /// (`[runtimes] worker_idle_timeout_ms`).
    pub idle_timeout: Duration,
    /// A worker that does not acknowledge a cancelled request within this is killed
    /// (`[runtimes] cancel_grace_ms`).
    pub cancel_grace: Duration,
}

impl Default for RuntimeCommands {
    fn default() -> Self {
        Self {
            python: vec!["python3".into()],
            node: vec!["node".into()],
            php: vec!["php".into()],
            lua: vec!["lua5.4".into()],
            cargo: vec!["cargo".into()],
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            cancel_grace: DEFAULT_CANCEL_GRACE,
        }
    }
}
