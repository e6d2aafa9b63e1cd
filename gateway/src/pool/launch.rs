//! How a worker process is started: the runtime scripts are embedded in the binary and
//! written once to a private directory (so a deployed `edgefn` is one file), and the
//! interpreter named in `[runtimes.*] command` is resolved once to its real executable
//! (a pyenv/asdf shim costs tens of milliseconds per worker start).

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::{Runtime, RuntimeCommands};

const PYTHON_WORKER: &str = include_str!("../../../runtimes/python/edgefn_worker.py");
const NODE_WORKER: &str = include_str!("../../../runtimes/node/edgefn-worker.js");

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot prepare the worker directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The program and leading arguments for each runtime, plus the private directory holding
/// the worker scripts and the per-worker sockets.
#[derive(Debug)]
pub struct Launcher {
    python: Vec<String>,
    node: Vec<String>,
    dir: PathBuf,
}

impl Launcher {
    /// Writes the worker scripts under a fresh 0700 directory and resolves interpreters.
    pub async fn new(commands: &RuntimeCommands) -> Result<Launcher, LaunchError> {
        let dir = std::env::temp_dir().join(format!("edgefn-{}", std::process::id()));
        prepare_dir(&dir).map_err(|source| LaunchError::Dir {
            path: dir.clone(),
            source,
        })?;
        let python = resolve(
            &commands.python,
            &["-c", "import sys;print(sys.executable)"],
        )
        .await;
        let node = resolve(&commands.node, &["-p", "process.execPath"]).await;
        Ok(Launcher { python, node, dir })
    }

    /// `program args... <script>`: the command line of a worker, socket and handler excluded.
    pub fn command(&self, runtime: Runtime) -> Command {
        let (argv, script) = match runtime {
            Runtime::Python => (&self.python, "edgefn_worker.py"),
            Runtime::Node => (&self.node, "edgefn-worker.js"),
        };
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).arg(self.dir.join(script));
        cmd
    }

    /// The interpreter command of a runtime (for dependency installs).
    pub fn interpreter(&self, runtime: Runtime) -> &[String] {
        match runtime {
            Runtime::Python => &self.python,
            Runtime::Node => &self.node,
        }
    }

    pub fn socket_path(&self, n: u64) -> PathBuf {
        self.dir.join(format!("w{n}.sock"))
    }

    /// Removes the directory at shutdown.
    pub fn cleanup(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn prepare_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    std::fs::write(dir.join("edgefn_worker.py"), PYTHON_WORKER)?;
    std::fs::write(dir.join("edgefn-worker.js"), NODE_WORKER)?;
    Ok(())
}

/// A bare program name (`python3`) is asked for its real executable once; anything with
/// arguments or a path is used as configured.
async fn resolve(argv: &[String], probe: &[&str]) -> Vec<String> {
    if argv.len() != 1 || argv[0].contains('/') {
        return argv.to_vec();
    }
    let out = Command::new(&argv[0]).args(probe).output().await;
    match out {
        Ok(o) if o.status.success() => {
            let path = String::from_utf8_lossy(&o.stdout).trim().to_owned();
            if !path.is_empty() && Path::new(&path).is_file() {
                return vec![path];
            }
            argv.to_vec()
        }
        _ => argv.to_vec(),
    }
}
