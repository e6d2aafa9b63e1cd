//! The handler contract as a table, through the real gateway: every case of
//! `runtimes/conformance/cases.json` against every runtime listed in [`RUNTIMES`]. Each
//! runtime's fixture folder is copied into one functions tree as `<runtime>/[id]/`, the
//! `edgefn` binary serves it, and each case is one HTTP request to
//! `/<runtime><path>?case=NAME` whose status, listed headers and exact body bytes are
//! compared with the table. Every mismatch is collected, then reported at once.

mod support;

use std::path::Path;

use base64::Engine as _;
use serde_json::Value;
use support::{client, path_str, repo_root, tempdir, wait_until, Gateway};

/// (runtime label, fixture folder relative to the repository root). A new runtime adds its
/// line here and a handler answering every case in its folder.
const RUNTIMES: &[(&str, &str)] = &[
    ("python", "runtimes/conformance/python"),
    ("node", "runtimes/conformance/node"),
    ("typescript", "runtimes/conformance/typescript"),
    ("php", "runtimes/conformance/php"),
    ("lua", "runtimes/conformance/lua"),
    ("rust", "runtimes/conformance/rust"),
    ("go", "runtimes/conformance/go"),
];

const TABLE: &str = "runtimes/conformance/cases.json";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A body spec of the table: `body` (text) or `body_base64`, repeated `body_repeat` times.
fn body_of(spec: &Value) -> Option<Vec<u8>> {
    let once = if let Some(t) = spec["body"].as_str() {
        t.as_bytes().to_vec()
    } else if let Some(b) = spec["body_base64"].as_str() {
        base64::engine::general_purpose::STANDARD
            .decode(b)
            .expect("body_base64 in the table is base64")
    } else {
        return None;
    };
    let times = spec["body_repeat"].as_u64().unwrap_or(1) as usize;
    Some(once.repeat(times))
}

fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
    format!("{} bytes: {text:?}", bytes.len())
}

fn run_case(gw: &Gateway, runtime: &str, case: &Value) -> Result<(), String> {
    let name = case["name"].as_str().unwrap();
    let req = &case["request"];
    let expect = &case["expect"];
    let mut url = gw.url(&format!(
        "/{runtime}{}?case={name}",
        req["path"].as_str().unwrap_or("/x")
    ));
    if let Some(q) = req["query"].as_str() {
        url.push('&');
        url.push_str(q);
    }
    let method: reqwest::Method = req["method"].as_str().unwrap_or("GET").parse().unwrap();
    let mut builder = client().request(method, &url);
    if let Some(headers) = req["headers"].as_object() {
        for (k, v) in headers {
            builder = builder.header(k, v.as_str().unwrap());
        }
    }
    if let Some(body) = body_of(req) {
        builder = builder.body(body);
    }
    let resp = builder.send().map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().map_err(|e| e.to_string())?.to_vec();
    let mut problems = Vec::new();
    // A status may differ by runtime, as FastFN's daemons answer (`{"python": 400, "*": 500}`).
    let want_status = match &expect["status"] {
        Value::Object(by) => by
            .get(runtime)
            .or_else(|| by.get("*"))
            .and_then(Value::as_u64),
        v => v.as_u64(),
    };
    if Some(status as u64) != want_status {
        problems.push(format!(
            "status {status}, want {want_status:?} (body {})",
            shown(&body)
        ));
    }
    if let Some(want) = expect["headers"].as_object() {
        for (name, value) in want {
            let got: Vec<&str> = headers
                .get_all(name.as_str())
                .iter()
                .map(|v| v.to_str().unwrap_or("<not text>"))
                .collect();
            let wanted: Vec<&str> = match value {
                Value::Array(items) => items.iter().map(|v| v.as_str().unwrap()).collect(),
                v => vec![v.as_str().unwrap()],
            };
            if got != wanted {
                problems.push(format!("header {name}: {got:?}, want {wanted:?}"));
            }
        }
    }
    if let Some(want) = body_of(expect) {
        if body != want {
            problems.push(format!("body {}, want {}", shown(&body), shown(&want)));
        }
    }
    if let Some(keys) = expect["json_has"].as_array() {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => {
                for k in keys {
                    if !map.contains_key(k.as_str().unwrap()) {
                        problems.push(format!("JSON body lacks {k}: {}", shown(&body)));
                    }
                }
            }
            _ => problems.push(format!("body is not a JSON object: {}", shown(&body))),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[test]
fn every_runtime_answers_every_case_of_the_table() {
    let root = repo_root();
    let table: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join(TABLE)).unwrap()).unwrap();
    let cases = table["cases"].as_array().unwrap();
    let tree = tempdir();
    for (runtime, fixture) in RUNTIMES {
        copy_dir(&root.join(fixture), &tree.path().join(runtime).join("[id]"));
    }
    // Compiled handlers (TypeScript, Rust) go to a cache of this run's own; the Rust
    // fixture then compiles the SDK and serde_json first, minutes on a loaded machine.
    support::START_DEADLINE_S.store(600, std::sync::atomic::Ordering::Relaxed);
    let cache = tempdir();
    let gw = Gateway::start_args(
        &["--functions", &path_str(tree.path())],
        &[("EDGEFN_CACHE_DIR", &path_str(cache.path()))],
    );
    // A gateway that serves while functions start lists them in /readyz `pending`.
    let settled = wait_until(std::time::Duration::from_secs(600), || {
        gw.readyz()["pending"]
            .as_array()
            .is_none_or(|p| p.is_empty())
    });
    assert!(settled, "functions never became ready:\n{}", gw.logs());
    let mut failures = Vec::new();
    let mut checked = 0;
    for (runtime, _) in RUNTIMES {
        for case in cases {
            if let Some(only) = case["only"].as_array() {
                if !only.iter().any(|r| r == runtime) {
                    continue;
                }
            }
            checked += 1;
            if let Err(e) = run_case(&gw, runtime, case) {
                failures.push(format!("{runtime} {}: {e}", case["name"]));
            }
        }
    }
    assert!(checked > cases.len(), "the table ran for too few runtimes");
    assert!(
        failures.is_empty(),
        "{} of {checked} case runs failed:\n{}\n--- gateway log ---\n{}",
        failures.len(),
        failures.join("\n"),
        gw.logs()
    );
}
