//! `edgefn.toml` in three stages: raw serde structs (`deny_unknown_fields`) → `validate()`
//! collecting every error with its key and fix → an immutable [`Config`]. CLI flags are
//! applied as overrides before validation so their errors read the same way.

pub mod openfaas;
pub mod runtimes;
pub mod xdp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use runtimes::RuntimeCommands;
use xdp::XdpConfig;

/// Largest config file we read: protects start-up from a mistaken path.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// One problem in the config, with the file and the dotted key it concerns.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{file}: {key}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub message: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    server: RawServer,
    admin: RawAdmin,
    xdp: XdpConfig,
    runtimes: RawRuntimes,
    log: RawLog,
    cluster: crate::cluster::ClusterConfig,
    openfaas: openfaas::RawOpenfaas,
    #[serde(rename = "async")]
    async_queue: openfaas::RawAsync,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawServer {
    listen: String,
    functions_dir: Option<PathBuf>,
    tls: Option<RawTls>,
    max_connections: usize,
    header_read_timeout_ms: u64,
    idle_timeout_ms: u64,
    shutdown_grace_ms: u64,
    http1_fast_path: bool,
    body_read_timeout_ms: u64,
    min_body_bytes_per_s: u64,
    runtime: RuntimeFlavor,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            functions_dir: None,
            tls: None,
            max_connections: 25_000,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            shutdown_grace_ms: 30_000,
            http1_fast_path: true,
            body_read_timeout_ms: 30_000,
            min_body_bytes_per_s: 1024,
            runtime: RuntimeFlavor::Auto,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
    /// PEM CA bundle client certificates are verified against (mTLS).
    client_ca: Option<PathBuf>,
    client_auth: Option<ClientAuth>,
}

/// `server.tls.client_auth`: whether a client certificate is required at the handshake
/// (`required`) or verified when presented (`optional`, the default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    Optional,
    Required,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAdmin {
    listen: String,
}

impl Default for RawAdmin {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawRuntimes {
    python: Option<RawRuntime>,
    node: Option<RawRuntime>,
    php: Option<RawRuntime>,
    lua: Option<RawRuntime>,
    rust: Option<RawRuntime>,
    go: Option<RawRuntime>,
    worker_idle_timeout_ms: Option<u64>,
    cancel_grace_ms: Option<u64>,
    prefetch: Option<usize>,
    typescript: Option<RawTypeScript>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntime {
    command: Command,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTypeScript {
    esbuild: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Command {
    Line(String),
    Argv(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    format: LogFormat,
    access: bool,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            access: true,
        }
    }
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// `[server] runtime`: the async runtime the gateway runs on.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeFlavor {
    /// One thread when the process may run on one CPU only (its affinity mask or cgroup
    /// quota), else one worker thread per CPU.
    #[default]
    Auto,
    CurrentThread,
    MultiThread,
}

/// PEM files for the public listener's TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from, for messages (`<defaults>` without a file).
    pub source: String,
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub functions_dir: PathBuf,
    pub tls: Option<TlsPaths>,
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub shutdown_grace: Duration,
    /// HTTP/1 requests the gateway refuses are answered by `server/front.rs` without
    /// hyper; off, hyper serves every request (the switch exists to compare and to rule
    /// the front out when chasing a problem).
    pub http1_fast_path: bool,
    /// The whole request body must arrive within this (408 and close otherwise).
    pub body_read_timeout: Duration,
    /// After the first second a body must average at least this (0: no rate check).
    pub min_body_bytes_per_s: u64,
    /// `[server] runtime` (see [`RuntimeFlavor`]).
    pub runtime: RuntimeFlavor,
    pub xdp: XdpConfig,
    pub runtimes: RuntimeCommands,
    pub log_format: LogFormat,
    pub access_log: bool,
    /// `[cluster]`: shared limits and replay guards (off by default).
    pub cluster: crate::cluster::ClusterConfig,
    /// `[openfaas]`: the `/function/` and `/async-function/` routes.
    pub openfaas: openfaas::OpenfaasConfig,
    /// `[async]`: the durable queue behind `/async-function/`.
    pub async_queue: openfaas::AsyncConfig,
}

/// Command-line values that win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub functions_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub admin_listen: Option<String>,
}

impl Config {
    /// Reads and validates `path` (or defaults when `None`), applying `overrides`.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, Vec<ConfigError>> {
        let (source, raw) = match path {
            None => ("<defaults>".to_owned(), RawConfig::default()),
            Some(p) => {
                let source = p.display().to_string();
                let text = read_bounded(p).map_err(|message| {
                    vec![ConfigError {
                        file: source.clone(),
                        key: "-".into(),
                        message,
                    }]
                })?;
                let raw = toml::from_str::<RawConfig>(&text).map_err(|e| {
                    vec![ConfigError {
                        file: source.clone(),
                        key: toml_error_key(&e),
                        message: format!("{} (see the config reference in README.md)", e.message()),
                    }]
                })?;
                (source, raw)
            }
        };
        let base = path
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        validate(raw, source, &base, overrides)
    }
}

fn read_bounded(p: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(p).map_err(|e| format!("cannot read the file: {e}"))?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(format!(
            "file is {} bytes, larger than the {MAX_CONFIG_BYTES}-byte limit",
            meta.len()
        ));
    }
    std::fs::read_to_string(p).map_err(|e| format!("cannot read the file as UTF-8 text: {e}"))
}

/// toml's message carries the key only in prose; the span's line gives us a stable hint.
fn toml_error_key(e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => format!("(at byte {})", span.start),
        None => "-".into(),
    }
}

fn validate(
    raw: RawConfig,
    source: String,
    base: &Path,
    ov: &Overrides,
) -> Result<Config, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut err = |key: &str, message: String| {
        errors.push(ConfigError {
            file: source.clone(),
            key: key.into(),
            message,
        })
    };

    let listen_text = ov.listen.as_deref().unwrap_or(&raw.server.listen);
    let listen = parse_addr(listen_text).map_err(|m| err("server.listen", m));
    let admin_text = ov.admin_listen.as_deref().unwrap_or(&raw.admin.listen);
    let admin_listen = parse_addr(admin_text).map_err(|m| err("admin.listen", m));

    let functions_dir = match (&ov.functions_dir, &raw.server.functions_dir) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => resolve(base, d),
        (None, None) => default_functions_dir(),
    };
    if !functions_dir.is_dir() {
        err(
            "server.functions_dir",
            format!(
                "{} is not a directory; create it or point --functions at your functions tree",
                functions_dir.display()
            ),
        );
    }

    if let Some(t) = &raw.server.tls {
        if t.client_auth.is_some() && t.client_ca.is_none() {
            err(
                "server.tls.client_auth",
                "needs server.tls.client_ca, the PEM CA bundle client certificates are checked against".into(),
            );
        }
    }
    let tls = raw.server.tls.map(|t| TlsPaths {
        cert: resolve(base, &t.cert),
        key: resolve(base, &t.key),
        client_ca: t.client_ca.as_deref().map(|p| resolve(base, p)),
        client_auth: t.client_auth.unwrap_or_default(),
    });
    if let Some(t) = &tls {
        let ca = t.client_ca.as_ref().map(|p| ("server.tls.client_ca", p));
        for (key, p) in [("server.tls.cert", &t.cert), ("server.tls.key", &t.key)]
            .into_iter()
            .chain(ca)
        {
            if !p.is_file() {
                err(
                    key,
                    format!(
                        "{} does not exist; give the path of a PEM file",
                        p.display()
                    ),
                );
            }
        }
    }
    if raw.server.max_connections == 0 || raw.server.max_connections > 1_000_000 {
        err(
            "server.max_connections",
            format!(
                "{} is out of range; use 1 to 1000000",
                raw.server.max_connections
            ),
        );
    }
    for (key, v) in [
        (
            "server.header_read_timeout_ms",
            raw.server.header_read_timeout_ms,
        ),
        ("server.idle_timeout_ms", raw.server.idle_timeout_ms),
        ("server.shutdown_grace_ms", raw.server.shutdown_grace_ms),
        (
            "server.body_read_timeout_ms",
            raw.server.body_read_timeout_ms,
        ),
    ] {
        if v == 0 || v > 3_600_000 {
            err(key, format!("{v} is out of range; use 1 to 3600000 ms"));
        }
    }
    if raw.xdp.enabled && raw.xdp.interface.as_deref().unwrap_or("").is_empty() {
        err(
            "xdp.interface",
            "xdp.enabled is true but no interface is named; set interface = \"eth0\" (or lo)"
                .into(),
        );
    }
    for (key, message) in raw.xdp.problems() {
        err(key, message);
    }
    for (key, message) in raw.cluster.problems() {
        err(key, message);
    }

    let mut runtimes = RuntimeCommands::default();
    for (key, slot, cmd) in [
        (
            "runtimes.python.command",
            &mut runtimes.python,
            raw.runtimes.python,
        ),
        (
            "runtimes.node.command",
            &mut runtimes.node,
            raw.runtimes.node,
        ),
        ("runtimes.php.command", &mut runtimes.php, raw.runtimes.php),
        ("runtimes.lua.command", &mut runtimes.lua, raw.runtimes.lua),
        (
            "runtimes.rust.command",
            &mut runtimes.cargo,
            raw.runtimes.rust,
        ),
        ("runtimes.go.command", &mut runtimes.go, raw.runtimes.go),
    ] {
        if let Some(r) = cmd {
            let argv: Vec<String> = match r.command {
                Command::Line(s) => s.split_whitespace().map(str::to_owned).collect(),
                Command::Argv(v) => v,
            };
            if argv.is_empty() || argv[0].is_empty() {
                err(
                    key,
                    "is empty; give the interpreter, e.g. \"python3\" or [\"node\", \"--max-old-space-size=256\"]".into(),
                );
            } else {
                *slot = argv;
            }
        }
    }
    if let Some(ms) = raw.runtimes.worker_idle_timeout_ms {
        if !(100..=86_400_000).contains(&ms) {
            err(
                "runtimes.worker_idle_timeout_ms",
                format!("{ms} is out of range; use 100 to 86400000 (one day)"),
            );
        } else {
            runtimes.idle_timeout = Duration::from_millis(ms);
        }
    }
    if let Some(ms) = raw.runtimes.cancel_grace_ms {
        if !(10..=600_000).contains(&ms) {
            err(
                "runtimes.cancel_grace_ms",
                format!("{ms} is out of range; use 10 to 600000 (ten minutes)"),
            );
        } else {
            runtimes.cancel_grace = Duration::from_millis(ms);
        }
    }
    if let Some(n) = raw.runtimes.prefetch {
        if n > runtimes::MAX_PREFETCH {
            err(
                "runtimes.prefetch",
                format!(
                    "{n} is out of range; use 0 (off) to {}",
                    runtimes::MAX_PREFETCH
                ),
            );
        } else {
            runtimes.prefetch = n;
        }
    }

    if let Some(esbuild) = raw.runtimes.typescript.and_then(|t| t.esbuild) {
        match runtimes::esbuild_path(&esbuild) {
            Ok(p) => runtimes.esbuild = Some(p),
            Err(message) => err("runtimes.typescript.esbuild", message),
        }
    }

    let openfaas = raw.openfaas.compile();
    let async_queue = raw
        .async_queue
        .compile(base, &functions_dir, listen_text, &mut |k, m| err(k, m));

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Config {
        source,
        listen: listen.unwrap_or_else(|()| unreachable_addr()),
        admin_listen: admin_listen.unwrap_or_else(|()| unreachable_addr()),
        functions_dir,
        tls,
        max_connections: raw.server.max_connections,
        header_read_timeout: Duration::from_millis(raw.server.header_read_timeout_ms),
        idle_timeout: Duration::from_millis(raw.server.idle_timeout_ms),
        shutdown_grace: Duration::from_millis(raw.server.shutdown_grace_ms),
        http1_fast_path: raw.server.http1_fast_path,
        body_read_timeout: Duration::from_millis(raw.server.body_read_timeout_ms),
        min_body_bytes_per_s: raw.server.min_body_bytes_per_s,
        runtime: raw.server.runtime,
        xdp: raw.xdp,
        runtimes,
        log_format: raw.log.format,
        access_log: raw.log.access,
        cluster: raw.cluster,
        openfaas,
        async_queue,
    })
}

/// Only reached after `errors` was checked empty; kept total rather than panicking.
fn unreachable_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>().map_err(|_| {
        format!("{s:?} is not an address; write IP:PORT, e.g. 127.0.0.1:8080 or [::]:8443")
    })
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// `./functions` when present (a user's own tree), else the bundled examples.
pub fn default_functions_dir() -> PathBuf {
    let local = PathBuf::from("functions");
    if local.is_dir() {
        local
    } else {
        PathBuf::from("examples/functions")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Config, Vec<ConfigError>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("fns")).unwrap();
        let p = dir.path().join("edgefn.toml");
        std::fs::write(&p, text).unwrap();
        Config::load(Some(&p), &Overrides::default())
    }

    #[test]
    fn defaults_and_relative_functions_dir() {
        let c = load_text("[server]\nfunctions_dir = \"fns\"\n").unwrap();
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.admin_listen.port(), 9464);
        assert!(c.functions_dir.ends_with("fns"));
        assert!(!c.xdp.enabled);
    }

    #[test]
    fn client_auth_needs_a_client_ca() {
        let e = load_text(
            "[server]\nfunctions_dir = \"fns\"\ntls = { cert = \"c.pem\", key = \"k.pem\", client_auth = \"required\" }\n",
        )
        .unwrap_err();
        let keys: Vec<_> = e.iter().map(|e| e.key.as_str()).collect();
        assert!(keys.contains(&"server.tls.client_auth"), "{keys:?}");
        let e = load_text(
            "[server]\nfunctions_dir = \"fns\"\ntls = { cert = \"c.pem\", key = \"k.pem\", client_ca = \"ca.pem\", client_auth = \"sometimes\" }\n",
        )
        .unwrap_err();
        assert!(e[0].message.contains("sometimes"), "{e:?}");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = load_text("[server]\nfunctions_dir = \"fns\"\nlisten_port = 1\n").unwrap_err();
        assert!(e[0].message.contains("listen_port"), "{:?}", e);
    }

    #[test]
    fn every_error_is_collected() {
        let e = load_text(
            "[server]\nfunctions_dir = \"nope\"\nlisten = \"x\"\nmax_connections = 0\n[admin]\nlisten = \"y\"\n",
        )
        .unwrap_err();
        let keys: Vec<_> = e.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "server.listen",
                "admin.listen",
                "server.functions_dir",
                "server.max_connections"
            ]
        );
    }

    #[test]
    fn prefetch_has_a_default_and_is_bounded() {
        let c = load_text("[server]\nfunctions_dir = \"fns\"\n").unwrap();
        assert_eq!(c.runtimes.prefetch, runtimes::DEFAULT_PREFETCH);
        let c = load_text("[server]\nfunctions_dir = \"fns\"\n[runtimes]\nprefetch = 0\n").unwrap();
        assert_eq!(c.runtimes.prefetch, 0);
        let e = load_text("[server]\nfunctions_dir = \"fns\"\n[runtimes]\nprefetch = 65\n")
            .unwrap_err();
        assert_eq!(e[0].key, "runtimes.prefetch");
        assert!(e[0].message.contains("0 (off) to 64"), "{e:?}");
    }

    #[test]
    fn overrides_win() {
        let dir = tempfile::tempdir().unwrap();
        let ov = Overrides {
            functions_dir: Some(dir.path().to_path_buf()),
            listen: Some("127.0.0.1:0".into()),
            admin_listen: None,
        };
        let c = Config::load(None, &ov).unwrap();
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.functions_dir, dir.path());
    }
}

#[cfg(test)]
mod deploy_example {
    use super::*;

    /// deploy/edgefn.toml documents every key: it must stay loadable.
    #[test]
    fn deploy_example_config_is_valid() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/edgefn.toml");
        let dir = tempfile::tempdir().unwrap();
        let ov = Overrides {
            functions_dir: Some(dir.path().to_path_buf()),
            ..Overrides::default()
        };
        let c = Config::load(Some(&p), &ov).unwrap();
        assert_eq!(c.listen.port(), 8080);
        assert!(c.access_log);
    }
}
