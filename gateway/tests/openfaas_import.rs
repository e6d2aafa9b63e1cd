//! `edgefn import openfaas`: a stack file of our own, written from OpenFaaS's documented
//! stack.yml format, becomes a functions tree the gateway checks and serves.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::{client, path_str, tempdir, write_tree, Gateway, BIN};

/// `edgefn import openfaas <stack> --out <out>`.
fn import(stack: &Path, out: &Path) -> Output {
    Command::new(BIN)
        .args(["import", "openfaas"])
        .arg(stack)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

const STACK: &str = r#"version: 1.0
provider:
  name: openfaas
  gateway: http://127.0.0.1:8080
functions:
  hello:
    lang: python3-http
    handler: ./hello
    image: example/hello:latest
    environment:
      GREETING: hi
      RETRIES: 3
      write_timeout: 10s
      exec_timeout: 1m30s
    secrets:
      - api-key
    limits:
      memory: 128Mi
    labels:
      com.openfaas.scale.min: "2"
      com.openfaas.scale.max: 5
      team: edge
  greeter:
    lang: node20
    handler: ./greeter
  gopher:
    lang: golang-middleware
    handler: ./gopher
"#;

const HELLO: &str = "import os\ndef handler(event):\n    return {\"status\": 200, \"body\": event[\"env\"][\"GREETING\"]}\n";

#[test]
fn a_stack_file_becomes_a_served_functions_tree() {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("stack.yml", STACK),
            ("hello/handler.py", HELLO),
            ("hello/requirements.txt", ""),
            ("hello/node_modules/x.js", "skipped"),
            (
                "greeter/handler.js",
                "exports.handler = async () => ({status: 200, body: 'hey'});\n",
            ),
            ("gopher/handler.go", "package function\n"),
        ],
    );
    let out = dir.path().join("functions");
    let run = import(&dir.path().join("stack.yml"), &out);
    let text = String::from_utf8_lossy(&run.stdout).into_owned();
    assert_eq!(run.status.code(), Some(1), "gopher is skipped: {text}");
    assert!(text.contains("imported hello"), "{text}");
    assert!(text.contains("imported greeter"), "{text}");
    assert!(
        text.contains("skipped gopher: lang \"golang-middleware\""),
        "{text}"
    );
    for what in ["image", "limits", "labels.team"] {
        assert!(
            text.contains(&format!("not carried (hello): {what}")),
            "{what}: {text}"
        );
    }
    assert!(
        text.contains("fill in:") && text.contains("API_KEY"),
        "{text}"
    );

    let read = |p: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(p)).unwrap()).unwrap()
    };
    let cfg = read("hello/fn.config.json");
    assert_eq!(cfg["workers"]["min"], 2);
    assert_eq!(cfg["workers"]["max"], 5);
    assert_eq!(cfg["timeout_ms"], 90_000, "exec_timeout wins");
    let env = read("hello/fn.env.json");
    assert_eq!(env["GREETING"], "hi");
    assert_eq!(env["RETRIES"], "3");
    assert_eq!(env["API_KEY"]["is_secret"], true);
    assert!(env.get("write_timeout").is_none());
    assert!(out.join("hello/requirements.txt").is_file());
    assert!(!out.join("hello/node_modules").exists());
    assert!(!out.join("gopher").exists());

    let check = Command::new(BIN)
        .args(["check", "--functions", &path_str(&out)])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let gw = Gateway::start(&out);
    let c = client();
    assert_eq!(
        c.get(gw.url("/function/hello"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "hi"
    );
    assert_eq!(
        c.get(gw.url("/greeter")).send().unwrap().text().unwrap(),
        "hey"
    );

    // A second import into the same tree refuses to overwrite.
    let again = import(&dir.path().join("stack.yml"), &out);
    assert!(String::from_utf8_lossy(&again.stdout).contains("exists already"));
}

#[test]
fn a_bad_stack_file_is_a_clear_error() {
    let dir = tempdir();
    write_tree(dir.path(), &[("stack.yml", "functions: [not, a, map]\n")]);
    let run = import(&dir.path().join("stack.yml"), &dir.path().join("o"));
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("not an OpenFaaS stack file"));
    let big = dir.path().join("big.yml");
    std::fs::write(&big, vec![b'#'; 2 << 20]).unwrap();
    let run = import(&big, &dir.path().join("o"));
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("larger than"));
}
