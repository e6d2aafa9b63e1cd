//! FastFN's edge proxy: a handler answers `{"proxy": {...}}` and the gateway fetches that
//! upstream within the function's `edge` config (`config.rs`), by `proxy.rs`.

pub mod config;
pub mod proxy;

use std::time::Duration;

use http::Method;

pub use config::{EdgeConfig, RawEdge};
pub use proxy::EdgeError;

use crate::pool::WorkerResponse;

/// The response to send for a worker's answer: the answer itself, or, when it asks for a
/// proxy, the upstream's. `method` is the request's, `timeout` the function's.
pub async fn answer(
    edge: Option<&EdgeConfig>,
    mut answer: WorkerResponse,
    method: &Method,
    timeout: Duration,
) -> Result<WorkerResponse, EdgeError> {
    let Some(p) = answer.proxy.take() else {
        return Ok(answer);
    };
    let cfg = edge.ok_or(EdgeError::Disabled)?;
    let out = proxy::outbound(cfg, &p, method, timeout)?;
    proxy::run(cfg, out).await
}
