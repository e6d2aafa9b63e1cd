//! The request path: one snapshot load, then route → auth → rate limit → bounded body →
//! pool. Every failure becomes a [`GatewayError`] answered by `respond`; no worker is
//! touched before auth and limits have passed.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
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

/// The answer to one request: ready at once when the gateway decided alone (404, 405, 401,
/// 429, its own endpoints), else a boxed future for the body read and the worker. A
/// rejected request therefore allocates no future, and the value hyper stores per request
/// stays a few words instead of the whole request state machine.
pub enum Handled {
    Ready(Option<Response<Body>>),
    Boxed(Pin<Box<dyn Future<Output = Response<Body>> + Send>>),
}

impl Future for Handled {
    type Output = Response<Body>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response<Body>> {
        match self.get_mut() {
            Handled::Ready(r) => Poll::Ready(r.take().expect("polled after completion")),
            Handled::Boxed(f) => f.as_mut().poll(cx),
        }
    }
}

pub fn handle(state: &Arc<State>, req: Request<Incoming>, peer: IpAddr) -> Handled {
    let start = Instant::now();
    let rid = request_id::for_request(req.headers());
    if let Some(resp) = gateway_endpoint(state, &req, &rid) {
        return Handled::Ready(Some(resp));
    }
    let method = req.method().clone();
    // A guard (no reference-count traffic) while the answer is decided synchronously;
    // only a request that goes on to a worker takes an owned snapshot.
    let snap = state.store.load();
    let Some(m) = snap.router.lookup(req.uri().path()) else {
        let resp = respond::error(&GatewayError::NotFound, &rid);
        record(state, None, &method, &resp, start, &rid, None);
        return Handled::Ready(Some(resp));
    };
    let f = &snap.functions[m.index];
    let now_unix = if f.def.auth.needs_clock() {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    } else {
        0
    };
    match precheck(f, &req, peer, now_unix) {
        Err(e) => {
            let resp = respond::error(&e, &rid);
            record(state, Some(f), &method, &resp, start, &rid, None);
            Handled::Ready(Some(resp))
        }
        Ok(admitted) => {
            let state = state.clone();
            let snap = arc_swap::Guard::into_inner(snap);
            Handled::Boxed(Box::pin(async move {
                let f = &snap.functions[m.index];
                let (resp, subject) = match finish(f, req, admitted, peer, m, &rid, now_unix).await
                {
                    Ok(done) => done,
                    Err(e) => (respond::error(&e, &rid), None),
                };
                record(
                    &state,
                    Some(f),
                    &method,
                    &resp,
                    start,
                    &rid,
                    subject.as_deref(),
                );
                resp
            }))
        }
    }
}

/// Metrics and the access line for one answered request.
fn record(
    state: &State,
    func: Option<&Function>,
    method: &Method,
    resp: &Response<Body>,
    start: Instant,
    rid: &HeaderValue,
    subject: Option<&str>,
) {
    let metrics = func.map_or(&state.unmatched, |f| &f.metrics);
    let elapsed = start.elapsed();
    metrics.request(method, resp.status(), elapsed);
    if state.access_log {
        logging::access(
            rid,
            func.map_or(crate::metrics::names::UNMATCHED, |f| &f.def.name),
            method,
            resp.status(),
            elapsed,
            subject,
        );
    }
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

/// The checks that need no IO: method, and auth + rate limit unless the policy signs the
/// body. `Ok(None)` means "admitted so far, verify after reading the body" (HMAC).
fn precheck(
    f: &Function,
    req: &Request<Incoming>,
    peer: IpAddr,
    now_unix: u64,
) -> Result<Option<Identity>, GatewayError> {
    if !f.def.policy.methods.contains(req.method()) {
        return Err(GatewayError::MethodNotAllowed {
            allow: f.allow.clone(),
        });
    }
    if f.def.auth.needs_body() {
        return Ok(None);
    }
    let identity = authenticate(f, req.headers(), req.uri().query(), &[], now_unix)?;
    check_limit(f, peer, &identity)?;
    Ok(Some(identity))
}

/// Body read (bounded), HMAC verification when the policy needs the body, then the pool.
#[allow(clippy::too_many_arguments)]
async fn finish(
    f: &Function,
    req: Request<Incoming>,
    admitted: Option<Identity>,
    peer: IpAddr,
    route: Match,
    rid: &HeaderValue,
    now_unix: u64,
) -> Result<Invoked, GatewayError> {
    let (parts, body) = req.into_parts();
    let body = read_body(f, &parts, body).await?;
    let identity = match admitted {
        Some(identity) => identity,
        None => {
            let identity = authenticate(f, &parts.headers, parts.uri.query(), &body, now_unix)?;
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
    headers: &http::HeaderMap,
    query: Option<&str>,
    body: &[u8],
    now_unix: u64,
) -> Result<Identity, GatewayError> {
    let req = AuthRequest {
        headers,
        query,
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
    resp.headers_mut()
        .insert(request_id::HEADER_NAME.clone(), rid.clone());
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
