//! The request path: one snapshot load, then route → auth → rate limit → bounded body →
//! pool. Every failure becomes a [`GatewayError`] answered by `respond`; no worker is
//! touched before auth and limits have passed. The synchronous part, [`decide`], is shared
//! with the HTTP/1 front, so both paths refuse alike.

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

use crate::assets::Asset;
use crate::auth::headers::Headers;
use crate::auth::{AuthRequest, Identity};
use crate::error::GatewayError;
use crate::logging;
use crate::metrics::{FrontMetrics, FunctionMetrics};
use crate::pool::{AuthContext, WorkerRequest};
use crate::request_id;
use crate::respond::{self, Answer, Body};
use crate::router::{Lookup, Match};
use crate::snapshot::{Function, Snapshot, Store};

/// Shared by every connection of the public listener.
pub struct State {
    pub store: Arc<Store>,
    pub unmatched: FunctionMetrics,
    pub front: FrontMetrics,
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

/// The parts of a request head the synchronous decision reads; borrowed from hyper's
/// `Request` or from the HTTP/1 front's raw buffer.
pub struct Head<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: Headers<'a>,
}

/// What the gateway decided before reading a body or touching a worker. Returned by value
/// and taken apart at once, so the variants' size difference costs a copy, not memory held.
#[allow(clippy::large_enum_variant)]
pub enum Decision<'s> {
    /// Its own endpoints (`/_fn/...`): answered, not counted as function traffic.
    Endpoint(Answer),
    /// Refused (404, 405, 401, 429): answered and counted under `func` (or unmatched).
    Refused(Answer, Option<&'s Function>),
    /// Admitted so far; the body and the worker come next.
    Admitted(Admission),
    /// A file of FastFN's `assets` folder (answered by hyper's path).
    Asset(&'s Arc<Asset>),
}

pub struct Admission {
    route: Match,
    /// `None`: the policy signs the body (HMAC) and is verified after reading it.
    identity: Option<Identity>,
    now_unix: u64,
}

/// Whether the decision is the last word on the request. The HTTP/1 front hands admitted
/// requests to hyper, which decides again: it must not spend a rate-limit token the
/// second decision would spend too.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Final {
    Yes,
    /// Stop at "authenticated"; the rate limit is left to the final decision.
    BeforeLimit,
}

/// Route → method → auth → rate limit, everything that needs no IO.
pub fn decide<'s>(
    snap: &'s Snapshot,
    head: &Head<'_>,
    peer: IpAddr,
    rid: &[u8],
    stage: Final,
) -> Decision<'s> {
    if let Some(rest) = head.path.strip_prefix("/_fn/") {
        return Decision::Endpoint(gateway_endpoint(snap, head.method, rest, rid));
    }
    // FastFN serves its OpenAPI document here too.
    if head.path == "/openapi.json" {
        return Decision::Endpoint(gateway_endpoint(snap, head.method, "openapi.json", rid));
    }
    let assets = snap.assets.as_deref();
    if let Some(a) = assets.filter(|a| !a.worker_first) {
        if let Some(file) = a.find(head.method, head.path, head.headers, false) {
            return Decision::Asset(file);
        }
    }
    let route = match snap.router.lookup(head.path, head.method) {
        Lookup::Found(route) => route,
        Lookup::NotFound => {
            if let Some(file) =
                assets.and_then(|a| a.find(head.method, head.path, head.headers, true))
            {
                return Decision::Asset(file);
            }
            return Decision::Refused(respond::error_answer(&GatewayError::NotFound, rid), None);
        }
        Lookup::MethodNotAllowed { index, allow } => {
            let e = GatewayError::MethodNotAllowed {
                allow: allow.clone(),
            };
            let f = &snap.functions[index];
            return Decision::Refused(respond::error_answer(&e, rid), Some(f));
        }
    };
    let f = &snap.functions[route.index];
    let refuse = |e: &GatewayError| Decision::Refused(respond::error_answer(e, rid), Some(f));
    let now_unix = if f.def.auth.needs_clock() {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    } else {
        0
    };
    if f.def.auth.needs_body() {
        return Decision::Admitted(Admission {
            route,
            identity: None,
            now_unix,
        });
    }
    let identity = match authenticate(f, head.headers, head.query, &[], now_unix) {
        Ok(identity) => identity,
        Err(e) => return refuse(&e),
    };
    if stage == Final::Yes {
        if let Err(e) = check_limit(f, peer, &identity) {
            return refuse(&e);
        }
    }
    Decision::Admitted(Admission {
        route,
        identity: Some(identity),
        now_unix,
    })
}

/// hyper's service: the decision, then (for an admitted request) a boxed future for the
/// body read and the worker.
pub fn handle(state: &Arc<State>, req: Request<Incoming>, peer: IpAddr) -> Handled {
    let start = Instant::now();
    let rid = request_id::for_request(req.headers());
    // A guard (no reference-count traffic) while the answer is decided synchronously;
    // only a request that goes on to a worker takes an owned snapshot.
    let snap = state.store.load();
    let head = Head {
        method: req.method(),
        path: req.uri().path(),
        query: req.uri().query(),
        headers: Headers::Map(req.headers()),
    };
    let admission = match decide(&snap, &head, peer, rid.as_bytes(), Final::Yes) {
        Decision::Endpoint(answer) => return Handled::Ready(Some(answer.into_response(&rid))),
        Decision::Asset(file) => return Handled::Ready(Some(file.response(req.headers(), &rid))),
        Decision::Refused(answer, func) => {
            record(
                state,
                func,
                req.method(),
                answer.status,
                start,
                rid.as_bytes(),
                None,
            );
            return Handled::Ready(Some(answer.into_response(&rid)));
        }
        Decision::Admitted(admission) => admission,
    };
    let method = req.method().clone();
    let state = state.clone();
    let snap = arc_swap::Guard::into_inner(snap);
    Handled::Boxed(Box::pin(async move {
        let f = &snap.functions[admission.route.index];
        let (resp, subject) = match finish(f, req, admission, peer, &rid).await {
            Ok(done) => done,
            Err(e) => (respond::error(&e, &rid), None),
        };
        let _ = record(
            &state,
            Some(f),
            &method,
            resp.status(),
            start,
            rid.as_bytes(),
            subject.as_deref(),
        );
        resp
    }))
}

/// Metrics and the access line for one answered request; returns the instant it read as
/// the end, for callers that need "now" again (one clock read instead of several).
pub fn record(
    state: &State,
    func: Option<&Function>,
    method: &Method,
    status: StatusCode,
    start: Instant,
    rid: &[u8],
    subject: Option<&str>,
) -> Instant {
    let metrics = func.map_or(&state.unmatched, |f| &f.metrics);
    let end = Instant::now();
    let elapsed = end.saturating_duration_since(start);
    metrics.request(method, status, elapsed);
    if state.access_log {
        logging::access(
            rid,
            func.map_or(crate::metrics::names::UNMATCHED, |f| &f.def.name),
            method,
            status,
            elapsed,
            subject,
        );
    }
    end
}

/// `/_fn/health`, `/_fn/openapi.json` and `/_fn/catalog`, answered without touching any
/// function.
fn gateway_endpoint(snap: &Snapshot, method: &Method, rest: &str, rid: &[u8]) -> Answer {
    if method != Method::GET && method != Method::HEAD {
        let allow = HeaderValue::from_static("GET, HEAD");
        return respond::error_answer(&GatewayError::MethodNotAllowed { allow }, rid);
    }
    match rest {
        "health" => Answer::json(StatusCode::OK, Bytes::from_static(HEALTH)),
        "openapi.json" => Answer::json(StatusCode::OK, snap.openapi.clone()),
        "catalog" => Answer::json(StatusCode::OK, snap.catalog.clone()),
        _ => respond::error_answer(&GatewayError::NotFound, rid),
    }
}

type Invoked = (Response<Body>, Option<Arc<str>>);

/// Body read (bounded), HMAC verification when the policy needs the body, then the pool.
async fn finish(
    f: &Function,
    req: Request<Incoming>,
    admission: Admission,
    peer: IpAddr,
    rid: &HeaderValue,
) -> Result<Invoked, GatewayError> {
    let Admission {
        route,
        identity,
        now_unix,
    } = admission;
    let (parts, body) = req.into_parts();
    let body = read_body(f, &parts, body).await?;
    let identity = match identity {
        Some(identity) => identity,
        None => {
            let headers = Headers::Map(&parts.headers);
            let identity = authenticate(f, headers, parts.uri.query(), &body, now_unix)?;
            check_limit(f, peer, &identity)?;
            identity
        }
    };
    // Only now, with the request admitted, are the parameters copied out of the path.
    let params = route
        .params(parts.uri.path())
        .map(|(k, v)| (k.to_owned(), v.into_owned()))
        .collect();
    let subject = identity.subject.clone();
    let answer = f
        .pool
        .dispatch(worker_request(parts, body, identity, params, rid, f, peer))
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
    headers: Headers<'_>,
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
    f: &Function,
    peer: IpAddr,
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
        client_ip: Some(peer),
        meta: f.event_meta.clone(),
    }
}
