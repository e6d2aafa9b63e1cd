//! How a worker process is started: the runtime scripts are embedded in the binary and
//! written once to a private directory (so a deployed `edgefn` is one file), and the
//! interpreter named in `[runtimes.*] command` is resolved once to its real executable
//! (a pyenv/asdf shim costs tens of milliseconds per worker start).
//!
//! A bare `python3` is started with `-S`: `site` processing (every `.pth` file of the
//! installation, some of which import whole packages) was most of a fresh worker's start
//! time here. The installation's site-packages stay importable through `PYTHONPATH`.

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
    /// The interpreter without `-S`, for pip.
    python_plain: Vec<String>,
    /// site-packages of the resolved interpreter, when it runs with `-S`.
    python_site: Option<String>,
    node: Vec<String>,
    dir: PathBuf,
}

impl Launcher {
    /// Writes the worker scripts under a fresh 0700 directory and resolves interpreters.
    pub async fn new(commands: &RuntimeCommands) -> Result<Launcher, LaunchError> {
        // Unpredictable name: another local user cannot pre-create or race it.
        let dir = std::env::temp_dir().join(format!(
            "edgefn-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        prepare_dir(&dir).map_err(|source| LaunchError::Dir {
            path: dir.clone(),
            source,
        })?;
        let probe = "import sys,site;print(sys.executable);\
                     print(':'.join(site.getsitepackages()+[site.getusersitepackages()]))";
        let resolved = resolve(&commands.python, &["-c", probe]).await;
        let (python, python_plain, python_site) = match &resolved[..] {
            [exe, site] if resolved != commands.python => (
                vec![exe.clone(), "-S".into()],
                vec![exe.clone()],
                Some(site.clone()),
            ),
            _ => (commands.python.clone(), commands.python.clone(), None),
        };
        let node = match &resolve(&commands.node, &["-p", "process.execPath"]).await[..] {
            [exe] => vec![exe.clone()],
            _ => commands.node.clone(),
        };
        Ok(Launcher {
            python,
            python_plain,
            python_site,
            node,
            dir,
        })
    }

    /// `program args... <script>`: the command line of a worker, socket and handler
    /// excluded; `None` for a runtime this build cannot start.
    pub fn command(&self, runtime: Runtime) -> Option<Command> {
        let (argv, script) = match runtime {
            Runtime::Python => (&self.python, "edgefn_worker.py"),
            Runtime::Node => (&self.node, "edgefn-worker.js"),
            Runtime::TypeScript | Runtime::Php | Runtime::Lua | Runtime::Rust => return None,
        };
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).arg(self.dir.join(script));
        Some(cmd)
    }

    /// The interpreter command of a runtime (for dependency installs).
    pub fn interpreter(&self, runtime: Runtime) -> &[String] {
        match runtime {
            Runtime::Python => &self.python_plain,
            Runtime::Node | Runtime::TypeScript => &self.node,
            Runtime::Php | Runtime::Lua | Runtime::Rust => &[],
        }
    }

    /// `PYTHONPATH` for a Python worker: the function's installed dependencies first,
    /// then the interpreter's site-packages (skipped by `-S`).
    pub fn python_path(&self, deps: Option<&Path>) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        if let Some(d) = deps {
            parts.push(d.display().to_string());
        }
        if let Some(site) = &self.python_site {
            parts.push(site.clone());
        }
        (!parts.is_empty()).then(|| parts.join(":"))
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
    std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    std::fs::write(dir.join("edgefn_worker.py"), PYTHON_WORKER)?;
    std::fs::write(dir.join("edgefn-worker.js"), NODE_WORKER)?;
    Ok(())
}

/// A bare program name (`python3`) is asked for its real executable once (the probe
/// prints it on its first line, then any extra facts); anything with arguments or a path
/// is used as configured.
async fn resolve(argv: &[String], probe: &[&str]) -> Vec<String> {
    if argv.len() != 1 || argv[0].contains('/') {
        return argv.to_vec();
    }
    let out = Command::new(&argv[0]).args(probe).output().await;
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let lines: Vec<String> = text.lines().map(|l| l.trim().to_owned()).collect();
            match lines.first() {
                Some(path) if Path::new(path).is_file() => lines,
                _ => argv.to_vec(),
            }
        }
        _ => argv.to_vec(),
    }
}
