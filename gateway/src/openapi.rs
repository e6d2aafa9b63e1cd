//! The OpenAPI 3.1 document of every route, rendered once per snapshot. Built from the
//! catalog only (names, methods, parameters, security scheme types): no env value can
//! reach it.

use serde_json::{json, Map, Value};

use crate::catalog::discover::Segment;
use crate::catalog::FunctionDef;

/// Renders the document as JSON bytes.
pub fn render(functions: &[FunctionDef]) -> Vec<u8> {
    serde_json::to_vec_pretty(&document(functions)).expect("a JSON value always serialises")
}

pub fn document(functions: &[FunctionDef]) -> Value {
    let mut paths = Map::new();
    let mut schemes = Map::new();
    paths.insert(
        "/_fn/health".into(),
        json!({"get": {
            "operationId": "gateway_health",
            "summary": "Gateway liveness",
            "tags": ["gateway"],
            "responses": {"200": {"description": "The gateway is up",
                "content": {"application/json": {"schema": {"type": "object",
                    "properties": {"status": {"type": "string"}}}}}}}
        }}),
    );
    for f in functions {
        let scheme_name = scheme_name(&f.name);
        // Any-of policies list each alternative (OpenAPI: one requirement object each,
        // `{}` for anonymous); a single policy keeps its one scheme under the plain name.
        let alternatives = f.auth.openapi_alternatives();
        let security = if alternatives.len() > 1 {
            let reqs: Vec<Value> = alternatives
                .into_iter()
                .enumerate()
                .map(|(i, scheme)| match scheme {
                    Some(scheme) => {
                        let name = format!("{scheme_name}_{i}");
                        schemes.insert(name.clone(), scheme);
                        json!({ name: [] })
                    }
                    None => json!({}),
                })
                .collect();
            Some(Value::Array(reqs))
        } else {
            f.auth.openapi_scheme().map(|scheme| {
                schemes.insert(scheme_name.clone(), scheme);
                json!([{ scheme_name.clone(): [] }])
            })
        };
        for (i, route) in openapi_routes(f).into_iter().enumerate() {
            let suffix = if i == 0 {
                String::new()
            } else {
                format!("_{i}")
            };
            let item = paths
                .entry(crate::catalog::route_text(route))
                .or_insert_with(|| Value::Object(Map::new()));
            let item = item.as_object_mut().expect("path items are objects");
            for method in &f.policy.methods {
                let lower = method.as_str().to_ascii_lowercase();
                let op = operation(f, route, &lower, &suffix, security.as_ref());
                item.insert(lower, op);
            }
        }
    }
    let mut components = Map::new();
    components.insert(
        "schemas".into(),
        json!({"Error": {"type": "object", "required": ["error", "request_id"],
            "properties": {"error": {"type": "string"}, "request_id": {"type": "string"}}}}),
    );
    if !schemes.is_empty() {
        components.insert("securitySchemes".into(), Value::Object(schemes));
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "edgefn functions", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": components,
    })
}

/// Every path a function answers: `[[...x]]` is listed with and without its tail.
fn openapi_routes(f: &FunctionDef) -> Vec<&[Segment]> {
    let mut out: Vec<&[Segment]> = Vec::new();
    for r in &f.routes {
        if let Some(Segment::OptionalCatchAll(_)) = r.last() {
            if r.len() > 1 {
                out.push(&r[..r.len() - 1]);
            }
        }
        out.push(r);
    }
    out
}

fn operation(
    f: &FunctionDef,
    route: &[Segment],
    lower: &str,
    suffix: &str,
    security: Option<&Value>,
) -> Value {
    let params: Vec<Value> = route
        .iter()
        .filter_map(|s| match s {
            Segment::Param(p) => Some(json!({"name": p, "in": "path", "required": true,
                "schema": {"type": "string"}})),
            Segment::CatchAll(p) | Segment::OptionalCatchAll(p) => Some(json!({
                "name": p, "in": "path", "required": true,
                "description": "The rest of the path, one or more segments (a/b/c)",
                "schema": {"type": "string"}, "x-catch-all": true})),
            Segment::Static(_) => None,
        })
        .collect();
    let mut op = Map::new();
    op.insert(
        "operationId".into(),
        json!(format!("{}_{}{suffix}", operation_base(&f.name), lower)),
    );
    op.insert(
        "summary".into(),
        json!(f.policy.summary.clone().unwrap_or_else(|| format!(
            "{} function {}",
            f.runtime.as_str(),
            f.name
        ))),
    );
    let tag = f.policy.group.as_deref().unwrap_or(f.runtime.as_str());
    op.insert("tags".into(), json!([tag]));
    if !params.is_empty() {
        op.insert("parameters".into(), Value::Array(params));
    }
    if matches!(lower, "post" | "put" | "patch") {
        op.insert(
            "requestBody".into(),
            json!({"required": false, "content": {"*/*": {"schema": {}}}}),
        );
    }
    op.insert("responses".into(), responses(security.is_some()));
    if let Some(sec) = security {
        op.insert("security".into(), sec.clone());
    }
    Value::Object(op)
}

fn responses(secured: bool) -> Value {
    let err = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut r = Map::new();
    r.insert(
        "200".into(),
        json!({"description": "The function's response"}),
    );
    if secured {
        r.insert("401".into(), err("Missing or invalid credentials"));
    }
    r.insert("413".into(), err("Body larger than the function's limit"));
    r.insert(
        "429".into(),
        err("Rate limited, or the function is at capacity"),
    );
    r.insert("500".into(), err("The function raised an error"));
    r.insert("502".into(), err("The function's worker crashed"));
    r.insert("503".into(), err("The function is starting or unavailable"));
    r.insert("504".into(), err("The function timed out"));
    Value::Object(r)
}

/// `api/users/[id]` → `api_users_id`: valid as an operationId and a component key.
fn operation_base(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .split('_')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

fn scheme_name(name: &str) -> String {
    format!("{}_auth", operation_base(name))
}
