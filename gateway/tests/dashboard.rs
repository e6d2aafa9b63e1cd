//! `deploy/grafana-dashboard.json` against the metrics contract: every `edgefn_*` name the
//! dashboard queries is exported (`gateway::metrics::names::ALL`, histograms through their
//! `_bucket` / `_sum` / `_count` series), every exported name appears on it, the panels are
//! well formed, and every PromQL expression parses (`promtool check rules`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use gateway::metrics::names::{Kind, ALL};
use serde_json::Value;
use support::prometheus::promtool;

fn dashboard() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana-dashboard.json"
    );
    let text = std::fs::read_to_string(path).expect("deploy/grafana-dashboard.json is readable");
    serde_json::from_str(&text).expect("the dashboard is valid JSON")
}

/// Every string in the document (exprs, variable queries, descriptions alike).
fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// `edgefn_*` identifiers in a string, at identifier boundaries.
fn metric_tokens(s: &str) -> Vec<&str> {
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = s[from..].find("edgefn_") {
        let start = from + pos;
        let mut end = start;
        while end < bytes.len() && is_ident(bytes[end]) {
            end += 1;
        }
        if start == 0 || !is_ident(bytes[start - 1]) {
            out.push(&s[start..end]);
        }
        from = end.max(start + 1);
    }
    out
}

/// The exported metric a queried series belongs to, if any.
fn resolve(token: &str) -> Option<&'static str> {
    ALL.iter().find_map(|&(name, kind, _)| {
        let histogram_series = kind == Kind::Histogram
            && ["_bucket", "_sum", "_count"]
                .iter()
                .any(|suffix| token.strip_suffix(suffix) == Some(name));
        (token == name || histogram_series).then_some(name)
    })
}

/// `(panel title, expr)` of every query target.
fn exprs(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels is an array") {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("every target has an expr");
            out.push((
                p["title"].as_str().unwrap_or("?").to_owned(),
                expr.to_owned(),
            ));
        }
    }
    out
}

#[test]
fn every_metric_the_dashboard_queries_is_exported() {
    let d = dashboard();
    let mut all = Vec::new();
    strings(&d, &mut all);
    let unknown: BTreeSet<&str> = all
        .iter()
        .flat_map(|s| metric_tokens(s))
        .filter(|t| resolve(t).is_none())
        .collect();
    assert!(
        unknown.is_empty(),
        "the dashboard names metrics edgefn does not export: {unknown:?}"
    );
}

#[test]
fn every_exported_metric_is_on_the_dashboard() {
    let d = dashboard();
    let used: BTreeSet<&str> = exprs(&d)
        .iter()
        .flat_map(|(_, e)| metric_tokens(e).into_iter().filter_map(resolve))
        .collect();
    let missing: Vec<&str> = ALL
        .iter()
        .map(|&(name, _, _)| name)
        .filter(|n| !used.contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "exported metrics with no dashboard panel: {missing:?}"
    );
}

#[test]
fn histograms_are_queried_through_their_series() {
    // A bare histogram name matches no series in Prometheus: only _bucket/_sum/_count do.
    for (title, expr) in exprs(&dashboard()) {
        for t in metric_tokens(&expr) {
            let bare_histogram = ALL
                .iter()
                .any(|&(name, kind, _)| kind == Kind::Histogram && name == t);
            assert!(
                !bare_histogram,
                "panel {title:?} queries the bare histogram {t}"
            );
        }
    }
}

#[test]
fn panels_are_well_formed() {
    let d = dashboard();
    assert!(d["uid"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(d["title"].as_str().is_some_and(|u| !u.is_empty()));
    let vars: BTreeSet<&str> = d["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(vars.contains("datasource"), "a datasource variable");
    let mut ids = BTreeMap::new();
    for p in d["panels"].as_array().expect("panels") {
        let id = p["id"].as_u64().expect("every panel has a numeric id");
        let title = p["title"].as_str().expect("every panel has a title");
        assert!(ids.insert(id, title).is_none(), "duplicate panel id {id}");
        let grid = &p["gridPos"];
        for k in ["x", "y", "w", "h"] {
            assert!(grid[k].is_u64(), "panel {title:?}: gridPos.{k}");
        }
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(
            p["datasource"]["uid"], "${datasource}",
            "panel {title:?} uses the datasource variable"
        );
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or_default();
            for var in expr.split('$').skip(1) {
                let name: String = var
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    name.starts_with("__") || vars.contains(name.as_str()),
                    "panel {title:?} uses undefined variable ${name}"
                );
            }
        }
    }
}

/// Grafana's variables replaced by values Prometheus accepts.
fn concrete(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$function", ".*")
        .replace("$instance", ".*")
}

#[test]
fn every_expression_parses_with_promtool() {
    let rules: Vec<Value> = exprs(&dashboard())
        .iter()
        .enumerate()
        .map(|(i, (_, e))| serde_json::json!({"record": format!("dashboard:expr{i}"), "expr": concrete(e)}))
        .collect();
    // JSON is YAML: promtool reads this rules file as is.
    let doc = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    let mut file = tempfile::Builder::new()
        .suffix(".yml")
        .tempfile()
        .expect("temp file");
    file.write_all(doc.to_string().as_bytes())
        .expect("write rules");
    let rules = file.path().to_str().unwrap();
    promtool(
        &["check", "rules", rules],
        b"",
        "parse the dashboard's PromQL",
    );
}

#[test]
fn token_scanner_finds_names_at_boundaries_only() {
    assert_eq!(
        metric_tokens("rate(edgefn_requests_total{a=\"b\"}[5m]) / x_edgefn_y"),
        vec!["edgefn_requests_total"]
    );
    assert_eq!(
        resolve("edgefn_request_duration_seconds_bucket"),
        Some("edgefn_request_duration_seconds")
    );
    assert_eq!(resolve("edgefn_requests_total_bucket"), None);
}
