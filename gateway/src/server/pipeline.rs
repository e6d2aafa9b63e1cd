//! The request path: one snapshot load, then route → auth → rate limit → bounded body →
//! pool. Every failure becomes a [`GatewayError`] answered by `respond`; no worker is
//! touched before auth and limits have passed.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use crate::auth::{AuthRequest, Identity};
use crate::error::GatewayError;
use crate::logging;
use crate::metrics::FunctionMetrics;
use crate::pool::{AuthContext, WorkerRequest};
use crate::request_id;
use crate::respond::{self, Body};
use crate::router::Match;
use crate::snapshot::{Function, Store};

/// Shared by every connection of the public listener.
pub struct State {
    pub store: Arc<Store>,
    pub unmatched: FunctionMetrics,
    pub access_log: bool,
}

static HEALTH: &[u8] = br#"{"status":"ok"}"#;

pub async fn handle(state: &State, req: Request<Incoming>, peer: IpAddr) -> Response<Body> {
    let start = Instant::now();
    let rid = request_id::for_request(req.headers());
    let method = req.method().clone();
    if let Some(resp) = gateway_endpoint(state, &req, &rid) {
        return resp;
    }
    let snap = state.store.load_full();
    let (resp, func, subject) = match snap.router.lookup(req.uri().path()) {
        None => (respond::error(&GatewayError::NotFound, &rid), None, None),
        Some(m) => {
            let f = &snap.functions[m.index];
            match invoke(f, req, peer, m, &rid).await {
                Ok((resp, subject)) => (resp, Some(f), subject),
                Err(e) => (respond::error(&e, &rid), Some(f), None),
            }
        }
    };
    let metrics = func.map_or(&state.unmatched, |f| &f.metrics);
    let elapsed = start.elapsed();
    metrics.request(&method, resp.status(), elapsed);
    if state.access_log {
        logging::access(
            &rid,
            func.map_or(crate::metrics::names::UNMATCHED, |f| &f.def.name),
            &method,
            resp.status(),
            elapsed,
            subject.as_deref(),
        );
    }
    resp
}

/// `/_fn/health` and `/_fn/openapi.json`, answered without touching any function.
fn gateway_endpoint(
    state: &State,
    req: &Request<Incoming>,
    rid: &HeaderValue,
) -> Option<Response<Body>> {
    let path = req.uri().path();
    let rest = path.strip_prefix("/_fn/")?;
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let allow = HeaderValue::from_static("GET, HEAD");
        return Some(respond::error(
            &GatewayError::MethodNotAllowed { allow },
            rid,
        ));
    }
    Some(match rest {
        "health" => respond::json(StatusCode::OK, Bytes::from_static(HEALTH), rid),
        "openapi.json" => respond::json(StatusCode::OK, state.store.load().openapi.clone(), rid),
        _ => respond::error(&GatewayError::NotFound, rid),
    })
}

type Invoked = (Response<Body>, Option<Arc<str>>);

/// The checks that need no IO (method, and auth + rate limit unless the policy signs the
/// body) run before any future is boxed: a rejected request allocates nothing here and
/// the per-request future hyper stores stays small. Only admitted requests (and HMAC
/// ones, which must read the body first) continue in a boxed future.
async fn invoke(
    f: &Function,
    req: Request<Incoming>,
    peer: IpAddr,
    route: Match,
    rid: &HeaderValue,
) -> Result<Invoked, GatewayError> {
    if !f.def.policy.methods.contains(req.method()) {
        return Err(GatewayError::MethodNotAllowed {
            allow: f.allow.clone(),
        });
    }
    let (parts, body) = req.into_parts();
    let now_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let admitted = if f.def.auth.needs_body() {
        None
    } else {
        let identity = authenticate(f, &parts, &[], now_unix)?;
        check_limit(f, peer, &identity)?;
        Some(identity)
    };
    Box::pin(finish(f, parts, body, admitted, peer, route, rid, now_unix)).await
}

/// Body read (bounded), HMAC verification when the policy needs the body, then the pool.
#[allow(clippy::too_many_arguments)]
async fn finish(
    f: &Function,
    parts: Parts,
    body: Incoming,
    admitted: Option<Identity>,
    peer: IpAddr,
    route: Match,
    rid: &HeaderValue,
    now_unix: u64,
) -> Result<Invoked, GatewayError> {
    let body = read_body(f, &parts, body).await?;
    let identity = match admitted {
        Some(identity) => identity,
        None => {
            let identity = authenticate(f, &parts, &body, now_unix)?;
            check_limit(f, peer, &identity)?;
            identity
        }
    };
    // Only now, with the request admitted, are the parameters copied out of the path.
    let params = f
        .def
        .param_names()
        .zip(route.params(parts.uri.path()))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let subject = identity.subject.clone();
    let answer = f
        .pool
        .dispatch(worker_request(parts, body, identity, params, rid))
        .await?;
    Ok((into_response(answer, rid), subject))
}

fn check_limit(f: &Function, peer: IpAddr, identity: &Identity) -> Result<(), GatewayError> {
    match &f.def.rate_limit {
        Some(limiter) => limiter
            .check(peer, identity.subject.as_deref())
            .map_err(|retry_after| {
                f.metrics.rate_limited("function");
                GatewayError::RateLimited { retry_after }
            }),
        None => Ok(()),
    }
}

fn authenticate(
    f: &Function,
    parts: &Parts,
    body: &[u8],
    now_unix: u64,
) -> Result<Identity, GatewayError> {
    let req = AuthRequest {
        headers: &parts.headers,
        query: parts.uri.query(),
        body,
        now_unix,
    };
    f.def.auth.verify(&req).map_err(|failure| {
        f.metrics.auth_failure(f.def.auth.kind(), failure.reason);
        tracing::debug!(function = %f.def.name, reason = failure.reason, "auth refused");
        GatewayError::Unauthorized { failure }
    })
}

/// Reads at most the function's `max_body_bytes`; a declared larger length is refused
/// before a single body byte is read.
async fn read_body(f: &Function, parts: &Parts, body: Incoming) -> Result<Bytes, GatewayError> {
    let limit = f.def.policy.max_body_bytes;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    match Limited::new(body, limit as usize).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(GatewayError::PayloadTooLarge { limit })
        }
        Err(_) => Err(GatewayError::BodyRead),
    }
}

fn into_response(w: crate::pool::WorkerResponse, rid: &HeaderValue) -> Response<Body> {
    let mut resp = Response::new(Full::new(w.body));
    *resp.status_mut() = w.status;
    *resp.headers_mut() = w.headers;
    resp.headers_mut().insert(request_id::HEADER, rid.clone());
    resp
}

fn worker_request(
    parts: Parts,
    body: Bytes,
    identity: Identity,
    params: Vec<(String, String)>,
    rid: &HeaderValue,
) -> WorkerRequest {
    WorkerRequest {
        request_id: Arc::from(rid.to_str().unwrap_or_default()),
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        params,
        headers: parts.headers,
        body,
        auth: AuthContext {
            kind: identity.kind,
            subject: identity.subject,
        },
    }
}
