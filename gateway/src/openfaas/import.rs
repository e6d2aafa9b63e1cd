//! `edgefn import openfaas stack.yml --out DIR`: reads an OpenFaaS stack file and writes
//! one function folder per entry: the handler folder's files, `fn.config.json` (timeouts
//! from `exec_timeout`/`write_timeout`, `workers` from the `com.openfaas.scale.min/max`
//! labels) and `fn.env.json` (`environment` as plain entries, `secrets` as `is_secret`
//! entries to fill in). Everything it cannot carry is listed in the report, per function.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::secrets::kubernetes_name;

const MAX_STACK_BYTES: u64 = 1 << 20;
/// Largest handler file copied, and largest handler folder in total.
const MAX_FILE_BYTES: u64 = 16 << 20;
const MAX_TOTAL_BYTES: u64 = 128 << 20;
/// Folders never copied from a handler folder.
const SKIPPED: &[&str] = &["node_modules", ".git", "__pycache__", "build", "template"];

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: larger than {MAX_STACK_BYTES} bytes; is this a stack file?")]
    TooLarge { path: PathBuf },
    #[error("{path}: not an OpenFaaS stack file: {source}")]
    Parse {
        path: PathBuf,
        source: serde_yaml::Error,
    },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Deserialize)]
struct Stack {
    #[serde(default)]
    functions: BTreeMap<String, StackFunction>,
}

#[derive(Debug, Deserialize)]
struct StackFunction {
    lang: Option<String>,
    handler: Option<String>,
    #[serde(default)]
    environment: BTreeMap<String, serde_yaml::Value>,
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, serde_yaml::Value>,
    /// Everything else (`image`, `limits`, `annotations`, `environment_file`, ...): named
    /// in the report as not carried.
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml::Value>,
}

/// What one import did.
#[derive(Debug, Default)]
pub struct Report {
    pub written: Vec<String>,
    pub skipped: Vec<(String, String)>,
    pub not_carried: Vec<(String, String)>,
    pub to_fill: Vec<(String, String)>,
}

pub fn run(stack_path: &Path, out: &Path) -> Result<Report, ImportError> {
    let read_err = |source| ImportError::Read {
        path: stack_path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(stack_path).map_err(read_err)?;
    if meta.len() > MAX_STACK_BYTES {
        return Err(ImportError::TooLarge {
            path: stack_path.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(stack_path).map_err(read_err)?;
    let stack: Stack = serde_yaml::from_str(&text).map_err(|source| ImportError::Parse {
        path: stack_path.to_path_buf(),
        source,
    })?;
    let base = stack_path.parent().unwrap_or(Path::new("."));
    let mut report = Report::default();
    for (name, f) in stack.functions {
        match import_one(base, out, &name, f, &mut report) {
            Ok(()) => report.written.push(name),
            Err(Skip(why)) => report.skipped.push((name, why)),
        }
    }
    Ok(report)
}

struct Skip(String);

fn import_one(
    base: &Path,
    out: &Path,
    name: &str,
    f: StackFunction,
    report: &mut Report,
) -> Result<(), Skip> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.')
        && name != "function"
        && name != "async-function";
    if !valid {
        return Err(Skip(
            "the name is not a usable folder name (letters, digits, - _ .; not function/async-function)".into(),
        ));
    }
    let lang = f.lang.as_deref().unwrap_or("");
    let Some(entry) = entry_file(lang) else {
        return Err(Skip(format!(
            "lang {lang:?} has no edgefn runtime (python3*, python*, node*)"
        )));
    };
    let Some(handler) = &f.handler else {
        return Err(Skip("no handler folder given".into()));
    };
    let src = base.join(handler);
    if !src.join(entry).is_file() {
        return Err(Skip(format!("{} has no {entry}", src.display())));
    }
    let dest = out.join(name);
    if dest.exists() {
        return Err(Skip(format!(
            "{} exists already; import into an empty --out",
            dest.display()
        )));
    }
    let mut total = 0;
    copy_tree(&src, &dest, &mut total).map_err(|e| Skip(format!("copying the handler: {e}")))?;

    let note = |what: &str, report: &mut Report| {
        report.not_carried.push((name.to_owned(), what.to_owned()))
    };
    let mut config = serde_json::Map::new();
    config.insert(
        "summary".into(),
        format!("{name} (imported from an OpenFaaS stack, lang {lang})").into(),
    );
    let mut env = serde_json::Map::new();
    for (k, v) in &f.environment {
        let text = match v {
            serde_yaml::Value::String(s) => s.clone(),
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Bool(b) => b.to_string(),
            _ => {
                note(&format!("environment.{k} (not a scalar)"), report);
                continue;
            }
        };
        match k.as_str() {
            "exec_timeout" | "write_timeout" | "read_timeout" | "upstream_timeout" => {
                match duration_ms(&text) {
                    Some(ms) if k == "exec_timeout" || !config.contains_key("timeout_ms") => {
                        config.insert("timeout_ms".into(), ms.into());
                    }
                    Some(_) => {}
                    None => note(
                        &format!("environment.{k} = {text:?} (not a duration)"),
                        report,
                    ),
                }
            }
            _ if valid_env_name(k) => {
                env.insert(k.clone(), text.into());
            }
            _ => note(
                &format!("environment.{k} (not a valid variable name)"),
                report,
            ),
        }
    }
    for s in &f.secrets {
        let var = s.to_ascii_uppercase().replace(['-', '.'], "_");
        if !valid_env_name(&var) {
            note(&format!("secret {s} (no valid variable name)"), report);
            continue;
        }
        if kubernetes_name(&var) != *s {
            note(
                &format!(
                    "secret {s}: its file is {var} (and {})",
                    kubernetes_name(&var)
                ),
                report,
            );
        }
        env.insert(
            var.clone(),
            serde_json::json!({"value": "", "is_secret": true}),
        );
        report.to_fill.push((name.to_owned(), var));
    }
    let mut workers = serde_json::Map::new();
    for (k, v) in &f.labels {
        let n = match v {
            serde_yaml::Value::Number(n) => n.as_u64(),
            serde_yaml::Value::String(s) => s.parse().ok(),
            _ => None,
        };
        match (k.as_str(), n) {
            ("com.openfaas.scale.min", Some(n)) => {
                workers.insert("min".into(), n.into());
            }
            ("com.openfaas.scale.max", Some(n)) => {
                workers.insert("max".into(), n.into());
            }
            _ => note(&format!("labels.{k}"), report),
        }
    }
    if !workers.is_empty() {
        config.insert("workers".into(), workers.into());
    }
    for k in f.other.keys() {
        note(k, report);
    }
    write_json(&dest.join("fn.config.json"), &config.into())?;
    if !env.is_empty() {
        write_json(&dest.join("fn.env.json"), &env.into())?;
    }
    Ok(())
}

/// The handler file edgefn loads for an OpenFaaS template.
fn entry_file(lang: &str) -> Option<&'static str> {
    if lang.starts_with("python") {
        Some("handler.py")
    } else if lang.starts_with("node") {
        Some("handler.js")
    } else {
        None
    }
}

fn valid_env_name(n: &str) -> bool {
    let mut b = n.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// `30s`, `1m30s`, `500ms`, `2h`, or a bare number of seconds.
fn duration_ms(s: &str) -> Option<u64> {
    if let Ok(secs) = s.parse::<u64>() {
        return secs.checked_mul(1000);
    }
    let mut total: u64 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (1, 2)
        } else if rest.starts_with('s') {
            (1000, 1)
        } else if rest.starts_with('m') {
            (60_000, 1)
        } else if rest.starts_with('h') {
            (3_600_000, 1)
        } else {
            return None;
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
        rest = &rest[len..];
    }
    Some(total)
}

fn copy_tree(src: &Path, dest: &Path, total: &mut u64) -> std::io::Result<()> {
    std::fs::create_dir_all(dest)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let name = entry.file_name();
        let ft = entry.file_type()?;
        if ft.is_symlink() || SKIPPED.iter().any(|s| name == *s) {
            continue;
        }
        if ft.is_dir() {
            copy_tree(&entry.path(), &dest.join(&name), total)?;
        } else if ft.is_file() {
            let len = entry.metadata()?.len();
            *total += len;
            if len > MAX_FILE_BYTES || *total > MAX_TOTAL_BYTES {
                return Err(std::io::Error::other(format!(
                    "{} makes the handler folder larger than the import limit",
                    entry.path().display()
                )));
            }
            std::fs::copy(entry.path(), dest.join(&name))?;
        }
    }
    Ok(())
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<(), Skip> {
    let mut text = serde_json::to_string_pretty(v).expect("JSON values serialize");
    text.push('\n');
    std::fs::write(path, text).map_err(|e| Skip(format!("{}: {e}", path.display())))
}

/// The report as `edgefn import` prints it.
pub fn print(report: &Report, out_dir: &Path, w: &mut impl Write) {
    for name in &report.written {
        let _ = writeln!(w, "imported {name} -> {}", out_dir.join(name).display());
    }
    for (name, why) in &report.skipped {
        let _ = writeln!(w, "skipped {name}: {why}");
    }
    for (name, what) in &report.not_carried {
        let _ = writeln!(w, "not carried ({name}): {what}");
    }
    for (name, var) in &report.to_fill {
        let _ = writeln!(
            w,
            "fill in: {}/fn.env.json {var} (is_secret)",
            out_dir.join(name).display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_ms("30s"), Some(30_000));
        assert_eq!(duration_ms("1m30s"), Some(90_000));
        assert_eq!(duration_ms("500ms"), Some(500));
        assert_eq!(duration_ms("20"), Some(20_000));
        assert_eq!(duration_ms("2h"), Some(7_200_000));
        assert_eq!(duration_ms("soon"), None);
        assert_eq!(duration_ms(""), None);
    }

    #[test]
    fn languages() {
        assert_eq!(entry_file("python3-http"), Some("handler.py"));
        assert_eq!(entry_file("node20"), Some("handler.js"));
        assert_eq!(entry_file("go"), None);
    }
}
