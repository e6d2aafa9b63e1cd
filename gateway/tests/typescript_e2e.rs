//! TypeScript handlers through the real gateway: compiled by the esbuild that
//! `scripts/setup.sh` installs, run by a real Node worker. Typed code and local imports
//! run; a thrown error's stack trace in the log names the `.ts` line; a compile error answers
//! 503 with esbuild's message in the log; a second start with the same cache compiles
//! nothing.

mod support;

use std::path::Path;
use std::time::Duration;

use support::{client, path_str, repo_root, tempdir, write_tree, Gateway};

const HANDLER_TS: &str = r#"import { greet, Greeting } from './lib';

interface Event {
  query: Record<string, string>;
  params: Record<string, string>;
}

export const handler = async (event: Event): Promise<{ status: number; body: Greeting }> => {
  if (event.query.boom === '1') {
    throw new Error('typed boom');
  }
  return { status: 200, body: greet(event.query.name ?? 'world') };
};
"#;

/// The line of `throw new Error('typed boom')` above.
const THROW_LINE: usize = 10;

const LIB_TS: &str = r#"export type Greeting = { hello: string; lang: 'ts' };
export function greet(name: string): Greeting {
  return { hello: name, lang: 'ts' };
}
"#;

const INDEX_TS: &str = "export default async function (event: { method: string }): Promise<string> {\n  return `index ${event.method}`;\n}\n";

const BROKEN_TS: &str =
    "export const handler = async (event: any) => {\n  return { status: 200 body: 'x' };\n};\n";

fn esbuild_installed() {
    let tool = repo_root().join("runtimes/node/tools/node_modules/.bin/esbuild");
    assert!(
        tool.is_file(),
        "{} is missing: run scripts/setup.sh (npm ci --prefix runtimes/node/tools)",
        tool.display()
    );
}

fn start(functions: &Path, cache: &Path) -> Gateway {
    Gateway::start_args(
        &["--functions", &path_str(functions)],
        &[("EDGEFN_CACHE_DIR", &path_str(cache))],
    )
}

fn wait_ready(gw: &Gateway, path: &str) -> reqwest::blocking::Response {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let r = client().get(gw.url(path)).send().unwrap();
        // A gateway that serves while functions start answers 503 until they are up.
        if r.status() != 503 || std::time::Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn typescript_handlers_compile_run_and_trace_ts_lines() {
    esbuild_installed();
    let tree = tempdir();
    let cache = tempdir();
    write_tree(
        tree.path(),
        &[
            ("ts/handler.ts", HANDLER_TS),
            ("ts/lib.ts", LIB_TS),
            ("idx/index.ts", INDEX_TS),
        ],
    );
    let gw = start(tree.path(), cache.path());
    let r = wait_ready(&gw, "/ts?name=edge");
    assert_eq!(r.status(), 200, "{}", gw.logs());
    assert_eq!(r.text().unwrap(), r#"{"hello":"edge","lang":"ts"}"#);
    let r = wait_ready(&gw, "/idx");
    assert_eq!(r.status(), 200, "{}", gw.logs());
    assert_eq!(r.text().unwrap(), "index GET");

    let r = client().get(gw.url("/ts?boom=1")).send().unwrap();
    assert_eq!(r.status(), 500);
    let needle = format!("handler.ts:{THROW_LINE}:");
    assert!(
        gw.wait_log(&needle, Duration::from_secs(20)),
        "no stack frame naming {needle}:\n{}",
        gw.logs()
    );
    assert!(
        gw.logs().contains("compiled TypeScript handler"),
        "{}",
        gw.logs()
    );
    drop(gw);

    // Same code, same cache: nothing is compiled again.
    let gw = start(tree.path(), cache.path());
    let r = wait_ready(&gw, "/ts");
    assert_eq!(r.status(), 200, "{}", gw.logs());
    assert!(
        !gw.logs().contains("compiled TypeScript handler"),
        "compiled again:\n{}",
        gw.logs()
    );
}

#[test]
fn the_esbuild_config_key_names_the_compiler() {
    esbuild_installed();
    let tree = tempdir();
    let cache = tempdir();
    write_tree(tree.path(), &[("idx/index.ts", INDEX_TS)]);
    let tool = repo_root().join("runtimes/node/tools/node_modules/.bin/esbuild");
    let config = tree.path().join("edgefn.toml");
    std::fs::write(
        &config,
        format!("[runtimes.typescript]\nesbuild = {:?}\n", path_str(&tool)),
    )
    .unwrap();
    // The key wins over the environment's (broken) choice.
    let gw = Gateway::start_args(
        &[
            "--config",
            &path_str(&config),
            "--functions",
            &path_str(tree.path()),
        ],
        &[
            ("EDGEFN_CACHE_DIR", &path_str(cache.path())),
            ("EDGEFN_ESBUILD", "/nonexistent/esbuild"),
        ],
    );
    let r = wait_ready(&gw, "/idx");
    assert_eq!(r.status(), 200, "{}", gw.logs());
    assert_eq!(r.text().unwrap(), "index GET");
    drop(gw);

    std::fs::write(
        &config,
        "[runtimes.typescript]\nesbuild = \"/nonexistent/esbuild\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(support::BIN)
        .args(["check", "--config", &path_str(&config)])
        .args(["--functions", &path_str(tree.path())])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("runtimes.typescript.esbuild"), "{text}");
}

#[test]
fn a_typescript_compile_error_answers_503_with_esbuilds_message_logged() {
    esbuild_installed();
    let tree = tempdir();
    let cache = tempdir();
    write_tree(
        tree.path(),
        &[
            ("broken/handler.ts", BROKEN_TS),
            ("fine/handler.ts", INDEX_TS),
        ],
    );
    let gw = start(tree.path(), cache.path());
    assert!(
        gw.wait_log("esbuild could not compile", Duration::from_secs(120)),
        "{}",
        gw.logs()
    );
    let logs = gw.logs();
    assert!(
        logs.contains("Expected \"}\" but found \"body\""),
        "esbuild's message is not in the log:\n{logs}"
    );
    let r = client().get(gw.url("/broken")).send().unwrap();
    assert_eq!(r.status(), 503);
    // The other function is not affected.
    let r = wait_ready(&gw, "/fine");
    assert_eq!(r.status(), 200, "{}", gw.logs());
    assert_eq!(r.text().unwrap(), "index GET");
}
