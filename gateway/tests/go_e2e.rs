//! Go functions through the real `edgefn` binary, each built by the real go tool: FastFN's
//! Go tree shapes (method file routes with a private `_shared.go`, parameters merged into
//! the event, a catch-all, a folder entry with a helper and a `go.mod` beside it, a `go/`
//! runtime-grouped folder, `Handler`, `invoke.handler`, `runtime: "go"`, `FN_RUNTIMES=go`
//! on a per-runtime tree), the assets `run_worker_first` tree, and the lifecycle: a crash
//! is 502 and heals, a timeout is 504, a secret printed is masked, a compile error is a 503
//! naming the file and the compiler's message, and a broken edit keeps the last good build
//! serving.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::{client, tempdir, wait_until, write_tree, Gateway};

const SECRET: &str = "go-secret-never-logged";

/// One cache for every Go build of the test run (the go tool's own build cache is the
/// machine's, as for any Go build).
fn go_gateway(functions: &Path, env: &[(&str, &str)]) -> Gateway {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("edgefn-go-cache");
    let mut all = vec![("EDGEFN_CACHE_DIR", cache.to_str().unwrap())];
    all.extend_from_slice(env);
    Gateway::start_args(&["--functions", functions.to_str().unwrap()], &all)
}

fn call(gw: &Gateway, method: reqwest::Method, path: &str, body: &str) -> (u16, String, Value) {
    let resp = client()
        .request(method, gw.url(path))
        .body(body.to_owned())
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = resp.text().unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, kind, json)
}

fn get(gw: &Gateway, path: &str) -> (u16, Value) {
    let (status, _, body) = call(gw, reqwest::Method::GET, path, "");
    (status, body)
}

const SHARED: &str = r#"package main

import "encoding/json"

type item struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

func items() []item { return []item{{1, "bolt"}, {2, "nut"}} }

func jsonAnswer(status int, v interface{}) map[string]interface{} {
	body, _ := json.Marshal(v)
	return map[string]interface{}{"status": status,
		"headers": map[string]string{"Content-Type": "application/json"}, "body": string(body)}
}
"#;

const LIST: &str = r#"package main

func handler(event map[string]interface{}) interface{} {
	return jsonAnswer(200, map[string]interface{}{"items": items(), "via": "go"})
}
"#;

const CREATE: &str = r#"package main

import "encoding/json"

func handler(event map[string]interface{}) interface{} {
	raw, _ := event["body"].(string)
	var in map[string]interface{}
	if err := json.Unmarshal([]byte(raw), &in); err != nil {
		return jsonAnswer(400, map[string]string{"error": "invalid JSON"})
	}
	in["created"] = true
	return jsonAnswer(201, in)
}
"#;

/// FastFN's shape for a parameter that shares its name with an event field: `id` is the
/// request id at the top level, so the route's id is read from `params`.
const ONE: &str = r#"package main

func handler(event map[string]interface{}) interface{} {
	params, _ := event["params"].(map[string]interface{})
	return map[string]interface{}{"status": 200, "body": map[string]interface{}{
		"id": params["id"], "method": event["method"]}}
}
"#;

const POST: &str = r#"package main

func handler(event map[string]interface{}) interface{} {
	category, _ := event["category"].(string)
	slug, _ := event["slug"].(string)
	return map[string]string{"category": category, "slug": slug, "url": "/posts/" + category + "/" + slug}
}
"#;

const FILES: &str = r#"package main

import "strings"

func handler(event map[string]interface{}) interface{} {
	params, _ := event["params"].(map[string]interface{})
	path, _ := params["path"].(string)
	return map[string]interface{}{"path": path, "segments": strings.Split(path, "/")}
}
"#;

const HELLO: &str = r#"package main

import "os"

func handler(event map[string]interface{}) interface{} {
	query, _ := event["query"].(map[string]interface{})
	name, _ := query["name"].(string)
	return map[string]interface{}{"status": 200, "body": greet(name) + " " + os.Getenv("PLACE")}
}
"#;

const GREET: &str = r#"package main

func greet(name string) string {
	if name == "" {
		name = "world"
	}
	return "hello " + name
}
"#;

const SESSION: &str = r#"package main

func handler(event map[string]interface{}) interface{} {
	session, _ := event["session"].(map[string]interface{})
	if session == nil || session["id"] == nil {
		return map[string]interface{}{"status": 401, "body": map[string]string{"error": "no session"}}
	}
	cookies, _ := session["cookies"].(map[string]interface{})
	return map[string]interface{}{"session_id": session["id"], "theme": cookies["theme"]}
}
"#;

/// FastFN's Go trees, as `FN_RUNTIMES=go fastfn dev` serves them.
#[test]
fn fastfn_go_tree_shapes_answer_as_fastfn() {
    let root = tempdir();
    let dir = root.path().join("functions");
    write_tree(
        &dir,
        &[
            ("products/_shared.go", SHARED),
            ("products/get.go", LIST),
            ("products/post.go", CREATE),
            // The per-runtime twin FN_RUNTIMES=go leaves out (else the route is a 409).
            ("products/get.py", "def handler(event):\n    return 'python'\n"),
            ("products/[id]/get.go", ONE),
            ("products/[id]/delete.go", ONE),
            ("posts/[category]/[slug]/get.go", POST),
            ("files/[...path]/get.go", FILES),
            ("hello-go/handler.go", HELLO),
            ("hello-go/greet.go", GREET),
            ("hello-go/fn.env.json", r#"{"PLACE": "from fn.env.json"}"#),
            // A module of its own: built in module mode, with no module to fetch.
            ("hello-go/go.mod", "module example.com/hello\n\ngo 1.19\n"),
            ("go/session-demo/main.go", SESSION),
            (
                "caps/handler.go",
                "package main\n\nfunc Handler(event map[string]interface{}) string { return \"capital\" }\n",
            ),
            (
                "named/handler.go",
                "package main\n\nfunc serve(event map[string]interface{}) []int { return []int{1, 2} }\n",
            ),
            (
                "named/fn.config.json",
                r#"{"runtime": "go", "invoke": {"handler": "serve", "methods": ["GET"]}}"#,
            ),
        ],
    );
    let gw = go_gateway(&dir, &[("FN_RUNTIMES", "go")]);
    let (status, kind, body) = call(&gw, reqwest::Method::GET, "/products", "");
    assert_eq!((status, kind.as_str()), (200, "application/json"), "{body}");
    assert_eq!(
        body,
        serde_json::json!({"items": [{"id": 1, "name": "bolt"}, {"id": 2, "name": "nut"}], "via": "go"})
    );
    let (status, _, body) = call(
        &gw,
        reqwest::Method::POST,
        "/products",
        r#"{"name":"gear"}"#,
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body, serde_json::json!({"name": "gear", "created": true}));
    let (status, _, body) = call(&gw, reqwest::Method::POST, "/products", "not json");
    assert_eq!(
        (status, &body["error"]),
        (400, &Value::from("invalid JSON"))
    );
    assert_eq!(
        get(&gw, "/products/42").1,
        serde_json::json!({"id": "42", "method": "GET"})
    );
    let (status, _, body) = call(&gw, reqwest::Method::DELETE, "/products/7", "");
    assert_eq!((status, &body["method"]), (200, &Value::from("DELETE")));
    assert_eq!(
        get(&gw, "/posts/tech/hello-world").1,
        serde_json::json!({"category": "tech", "slug": "hello-world", "url": "/posts/tech/hello-world"})
    );
    assert_eq!(
        get(&gw, "/files/docs/2024/report.pdf").1,
        serde_json::json!({"path": "docs/2024/report.pdf", "segments": ["docs", "2024", "report.pdf"]})
    );
    let (status, kind, body) = call(&gw, reqwest::Method::GET, "/hello-go?name=go", "");
    assert_eq!(
        (status, kind.as_str(), body.as_str()),
        (
            200,
            "text/plain; charset=utf-8",
            Some("hello go from fn.env.json")
        )
    );
    let (status, body) = get(&gw, "/session-demo");
    assert_eq!((status, &body["error"]), (401, &Value::from("no session")));
    let resp = client()
        .get(gw.url("/session-demo/anything"))
        .header("cookie", "session_id=abc123; theme=dark")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().unwrap(),
        serde_json::json!({"session_id": "abc123", "theme": "dark"})
    );
    assert_eq!(get(&gw, "/caps"), (200, Value::from("capital")));
    assert_eq!(get(&gw, "/named"), (200, serde_json::json!([1, 2])));
    assert_eq!(
        call(&gw, reqwest::Method::POST, "/named", "").0,
        404,
        "invoke.methods is honoured (FastFN: not found)"
    );
}

/// FastFN's `assets-worker-first` shape: the Go handler answers before the static file of
/// the same path; other paths are the assets and the SPA fallback.
#[test]
fn assets_run_worker_first_serves_the_go_handler_before_the_file() {
    let root = tempdir();
    let dir = root.path().join("functions");
    write_tree(
        &dir,
        &[
            (
                "fn.config.json",
                r#"{"assets": {"directory": "dist", "not_found_handling": "single-page-application", "run_worker_first": true}}"#,
            ),
            ("dist/index.html", "<h1>shell</h1>"),
            ("dist/style.css", "body{}"),
            ("dist/api-go/index.html", "<p>static api-go</p>"),
            (
                "go/api-go/handler.go",
                "package main\n\nimport \"encoding/json\"\n\nfunc handler(_ map[string]interface{}) interface{} {\n\tbody, _ := json.Marshal(map[string]string{\"runtime\": \"go\", \"path\": \"/api-go\"})\n\treturn map[string]interface{}{\"status\": 200, \"headers\": map[string]string{\"Content-Type\": \"application/json\"}, \"body\": string(body)}\n}\n",
            ),
        ],
    );
    let gw = go_gateway(&dir, &[]);
    assert_eq!(
        get(&gw, "/api-go"),
        (200, serde_json::json!({"runtime": "go", "path": "/api-go"}))
    );
    assert_eq!(get(&gw, "/"), (200, Value::from("<h1>shell</h1>")));
    assert_eq!(get(&gw, "/style.css"), (200, Value::from("body{}")));
    let resp = client()
        .get(gw.url("/catalog/overview"))
        .header("accept", "text/html")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().unwrap(), "<h1>shell</h1>");
}

const LIVE: &str = r#"package main

import (
	"fmt"
	"os"
	"time"
)

func handler(event map[string]interface{}) interface{} {
	query, _ := event["query"].(map[string]interface{})
	if query["die"] != nil {
		os.Exit(3)
	}
	if query["sleep"] != nil {
		time.Sleep(30 * time.Second)
	}
	fmt.Println("token=" + os.Getenv("TOKEN"))
	return map[string]interface{}{"pid": os.Getpid(), "version": "v1"}
}
"#;

fn pid_of(gw: &Gateway) -> Value {
    let (status, body) = get(gw, "/live");
    assert_eq!(status, 200, "{body}: {}", gw.logs());
    body["pid"].clone()
}

#[test]
fn crash_timeout_masking_build_errors_and_a_broken_edit_keeping_the_last_good_build() {
    let root = tempdir();
    let dir = root.path().join("functions");
    let env = format!(r#"{{"TOKEN": {{"value": "{SECRET}", "is_secret": true}}}}"#);
    write_tree(
        &dir,
        &[
            ("live/handler.go", LIVE),
            (
                "live/fn.config.json",
                r#"{"timeout_ms": 1500, "workers": {"min": 1, "max": 1}}"#,
            ),
            ("live/fn.env.json", &env),
            (
                "bad/handler.go",
                "package main\n\nfunc handler(event map[string]interface{}) interface{} {\n\tvar n int = \"not a number\"\n\treturn n\n}\n",
            ),
            (
                "nosym/handler.go",
                "package main\n\nfunc serve(event map[string]interface{}) interface{} { return 1 }\n",
            ),
            (
                "shape/handler.go",
                "package main\n\nfunc handler(event string) string { return event }\n",
            ),
        ],
    );
    let gw = go_gateway(&dir, &[]);
    let first = pid_of(&gw);
    assert_eq!(pid_of(&gw), first, "the same warm worker");
    assert_eq!(get(&gw, "/live?die=1").0, 502, "{}", gw.logs());
    assert_ne!(pid_of(&gw), first, "healed with a new process");
    assert_eq!(get(&gw, "/live?sleep=1").0, 504, "{}", gw.logs());
    pid_of(&gw);
    assert!(
        wait_until(Duration::from_secs(20), || gw.logs().contains("token=***")),
        "{}",
        gw.logs()
    );
    assert!(!gw.logs().contains(SECRET));

    let logs = gw.logs();
    assert_eq!(get(&gw, "/bad").0, 503, "a failed build answers 503");
    let bad = dir.canonicalize().unwrap().join("bad/handler.go");
    assert!(
        logs.contains(&format!("{}:4:14", bad.display())) && logs.contains("cannot use"),
        "the compiler's message names the function's file and line: {logs}"
    );
    assert_eq!(get(&gw, "/nosym").0, 503);
    assert!(
        logs.contains("defines no `func handler(event map[string]interface{}) ...`"),
        "{logs}"
    );
    assert_eq!(get(&gw, "/shape").0, 503);
    assert!(logs.contains("of handler does not match"), "{logs}");

    // A broken edit: the build fails, the last good build keeps serving.
    write_tree(
        &dir,
        &[("live/handler.go", &LIVE.replace("\"v1\"", "v2 +"))],
    );
    assert!(
        gw.wait_log("the new version's build failed", Duration::from_secs(120)),
        "{}",
        gw.logs()
    );
    assert_eq!(get(&gw, "/live").1["version"], "v1");
    assert!(gw.metric(r#"edgefn_reload_total{result="error"}"#) >= Some(1.0));
    write_tree(
        &dir,
        &[("live/handler.go", &LIVE.replace("\"v1\"", "\"v2\""))],
    );
    assert!(
        wait_until(Duration::from_secs(120), || get(&gw, "/live").1["version"]
            == "v2"),
        "{}",
        gw.logs()
    );
}
