//! The admin listener: `/metrics`, `/healthz`, `/readyz`, and the async queue's `/async`. Kept off the public port so
//! operators can firewall it separately.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};

use super::async_admin;
use crate::async_queue::AsyncQueue;
use crate::error::GatewayError;
use crate::metrics::Exporter;
use crate::request_id;
use crate::respond::{self, Body};
use crate::snapshot::Store;

pub struct AdminState {
    pub exporter: Exporter,
    pub store: Arc<Store>,
    /// Set once the first snapshot is stored.
    pub ready: AtomicBool,
    /// Which layer limits connections (XDP or user space), set at start-up.
    pub connection_limit: OnceLock<String>,
    /// `GET /async/<call-id>` and `GET /async?state=...` read it.
    pub async_queue: Option<Arc<AsyncQueue>>,
}

/// The admin service: the queue's endpoints (which read the store) or [`handle`].
pub async fn serve<B>(state: &AdminState, req: Request<B>) -> Response<Body> {
    let path = req.uri().path();
    if path == "/async" || path.starts_with("/async/") {
        let rid = request_id::for_request(req.headers());
        return match async_admin::answer(state.async_queue.as_deref(), &req).await {
            Ok((status, body)) => respond::json(status, body, &rid),
            Err(e) => respond::error(&e, &rid),
        };
    }
    handle(state, &req)
}

pub fn handle<B>(state: &AdminState, req: &Request<B>) -> Response<Body> {
    let rid = request_id::for_request(req.headers());
    match req.uri().path() {
        "/metrics" => {
            let mut resp = respond::json(StatusCode::OK, state.exporter.render(), &rid);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        "/healthz" => respond::json(
            StatusCode::OK,
            Bytes::from_static(br#"{"status":"ok"}"#),
            &rid,
        ),
        "/readyz" => {
            let snap = state.store.load();
            let ready = state.ready.load(Ordering::Acquire);
            // Functions whose dependencies install or first workers start: they answer
            // 503 with Retry-After meanwhile; the others already serve.
            let pending: Vec<&str> = snap
                .functions
                .iter()
                .filter(|f| f.pool.is_pending())
                .map(|f| &*f.def.name)
                .collect();
            let body = serde_json::json!({
                "status": if ready { "ready" } else { "starting" },
                "generation": snap.generation,
                "functions": snap.functions.len(),
                "pending": pending,
                "connection_limit": state.connection_limit.get().map(String::as_str).unwrap_or("starting"),
            });
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            respond::json(status, serde_json::to_vec(&body).unwrap_or_default(), &rid)
        }
        _ => respond::error(&GatewayError::NotFound, &rid),
    }
}
