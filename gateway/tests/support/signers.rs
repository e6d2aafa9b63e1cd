//! The webhook publishers' own signing libraries (`tests/webhooks/sign.py`,
//! `tests/webhooks/sign-github.mjs`), so a test's signatures are not the gateway's own code.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::repo_root;

/// Runs a signer (`python3 sign.py` or `node sign-github.mjs`) on `jobs` (a JSON array)
/// and returns its answers in order; a signer that cannot run fails the test naming the fix.
pub fn run(program: &str, script: &str, jobs: &Value) -> Vec<Value> {
    let mut child = Command::new(program)
        .arg(script)
        .current_dir(repo_root().join("gateway/tests/webhooks"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} {script}: {e}; run scripts/setup.sh --test"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(jobs.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {script} failed (run scripts/setup.sh --test): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
