//! `[openfaas]` and `[async]`: raw serde sections, validated into [`OpenfaasConfig`] and
//! [`AsyncConfig`] with every problem collected as (key, message) so `config::validate`
//! reports them like its own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOpenfaas {
    enabled: bool,
}

impl Default for RawOpenfaas {
    fn default() -> Self {
        Self { enabled: true }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAsync {
    store: String,
    data_dir: Option<PathBuf>,
    max_queued: u64,
    max_attempts: u32,
    visibility_timeout_ms: u64,
    callback_allow: Vec<String>,
}

impl Default for RawAsync {
    fn default() -> Self {
        Self {
            store: "embedded".into(),
            data_dir: None,
            max_queued: 100_000,
            max_attempts: 5,
            visibility_timeout_ms: 60_000,
            callback_allow: Vec::new(),
        }
    }
}

/// `/function/` and `/async-function/` routes on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenfaasConfig {
    pub enabled: bool,
}

/// Where queued calls are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// On-disk queue in `data_dir`.
    Embedded,
    /// Redis Streams; the URL as written (`redis://HOST:PORT/DB`).
    Redis { url: String },
}

/// One `callback_allow` entry: an address range or a host name as written in the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowEntry {
    Net(IpNet),
    Host(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncConfig {
    pub store: StoreKind,
    pub data_dir: PathBuf,
    pub max_queued: u64,
    pub max_attempts: u32,
    pub visibility_timeout: Duration,
    pub callback_allow: Vec<AllowEntry>,
}

impl RawOpenfaas {
    pub fn compile(&self) -> OpenfaasConfig {
        OpenfaasConfig {
            enabled: self.enabled,
        }
    }
}

impl RawAsync {
    /// `base` is the config file's folder (relative `data_dir` resolves against it);
    /// `functions_dir` and `listen` name the default `data_dir` (see [`default_data_dir`]).
    pub fn compile(
        self,
        base: &Path,
        functions_dir: &Path,
        listen: &str,
        err: &mut dyn FnMut(&str, String),
    ) -> AsyncConfig {
        let store = match self.store.as_str() {
            "embedded" => StoreKind::Embedded,
            s if s.starts_with("redis://") => {
                if let Err(m) = check_redis_url(s) {
                    err("async.store", m);
                }
                StoreKind::Redis { url: s.to_owned() }
            }
            other => {
                err(
                    "async.store",
                    format!(
                        "{other:?} is not a store; use \"embedded\" or \"redis://HOST:PORT/DB\""
                    ),
                );
                StoreKind::Embedded
            }
        };
        let data_dir = match self.data_dir {
            Some(d) if d.is_absolute() => d,
            Some(d) => base.join(d),
            None => default_data_dir(functions_dir, listen),
        };
        if !(1..=100_000_000).contains(&self.max_queued) {
            err(
                "async.max_queued",
                format!("{} is out of range; use 1 to 100000000", self.max_queued),
            );
        }
        if !(1..=100).contains(&self.max_attempts) {
            err(
                "async.max_attempts",
                format!("{} is out of range; use 1 to 100", self.max_attempts),
            );
        }
        if !(1_000..=86_400_000).contains(&self.visibility_timeout_ms) {
            err(
                "async.visibility_timeout_ms",
                format!(
                    "{} is out of range; use 1000 to 86400000 ms (longer than your slowest function's timeout)",
                    self.visibility_timeout_ms
                ),
            );
        }
        let mut callback_allow = Vec::new();
        for entry in &self.callback_allow {
            match parse_allow(entry) {
                Some(e) => callback_allow.push(e),
                None => err(
                    "async.callback_allow",
                    format!("{entry:?} is neither a CIDR (10.0.0.0/8, ::1/128) nor a host name"),
                ),
            }
        }
        AsyncConfig {
            store,
            data_dir,
            max_queued: self.max_queued,
            max_attempts: self.max_attempts,
            visibility_timeout: Duration::from_millis(self.visibility_timeout_ms),
            callback_allow,
        }
    }
}

/// Ends the name of a default `data_dir` no later process can reuse, before the pid.
pub const EPHEMERAL_MARK: &str = "-pid";

/// Without `data_dir`: systemd's `$STATE_DIRECTORY/async`, else `/var/lib/edgefn/async`
/// when that folder exists, else a folder under the temp dir named for the functions tree
/// and listen address, so two gateways never share (and lock each other out of) one
/// queue. A gateway on port 0 cannot be restarted at the same address: its folder also
/// carries the process id, and the next such gateway removes the folders of dead ones.
pub fn default_data_dir(functions_dir: &Path, listen: &str) -> PathBuf {
    if let Some(state) = std::env::var_os("STATE_DIRECTORY") {
        let first = state
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_owned();
        if !first.is_empty() {
            return Path::new(&first).join("async");
        }
    }
    if Path::new("/var/lib/edgefn").is_dir() {
        return PathBuf::from("/var/lib/edgefn/async");
    }
    let tree = std::fs::canonicalize(functions_dir).unwrap_or_else(|_| functions_dir.into());
    let mut key = format!("{}|{listen}", tree.display());
    if listen.ends_with(":0") {
        key.push_str(&format!("|{}", std::process::id()));
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut name = format!("edgefn-async-{}", hex::encode(&digest.as_ref()[..8]));
    if listen.ends_with(":0") {
        name.push_str(&format!("{EPHEMERAL_MARK}{}", std::process::id()));
    }
    std::env::temp_dir().join(name)
}

fn check_redis_url(s: &str) -> Result<(), String> {
    let rest = &s["redis://".len()..];
    let (hostport, db) = rest.split_once('/').unwrap_or((rest, "0"));
    let ok_db = db.is_empty() || db.parse::<u16>().is_ok();
    let ok_host = !hostport.is_empty() && !hostport.contains(['?', '#', ' ']);
    if ok_db && ok_host {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a Redis URL; write redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0"
        ))
    }
}

fn parse_allow(s: &str) -> Option<AllowEntry> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(AllowEntry::Net(net));
    }
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Some(AllowEntry::Net(IpNet::from(ip)));
    }
    let host = s.to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    valid.then_some(AllowEntry::Host(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(raw: RawAsync) -> (AsyncConfig, Vec<(String, String)>) {
        let mut errors = Vec::new();
        let c = raw.compile(
            Path::new("/etc/edgefn"),
            Path::new("."),
            "127.0.0.1:8080",
            &mut |k, m| errors.push((k.to_owned(), m)),
        );
        (c, errors)
    }

    #[test]
    fn defaults_are_valid() {
        let (c, errors) = compile(RawAsync::default());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.store, StoreKind::Embedded);
        assert_eq!(c.max_attempts, 5);
    }

    #[test]
    fn every_bad_key_is_named() {
        let raw = RawAsync {
            store: "memcached://x".into(),
            max_queued: 0,
            max_attempts: 0,
            visibility_timeout_ms: 1,
            callback_allow: vec!["10.0.0.0/8".into(), "not a host!".into()],
            data_dir: Some("q".into()),
        };
        let (c, errors) = compile(raw);
        let keys: Vec<_> = errors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "async.store",
                "async.max_queued",
                "async.max_attempts",
                "async.visibility_timeout_ms",
                "async.callback_allow"
            ]
        );
        assert_eq!(c.data_dir, Path::new("/etc/edgefn/q"));
        assert_eq!(c.callback_allow.len(), 1);
    }

    #[test]
    fn redis_urls() {
        assert!(check_redis_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(check_redis_url("redis://h:1").is_ok());
        assert!(check_redis_url("redis:///0").is_err());
        assert!(check_redis_url("redis://h:1/x").is_err());
    }
}
