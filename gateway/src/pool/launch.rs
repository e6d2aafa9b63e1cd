//! How a worker process is started: the runtime scripts are embedded in the binary and
//! written once to a private directory (so a deployed `edgefn` is one file), and the
//! interpreter named in `[runtimes.*] command` is resolved once to its real executable
//! (a pyenv/asdf shim costs tens of milliseconds per worker start).
//!
//! A bare `python3` is started with `-S`: `site` processing (every `.pth` file of the
//! installation, some of which import whole packages) was most of a fresh worker's start
//! time here. The installation's site-packages stay importable through `PYTHONPATH`.
//! The Python worker script is compiled once, here, by the interpreter that will run it:
//! compiling it was as costly as the interpreter's own start, at every worker start.
//!
//! Node reads `NODE_EXTRA_CA_CERTS` at start-up and builds its whole root store there and
//! then (its ~140 bundled certificates parsed, then the file's): several times a bare
//! Node's start. When it is set, the launcher writes the same trust set (bundled ∪ the
//! file's certificates) once into one bundle and starts Node with `--use-openssl-ca`,
//! `SSL_CERT_FILE` naming that bundle and `SSL_CERT_DIR` an empty directory, so the store
//! is built by the first TLS connection that needs it; the worker puts the operator's
//! `NODE_EXTRA_CA_CERTS` back into its environment for the handler's own child processes.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::Runtime;
use crate::config::RuntimeCommands;

const PYTHON_WORKER: &str = include_str!("../../../runtimes/python/edgefn_worker.py");
const NODE_WORKER: &str = include_str!("../../../runtimes/node/edgefn-worker.js");
const PHP_WORKER: &str = include_str!("../../../runtimes/php/edgefn-worker.php");
const LUA_WORKER: &str = include_str!("../../../runtimes/lua/edgefn-worker.lua");
/// PHP's CLI prints errors on stdout by default; the worker's stdout is the handler's.
const PHP_FLAGS: [&str; 4] = ["-d", "display_errors=stderr", "-d", "log_errors=0"];
/// A Rust function's worker is its own binary, built per digest (`rust_build`) and named
/// by the deps env; `sh` execs it with the worker arguments unchanged.
const RUST_TRAMPOLINE: [&str; 3] = ["-c", "exec \"$EDGEFN_RUST_WORKER\" \"$@\"", "edgefn-rust"];
/// A Go function's worker likewise (`go_build`).
const GO_TRAMPOLINE: [&str; 3] = ["-c", "exec \"$EDGEFN_GO_WORKER\" \"$@\"", "edgefn-go"];

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
    /// `edgefn_worker.pyc` when the interpreter compiled it, else the source.
    python_script: &'static str,
    /// The interpreter without `-S`, for pip.
    python_plain: Vec<String>,
    /// site-packages of the resolved interpreter, when it runs with `-S`.
    python_site: Option<String>,
    node: Vec<String>,
    /// Node's trust store moved out of its start-up (see the module doc).
    node_ca: Option<NodeCa>,
    php: Vec<String>,
    lua: Vec<String>,
    cargo: Vec<String>,
    go: Vec<String>,
    composer: Vec<String>,
    /// esbuild for TypeScript handlers (empty when none was found).
    esbuild: Vec<String>,
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
        // Only for a resolved executable: a shim may pick another version per directory,
        // whose magic number would refuse this `.pyc`.
        let python_script = if python_site.is_some() && compile_python(&python, &dir).await {
            PYTHON_COMPILED
        } else {
            "edgefn_worker.py"
        };
        let node = match &resolve(&commands.node, &["-p", "process.execPath"]).await[..] {
            [exe] => vec![exe.clone()],
            _ => commands.node.clone(),
        };
        let node_ca = NodeCa::prepare(&node, &dir).await;
        let esbuild = commands
            .esbuild
            .clone()
            .or_else(super::typescript::find_esbuild)
            .map(|p| vec![p.display().to_string()])
            .unwrap_or_default();
        Ok(Launcher {
            python,
            python_script,
            python_plain,
            python_site,
            node,
            node_ca,
            php: commands.php.clone(),
            lua: commands.lua.clone(),
            cargo: commands.cargo.clone(),
            go: commands.go.clone(),
            composer: vec!["composer".into()],
            esbuild,
            dir,
        })
    }

    /// `program args... <script>`: the command line of a worker, socket and handler
    /// excluded; `None` for a runtime this build cannot start.
    pub fn command(&self, runtime: Runtime) -> Option<Command> {
        let (argv, script) = match runtime {
            Runtime::Python => (&self.python, self.python_script),
            Runtime::Node | Runtime::TypeScript => (&self.node, "edgefn-worker.js"),
            Runtime::Php => (&self.php, "edgefn-worker.php"),
            Runtime::Lua => (&self.lua, "edgefn-worker.lua"),
            Runtime::Rust | Runtime::Go => {
                let mut cmd = Command::new("/bin/sh");
                cmd.args(if runtime == Runtime::Go {
                    GO_TRAMPOLINE
                } else {
                    RUST_TRAMPOLINE
                });
                return Some(cmd);
            }
        };
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        if matches!(runtime, Runtime::Node | Runtime::TypeScript) && self.node_ca.is_some() {
            cmd.arg("--use-openssl-ca");
        }
        if runtime == Runtime::TypeScript {
            // Stack traces of the compiled handler name the .ts source lines.
            cmd.arg("--enable-source-maps");
        }
        if runtime == Runtime::Php {
            cmd.args(PHP_FLAGS);
        }
        cmd.arg(self.dir.join(script));
        Some(cmd)
    }

    /// The environment a worker of `runtime` gets beyond the gateway's passed-through
    /// variables.
    pub fn runtime_env(&self, runtime: Runtime, cmd: &mut Command) {
        if let (Runtime::Node | Runtime::TypeScript, Some(ca)) = (runtime, &self.node_ca) {
            cmd.env_remove(NODE_EXTRA_CA)
                .env("SSL_CERT_FILE", &ca.bundle)
                .env("SSL_CERT_DIR", &ca.empty_dir)
                .env(NODE_EXTRA_CA_BACK, &ca.original);
        }
    }

    /// The command a runtime's load step runs: the interpreter for pip, esbuild for
    /// TypeScript (its npm install needs none), composer for PHP, cargo for a Rust build,
    /// go for a Go build.
    pub fn interpreter(&self, runtime: Runtime) -> &[String] {
        match runtime {
            Runtime::Python => &self.python_plain,
            Runtime::Node => &self.node,
            Runtime::TypeScript => &self.esbuild,
            Runtime::Php => &self.composer,
            Runtime::Rust => &self.cargo,
            Runtime::Go => &self.go,
            Runtime::Lua => &self.lua,
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
    std::fs::write(dir.join("edgefn-worker.php"), PHP_WORKER)?;
    std::fs::write(dir.join("edgefn-worker.lua"), LUA_WORKER)?;
    Ok(())
}

const PYTHON_COMPILED: &str = "edgefn_worker.pyc";
const NODE_EXTRA_CA: &str = "NODE_EXTRA_CA_CERTS";
/// The worker restores `NODE_EXTRA_CA_CERTS` from this for the handler's child processes.
const NODE_EXTRA_CA_BACK: &str = "EDGEFN_NODE_EXTRA_CA_CERTS";
/// Writes Node's bundled root certificates and those of the file `argv[1]`, each once, to
/// `argv[2]`.
const NODE_CA_BUNDLE: &str = "const tls=require('tls'),fs=require('fs');\
    const pem=fs.readFileSync(process.argv[1],'utf8');\
    const extra=pem.match(/-----BEGIN CERTIFICATE-----[\\s\\S]*?-----END CERTIFICATE-----/g)||[];\
    const seen=new Set(),out=[];\
    for(const c of tls.rootCertificates.concat(extra)){const k=c.replace(/\\s+/g,'');\
    if(!seen.has(k)){seen.add(k);out.push(c);}}\
    fs.writeFileSync(process.argv[2],out.join('\\n')+'\\n',{mode:0o600});";

#[derive(Debug)]
struct NodeCa {
    bundle: PathBuf,
    empty_dir: PathBuf,
    original: OsString,
}

impl NodeCa {
    /// Only when `NODE_EXTRA_CA_CERTS` is set; `None` (the variable passed through as it
    /// is) when this Node cannot write the bundle. The worker's `SSL_CERT_FILE` /
    /// `SSL_CERT_DIR` then name the bundle (Node without the flag ignores both; OpenSSL
    /// reads them when the store is first built, so they cannot be given back).
    async fn prepare(node: &[String], dir: &Path) -> Option<NodeCa> {
        let original = std::env::var_os(NODE_EXTRA_CA).filter(|v| !v.is_empty())?;
        let (program, args) = node.split_first()?;
        let bundle = dir.join("node-ca.pem");
        let empty_dir = dir.join("no-ca-dir");
        std::fs::create_dir(&empty_dir).ok()?;
        let status = Command::new(program)
            .args(args)
            .args(["--use-openssl-ca", "-e", NODE_CA_BUNDLE])
            .arg(&original)
            .arg(&bundle)
            .env_remove(NODE_EXTRA_CA)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await;
        let written = matches!(status, Ok(s) if s.success()) && bundle.is_file();
        if !written {
            tracing::warn!(
                file = %Path::new(&original).display(),
                "NODE_EXTRA_CA_CERTS could not be prepared for the Node workers; passed as it is (each Node worker start parses it)"
            );
            return None;
        }
        Some(NodeCa {
            bundle,
            empty_dir,
            original,
        })
    }
}

/// Compiles the worker script to `edgefn_worker.pyc` beside it with `python` (a `.pyc` runs
/// as a script; its code keeps the `.py` path, so tracebacks still show the source lines).
/// `false` when that interpreter cannot: the worker then runs from source.
async fn compile_python(python: &[String], dir: &Path) -> bool {
    let Some((program, args)) = python.split_first() else {
        return false;
    };
    let script =
        "import py_compile,sys;py_compile.compile(sys.argv[1],cfile=sys.argv[2],doraise=True)";
    let status = Command::new(program)
        .args(args)
        .args(["-c", script])
        .arg(dir.join("edgefn_worker.py"))
        .arg(dir.join(PYTHON_COMPILED))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
    matches!(status, Ok(s) if s.success()) && dir.join(PYTHON_COMPILED).is_file()
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
