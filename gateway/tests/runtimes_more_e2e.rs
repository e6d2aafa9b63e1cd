//! PHP, Lua and Rust functions through the real `edgefn` binary: served warm, 200, a crash
//! is 502 and the pool heals with a new process, a timeout is 504 and the next request is
//! served, secrets printed by a handler are masked in the log, FastFN's handler shapes
//! (`index.php` with `($event, $params)`, `main.lua` returning a function, `index.lua` with
//! a global `main`), composer dependencies installed into the cache, and Rust functions
//! built by cargo (a bare `handler.rs`, FastFN's `fn(Value) -> Value` shape with a sibling
//! module, a cargo project, and a build failure → 503).

mod support;

use std::path::Path;

use serde_json::Value;
use support::{client, tempdir, write_tree, Gateway};

const SECRET: &str = "php-lua-secret-never-logged";

const PHP: &str = r#"<?php
function handler(array $event)
{
    $q = $event['query'];
    if (isset($q['die'])) {
        exit(3);
    }
    if (isset($q['sleep'])) {
        sleep(30);
    }
    error_log('token=' . $event['env']['TOKEN']);
    return ['status' => 200, 'headers' => ['x-pid' => getmypid()], 'body' => ['pid' => getmypid(), 'method' => $event['method']]];
}
"#;

const LUA: &str = r#"
function handler(event)
  if event.query.die then os.exit(3) end
  if event.query.sleep then
    local t = os.time() + 30
    while os.time() < t do end
  end
  print("token=" .. event.env.TOKEN)
  local pid = io.open("/proc/self/stat"):read("*l"):match("^%d+")
  return { status = 200, headers = { ["x-pid"] = pid }, body = { pid = pid, method = event.method } }
end
"#;

fn config() -> String {
    r#"{"timeout_ms": 1500, "workers": {"min": 1, "max": 1}}"#.to_owned()
}

fn env() -> String {
    format!(r#"{{"TOKEN": {{"value": "{SECRET}", "is_secret": true}}}}"#)
}

/// Waits until the function's first worker is up (until then it answers 503 + Retry-After;
/// a Rust function compiles first).
fn wait_started(gw: &Gateway, path: &str) {
    let url = gw.url(path);
    let up = support::wait_until(std::time::Duration::from_secs(600), || {
        client()
            .get(&url)
            .send()
            .is_ok_and(|r| r.status() != 503 || !r.headers().contains_key("retry-after"))
    });
    assert!(up, "{path} never started: {}", gw.logs());
}

fn pid_of(gw: &Gateway, path: &str) -> String {
    let r = client().get(gw.url(path)).send().unwrap();
    assert_eq!(r.status(), 200, "{path}: {}", gw.logs());
    let v: Value = r.json().unwrap();
    v["pid"].to_string()
}

/// 200, crash → 502 then a new worker answers, timeout → 504 then served again.
fn crash_and_timeout(gw: &Gateway, path: &str) {
    let before = pid_of(gw, path);
    assert_eq!(pid_of(gw, path), before, "{path}: the same warm worker");
    let r = client()
        .get(gw.url(&format!("{path}?die=1")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 502, "{path}: {}", gw.logs());
    let after = pid_of(gw, path);
    assert_ne!(after, before, "{path}: healed with a new process");
    let r = client()
        .get(gw.url(&format!("{path}?sleep=1")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 504, "{path}: {}", gw.logs());
    pid_of(gw, path);
}

#[test]
fn php_and_lua_serve_crash_heal_time_out_and_mask_secrets() {
    let dir = tempdir();
    let (cfg, env) = (config(), env());
    write_tree(
        dir.path(),
        &[
            ("php/handler.php", PHP),
            ("php/fn.config.json", &cfg),
            ("php/fn.env.json", &env),
            ("lua/handler.lua", LUA),
            ("lua/fn.config.json", &cfg),
            ("lua/fn.env.json", &env),
        ],
    );
    let gw = Gateway::start(dir.path());
    for path in ["/php", "/lua"] {
        wait_started(&gw, path);
        crash_and_timeout(&gw, path);
    }
    assert!(
        support::wait_until(std::time::Duration::from_secs(20), || gw
            .logs()
            .matches("token=***")
            .count()
            >= 2),
        "both runtimes' output is captured and masked: {}",
        gw.logs()
    );
    assert!(!gw.logs().contains(SECRET), "{}", gw.logs());
}

#[test]
fn fastfn_handler_shapes_load_and_answer() {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            (
                "shop/items/[id]/index.php",
                "<?php\nfunction handler($event, $params) {\n    return ['status' => 200, 'body' => json_encode(['id' => $params['id'], 'm' => $event['method']])];\n}\n",
            ),
            (
                "shop/echoed/handler.php",
                "<?php\nfunction handler($event) {\n    echo '<html><body>printed</body></html>';\n}\n",
            ),
            // No handler function: FastFN runs the script per request, what it prints is
            // the answer.
            (
                "shop/script/index.php",
                "<?php\necho 'script ' . ($event['method'] ?? '-') . ' ' . count($params);\n",
            ),
            (
                "luashop/items/[id]/main.lua",
                "local function handler(event, params)\n  return { status = 201, body = cjson.encode({ id = params.id }) }\nend\nreturn handler\n",
            ),
            (
                "luashop/plain/index.lua",
                "local shared = require('shared')\nfunction main(event)\n  return shared.answer()\nend\n",
            ),
            (
                "luashop/plain/shared.lua",
                "return { answer = function() return { ok = true } end }\n",
            ),
        ],
    );
    let gw = Gateway::start(dir.path());
    for path in [
        "/shop/items/1",
        "/shop/echoed",
        "/luashop/items/1",
        "/luashop/plain",
    ] {
        wait_started(&gw, path);
    }
    let r = client().post(gw.url("/shop/items/42")).send().unwrap();
    assert_eq!(r.status(), 200, "{}", gw.logs());
    assert_eq!(r.text().unwrap(), r#"{"id":"42","m":"POST"}"#);
    let r = client().get(gw.url("/shop/echoed")).send().unwrap();
    assert_eq!(r.status(), 200, "{}", gw.logs());
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(r.text().unwrap(), "<html><body>printed</body></html>");
    let r = client().post(gw.url("/shop/script")).send().unwrap();
    assert_eq!(r.status(), 200, "{}", gw.logs());
    assert_eq!(r.text().unwrap(), "script POST 0");
    let r = client().get(gw.url("/luashop/items/7")).send().unwrap();
    assert_eq!(r.status(), 201, "{}", gw.logs());
    assert_eq!(r.text().unwrap(), r#"{"id":"7"}"#);
    let r = client().get(gw.url("/luashop/plain")).send().unwrap();
    assert_eq!(r.status(), 200, "{}", gw.logs());
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.json::<Value>().unwrap(), serde_json::json!({"ok": true}));
}

/// A composer dependency from a local path repository (no network): installed once into the
/// cache, autoloaded for the handler, nothing written into the functions tree.
#[test]
fn composer_dependencies_install_into_the_cache_and_autoload() {
    let lib = tempdir();
    write_tree(
        lib.path(),
        &[
            (
                "composer.json",
                r#"{"name": "acme/greeter", "version": "1.2.0", "autoload": {"psr-4": {"Acme\\": "src/"}}}"#,
            ),
            (
                "src/Greeter.php",
                "<?php\nnamespace Acme;\nfinal class Greeter { public static function hi(string $n): string { return \"hi {$n}\"; } }\n",
            ),
        ],
    );
    let composer = format!(
        r#"{{"require": {{"acme/greeter": "1.2.0"}}, "repositories": [{{"type": "path", "url": "{}", "options": {{"symlink": false}}}}, {{"packagist.org": false}}]}}"#,
        lib.path().display()
    );
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("greet/composer.json", &composer),
            (
                "greet/handler.php",
                "<?php\nuse Acme\\Greeter;\nfunction handler($event) { return Greeter::hi($event['query']['n'] ?? 'x'); }\n",
            ),
            // FastFN's shape: the handler requires the autoloader beside it.
            ("fastfn/composer.json", &composer),
            (
                "fastfn/handler.php",
                "<?php\ndeclare(strict_types=1);\nrequire_once __DIR__ . '/vendor/autoload.php';\nuse Acme\\Greeter;\nfunction handler(array $event): array { return ['status' => 200, 'body' => Greeter::hi('fastfn') . (is_file(__DIR__ . '/vendor/autoload.php') ? ' found' : ' missing')]; }\n",
            ),
        ],
    );
    let cache = tempdir();
    let gw = Gateway::start_args(
        &["--functions", dir.path().to_str().unwrap()],
        &[("EDGEFN_CACHE_DIR", cache.path().to_str().unwrap())],
    );
    wait_started(&gw, "/greet");
    let r = client().get(gw.url("/greet?n=ann")).send().unwrap();
    assert_eq!(r.status(), 200, "{}", gw.logs());
    assert_eq!(r.text().unwrap(), "hi ann");
    wait_started(&gw, "/fastfn");
    let r = client().get(gw.url("/fastfn")).send().unwrap();
    assert_eq!(r.status(), 200, "{}", gw.logs());
    assert_eq!(
        r.text().unwrap(),
        "hi fastfn missing",
        "the autoloader is served, not created"
    );
    assert!(!dir.path().join("greet/vendor").exists());
    assert!(!dir.path().join("fastfn/vendor").exists());
    let installs = std::fs::read_dir(cache.path().join("php")).unwrap().count();
    assert_eq!(
        installs, 1,
        "one install for two functions with the same composer.json"
    );
}

const RUST_HANDLER: &str = r#"
use edgefn_sdk::{Event, Response};

fn handler(event: Event) -> Response {
    if event.query("die").is_some() {
        std::process::exit(3);
    }
    if event.query("sleep").is_some() {
        std::thread::sleep(std::time::Duration::from_secs(30));
    }
    println!("token={}", event.env("TOKEN").unwrap_or(""));
    let pid = std::process::id();
    Response::json(&serde_json::json!({"pid": pid, "method": event.method, "body": event.body_text()}))
        .header("x-pid", pid.to_string())
}
"#;

/// One cache for every Rust build of the test run, so the SDK's dependencies compile once;
/// the cargo command keeps release builds quick (opt-level 0) on a loaded test machine.
fn rust_gateway(functions: &Path) -> Gateway {
    // The first build on a machine compiles the SDK and serde_json: minutes on a loaded one.
    support::START_DEADLINE_S.store(600, std::sync::atomic::Ordering::Relaxed);
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("edgefn-rust-cache");
    let config = functions.parent().unwrap().join("edgefn.toml");
    std::fs::write(
        &config,
        "[runtimes.rust]\ncommand = [\"cargo\", \"--config\", \"profile.release.opt-level=0\", \"--config\", \"profile.release.debug=false\"]\n",
    )
    .unwrap();
    Gateway::start_args(
        &[
            "--config",
            config.to_str().unwrap(),
            "--functions",
            functions.to_str().unwrap(),
        ],
        &[("EDGEFN_CACHE_DIR", cache.to_str().unwrap())],
    )
}

#[test]
fn rust_functions_are_built_once_and_served() {
    let root = tempdir();
    let dir = root.path().join("functions");
    let (cfg, env) = (config(), env());
    write_tree(
        &dir,
        &[
            ("rs/handler.rs", RUST_HANDLER),
            ("rs/fn.config.json", &cfg),
            ("rs/fn.env.json", &env),
            (
                "rsproj/Cargo.toml",
                "[package]\nname = \"my-fn\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nedgefn-sdk = \"0.1\"\n",
            ),
            (
                "rsproj/src/main.rs",
                "mod reply;\n\nfn main() {\n    edgefn_sdk::run(|e| reply::reply(&e))\n}\n",
            ),
            (
                "rsproj/src/reply.rs",
                "pub fn reply(e: &edgefn_sdk::Event) -> edgefn_sdk::Response {\n    edgefn_sdk::Response::text(format!(\"project {}\", e.path)).status(201)\n}\n",
            ),
            // FastFN's Rust shape: serde_json values in and out, the route parameter in the
            // event's `params` (its top-level `id` is the request id), a module beside the
            // handler.
            (
                "rsff/[id]/handler.rs",
                "use serde_json::{json, Value};\n\nmod shared;\n\npub fn handler(event: Value) -> Value {\n    let id = event[\"params\"][\"id\"].as_str().unwrap_or(\"0\");\n    json!({\"status\": 200, \"headers\": {\"Content-Type\": \"application/json\"}, \"body\": serde_json::to_string(&json!({\"id\": id, \"name\": shared::NAME, \"env\": event[\"env\"][\"TOKEN\"].is_string()})).unwrap()})\n}\n",
            ),
            ("rsff/[id]/shared.rs", "pub const NAME: &str = \"Widget\";\n"),
            ("rsff/[id]/fn.env.json", &env),
            (
                "rsbad/handler.rs",
                "fn handler(event: edgefn_sdk::Event) -> edgefn_sdk::Response {\n    let n: u32 = \"not a number\";\n    edgefn_sdk::Response::text(n.to_string())\n}\n",
            ),
        ],
    );
    let gw = rust_gateway(&dir);
    for path in ["/rs", "/rsproj", "/rsbad", "/rsff/1"] {
        wait_started(&gw, path);
    }
    let r = client().post(gw.url("/rs")).body("in").send().unwrap();
    assert_eq!(r.status(), 200, "{}", gw.logs());
    let v: Value = r.json().unwrap();
    assert_eq!(
        (v["method"].as_str(), v["body"].as_str()),
        (Some("POST"), Some("in"))
    );
    crash_and_timeout(&gw, "/rs");
    let r = client().get(gw.url("/rsproj")).send().unwrap();
    assert_eq!(r.status(), 201, "{}", gw.logs());
    assert_eq!(r.text().unwrap(), "project /rsproj");
    let r = client().get(gw.url("/rsff/42")).send().unwrap();
    assert_eq!(r.status(), 200, "{}", gw.logs());
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(
        r.text().unwrap(),
        r#"{"env":true,"id":"42","name":"Widget"}"#
    );
    let r = client().get(gw.url("/rsbad")).send().unwrap();
    assert_eq!(r.status(), 503, "a failed build answers 503");
    assert!(
        gw.logs().contains("mismatched types"),
        "the compiler's message is logged: {}",
        gw.logs()
    );
    assert!(
        support::wait_until(std::time::Duration::from_secs(20), || gw
            .logs()
            .contains("token=***")),
        "{}",
        gw.logs()
    );
    assert!(!gw.logs().contains(SECRET));
    assert!(!dir.join("rsproj/target").exists() && !dir.join("rsproj/Cargo.lock").exists());
}
