//! FastFN's debug headers (`include_debug_headers`): which function, runtime and version
//! answered, the gateway's request id, latency and pool size, for a developer reading
//! responses. FastFN's `X-Fn-Stdout` / `X-Fn-Stderr` are not sent: the function's output
//! goes to the log, masked, never into a response.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::snapshot::Function;

pub fn stamp(headers: &mut HeaderMap, f: &Function, rid: &HeaderValue, latency: Duration) {
    let def = &f.def;
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    put("x-fn-runtime", def.runtime.as_str());
    put("x-fn-function", &def.name);
    put("x-fn-version", def.version.as_deref().unwrap_or("default"));
    put("x-fn-latency-ms", &latency.as_millis().to_string());
    put(
        "x-fn-worker-pool-max-workers",
        &def.policy.max_workers.to_string(),
    );
    headers.insert(HeaderName::from_static("x-fn-request-id"), rid.clone());
}
