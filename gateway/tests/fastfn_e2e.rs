//! FastFN trees on the real binary with real Python and Node workers: file routes,
//! entry files, catch-alls, runtime-grouped trees and versions, FastFN's precedence,
//! `fn.config.json` keys (warnings and typos), the event's FastFN fields, `fn.env.json`
//! scalars, `/_fn/catalog` and `/openapi.json`; the edge proxy answered from Python, Node,
//! PHP, Lua, Rust and Go handlers; what FastFN's event leaves out (no body, no session) in
//! every runtime. Every tree is the project's own, built in the test's temp dir.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::{client, tempdir, write_tree, Gateway};

/// A Python handler answering its tag and the event (minus env and body).
fn py(tag: &str) -> String {
    format!(
        "def handler(event):\n    e = {{k: v for k, v in event.items() if k not in ('env', 'body')}}\n    e['fn'] = {tag:?}\n    return {{'status': 200, 'body': e}}\n"
    )
}

/// The same in Node.
fn js(tag: &str) -> String {
    format!(
        "exports.handler = async (event) => {{ const e = {{...event}}; delete e.env; delete e.body; e.fn = {tag:?}; return {{status: 200, body: e}}; }};\n"
    )
}

fn check(dir: &Path) -> Output {
    check_with_runtimes(dir, None)
}

/// `edgefn check` with `FN_RUNTIMES` set to `runtimes`, or unset.
fn check_with_runtimes(dir: &Path, runtimes: Option<&str>) -> Output {
    let mut cmd = Command::new(support::BIN);
    cmd.args(["check", "--functions", dir.to_str().unwrap()]);
    match runtimes {
        Some(v) => cmd.env("FN_RUNTIMES", v),
        None => cmd.env_remove("FN_RUNTIMES"),
    };
    cmd.output().unwrap()
}

fn get(gw: &Gateway, path: &str) -> (u16, Value) {
    call(gw, reqwest::Method::GET, path)
}

fn call(gw: &Gateway, method: reqwest::Method, path: &str) -> (u16, Value) {
    let resp = client().request(method, gw.url(path)).send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn routing_tree(root: &Path) {
    let files: Vec<(&str, String)> = vec![
        ("hello.js", js("hello")),
        ("products/get.py", py("products-get")),
        ("products/post.js", js("products-post")),
        ("products/[id]/get.py", py("product-get")),
        ("products/[id]/delete.js", js("product-delete")),
        ("shop/get.items.py", py("shop-items")),
        ("admin/post.users.[id].js", js("admin-user")),
        ("users/index.js", js("users-index")),
        ("users/[id].py", py("user-id")),
        ("users/get.me.js", js("users-me")),
        ("users/_shared.js", "module.exports = {};\n".into()),
        ("users/helper.js", js("helper")),
        ("docs/index.py", py("docs-index")),
        ("docs/[...slug].py", py("docs-slug")),
        ("blog/[[...slug]].js", js("blog")),
        ("m/main.py", py("main-entry")),
        ("h/handler.js", js("handler-entry")),
        ("custom/app.py", py("custom")),
        (
            "custom/fn.config.json",
            r#"{"entrypoint": "app.py"}"#.into(),
        ),
        ("_private.py", py("private")),
        ("util.test.js", js("test-file")),
        ("util.spec.py", py("spec-file")),
        ("limited/handler.py", py("limited")),
        (
            "limited/fn.config.json",
            r#"{"invoke": {"methods": ["get"], "summary": "Limited"}, "timeout_ms": 2500}"#.into(),
        ),
        ("routed/handler.py", py("routed")),
        (
            "routed/fn.config.json",
            r#"{"invoke": {"routes": ["/r/:name", "/r2/*"]}}"#.into(),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    write_tree(root, &files);
}

#[test]
fn file_routes_entry_files_catch_alls_and_precedence() {
    let dir = tempdir();
    routing_tree(dir.path());
    let gw = Gateway::start(dir.path());

    let (s, e) = get(&gw, "/hello");
    assert_eq!((s, e["fn"].as_str()), (200, Some("hello")), "{e}");
    assert_eq!(e["context"]["runtime"], "node");

    // One path, one function per method; another method is not found, as in FastFN.
    assert_eq!(get(&gw, "/products").1["fn"], "products-get");
    let (s, e) = call(&gw, reqwest::Method::POST, "/products");
    assert_eq!((s, e["fn"].as_str()), (200, Some("products-post")));
    let (s, e) = call(&gw, reqwest::Method::DELETE, "/products");
    assert_eq!((s, e["error"].as_str()), (404, Some("not found")));

    let (_, e) = get(&gw, "/products/42");
    assert_eq!(e["fn"], "product-get");
    assert_eq!(e["params"]["id"], "42");
    assert_eq!(e["path_params"]["id"], "42");
    let (_, e) = call(&gw, reqwest::Method::DELETE, "/products/42");
    assert_eq!(e["fn"], "product-delete");

    assert_eq!(get(&gw, "/shop/items").1["fn"], "shop-items");
    let (s, e) = call(&gw, reqwest::Method::POST, "/admin/users/7");
    assert_eq!((s, e["fn"].as_str()), (200, Some("admin-user")));
    assert_eq!(e["params"]["id"], "7");
    assert_eq!(get(&gw, "/admin/users/7").0, 404);

    // Static beats a parameter; helpers beside an entry file are not routes.
    assert_eq!(get(&gw, "/users").1["fn"], "users-index");
    assert_eq!(get(&gw, "/users/me").1["fn"], "users-me");
    let (_, e) = get(&gw, "/users/9");
    assert_eq!(
        (e["fn"].as_str(), e["params"]["id"].as_str()),
        (Some("user-id"), Some("9"))
    );
    assert_eq!(get(&gw, "/users/helper").1["params"]["id"], "helper");
    assert_eq!(get(&gw, "/users/_shared").1["fn"], "user-id");

    // Catch-alls: one or more segments, zero or more; the value is the rest of the path.
    assert_eq!(get(&gw, "/docs").1["fn"], "docs-index");
    let (_, e) = get(&gw, "/docs/a/b%20c");
    assert_eq!(
        (e["fn"].as_str(), e["params"]["slug"].as_str()),
        (Some("docs-slug"), Some("a/b c"))
    );
    let (_, e) = get(&gw, "/blog");
    assert_eq!(e["fn"], "blog");
    assert_eq!(e["params"], serde_json::json!({}));
    assert_eq!(get(&gw, "/blog/2024/x").1["params"]["slug"], "2024/x");

    // Entry files and the entrypoint key.
    assert_eq!(get(&gw, "/m").1["fn"], "main-entry");
    assert_eq!(get(&gw, "/h").1["fn"], "handler-entry");
    assert_eq!(get(&gw, "/custom").1["fn"], "custom");

    // Never routed.
    for path in ["/_private", "/util/test", "/util/spec", "/util"] {
        assert_eq!(get(&gw, path).0, 404, "{path}");
    }

    // invoke.methods limits, invoke.routes replaces the folder route.
    assert_eq!(get(&gw, "/limited").0, 200);
    assert_eq!(call(&gw, reqwest::Method::POST, "/limited").0, 404);
    assert_eq!(get(&gw, "/limited").1["context"]["timeout_ms"], 2500);
    let (_, e) = get(&gw, "/r/bob");
    assert_eq!(
        (e["fn"].as_str(), e["params"]["name"].as_str()),
        (Some("routed"), Some("bob"))
    );
    assert_eq!(get(&gw, "/r2/a/b").1["params"]["wildcard"], "a/b");
    assert_eq!(get(&gw, "/routed").0, 404);
}

#[test]
fn openapi_catalog_and_check_show_the_routes() {
    let dir = tempdir();
    routing_tree(dir.path());
    let gw = Gateway::start(dir.path());

    for path in ["/_fn/openapi.json", "/openapi.json"] {
        let (s, doc) = get(&gw, path);
        assert_eq!(s, 200, "{path}");
        let paths = &doc["paths"];
        assert!(
            paths["/docs/{slug}"]["get"]["parameters"][0]["x-catch-all"] == true,
            "{doc}"
        );
        assert!(paths["/blog"]["get"].is_object(), "{doc}");
        assert!(paths["/blog/{slug}"]["get"].is_object(), "{doc}");
        assert!(paths["/products/{id}"]["get"].is_object());
        assert!(paths["/products/{id}"]["delete"].is_object());
        assert!(paths["/products/{id}"]["post"].is_null());
        assert_eq!(paths["/limited"]["get"]["summary"], "Limited");
        assert!(paths["/r/{name}"]["get"].is_object());
    }

    let (s, cat) = get(&gw, "/_fn/catalog");
    assert_eq!(s, 200);
    let routes = &cat["mapped_routes"];
    assert_eq!(
        routes["/products/:id"].as_array().unwrap().len(),
        2,
        "{cat}"
    );
    assert_eq!(routes["/docs/:slug*"][0]["runtime"], "python");
    assert_eq!(routes["/blog"][0]["fn_name"], "blog/[[...slug]]");
    assert_eq!(routes["/limited"][0]["methods"], serde_json::json!(["GET"]));
    assert!(cat["runtimes"]["node"]["functions"].is_array());

    let out = check(dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    let line = |path: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(path))
            .unwrap_or_else(|| panic!("{path} in\n{table}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        line("/limited"),
        ["GET", "/limited", "limited", "python", "2500ms", "none"]
    );
    assert_eq!(
        line("/hello"),
        ["GET,POST", "/hello", "hello", "node", "30000ms", "none"]
    );
    assert_eq!(line("/shop/items")[0], "GET");
    assert_eq!(line("/admin/users/{id}")[0], "POST");
}

#[test]
fn runtime_grouped_trees_and_versions() {
    let dir = tempdir();
    let files: Vec<(&str, String)> = vec![
        ("python/hello/handler.py", py("hello-v1")),
        ("python/hello/v2/handler.py", py("hello-v2")),
        ("python/hello/get.extra.py", py("hello-extra")),
        ("node/greet/handler.js", js("greet")),
        (
            "node/greet/fn.config.json",
            r#"{"invoke": {"methods": ["GET"]}}"#.into(),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    write_tree(dir.path(), &files);
    let gw = Gateway::start(dir.path());

    let (s, e) = get(&gw, "/hello");
    assert_eq!((s, e["fn"].as_str()), (200, Some("hello-v1")), "{e}");
    assert_eq!(e["context"]["version"], "default");
    let (_, e) = get(&gw, "/hello/any/path");
    assert_eq!(e["fn"], "hello-v1");
    assert_eq!(e["params"]["wildcard"], "any/path");
    assert_eq!(get(&gw, "/hello/extra").1["fn"], "hello-extra");
    let (s, e) = get(&gw, "/hello@v2");
    assert_eq!((s, e["fn"].as_str()), (200, Some("hello-v2")), "{e}");
    assert_eq!(e["context"]["version"], "v2");
    assert_eq!(e["context"]["function_name"], "hello");
    assert_eq!(get(&gw, "/greet").1["fn"], "greet");
    assert_eq!(call(&gw, reqwest::Method::POST, "/greet").0, 404);
    assert_eq!(get(&gw, "/python/hello").0, 404);
}

/// `name` in a folder's `fn.config.json` (FastFN's explicit function): the function is
/// served at `/<name>` and `/<name>/*` instead of its folder path, `/_fn/catalog` and
/// `edgefn check` show the name; a name another function has too is refused naming both.
#[test]
fn a_declared_name_is_the_functions_route_and_catalog_name() {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("tools/legacy-folder/handler.py", &py("named")),
            (
                "tools/legacy-folder/fn.config.json",
                r#"{"name": " greeter ", "invoke": {"methods": ["GET"]}}"#,
            ),
            ("plain/handler.py", &py("plain")),
        ],
    );
    let gw = Gateway::start(dir.path());
    let (s, e) = get(&gw, "/greeter");
    assert_eq!((s, e["fn"].as_str()), (200, Some("named")), "{e}");
    assert_eq!(e["context"]["function_name"], "greeter");
    let (s, e) = get(&gw, "/greeter/a/b");
    assert_eq!((s, e["fn"].as_str()), (200, Some("named")), "{e}");
    assert_eq!(e["params"]["wildcard"], "a/b");
    // The folder path is not a route of its own any more, as in FastFN.
    assert_eq!(get(&gw, "/tools/legacy-folder").0, 404);
    assert_eq!(get(&gw, "/plain").1["fn"], "plain");

    let (_, cat) = get(&gw, "/_fn/catalog");
    let routes = &cat["mapped_routes"];
    assert_eq!(routes["/greeter"][0]["fn_name"], "greeter", "{cat}");
    assert!(
        !cat.to_string().contains("legacy-folder\""),
        "the folder path is no name: {cat}"
    );

    let out = check(dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.lines().any(|l| {
            let w: Vec<_> = l.split_whitespace().collect();
            w.get(2) == Some(&"greeter") && w[1].starts_with("/greeter")
        }),
        "{table}"
    );
    assert!(
        !table.contains(": name: "),
        "implemented, no warning: {table}"
    );

    // Another function of that name: refused, both named.
    write_tree(dir.path(), &[("greeter/handler.py", &py("other"))]);
    let out = check(dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("legacy-folder/fn.config.json: name")
            && err.contains("\"greeter\"")
            && err.contains("greeter/handler.py"),
        "{err}"
    );
}

/// Two entry files in one folder are refused naming both; two handlers on one route and
/// method (`get.py` beside `get.js`) load with a warning naming both, and the route
/// answers FastFN's 409.
#[test]
fn two_entry_files_are_refused_and_a_route_clash_answers_409() {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("clash/get.py", &py("a")),
            ("clash/get.js", &js("b")),
            ("clash/delete.js", &js("b-delete")),
            ("two/handler.py", &py("c")),
            ("two/main.js", &js("d")),
            ("ok/get.py", &py("e")),
            ("ok/post.js", &js("f")),
        ],
    );
    let out = check(dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("handler.py, main.js"), "{err}");
    assert!(!err.contains("ok/") && !err.contains("clash"), "{err}");

    std::fs::remove_dir_all(dir.path().join("two")).unwrap();
    let out = check(dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let clash = text
        .lines()
        .find(|l| l.starts_with("warning:") && l.contains("clash"))
        .unwrap_or_else(|| panic!("clash named: {text}"));
    assert!(
        clash.contains("get.py") && clash.contains("get.js") && clash.contains("409"),
        "{clash}"
    );
    let gw = Gateway::start(dir.path());
    let (s, e) = get(&gw, "/clash");
    assert_eq!((s, e["error"].as_str()), (409, Some("ambiguous function")));
    // FastFN takes the whole route: the method nobody else claims answers 409 too.
    assert_eq!(call(&gw, reqwest::Method::DELETE, "/clash").0, 409);
    assert_eq!(get(&gw, "/ok").1["fn"], "e");
    assert_eq!(call(&gw, reqwest::Method::POST, "/ok").1["fn"], "f");
}

#[test]
fn fastfn_keys_warn_and_typos_fail() {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("fn.config.json", r#"{"assets": {"directory": "public"}}"#),
            ("public/index.html", "<p>static</p>"),
            ("a/handler.py", &py("a")),
            (
                "b/fn.routes.json",
                r#"{"routes": {"GET /items": "list.js"}}"#,
            ),
            ("b/list.js", &js("list")),
            (
                "a/fn.config.json",
                r#"{"invoke": {"methods": ["GET"], "handler": "main", "query": {"n": 1}, "body": "", "content_type": "application/json"},
                   "schedule": {"every_seconds": 60}, "keep_warm": {"enabled": true},
                   "worker_pool": {"max_workers": 2, "max_queue": 5, "idle_ttl_seconds": 30}, "max_concurrency": 4,
                   "group": "demo", "runtime": "python", "home": {}}"#,
            ),
        ],
    );
    let out = check(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("warning:") && l.contains(": home: "))
        .unwrap_or_else(|| panic!("no warning for home:\n{stdout}"));
    assert!(line.contains("has no effect"), "{line}");
    assert!(
        stdout.lines().any(|l| l.starts_with("warning:")
            && l.contains("b/fn.routes.json")
            && l.contains("routes are not served")),
        "a route manifest is never dropped silently: {stdout}"
    );
    for implemented in [
        "invoke.handler",
        "worker_pool.idle_ttl_seconds",
        "keep_warm",
    ] {
        assert!(
            !stdout.contains(implemented),
            "implemented, no warning: {stdout}"
        );
    }
    // `assets` is served since the assets commit: a real folder, no warning.
    assert!(
        !stdout.contains(": assets: "),
        "implemented, no warning: {stdout}"
    );

    std::fs::write(
        dir.path().join("a/fn.config.json"),
        r#"{"auht": {"type": "api_key", "secret": "K"}}"#,
    )
    .unwrap();
    let out = check(dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("auht") && err.contains("did you mean `auth`"),
        "{err}"
    );

    std::fs::write(
        dir.path().join("a/fn.config.json"),
        r#"{"invoke": {"method": ["GET"]}}"#,
    )
    .unwrap();
    let err = String::from_utf8_lossy(&check(dir.path()).stderr).into_owned();
    assert!(err.contains("did you mean `methods`"), "{err}");
}

#[test]
fn event_carries_fastfn_fields_in_python_and_node() {
    let dir = tempdir();
    let auth = r#"{"auth": {"type": "api_key", "secret": "API_KEY"}, "max_body_bytes": 4096}"#;
    let env = r#"{"API_KEY": {"value": "k-123456", "is_secret": true}, "N": 5, "B": true, "F": {"value": 1.5}, "GONE": null}"#;
    let env_py = "def handler(event):\n    return {'status': 200, 'body': event['env']}\n";
    let env_js = "exports.handler = async (e) => ({status: 200, body: e.env});\n";
    let files: Vec<(&str, String)> = vec![
        ("py/[id]/handler.py", py("py")),
        ("py/[id]/fn.config.json", auth.into()),
        ("py/[id]/fn.env.json", env.into()),
        ("js/[id]/handler.js", js("js")),
        ("js/[id]/fn.config.json", auth.into()),
        ("js/[id]/fn.env.json", env.into()),
        ("envpy/handler.py", env_py.into()),
        ("envpy/fn.env.json", env.into()),
        ("envjs/handler.js", env_js.into()),
        ("envjs/fn.env.json", env.into()),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    write_tree(dir.path(), &files);
    let gw = Gateway::start(dir.path());
    for (prefix, runtime) in [("py", "python"), ("js", "node")] {
        let resp = client()
            .get(gw.url(&format!("/{prefix}/7?a=1&a=2&flag&b=x+y")))
            .header("x-api-key", "k-123456")
            .header("user-agent", "fastfn-test/1")
            .header("cookie", "sid=s-1; theme=dark")
            .header("x-multi", "one")
            .header("x-multi", "two")
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{runtime}");
        let rid = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        let e: Value = resp.json().unwrap();
        assert_eq!(e["id"], rid.as_str(), "{runtime}: {e}");
        assert!(e["ts"].as_u64().unwrap() > 1_700_000_000_000, "{e}");
        assert_eq!(e["raw_path"], format!("/{prefix}/7?a=1&a=2&flag&b=x+y"));
        assert_eq!(e["query"]["a"], serde_json::json!(["1", "2"]), "{runtime}");
        assert_eq!(e["query"]["flag"], true);
        assert_eq!(e["query"]["b"], "x y");
        assert_eq!(e["path_params"]["id"], "7");
        assert_eq!(e["headers"]["x-multi"], serde_json::json!(["one", "two"]));
        assert_eq!(e["client"]["ip"], "127.0.0.1");
        assert_eq!(e["client"]["ua"], "fastfn-test/1");
        assert_eq!(e["session"]["id"], "s-1");
        assert_eq!(e["session"]["cookies"]["theme"], "dark");
        let c = &e["context"];
        assert_eq!(c["request_id"], rid.as_str());
        assert_eq!(c["function_name"], format!("{prefix}/[id]"));
        assert_eq!(c["runtime"], runtime);
        assert_eq!(c["version"], "default");
        assert_eq!(c["timeout_ms"], 30000);
        assert_eq!(c["max_body_bytes"], 4096);
        assert_eq!(c["auth"]["type"], "api_key");
        assert_eq!(c["user"]["auth"], "api_key");
        assert_eq!(c["user"]["id"], c["auth"]["subject"]);
    }
    for prefix in ["envpy", "envjs"] {
        let (s, env) = get(&gw, &format!("/{prefix}"));
        assert_eq!(s, 200);
        assert_eq!(env["N"], "5", "{prefix}: {env}");
        assert_eq!(env["B"], "true");
        assert_eq!(env["F"], "1.5");
        assert!(env.get("GONE").is_none());
    }
}

#[test]
fn schedule_every_second_runs_on_time_and_never_overlaps() {
    let dir = tempdir();
    let out_dir = tempdir();
    let out = out_dir.path().join("runs.log");
    let handler = "import time\ndef handler(event):\n    path = event['env']['OUT']\n    with open(path, 'a') as f:\n        f.write('start %s %s %s\\n' % (event['method'], event['query'].get('a'), event.get('body')))\n    time.sleep(2)\n    with open(path, 'a') as f:\n        f.write('end\\n')\n    return {'status': 200, 'body': 'ok'}\n";
    let env = serde_json::json!({"OUT": out.to_str().unwrap()}).to_string();
    write_tree(
        dir.path(),
        &[
            ("tick/handler.py", handler),
            (
                "tick/fn.config.json",
                r#"{"schedule": {"enabled": true, "every_seconds": 1, "method": "POST", "query": {"a": "1"}, "body": "tick"}}"#,
            ),
            ("tick/fn.env.json", &env),
        ],
    );
    let gw = Gateway::start(dir.path());
    let runs = || std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        support::wait_until(std::time::Duration::from_secs(90), || {
            runs().lines().filter(|l| *l == "end").count() >= 3
        }),
        "three runs did not finish: {:?}\n{}",
        runs(),
        gw.logs()
    );
    // Every run ends before the next starts: the lines alternate.
    let text = runs();
    for (i, line) in text.lines().enumerate() {
        if i % 2 == 0 {
            assert_eq!(line, "start POST 1 tick", "{text}");
        } else {
            assert_eq!(line, "end", "{text}");
        }
    }
    assert!(support::wait_until(
        std::time::Duration::from_secs(30),
        || {
            gw.metric(r#"edgefn_schedule_runs_total{function="tick",result="ok"}"#)
                .is_some_and(|v| v >= 3.0)
        }
    ));
    // Its times came while a run was going: counted as skipped, not overlapped.
    assert!(gw
        .metric(r#"edgefn_schedule_runs_total{function="tick",result="skipped"}"#)
        .is_some_and(|v| v >= 1.0));
    assert!(gw.wait_log("schedule run", std::time::Duration::from_secs(10)));
}

/// `keep_warm` pings as FastFN's scheduler does: at once (never warm), then every
/// `ping_every_seconds`, with FastFN's query key and header, the method GET unless the
/// function does not take it; `enabled: false` never pings. A typo inside is an error.
#[test]
fn keep_warm_pings_with_fastfns_query_and_header() {
    let dir = tempdir();
    let out_dir = tempdir();
    let handler = "def handler(event):\n    with open(event['env']['OUT'], 'a') as f:\n        f.write('%s %s %s\\n' % (event['method'], event['query'].get('__fastfn_keep_warm'), event['headers'].get('x-fastfn-trigger')))\n    return {'status': 200, 'body': 'ok'}\n";
    let log = |name: &str| out_dir.path().join(format!("{name}.log"));
    let env = |name: &str| serde_json::json!({"OUT": log(name).to_str().unwrap()}).to_string();
    write_tree(
        dir.path(),
        &[
            ("warm/handler.py", handler),
            (
                "warm/fn.config.json",
                r#"{"keep_warm": {"enabled": true, "ping_every_seconds": 1}}"#,
            ),
            ("warm/fn.env.json", &env("warm")),
            ("posted/handler.py", handler),
            (
                "posted/fn.config.json",
                r#"{"invoke": {"methods": ["POST"]}, "keep_warm": {"enabled": true, "ping_every_seconds": 1.8}}"#,
            ),
            ("posted/fn.env.json", &env("posted")),
            ("cold/handler.py", handler),
            (
                "cold/fn.config.json",
                r#"{"keep_warm": {"enabled": false, "ping_every_seconds": 1}}"#,
            ),
            ("cold/fn.env.json", &env("cold")),
        ],
    );
    let gw = Gateway::start(dir.path());
    let lines = |name: &str| -> Vec<String> {
        std::fs::read_to_string(log(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    assert!(
        support::wait_until(std::time::Duration::from_secs(60), || {
            lines("warm").len() >= 3 && lines("posted").len() >= 2
        }),
        "no pings: warm {:?} posted {:?}\n{}",
        lines("warm"),
        lines("posted"),
        gw.logs()
    );
    assert!(
        lines("warm").iter().all(|l| l == "GET 1 keep_warm"),
        "{:?}",
        lines("warm")
    );
    assert!(
        lines("posted").iter().all(|l| l == "POST 1 keep_warm"),
        "{:?}",
        lines("posted")
    );
    assert!(gw
        .metric(r#"edgefn_keep_warm_pings_total{function="warm",result="ok"}"#)
        .is_some_and(|v| v >= 2.0));
    let (_, cat) = get(&gw, "/_fn/catalog");
    let fns = cat["runtimes"]["python"]["functions"].as_array().unwrap();
    let policy = |n: &str| &fns.iter().find(|f| f["name"] == n).unwrap()["policy"];
    assert_eq!(
        policy("warm")["keep_warm"],
        serde_json::json!({"enabled": true, "ping_every_seconds": 1, "idle_ttl_seconds": 300})
    );
    assert!(policy("cold")["keep_warm"].is_null());
    // Pings are not schedule runs.
    assert_eq!(
        gw.metric(r#"edgefn_schedule_runs_total{function="warm",result="ok"}"#),
        None
    );
    // `enabled: false`: warm's pings came, cold's never did; a request still answers.
    assert!(lines("cold").is_empty(), "{:?}", lines("cold"));
    assert_eq!(get(&gw, "/cold").0, 200);
    assert_eq!(lines("cold"), ["GET None None"]);
    assert_eq!(get(&gw, "/warm").0, 200);

    std::fs::write(
        dir.path().join("warm/fn.config.json"),
        r#"{"keep_warm": {"enabled": true, "ping_every_second": 1}}"#,
    )
    .unwrap();
    let out = check(dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fn.config.json: keep_warm")
            && err.contains("did you mean `ping_every_seconds`"),
        "{err}"
    );
}

#[test]
fn a_bad_cron_is_an_error_naming_the_field() {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("c/handler.py", &py("c")),
            (
                "c/fn.config.json",
                r#"{"schedule": {"enabled": true, "cron": "0 25 * * *", "timezone": "-05:00"}}"#,
            ),
        ],
    );
    let out = check(dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fn.config.json: schedule.cron") && err.contains("hour"),
        "{err}"
    );
}

fn assets_tree(root: &Path, worker_first: bool) {
    let cfg = serde_json::json!({"assets": {"directory": "public",
        "not_found_handling": "single-page-application", "run_worker_first": worker_first}})
    .to_string();
    write_tree(
        root,
        &[
            ("fn.config.json", &cfg),
            ("public/index.html", "<h1>home</h1>"),
            ("public/app.js", "console.log(1)"),
            ("public/hello", "static-hello"),
            ("public/handler.py", "raise SystemExit('never run')\n"),
            ("hello/handler.py", &py("hello")),
            ("api/handler.py", &py("api")),
        ],
    );
}

#[test]
fn assets_static_first_spa_fallback_and_worker_first() {
    let dir = tempdir();
    assets_tree(dir.path(), false);
    let gw = Gateway::start(dir.path());
    let c = client();
    let resp = c.get(gw.url("/")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    assert!(resp.headers().contains_key("x-request-id"));
    let etag = resp.headers()["etag"].clone();
    assert_eq!(resp.text().unwrap(), "<h1>home</h1>");
    let resp = c
        .get(gw.url("/"))
        .header("if-none-match", etag)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 304);
    let resp = c.get(gw.url("/app.js")).send().unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/javascript; charset=utf-8"
    );
    // A file beats a function when the worker does not run first.
    assert_eq!(
        c.get(gw.url("/hello")).send().unwrap().text().unwrap(),
        "static-hello"
    );
    assert_eq!(get(&gw, "/api").1["fn"], "api");
    // Navigation requests fall back to index.html; files and /api paths do not.
    let resp = c
        .get(gw.url("/dashboard/settings"))
        .header("accept", "text/html")
        .send()
        .unwrap();
    assert_eq!(resp.text().unwrap(), "<h1>home</h1>");
    assert_eq!(get(&gw, "/missing.css").0, 404);
    assert_eq!(get(&gw, "/api/nothing").0, 404);
    // The assets folder holds no functions, and its files are never run.
    let resp = c
        .get(gw.url("/public"))
        .header("accept", "application/json")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let code = c.get(gw.url("/handler.py")).send().unwrap().text().unwrap();
    assert!(code.contains("never run"));
    assert_eq!(call(&gw, reqwest::Method::POST, "/app.js").0, 404);
    drop(gw);

    let dir = tempdir();
    assets_tree(dir.path(), true);
    let gw = Gateway::start(dir.path());
    assert_eq!(get(&gw, "/hello").1["fn"], "hello");
    assert_eq!(
        c.get(gw.url("/")).send().unwrap().text().unwrap(),
        "<h1>home</h1>"
    );
}

#[test]
fn an_oversized_asset_is_not_served_and_says_so() {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("fn.config.json", r#"{"assets": {"directory": "public"}}"#),
            ("public/index.html", "ok"),
        ],
    );
    let big = vec![b'x'; (gateway_limit() + 1) as usize];
    std::fs::write(dir.path().join("public/big.bin"), big).unwrap();
    let out = check(dir.path());
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("big.bin") && stdout.contains("asset limit"),
        "{stdout}"
    );
    let gw = Gateway::start(dir.path());
    assert_eq!(get(&gw, "/big.bin").0, 404);
    assert_eq!(get(&gw, "/").0, 200);

    std::fs::write(
        dir.path().join("fn.config.json"),
        r#"{"assets": {"directory": "../elsewhere"}}"#,
    )
    .unwrap();
    let err = String::from_utf8_lossy(&check(dir.path()).stderr).into_owned();
    assert!(err.contains("assets.directory"), "{err}");
}

fn gateway_limit() -> u64 {
    8 << 20
}

/// A real HTTP/1.1 upstream on loopback: `/big` answers 4000 bytes, anything else a JSON
/// echo of the method, path, `x-edge` header and body, with a hop-by-hop header to drop.
fn upstream() -> u16 {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut parts = line.split_whitespace();
                let (method, path) = (
                    parts.next().unwrap_or("").to_owned(),
                    parts.next().unwrap_or("").to_owned(),
                );
                let (mut len, mut edge) = (0usize, String::new());
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap();
                    match k.trim().to_ascii_lowercase().as_str() {
                        "content-length" => len = v.trim().parse().unwrap(),
                        "x-edge" => edge = v.trim().to_owned(),
                        _ => {}
                    }
                }
                let mut body = vec![0u8; len];
                reader.read_exact(&mut body).unwrap();
                let payload = if path == "/big" {
                    "x".repeat(4000)
                } else {
                    serde_json::json!({"method": method, "path": path, "x_edge": edge,
                        "body": String::from_utf8_lossy(&body)})
                    .to_string()
                };
                let head = format!(
                    "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nx-upstream: yes\r\nkeep-alive: timeout=5\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
                    payload.len()
                );
                let mut s = stream;
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(payload.as_bytes());
            });
        }
    });
    port
}

#[test]
fn edge_proxy_fetches_the_upstream_within_its_config() {
    let port = upstream();
    let open = format!(
        r#"{{"edge": {{"base_url": "http://127.0.0.1:{port}", "allow_private": true, "max_response_bytes": 1024}}}}"#
    );
    let listed_not_private = format!(r#"{{"edge": {{"allow_hosts": ["127.0.0.1:{port}"]}}}}"#);
    let other_host =
        format!(r#"{{"edge": {{"base_url": "http://localhost:{port}", "allow_private": true}}}}"#);
    let to = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let js_proxy = "exports.handler = async (event) => ({ proxy: { path: '/echo?via=edge', method: 'PUT', headers: { 'x-edge': String(event.query.n || '1'), connection: 'x' }, body: 'hi ' + event.method } });\n";
    let py_big = "def handler(event):\n    return {'status': 200, 'proxy': {'path': '/big'}}\n";
    let py_private = format!(
        "def handler(event):\n    return {{'proxy': {{'url': {:?}}}}}\n",
        to("/echo")
    );
    let js_other = format!(
        "exports.handler = async () => ({{ proxy: {{ url: {:?} }} }});\n",
        to("/echo")
    );
    let py_control = "def handler(event):\n    return {'proxy': {'path': '/_fn/health'}}\n";
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("proxied/handler.js", js_proxy),
            ("proxied/fn.config.json", &open),
            ("big/handler.py", py_big),
            ("big/fn.config.json", &open),
            ("control/handler.py", py_control),
            ("control/fn.config.json", &open),
            ("private/handler.py", &py_private),
            ("private/fn.config.json", &listed_not_private),
            ("elsewhere/handler.js", &js_other),
            ("elsewhere/fn.config.json", &other_host),
            ("noedge/handler.py", &py_private),
            ("debug/handler.py", &py("debug")),
            ("limited-debug/handler.py", &py("no-debug")),
            (
                "debug/fn.config.json",
                r#"{"response": {"include_debug_headers": true}}"#,
            ),
        ],
    );
    let out = check(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains(": edge: "),
        "edge is implemented, no warning: {stdout}"
    );
    let gw = Gateway::start(dir.path());

    let resp = client().post(gw.url("/proxied?n=7")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(resp.headers()["x-upstream"], "yes");
    assert!(
        resp.headers().get("keep-alive").is_none(),
        "hop-by-hop dropped"
    );
    let body: Value = resp.json().unwrap();
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["path"], "/echo?via=edge");
    assert_eq!(body["x_edge"], "7");
    assert_eq!(body["body"], "hi POST");

    let refused = |path: &str, needle: &str| {
        let (status, body) = get(&gw, path);
        assert_eq!(status, 502, "{path}: {body}");
        let err = body["error"].as_str().unwrap_or_default();
        assert!(
            err.starts_with("edge proxy failed: ") && err.contains(needle),
            "{path}: {body}"
        );
    };
    refused("/big", "over the 1024-byte edge.max_response_bytes limit");
    refused("/control", "control-plane path not allowed");
    refused("/private", "set edge.allow_private");
    refused("/elsewhere", "not in edge.allow_hosts");
    refused("/noedge", "no \"edge\" config");
    assert!(gw.wait_log("edge proxy failed", std::time::Duration::from_secs(10)));

    // `response.include_debug_headers`: FastFN's X-Fn-* headers, only where asked for.
    let resp = client().get(gw.url("/debug")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let h = resp.headers();
    assert_eq!(h["x-fn-runtime"], "python");
    assert_eq!(h["x-fn-function"], "debug");
    assert_eq!(h["x-fn-version"], "default");
    assert_eq!(h["x-fn-request-id"], h["x-request-id"]);
    assert!(h["x-fn-latency-ms"]
        .to_str()
        .unwrap()
        .parse::<u64>()
        .is_ok());
    assert!(h.contains_key("x-fn-worker-pool-max-workers"));
    let event: Value = resp.json().unwrap();
    assert_eq!(event["context"]["debug"]["enabled"], true, "{event}");
    assert_eq!(
        get(&gw, "/limited-debug").1["context"]["debug"]["enabled"],
        false
    );
    let plain = client().get(gw.url("/noedge")).send().unwrap();
    assert!(plain.headers().get("x-fn-runtime").is_none());
}

/// `shared_deps`: a Python pack shipping `.deps/` and a Node pack shipping
/// `node_modules/` (FastFN's layout, one level above a runtime-scoped root), importable
/// by the functions that name them; a missing pack is a load error naming it.
#[test]
fn shared_deps_packs_are_importable_and_missing_ones_warned() {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            (".fastfn/packs/python/common/.deps/packmod.py", "GREETING = 'from the python pack'\n"),
            (
                ".fastfn/packs/node/common/node_modules/packmod/index.js",
                "module.exports = { greeting: 'from the node pack' };\n",
            ),
            (
                "fns/py/handler.py",
                "import packmod\n\ndef handler(event):\n    return {'body': packmod.GREETING}\n",
            ),
            ("fns/py/fn.config.json", r#"{"shared_deps": ["common"]}"#),
            (
                "fns/js/handler.js",
                "const p = require('packmod');\nexports.handler = async () => ({ body: p.greeting });\n",
            ),
            ("fns/js/fn.config.json", r#"{"shared_deps": "common"}"#),
        ],
    );
    let root = dir.path().join("fns");
    let out = check(&root);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains("shared_deps"),
        "implemented, no warning: {stdout}"
    );
    let gw = Gateway::start(&root);
    assert_eq!(
        get(&gw, "/py"),
        (200, Value::String("from the python pack".into()))
    );
    assert_eq!(
        get(&gw, "/js"),
        (200, Value::String("from the node pack".into()))
    );
    drop(gw);

    std::fs::write(
        root.join("py/fn.config.json"),
        r#"{"shared_deps": ["absent"]}"#,
    )
    .unwrap();
    // A tree copied without its packs loads (FastFN fails only that function's requests).
    let out = check(&root);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let warned = text
        .lines()
        .find(|l| l.starts_with("warning:") && l.contains("shared_deps"))
        .unwrap_or_else(|| panic!("warned: {text}"));
    assert!(warned.contains("pack \"absent\" not found"), "{warned}");
}

/// FastFN's `FN_RUNTIMES`: a tree that implements each route once per runtime (as FastFN's
/// `rest-api-methods` does) loads when one runtime is enabled and is served by it; the
/// skipped handlers are counted in a warning; without the variable the clash stays an error;
/// an unknown runtime name is an error naming it.
#[test]
fn fn_runtimes_selects_the_runtime_of_a_per_runtime_tree() {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("products/get.py", &py("py-list")),
            ("products/get.js", &js("js-list")),
            ("products/[id]/get.py", &py("py-one")),
            ("products/[id]/get.js", &js("js-one")),
            ("products/[id]/delete.py", &py("py-delete")),
            ("products/[id]/delete.js", &js("js-delete")),
        ],
    );
    let check_with = |runtimes| check_with_runtimes(dir.path(), runtimes);
    let all = check_with(None);
    let text = String::from_utf8_lossy(&all.stdout);
    assert_eq!(all.status.code(), Some(0), "{text}");
    assert!(
        text.contains("ambiguous function"),
        "every runtime on: the routes clash and answer 409: {text}"
    );
    let typo = check_with(Some("pyton"));
    assert_eq!(typo.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&typo.stderr).contains("`pyton`"),
        "{}",
        String::from_utf8_lossy(&typo.stderr)
    );
    let node = check_with(Some("node"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&node.stdout),
        String::from_utf8_lossy(&node.stderr)
    );
    assert_eq!(node.status.code(), Some(0), "{text}");
    assert!(
        text.contains("FN_RUNTIMES") && text.contains("python 3"),
        "{text}"
    );

    let functions = dir.path().to_str().unwrap();
    let gw = Gateway::start_args(&["--functions", functions], &[("FN_RUNTIMES", "python")]);
    let (status, body) = get(&gw, "/products");
    assert_eq!(
        (status, body["fn"].as_str()),
        (200, Some("py-list")),
        "{body}"
    );
    let (status, body) = get(&gw, "/products/42");
    assert_eq!(
        (status, body["fn"].as_str()),
        (200, Some("py-one")),
        "{body}"
    );
    assert_eq!(body["params"]["id"], "42", "{body}");
    let (status, body) = call(&gw, reqwest::Method::DELETE, "/products/42");
    assert_eq!(
        (status, body["fn"].as_str()),
        (200, Some("py-delete")),
        "{body}"
    );
}

/// FastFN's per-runtime trees (its `examples/functions` root has `session-demo` in every
/// runtime folder) load: the routes two runtime folders claim answer 409 `ambiguous
/// function` (FastFN's status and text), the check warns naming both files, the rest
/// serves; a path nobody serves is FastFN's 404 `not found`.
#[test]
fn runtime_folders_claiming_one_route_answer_409_as_in_fastfn() {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("python/dup/handler.py", &py("py-dup")),
            ("node/dup/handler.js", &js("js-dup")),
            (
                "php/dup/handler.php",
                "<?php function handler($e) { return 'php'; }\n",
            ),
            ("python/only-py/handler.py", &py("only-py")),
            ("node/only-js/handler.js", &js("only-js")),
            ("node/only-js/v2/handler.js", &js("only-js-v2")),
            ("python/dup/get.extra.py", &py("dup-extra")),
        ],
    );
    let out = check(dir.path());
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let warned = table
        .lines()
        .find(|l| l.starts_with("warning:") && l.contains("ambiguous function"))
        .unwrap_or_else(|| panic!("warned: {table}"));
    assert!(warned.contains("dup/handler"), "{warned}");
    let row = table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("/dup"))
        .unwrap_or_else(|| panic!("/dup listed: {table}"));
    assert!(row.contains("409"), "{row}");

    let gw = Gateway::start(dir.path());
    for path in ["/dup", "/dup/a/b"] {
        let (s, e) = get(&gw, path);
        assert_eq!(
            (s, e["error"].as_str()),
            (409, Some("ambiguous function")),
            "{path}"
        );
    }
    assert_eq!(call(&gw, reqwest::Method::POST, "/dup").0, 409);
    // A file route of one of them is its own route, served.
    assert_eq!(get(&gw, "/dup/extra").1["fn"], "dup-extra");
    assert_eq!(get(&gw, "/only-py").1["fn"], "only-py");
    assert_eq!(get(&gw, "/only-js/x").1["params"]["wildcard"], "x");
    assert_eq!(get(&gw, "/only-js@v2").1["fn"], "only-js-v2");
    let (s, e) = get(&gw, "/nobody");
    assert_eq!(s, 404);
    assert!(e["error"].as_str().unwrap().contains("not found"), "{e}");
    // nginx's 400 for a path above the root (FastFN's public-assets test); sent raw, as
    // an HTTP client library would resolve the dots itself.
    let answer = raw_get(&gw, "/%2e%2e/only-py/handler.py");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("Bad Request"), "{answer}");
}

/// One `GET` written as is on a fresh connection; the whole answer as text.
fn raw_get(gw: &Gateway, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = gw
        .url("/")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// FastFN's PHP script mode (`next-style/php/get.export.php`): a file without a handler
/// function answers with what it prints, the status in `$FASTFN_STATUS` and the headers
/// in `$FASTFN_HEADERS`, on every request (its helper required once).
#[test]
fn php_script_mode_takes_fastfn_status_and_headers() {
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            (
                "php/_rows.php",
                "<?php\nfunction rows(): string { return \"id,source\\n10,script\\n\"; }\n",
            ),
            (
                "php/get.export.php",
                "<?php\nrequire_once __DIR__ . '/_rows.php';\n$FASTFN_HEADERS = ['Content-Type' => 'text/csv; charset=utf-8', 'Content-Disposition' => 'attachment; filename=\"x.csv\"', 'X-Bad' => ['no']];\n$FASTFN_STATUS = 201;\necho rows();\n",
            ),
            ("php/get.plain.php", "<?php\n$FASTFN_STATUS = 9999;\necho 'plain';\n"),
        ],
    );
    let gw = Gateway::start(dir.path());
    for _ in 0..2 {
        let resp = client().get(gw.url("/php/export")).send().unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        let h = resp.headers();
        assert_eq!(h["content-type"], "text/csv; charset=utf-8");
        assert_eq!(h["content-disposition"], "attachment; filename=\"x.csv\"");
        assert!(h.get("x-bad").is_none());
        assert_eq!(resp.text().unwrap(), "id,source\n10,script\n");
    }
    let resp = client().get(gw.url("/php/plain")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 200, "an invalid status is ignored");
    assert_eq!(resp.text().unwrap(), "plain");
}

/// FastFN runs a folder's Node handlers in one process (`next-style/showcase`: `get.form.js`
/// and `put.form.js` both require `_state.js`), so what one stores the other reads; the
/// folder's functions share one pool here, and `context.debug.enabled` says whether the
/// function asked for debug headers.
#[test]
fn a_folders_node_handlers_share_module_state() {
    let dir = tempdir();
    let state = "let v = 'initial';\nmodule.exports = { get: () => v, set: (x) => { v = x; } };\n";
    write_tree(
        dir.path(),
        &[
            ("form/_state.js", state),
            (
                "form/get.value.js",
                "const s = require('./_state');\nexports.handler = async (e) => ({ value: s.get(), debug: e.context.debug });\n",
            ),
            (
                "form/put.value.js",
                "const s = require('./_state');\nexports.handler = async (e) => { s.set(JSON.parse(e.body).value); return { value: s.get() }; };\n",
            ),
            ("form/fn.config.json", r#"{"include_debug_headers": true}"#),
            (
                "other/get.value.js",
                "const s = require('../form/_state');\nexports.handler = async () => ({ value: s.get() });\n",
            ),
        ],
    );
    let gw = Gateway::start(dir.path());
    let (s, e) = get(&gw, "/form/value");
    assert_eq!((s, e["value"].as_str()), (200, Some("initial")), "{e}");
    assert_eq!(e["debug"]["enabled"], true);
    let resp = client()
        .put(gw.url("/form/value"))
        .body(r#"{"value": "stored"}"#)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(get(&gw, "/form/value").1["value"], "stored");
    // Another folder is another process, as in FastFN.
    assert_eq!(get(&gw, "/other/value").1["value"], "initial");
}

/// The PHP and Lua twins of `edge_proxy_fetches_the_upstream_within_its_config`: their
/// `proxy` answers are fetched by the gateway with the same rewrite (path, method, headers,
/// body), the same cap and the same refusals.
#[test]
fn edge_proxy_from_php_and_lua_handlers() {
    let port = upstream();
    let open = format!(
        r#"{{"edge": {{"base_url": "http://127.0.0.1:{port}", "allow_private": true, "max_response_bytes": 1024}}}}"#
    );
    let php_proxy = r#"<?php
function handler(array $event): array
{
    return ['proxy' => [
        'path' => '/echo?via=php',
        'method' => 'PUT',
        'headers' => ['x-edge' => (string) ($event['query']['n'] ?? '1'), 'connection' => 'x'],
        'body' => 'php ' . $event['method'],
    ]];
}
"#;
    let lua_proxy = r#"
local function handler(event, params)
  return {
    status = 200,
    proxy = {
      path = "/echo?via=lua",
      method = "PUT",
      headers = { ["x-edge"] = event.query.n or "1" },
      body = "lua " .. event.method,
      timeout_ms = 3000,
    },
  }
end
return handler
"#;
    let php_big = "<?php\nfunction handler($event) { return ['proxy' => ['path' => '/big', 'headers' => []]]; }\n";
    let lua_control = "return function() return { proxy = { path = \"/_fn/health\" } } end\n";
    let lua_bad = "return function() return { proxy = { \"not\", \"an\", \"object\" } } end\n";
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("php-proxied/handler.php", php_proxy),
            ("php-proxied/fn.config.json", &open),
            ("lua-proxied/handler.lua", lua_proxy),
            ("lua-proxied/fn.config.json", &open),
            ("php-big/handler.php", php_big),
            ("php-big/fn.config.json", &open),
            ("lua-control/handler.lua", lua_control),
            ("lua-control/fn.config.json", &open),
            ("lua-bad/handler.lua", lua_bad),
            ("lua-bad/fn.config.json", &open),
            ("php-noedge/handler.php", php_proxy),
            ("lua-noedge/handler.lua", lua_proxy),
        ],
    );
    let gw = Gateway::start(dir.path());
    for (path, tag) in [("/php-proxied", "php"), ("/lua-proxied", "lua")] {
        let resp = client()
            .post(gw.url(&format!("{path}?n=9")))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "{path}: {}", gw.logs());
        assert_eq!(resp.headers()["x-upstream"], "yes");
        assert!(resp.headers().get("keep-alive").is_none());
        let body: Value = resp.json().unwrap();
        assert_eq!(body["method"], "PUT", "{path}");
        assert_eq!(body["path"], format!("/echo?via={tag}"));
        assert_eq!(body["x_edge"], "9");
        assert_eq!(body["body"], format!("{tag} POST"));
    }
    let refused = |path: &str, needle: &str| {
        let (status, body) = get(&gw, path);
        assert_eq!(status, 502, "{path}: {body}");
        let err = body["error"].as_str().unwrap_or_default();
        assert!(err.contains(needle), "{path}: {body}");
    };
    refused(
        "/php-big",
        "over the 1024-byte edge.max_response_bytes limit",
    );
    refused("/lua-control", "control-plane path not allowed");
    refused("/php-noedge", "no \"edge\" config");
    refused("/lua-noedge", "no \"edge\" config");
    // A `proxy` that is not an object is the runtime's refusal of the answer.
    let (status, body) = get(&gw, "/lua-bad");
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "proxy must be an object when provided");
    assert!(gw.wait_log(
        "proxy must be an object when provided",
        std::time::Duration::from_secs(10)
    ));
}

/// FastFN's event leaves out what the request does not carry: no body → no `body` field in
/// Python, Node, PHP and Lua (handlers written as FastFN's examples are, `event.get("body",
/// {})` / `event.body || {}`, see their default), and in Lua no `session` without cookies
/// and no `session.id` without a session cookie (nil, not a truthy `cjson.null`).
#[test]
fn absent_body_and_session_are_absent_in_every_runtime() {
    let py = "import json\n\ndef handler(event):\n    body = event.get('body', {})\n    if isinstance(body, str):\n        body = json.loads(body)\n    return {'status': 200, 'body': {'name': body.get('name'), 'has_body': 'body' in event}}\n";
    let js = "exports.handler = async (event) => {\n  const b = typeof event.body === 'string' ? JSON.parse(event.body) : event.body || {};\n  return { status: 200, body: { name: b.name ?? null, has_body: 'body' in event } };\n};\n";
    let php = "<?php\nfunction handler(array $event): array\n{\n    $b = array_key_exists('body', $event) ? json_decode($event['body'], true) : [];\n    return ['status' => 200, 'body' => ['name' => $b['name'] ?? null, 'has_body' => array_key_exists('body', $event)]];\n}\n";
    let lua = r#"
local cjson = require("cjson.safe")
function handler(event)
  local session = event.session or {}
  local cookies = session.cookies or {}
  local b = event.body and cjson.decode(event.body) or {}
  if not session.id then
    return { status = 401, body = { error = "no session", name = b.name, has_body = event.body ~= nil } }
  end
  return { status = 200, body = { id = session.id, theme = cookies.theme or "light" } }
end
"#;
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("py/handler.py", py),
            (
                "pyindex/handler.py",
                "def handler(event):\n    return {'status': 200, 'body': {'text': event['body']}}\n",
            ),
            ("js/handler.js", js),
            ("php/handler.php", php),
            ("lua/handler.lua", lua),
        ],
    );
    let gw = Gateway::start(dir.path());
    for path in ["/py", "/js", "/php"] {
        let (status, body) = get(&gw, path);
        assert_eq!(status, 200, "{path}: {body} {}", gw.logs());
        assert_eq!(
            body,
            serde_json::json!({"name": null, "has_body": false}),
            "{path}"
        );
        let resp = client()
            .post(gw.url(path))
            .body(r#"{"name":"x"}"#)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        let body: Value = resp.json().unwrap();
        assert_eq!(
            body,
            serde_json::json!({"name": "x", "has_body": true}),
            "{path}"
        );
    }
    // edgefn's own Python handlers index the body: still the empty text.
    assert_eq!(get(&gw, "/pyindex"), (200, serde_json::json!({"text": ""})));
    let lua_call = |cookie: Option<&str>, body: Option<&str>| {
        let mut req = client().post(gw.url("/lua"));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        if let Some(b) = body {
            req = req.body(b.to_owned());
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().unwrap())
    };
    assert_eq!(
        lua_call(None, None),
        (
            401,
            serde_json::json!({"error": "no session", "has_body": false})
        )
    );
    assert_eq!(
        lua_call(Some("theme=dark"), Some(r#"{"name":"y"}"#)),
        (
            401,
            serde_json::json!({"error": "no session", "name": "y", "has_body": true})
        )
    );
    assert_eq!(
        lua_call(Some("session_id=abc123; theme=dark"), None),
        (200, serde_json::json!({"id": "abc123", "theme": "dark"}))
    );
}

/// The Rust twin: FastFN's `fn(Value) -> Value` handler answering `{"proxy": {...}}` is
/// fetched by the gateway as the other runtimes' answers are.
#[test]
fn edge_proxy_from_a_rust_handler() {
    let port = upstream();
    let open =
        format!(r#"{{"edge": {{"base_url": "http://127.0.0.1:{port}", "allow_private": true}}}}"#);
    let rust = r#"use serde_json::{json, Value};

pub fn handler(event: Value) -> Value {
    let n = event["query"]["n"].as_str().unwrap_or("1").to_owned();
    let method = event["method"].as_str().unwrap_or("").to_owned();
    json!({"proxy": {"path": "/echo?via=rust", "method": "PUT",
                     "headers": {"x-edge": n}, "body": format!("rust {method}")}})
}
"#;
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("rs-proxied/handler.rs", rust),
            ("rs-proxied/fn.config.json", &open),
            ("rs-noedge/handler.rs", rust),
        ],
    );
    let gw = Gateway::start(dir.path());
    let resp = client().post(gw.url("/rs-proxied?n=4")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{}", gw.logs());
    assert_eq!(resp.headers()["x-upstream"], "yes");
    let body: Value = resp.json().unwrap();
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["path"], "/echo?via=rust");
    assert_eq!(body["x_edge"], "4");
    assert_eq!(body["body"], "rust POST");
    let (status, body) = get(&gw, "/rs-noedge");
    assert_eq!(status, 502, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap_or_default()
        .contains("no \"edge\" config"));
}

/// `(status, error text)` of an answer, asserting it carries a `request_id` beside it.
fn error_of(gw: &Gateway, method: reqwest::Method, path: &str, body: &str) -> (u16, String) {
    let resp = client()
        .request(method, gw.url(path))
        .body(body.to_owned())
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: {text}"));
    assert!(v["request_id"].is_string(), "{path}: {text}");
    (status, v["error"].as_str().unwrap_or_default().to_owned())
}

/// The gateway's own answers and a failing handler's carry FastFN's status and `error`
/// text (`gateway.lua`, `gateway_utils.lua`, the runtime daemons): a method a route does
/// not serve is not found (405 only for `/name@version`), an exception is the daemon's
/// 500 (400 for a Python `ValueError`, 404 for a missing file) with its message, secrets
/// masked.
#[test]
fn gateway_answers_carry_fastfn_statuses_and_errors() {
    use reqwest::Method as M;
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("items/get.py", "def handler(event):\n    return 'items'\n"),
            ("limited/handler.py", "def handler(event):\n    return 'limited'\n"),
            ("limited/fn.config.json", r#"{"invoke": {"methods": ["GET"]}}"#),
            (
                "boom/handler.py",
                "def handler(event):\n    raise RuntimeError('kaboom ' + event['env']['TOKEN'])\n",
            ),
            (
                "boom/fn.env.json",
                r#"{"TOKEN": {"value": "s3cr3t-t0ken", "is_secret": true}}"#,
            ),
            (
                "bad/handler.py",
                "import json\ndef handler(event):\n    return json.loads(event['body'])\n",
            ),
            (
                "nofile/handler.py",
                "def handler(event):\n    return open('/nonexistent/x.txt').read()\n",
            ),
            (
                "badstatus/handler.py",
                "def handler(event):\n    return {'status': 99, 'body': 'x'}\n",
            ),
            (
                "nodeboom/handler.js",
                "exports.handler = async () => { throw new Error('node kaboom'); };\n",
            ),
            (
                "nodebad/handler.js",
                "exports.handler = async () => ({ status: 1000 });\n",
            ),
            (
                "phpboom/handler.php",
                "<?php\nfunction handler(array $event): array\n{\n    throw new RuntimeException('php kaboom');\n}\n",
            ),
            (
                "luaboom/handler.lua",
                "function handler(event)\n  error('lua kaboom', 0)\nend\n",
            ),
            (
                "slow/handler.py",
                "import time\ndef handler(event):\n    time.sleep(3)\n    return 'late'\n",
            ),
            ("slow/fn.config.json", r#"{"timeout_ms": 300}"#),
            ("small/handler.py", "def handler(event):\n    return 'ok'\n"),
            ("small/fn.config.json", r#"{"max_body_bytes": 10}"#),
            (
                "crash/handler.py",
                "import os\ndef handler(event):\n    os._exit(3)\n",
            ),
            ("broken/handler.py", "def handler(:\n    pass\n"),
            (
                "hugeimport/handler.py",
                "raise RuntimeError('y' * 100000)\ndef handler(event):\n    return 'never'\n",
            ),
            (
                "huge/handler.py",
                "def handler(event):\n    raise RuntimeError('x' + '\\u00e9' * 100000)\n",
            ),
            ("python/ver/handler.py", "def handler(event):\n    return 'v1'\n"),
            ("python/ver/v2/handler.py", "def handler(event):\n    return 'v2'\n"),
            (
                "python/ver/v2/fn.config.json",
                r#"{"invoke": {"methods": ["GET"]}}"#,
            ),
        ],
    );
    let gw = Gateway::start(dir.path());
    let nf = (404, "not found".to_owned());
    assert_eq!(error_of(&gw, M::GET, "/nope", ""), nf);
    // Looked up by path and method together, as FastFN's routes.lua does.
    assert_eq!(error_of(&gw, M::DELETE, "/items", ""), nf);
    assert_eq!(error_of(&gw, M::POST, "/limited", ""), nf);
    let head = client().head(gw.url("/items")).send().unwrap();
    assert_eq!(head.status().as_u16(), 404);
    // `/name@version` is resolved by name, then refused by its methods.
    let resp = client().post(gw.url("/ver@v2")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers()["allow"], "GET");
    let v: Value = resp.json().unwrap();
    assert_eq!(v["error"], "method not allowed");

    let cases: &[(&str, &str, u16, &str)] = &[
        ("/boom", "", 500, "kaboom ***"),
        (
            "/bad",
            "{not json",
            400,
            "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        (
            "/nofile",
            "",
            404,
            "[Errno 2] No such file or directory: '/nonexistent/x.txt'",
        ),
        ("/badstatus", "", 400, "status must be a valid HTTP code"),
        ("/nodeboom", "", 500, "node kaboom"),
        ("/nodebad", "", 500, "status must be a valid HTTP code"),
        ("/phpboom", "", 500, "php kaboom"),
        ("/luaboom", "", 500, "lua handler error: lua kaboom"),
        ("/slow", "", 504, "runtime timeout"),
        ("/small", "more than ten bytes", 413, "payload too large"),
        ("/crash", "", 502, "runtime error: closed"),
        ("/broken", "", 500, "invalid syntax (handler.py, line 1)"),
    ];
    for (path, body, status, error) in cases {
        let got = error_of(&gw, M::POST, path, body);
        assert_eq!(got, (*status, (*error).to_owned()), "{path}: {}", gw.logs());
    }
    // A 200 KB message: its first 4 KiB, cut before the `é` that straddles the cap.
    let (status, error) = error_of(&gw, M::POST, "/huge", "");
    assert_eq!(status, 500);
    assert_eq!(error, format!("x{}", "\u{e9}".repeat(2047)));
    // So is the text of a handler that cannot be imported.
    assert_eq!(
        error_of(&gw, M::POST, "/hugeimport", ""),
        (500, "y".repeat(4096))
    );
    assert!(!gw.logs().contains("s3cr3t-t0ken"), "{}", gw.logs());
}

/// Every worker busy and the queue full: FastFN's `worker pool overflow`, with the
/// function's `worker_pool.overflow_status` (503 here; 429 by default, see
/// `runtimes_e2e::a_full_queue_answers_429_with_retry_after`).
#[test]
fn a_full_queue_answers_fastfn_worker_pool_overflow() {
    let dir = tempdir();
    let release = dir.path().join("release");
    let hold = format!(
        "import os, time\ndef handler(event):\n    end = time.time() + 20\n    while not os.path.exists({:?}) and time.time() < end:\n        time.sleep(0.01)\n    return 'done'\n",
        release.to_str().unwrap()
    );
    write_tree(
        dir.path(),
        &[
            ("fns/hold/handler.py", hold.as_str()),
            (
                "fns/hold/fn.config.json",
                r#"{"workers": {"min": 1, "max": 1}, "concurrency": 1, "worker_pool": {"overflow_status": 503}}"#,
            ),
        ],
    );
    let gw = Gateway::start(&dir.path().join("fns"));
    // One request on the worker and 32 queued fill the function (`max·concurrency·8`,
    // at least 32): of 40 at once, the rest overflow; the first overflow lets them all go.
    let answers = support::concurrent(40, |_| {
        let (status, body) = call(&gw, reqwest::Method::GET, "/hold");
        if status == 503 {
            let _ = std::fs::write(&release, "");
        }
        (status, body)
    });
    let overflow: Vec<_> = answers.iter().filter(|(s, _)| *s == 503).collect();
    assert!(!overflow.is_empty(), "{answers:?}");
    for (_, body) in &overflow {
        assert_eq!(body["error"], "worker pool overflow", "{body}");
    }
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 200).count(),
        40 - overflow.len(),
        "{answers:?}"
    );
}

/// FastFN's daemons show `fn.env.json` in the process environment too: `os.environ`,
/// `process.env`, `getenv` and `os.getenv` (and to the handler's own child processes).
#[test]
fn function_env_is_in_the_process_environment_of_every_runtime() {
    let env =
        r#"{"GREETING": "hi there", "COUNT": 5, "KEY": {"value": "k-123", "is_secret": true}}"#;
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            (
                "py/handler.py",
                "import os, subprocess\ndef handler(event):\n    child = subprocess.run(['sh', '-c', 'printf %s \"$GREETING\"'], capture_output=True, text=True).stdout\n    return {'greeting': os.environ.get('GREETING'), 'count': os.environ.get('COUNT'), 'key': os.environ.get('KEY'), 'child': child}\n",
            ),
            ("py/fn.env.json", env),
            (
                "js/handler.js",
                "const { execSync } = require('child_process');\nexports.handler = async () => ({ greeting: process.env.GREETING, count: process.env.COUNT, key: process.env.KEY, child: execSync('printf %s \"$GREETING\"').toString() });\n",
            ),
            ("js/fn.env.json", env),
            (
                "php/handler.php",
                "<?php\nfunction handler(array $event): array\n{\n    return ['status' => 200, 'body' => ['greeting' => getenv('GREETING'), 'count' => getenv('COUNT'), 'key' => getenv('KEY'), 'child' => shell_exec('printf %s \"$GREETING\"')]];\n}\n",
            ),
            ("php/fn.env.json", env),
            (
                "lua/handler.lua",
                "function handler(event)\n  return { status = 200, body = { greeting = os.getenv('GREETING'), count = os.getenv('COUNT'), key = os.getenv('KEY'), child = os.getenv('GREETING') } }\nend\n",
            ),
            ("lua/fn.env.json", env),
        ],
    );
    let gw = Gateway::start(dir.path());
    for path in ["/py", "/js", "/php", "/lua"] {
        let (s, e) = get(&gw, path);
        assert_eq!(s, 200, "{path}: {e} {}", gw.logs());
        assert_eq!(
            e,
            serde_json::json!({"greeting": "hi there", "count": "5", "key": "k-123", "child": "hi there"}),
            "{path}"
        );
    }
}

/// FastFN runs every Python handler in one daemon: the files of a folder are separate
/// modules, and a module they import (`_state.py`) is one, so its state is shared.
#[test]
fn a_folders_python_handlers_share_module_state() {
    let dir = tempdir();
    let state = "value = 'initial'\n";
    write_tree(
        dir.path(),
        &[
            ("form/_state.py", state),
            (
                "form/get.value.py",
                "import _state\nmine = 'get'\ndef handler(event):\n    return {'value': _state.value, 'mine': mine}\n",
            ),
            (
                "form/put.value.py",
                "import json, _state\nmine = 'put'\ndef handler(event):\n    _state.value = json.loads(event['body'])['value']\n    return {'value': _state.value, 'mine': mine}\n",
            ),
            (
                "other/get.value.py",
                "import os, sys\nsys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'form'))\nimport _state\ndef handler(event):\n    return {'value': _state.value}\n",
            ),
        ],
    );
    let gw = Gateway::start(dir.path());
    let (s, e) = get(&gw, "/form/value");
    assert_eq!(
        (s, e["value"].as_str(), e["mine"].as_str()),
        (200, Some("initial"), Some("get")),
        "{e} {}",
        gw.logs()
    );
    let resp = client()
        .put(gw.url("/form/value"))
        .body(r#"{"value": "stored"}"#)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.json::<Value>().unwrap()["mine"], "put");
    assert_eq!(get(&gw, "/form/value").1["value"], "stored");
    // Another folder is another process.
    assert_eq!(get(&gw, "/other/value").1["value"], "initial");
}

/// The Go twin: a FastFN Go handler answering `{"proxy": {...}}` (a struct, through its
/// JSON form) is fetched by the gateway as the other runtimes' answers are.
#[test]
fn edge_proxy_from_a_go_handler() {
    let port = upstream();
    let open =
        format!(r#"{{"edge": {{"base_url": "http://127.0.0.1:{port}", "allow_private": true}}}}"#);
    let go = r#"package main

type proxy struct {
	Path    string            `json:"path"`
	Method  string            `json:"method"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

func handler(event map[string]interface{}) interface{} {
	query, _ := event["query"].(map[string]interface{})
	n, _ := query["n"].(string)
	method, _ := event["method"].(string)
	return map[string]interface{}{"proxy": proxy{"/echo?via=go", "PUT",
		map[string]string{"x-edge": n}, "go " + method}}
}
"#;
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("go-proxied/handler.go", go),
            ("go-proxied/fn.config.json", &open),
        ],
    );
    let cache = tempdir();
    let gw = Gateway::start_args(
        &["--functions", dir.path().to_str().unwrap()],
        &[("EDGEFN_CACHE_DIR", cache.path().to_str().unwrap())],
    );
    let resp = client().post(gw.url("/go-proxied?n=5")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{}", gw.logs());
    assert_eq!(resp.headers()["x-upstream"], "yes");
    let body: Value = resp.json().unwrap();
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["path"], "/echo?via=go");
    assert_eq!(body["x_edge"], "5");
    assert_eq!(body["body"], "go POST");
}

/// FastFN's `worker_pool.max_queue` and `queue_timeout_ms` bound the wait for a worker:
/// with one busy worker, a queue of one and a 300 ms wait, a second request waits and
/// answers `worker pool queue timeout`, and of several at once beyond the queue the rest
/// answer `worker pool overflow` at once (the default queue, 32, would hold them all).
#[test]
fn worker_pool_max_queue_and_queue_timeout_bound_the_wait() {
    let dir = tempdir();
    let release = dir.path().join("release");
    let started = dir.path().join("started");
    let hold = format!(
        "import os, time\ndef handler(event):\n    open({:?}, 'w').close()\n    end = time.time() + 20\n    while not os.path.exists({:?}) and time.time() < end:\n        time.sleep(0.01)\n    return 'done'\n",
        started.to_str().unwrap(),
        release.to_str().unwrap()
    );
    write_tree(
        dir.path(),
        &[
            ("fns/hold/handler.py", hold.as_str()),
            (
                "fns/hold/fn.config.json",
                r#"{"workers": {"min": 1, "max": 1}, "concurrency": 1, "timeout_ms": 20000, "worker_pool": {"max_queue": 1, "queue_timeout_ms": 300}}"#,
            ),
        ],
    );
    let gw = Gateway::start(&dir.path().join("fns"));
    let first = std::thread::scope(|s| {
        let first = s.spawn(|| call(&gw, reqwest::Method::GET, "/hold"));
        // The first request occupies the worker before the others come.
        assert!(support::wait_until(
            std::time::Duration::from_secs(20),
            || started.exists()
        ));
        let (status, body) = call(&gw, reqwest::Method::GET, "/hold");
        assert_eq!(
            (status, body["error"].as_str()),
            (429, Some("worker pool queue timeout")),
            "{body}"
        );
        let answers = support::concurrent(6, |_| call(&gw, reqwest::Method::GET, "/hold"));
        let overflow = answers
            .iter()
            .filter(|(s, b)| *s == 429 && b["error"] == "worker pool overflow")
            .count();
        assert!(overflow >= 5, "{answers:?}");
        std::fs::write(&release, "").unwrap();
        first.join().unwrap()
    });
    assert_eq!(first.0, 200, "{}", gw.logs());
}

/// FastFN's `worker_pool.idle_ttl_seconds` is the function's own idle timeout: with one
/// second, the worker of `ttl` (FastFN's `min_warm` default, none kept) is stopped once it
/// idled that long, and the next request meets a new process; `plain` (no block) and `off`
/// (`enabled: false`: its `min_warm` and `idle_ttl_seconds` have no effect, as in FastFN)
/// keep theirs under `[runtimes]`'s 60 s. `edgefn check` warns about `off`'s two keys.
#[test]
fn worker_pool_idle_ttl_seconds_stops_an_idle_worker_and_enabled_false_ignores_it() {
    let pid = "import os\ndef handler(event):\n    return {'status': 200, 'body': {'pid': os.getpid()}}\n";
    let dir = tempdir();
    write_tree(
        dir.path(),
        &[
            ("ttl/handler.py", pid),
            (
                "ttl/fn.config.json",
                r#"{"worker_pool": {"idle_ttl_seconds": 1, "max_workers": 2}}"#,
            ),
            ("plain/handler.py", pid),
            ("off/handler.py", pid),
            (
                "off/fn.config.json",
                r#"{"worker_pool": {"enabled": false, "min_warm": 0, "idle_ttl_seconds": 1, "max_workers": 1}}"#,
            ),
        ],
    );
    let out = check(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for key in ["worker_pool.min_warm", "worker_pool.idle_ttl_seconds"] {
        assert!(
            stdout.lines().any(|l| l.starts_with("warning:")
                && l.contains("/off/fn.config.json")
                && l.contains(&format!(": {key}: "))
                && l.contains("enabled is false")),
            "no warning for off's {key}:\n{stdout}"
        );
    }
    assert!(
        !stdout
            .lines()
            .any(|l| l.starts_with("warning:") && l.contains("/ttl/fn.config.json")),
        "ttl's keys are implemented: {stdout}"
    );

    let gw = Gateway::start(dir.path());
    let pid_of = |path: &str| {
        let (status, body) = get(&gw, path);
        assert_eq!(status, 200, "{body} {}", gw.logs());
        body["pid"].as_u64().unwrap()
    };
    let (ttl, plain, off) = (pid_of("/ttl"), pid_of("/plain"), pid_of("/off"));
    let workers = |state: &str| {
        gw.metric(&format!(
            r#"edgefn_workers{{function="ttl",state="{state}"}}"#
        ))
        .unwrap_or(0.0)
    };
    assert!(
        support::wait_until(std::time::Duration::from_secs(20), || {
            workers("idle") + workers("busy") + workers("starting") == 0.0
        }),
        "ttl's idle worker was not stopped: {}",
        gw.metrics()
    );
    assert_ne!(
        pid_of("/ttl"),
        ttl,
        "a new worker serves after the idle stop"
    );
    assert_eq!(pid_of("/plain"), plain, "no block: the worker stays");
    assert_eq!(
        pid_of("/off"),
        off,
        "enabled false: idle_ttl_seconds has no effect"
    );
}
