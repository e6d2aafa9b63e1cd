//! `/_fn/catalog`: the route list FastFN's clients read (`console/data.lua`'s `catalog`),
//! rendered once per snapshot from the catalog only — names, routes, methods, limits and
//! auth types; no env value, key or path on disk can reach it.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::catalog::discover::Segment;
use crate::catalog::{fastfn_route_text, FunctionDef};
use crate::schedule::config::Trigger;

pub fn render(functions: &[FunctionDef]) -> Vec<u8> {
    serde_json::to_vec(&document(functions)).expect("a JSON value always serialises")
}

pub fn document(functions: &[FunctionDef]) -> Value {
    let mut mapped: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut runtimes: BTreeMap<&str, BTreeMap<String, Value>> = BTreeMap::new();
    for f in functions {
        let base = f.name.split('@').next().unwrap_or(&f.name).to_owned();
        let methods: Vec<&str> = f.policy.methods.iter().map(|m| m.as_str()).collect();
        let mut routes = Vec::new();
        for r in &f.routes {
            // `[[...x]]` answers its base path too, listed as FastFN lists it.
            if let Some(Segment::OptionalCatchAll(_)) = r.last() {
                if r.len() > 1 {
                    routes.push(fastfn_route_text(&r[..r.len() - 1]));
                }
            }
            routes.push(fastfn_route_text(r));
        }
        for route in &routes {
            mapped.entry(route.clone()).or_default().push(json!({
                "runtime": f.runtime.as_str(),
                "fn_name": base,
                "version": f.version,
                "methods": methods,
            }));
        }
        let entry = runtimes
            .entry(f.runtime.as_str())
            .or_default()
            .entry(base.clone())
            .or_insert_with(|| {
                json!({"name": base, "has_default": false, "versions": [],
                       "policy": {"methods": [], "routes": []}, "versions_policy": {}})
            });
        let mut policy = json!({
            "methods": methods,
            "routes": routes,
            "timeout_ms": f.policy.timeout.as_millis() as u64,
            "max_body_bytes": f.policy.max_body_bytes,
            "auth": f.auth.kind(),
            "summary": f.policy.summary,
            "group": f.policy.group,
        });
        // FastFN lists a function's normalised `keep_warm` in its policy.
        if let Some(Trigger::KeepWarm {
            ping_every,
            idle_ttl,
        }) = f.keep_warm.as_ref().map(|s| &s.trigger)
        {
            policy["keep_warm"] = json!({
                "enabled": true,
                "ping_every_seconds": ping_every.as_secs(),
                "idle_ttl_seconds": idle_ttl.as_secs(),
            });
        }
        match &f.version {
            Some(v) => {
                entry["versions"]
                    .as_array_mut()
                    .expect("built as an array")
                    .push(json!(v));
                entry["versions_policy"][v.as_str()] = policy;
            }
            None => {
                entry["has_default"] = json!(true);
                entry["policy"] = policy;
            }
        }
    }
    let runtimes: Map<String, Value> = runtimes
        .into_iter()
        .map(|(rt, fns)| {
            (
                rt.to_owned(),
                json!({"functions": fns.into_values().collect::<Vec<_>>()}),
            )
        })
        .collect();
    let generated_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    json!({
        "generated_at": generated_at,
        "runtime_order": runtimes.keys().collect::<Vec<_>>(),
        "mapped_routes": mapped,
        "mapped_route_conflicts": {},
        "runtimes": runtimes,
    })
}
