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
use http::header::{CONTENT_LENGTH, SET_COOKIE};
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::assets::Asset;
use crate::async_queue::AsyncQueue;
use crate::auth::headers::Headers;
use crate::auth::mtls::ClientCert;
use crate::auth::oidc::policy::OidcError;
use crate::auth::{Admitted, AuthRequest, Context as AuthContextOf, Identity, Refusal};
use crate::cluster::{self, ClusterStore};
use crate::error::GatewayError;
use crate::logging;
use crate::metrics::{FrontMetrics, FunctionMetrics};
use crate::openfaas::accept;
use crate::openfaas::headers as of_headers;
use crate::openfaas::routes::{self, Mode, View};
use crate::pool::{AuthContext, WorkerRequest};
use crate::request_id;
use crate::respond::{self, Answer, Body};
use crate::router::{Lookup, Match};
use crate::snapshot::{Function, Snapshot, Store};

use super::oidc_routes;

/// Shared by every connection of the public listener.
pub struct State {
    pub store: Arc<Store>,
    pub unmatched: FunctionMetrics,
    pub front: FrontMetrics,
    pub access_log: bool,
    /// `[server] body_read_timeout_ms` / `min_body_bytes_per_s`.
    pub body: super::body::BodyLimits,
    /// `[cluster] store`: rate limits and replay guards shared with other nodes.
    pub cluster: Option<Arc<ClusterStore>>,
    /// `[openfaas] enabled`: `/function/` and `/async-function/` are routes.
    pub openfaas: bool,
    /// The durable queue behind `/async-function/` (present when `openfaas` is).
    pub async_queue: Option<Arc<AsyncQueue>>,
    /// `[server] tls` is set: OIDC cookies are `Secure`, redirect URIs `https`.
    pub tls: bool,
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
    /// The connection's verified client certificate (TLS with `client_ca`).
    pub client: Option<&'a ClientCert>,
    /// `[openfaas] enabled`.
    pub openfaas: bool,
    /// `[cluster] store` set: the rate limit is an await on the store, so `decide` leaves
    /// it to the admitted request's future.
    pub shared_limits: bool,
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
    /// `/_fn/oidc/callback` or `/_fn/oidc/logout` (hyper's path: the callback posts to
    /// the token endpoint).
    Oidc(oidc_routes::Route),
}

pub struct Admission {
    route: Match,
    /// How the path reached the function (own route, `/function/`, `/async-function/`).
    view: View,
    /// `None`: the policy signs the body (HMAC) and is verified after reading it, or it
    /// waits for a key fetch (a JWT naming an unknown `kid`).
    identity: Option<Admitted>,
    now_unix: u64,
}

/// What the HTTP/1 front decided for a request it admitted: served by the front itself
/// ([`serve_front`]) or, boxed, by hyper's service when the front hands the request over.
/// Either way nothing decides again, so route, request id, auth and the rate limit are
/// each applied once, on the snapshot the front decided on.
pub struct Decided {
    snap: Arc<Snapshot>,
    rid: HeaderValue,
    /// When the front started on the request (its latency counts from there).
    start: Instant,
    what: Admit,
}

// Boxed with the `Decided` that goes to hyper, or held by the front's one request in
// flight: boxing the admission again would add an allocation for no memory saved.
#[allow(clippy::large_enum_variant)]
enum Admit {
    Function(Admission),
    Asset(Arc<Asset>),
}

impl Decided {
    /// A request the front admitted for a function.
    pub fn admitted(a: Admission, snap: &Arc<Snapshot>, rid: &[u8], start: Instant) -> Self {
        Decided::new(Admit::Function(a), snap, rid, start)
    }

    /// A file of the `assets` folder the front found for the request.
    pub fn asset(file: &Arc<Asset>, snap: &Arc<Snapshot>, rid: &[u8], start: Instant) -> Self {
        Decided::new(Admit::Asset(file.clone()), snap, rid, start)
    }

    fn new(what: Admit, snap: &Arc<Snapshot>, rid: &[u8], start: Instant) -> Self {
        // The front only passes a well-formed caller id or a generated one.
        let rid = RidBytes::new(rid)
            .and_then(|b| HeaderValue::from_maybe_shared(Bytes::from_owner(b)).ok())
            .unwrap_or_else(request_id::new_id);
        Decided {
            snap: snap.clone(),
            rid,
            start,
            what,
        }
    }

    /// The function's body limit (`None` for a file of the assets folder): a body past it
    /// is left to hyper's path, which refuses it as it always has.
    pub fn body_limit(&self) -> Option<u64> {
        match &self.what {
            Admit::Function(a) => {
                Some(self.snap.functions[a.route.index].def.policy.max_body_bytes)
            }
            Admit::Asset(_) => None,
        }
    }
}

/// A request id's bytes in one allocation that later clones (the response's header)
/// share; a `Bytes` copied from a slice allocates again on its first clone.
struct RidBytes {
    len: u8,
    buf: [u8; RidBytes::MAX],
}

impl RidBytes {
    /// The longest id `request_id` keeps.
    const MAX: usize = 128;

    fn new(rid: &[u8]) -> Option<Self> {
        let mut buf = [0; Self::MAX];
        buf.get_mut(..rid.len())?.copy_from_slice(rid);
        let len = u8::try_from(rid.len()).ok()?;
        Some(RidBytes { len, buf })
    }
}

impl AsRef<[u8]> for RidBytes {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

/// Route → method → auth → rate limit, everything that needs no IO.
pub fn decide<'s>(snap: &'s Snapshot, head: &Head<'_>, peer: IpAddr, rid: &[u8]) -> Decision<'s> {
    if crate::router::climbs_above_root(head.path) {
        let e = GatewayError::PathAboveRoot;
        return Decision::Refused(respond::error_answer(&e, rid), None);
    }
    if let Some(route) = oidc_routes::Route::of(head.path) {
        return Decision::Oidc(route);
    }
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
    let found = routes::resolve(head.path, head.openfaas, |p| {
        match snap.router.lookup(p, head.method) {
            Lookup::NotFound => None,
            l => Some(l),
        }
    });
    let (route, view) = match found {
        Some((Lookup::Found(route), view)) => (route, view),
        Some((Lookup::MethodNotAllowed { index, allow }, view))
            if method_refusal_is_405(view.mode, head.path) =>
        {
            let e = GatewayError::MethodNotAllowed {
                allow: allow.clone(),
            };
            let f = &snap.functions[index];
            return Decision::Refused(respond::error_answer(&e, rid), Some(f));
        }
        // FastFN looks a route up by path and method together: a path served only with
        // other methods is not found (then the assets folder may still answer it).
        Some((Lookup::MethodNotAllowed { .. } | Lookup::NotFound, _)) | None => {
            if let Lookup::Found(_) = snap.ambiguous.lookup(head.path, head.method) {
                let e = GatewayError::Ambiguous;
                return Decision::Refused(respond::error_answer(&e, rid), None);
            }
            if let Some(file) =
                assets.and_then(|a| a.find(head.method, head.path, head.headers, true))
            {
                return Decision::Asset(file);
            }
            return Decision::Refused(respond::error_answer(&GatewayError::NotFound, rid), None);
        }
    };
    let f = &snap.functions[route.index];
    let refuse = |e: &GatewayError| Decision::Refused(respond::error_answer(e, rid), Some(f));
    if view.mode == Mode::Async && head.method != Method::POST {
        let allow = HeaderValue::from_static("POST");
        return refuse(&GatewayError::MethodNotAllowed { allow });
    }
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
            view,
            identity: None,
            now_unix,
        });
    }
    let presented = Presented {
        method: head.method,
        headers: head.headers,
        query: head.query,
        path: head.path,
        authority: None,
        client: head.client,
    };
    let identity = match authenticate(f, presented, &[], now_unix, peer, true) {
        Ok(Some(identity)) => identity,
        Ok(None) => {
            return Decision::Admitted(Admission {
                route,
                view,
                identity: None,
                now_unix,
            })
        }
        Err(e) => return refuse(&e),
    };
    if !head.shared_limits {
        if let Err(e) = check_limit(f, peer, &identity.identity) {
            return refuse(&e);
        }
    }
    Decision::Admitted(Admission {
        route,
        view,
        identity: Some(identity),
        now_unix,
    })
}

/// hyper's service: the decision (or the one the HTTP/1 front made for this request), then
/// (for an admitted request) a boxed future for the body read and the worker.
pub fn handle(
    state: &Arc<State>,
    req: Request<Incoming>,
    peer: IpAddr,
    decided: Option<Box<Decided>>,
) -> Handled {
    if let Some(d) = decided {
        let Decided {
            snap,
            rid,
            start,
            what,
        } = *d;
        return match what {
            Admit::Function(admission) => {
                let (parts, body) = req.into_parts();
                let body = ReqBody::Hyper(body);
                admitted(state, parts, body, peer, (snap, admission), rid, start)
            }
            Admit::Asset(file) => Handled::Ready(Some(file.response(req.headers(), &rid))),
        };
    }
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
        client: client_cert(&req),
        openfaas: state.openfaas,
        shared_limits: state.cluster.is_some(),
    };
    let admission = match decide(&snap, &head, peer, rid.as_bytes()) {
        Decision::Endpoint(answer) => return Handled::Ready(Some(answer.into_response(&rid))),
        Decision::Asset(file) => return Handled::Ready(Some(file.response(req.headers(), &rid))),
        Decision::Oidc(route) => {
            let snap = arc_swap::Guard::into_inner(snap);
            let tls = state.tls;
            return Handled::Boxed(Box::pin(async move {
                oidc_routes::serve(route, &snap, &req, tls, &rid).await
            }));
        }
        Decision::Refused(answer, func) => {
            return refuse_now(state, func, req.method(), answer, start, &rid)
        }
        Decision::Admitted(admission) => admission,
    };
    let snap = arc_swap::Guard::into_inner(snap);
    let (parts, body) = req.into_parts();
    admitted(
        state,
        parts,
        ReqBody::Hyper(body),
        peer,
        (snap, admission),
        rid,
        start,
    )
}

/// A request body: still arriving through hyper, or already read whole by the HTTP/1
/// front (which serves small bodies that came with their head).
pub enum ReqBody {
    Hyper(Incoming),
    Read(Bytes),
}

/// A request the HTTP/1 front admitted and serves itself, with the head it parsed and the
/// body it already holds: the same future as hyper's path, from the front's decision.
pub fn serve_front(
    state: &Arc<State>,
    parts: Parts,
    body: Bytes,
    peer: IpAddr,
    decided: Decided,
) -> Handled {
    let Decided {
        snap,
        rid,
        start,
        what,
    } = decided;
    match what {
        Admit::Function(admission) => {
            let body = ReqBody::Read(body);
            admitted(state, parts, body, peer, (snap, admission), rid, start)
        }
        Admit::Asset(file) => Handled::Ready(Some(file.response(&parts.headers, &rid))),
    }
}

/// A refusal decided without IO: counted and logged, answered at once.
fn refuse_now(
    state: &State,
    func: Option<&Function>,
    method: &Method,
    answer: Answer,
    start: Instant,
    rid: &HeaderValue,
) -> Handled {
    record(
        state,
        func,
        method,
        answer.status,
        start,
        rid.as_bytes(),
        None,
    );
    Handled::Ready(Some(answer.into_response(rid)))
}

/// The boxed future of an admitted request: body, worker, then its metrics and access line.
fn admitted(
    state: &Arc<State>,
    parts: Parts,
    body: ReqBody,
    peer: IpAddr,
    (snap, admission): (Arc<Snapshot>, Admission),
    rid: HeaderValue,
    start: Instant,
) -> Handled {
    // With a cluster store, what the node already knows of the shared bucket (a leased
    // token, a refusal in force) is decided here too, without the boxed future.
    let f = &snap.functions[admission.route.index];
    let limited = match known_limit(f, state.cluster.as_ref(), &admission, peer) {
        None => false,
        Some(Ok(())) => true,
        Some(Err(e)) => {
            let answer = respond::error_answer(&e, rid.as_bytes());
            return refuse_now(state, Some(f), &parts.method, answer, start, &rid);
        }
    };
    let state = state.clone();
    // The head and the admission stay here and are lent to `finish`: an async fn's
    // arguments are stored in its future as well as in the caller's.
    let (mut parts, mut admission) = (parts, admission);
    Handled::Boxed(Box::pin(async move {
        let f = &snap.functions[admission.route.index];
        let req = (&mut parts, body);
        let done = finish(f, &state, req, &mut admission, peer, &rid, limited).await;
        let (resp, subject) = match done {
            Ok(done) => done,
            Err(e) => (respond::error(&e, &rid), None),
        };
        let _ = record(
            &state,
            Some(f),
            &parts.method,
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

/// Whether a path served with other methods answers 405 with `Allow`: OpenFaaS routes do,
/// and so does FastFN's `/name@version` form (resolved by name, then refused by the
/// function's methods); FastFN's own routes answer 404 instead.
fn method_refusal_is_405(mode: Mode, path: &str) -> bool {
    mode != Mode::Plain
        || path
            .strip_prefix('/')
            .is_some_and(|p| !p.contains('/') && p.contains('@'))
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

/// What the request presents to the policy, borrowed from its head.
#[derive(Clone, Copy)]
struct Presented<'a> {
    method: &'a Method,
    headers: Headers<'a>,
    query: Option<&'a str>,
    path: &'a str,
    /// The URI's authority (h2's `:authority`), when the `Host` header is absent.
    authority: Option<&'a str>,
    client: Option<&'a ClientCert>,
}

impl Presented<'_> {
    /// A page a browser may be sent to log in for (GET or HEAD, `Accept: text/html`).
    fn is_page(&self) -> bool {
        let accept = self
            .headers
            .first(&http::header::ACCEPT)
            .and_then(|v| std::str::from_utf8(v).ok());
        (self.method == Method::GET || self.method == Method::HEAD)
            && crate::auth::oidc::decide::is_browser(accept)
    }

    fn host(&self) -> Option<&str> {
        self.headers
            .first(&http::header::HOST)
            .and_then(|v| std::str::from_utf8(v).ok())
            .or(self.authority)
    }
}

impl<'a> Presented<'a> {
    /// What the policy reads: the request's credentials and its connection's context.
    fn request<'b>(
        self,
        body: &'b [u8],
        now_unix: u64,
        peer: IpAddr,
        may_wait: bool,
    ) -> (AuthRequest<'b>, AuthContextOf<'a>)
    where
        'a: 'b,
    {
        let req = AuthRequest {
            headers: self.headers,
            query: self.query,
            path: self.path,
            body,
            now_unix,
            peer,
        };
        let ctx = AuthContextOf {
            client: self.client,
            may_wait,
        };
        (req, ctx)
    }
}

/// Body read (bounded in size and time), verification when the policy needs the body,
/// the rate limit (local, or through the cluster store), then the pool.
async fn finish(
    f: &Function,
    state: &State,
    (parts, body): (&mut Parts, ReqBody),
    admission: &mut Admission,
    peer: IpAddr,
    rid: &HeaderValue,
    limited: bool,
) -> Result<Invoked, GatewayError> {
    let (route, view, now_unix) = (&admission.route, admission.view, admission.now_unix);
    // Only the headers that report the call's time read the clocks.
    let started = (f.def.policy.debug_headers || view.mode == Mode::Sync)
        .then(|| (Instant::now(), SystemTime::now()));
    let (cluster, limits) = (state.cluster.as_ref(), state.body);
    let queue = state.async_queue.as_deref();
    let identity = admission.identity.take();
    // Decided before the body is read when auth did not need it (cluster mode only: the
    // synchronous decision already limited otherwise).
    if let (Some(store), Some(identity), false) = (cluster, &identity, limited) {
        Box::pin(shared_limit(f, store, peer, &identity.identity)).await?;
    }
    let mut incoming = Some(body);
    let mut signed_body = None;
    // A refreshed OIDC session's cookie, set on the answer.
    let mut reissue = None;
    if identity.is_none() && f.def.auth.needs_body() {
        if let Some(i) = incoming.take() {
            signed_body = Some(read_body(f, parts, i, limits).await?);
        }
    }
    let identity = match identity {
        Some(identity) => identity,
        None => {
            let presented = Presented {
                method: &parts.method,
                headers: Headers::Map(&parts.headers),
                query: parts.uri.query(),
                path: parts.uri.path(),
                authority: parts.uri.authority().map(|a| a.as_str()),
                client: parts.extensions.get::<Arc<ClientCert>>().map(|c| &**c),
            };
            let raw = signed_body.as_deref().unwrap_or_default();
            let wait = Waiting {
                tls: state.tls,
                reissue: &mut reissue,
            };
            let identity = match cluster {
                None => {
                    let waiting = authenticate_waiting(f, presented, raw, now_unix, peer, wait);
                    let identity = Box::pin(waiting).await?;
                    check_limit(f, peer, &identity.identity)?;
                    identity
                }
                Some(store) => {
                    let shared =
                        authenticate_shared(f, store, presented, raw, now_unix, peer, wait);
                    let identity = Box::pin(shared).await?;
                    Box::pin(shared_limit(f, store, peer, &identity.identity)).await?;
                    identity
                }
            };
            // A sender's handshake (Zoom's URL validation) is answered here, not by a worker.
            if let Some(answer) = f.def.auth.direct_answer(&identity.identity, raw) {
                let resp = respond::json(StatusCode::OK, answer, rid);
                return Ok((resp, identity.identity.subject));
            }
            identity
        }
    };
    let body = match (signed_body, incoming) {
        (Some(b), _) => b,
        (None, Some(i)) => read_body(f, parts, i, limits).await?,
        (None, None) => Bytes::new(),
    };
    // Only now, with the request admitted, are the parameters copied out of the path.
    let params = route
        .params(view.routed(parts.uri.path()))
        .map(|(k, v)| (k.to_owned(), v.into_owned()))
        .collect();
    let subject = identity.identity.subject.clone();
    let path = view.worker_path(parts.uri.path()).to_owned();
    if view.mode == Mode::Async {
        let identity = identity.identity;
        let parts = std::mem::replace(parts, Request::new(()).into_parts().0);
        let enqueue = accept::enqueue(queue, f, parts, body, identity, params, path, rid);
        let mut accepted = Box::pin(enqueue).await?;
        if let Some(c) = reissue {
            accepted.headers_mut().append(SET_COOKIE, c);
        }
        return Ok((accepted, subject));
    }
    let call_id = (view.mode == Mode::Sync).then(|| of_headers::call_id(&parts.headers, rid));
    let req = worker_request(parts, body, identity, (params, path), rid, f, peer);
    let answer = f.pool.dispatch(&req).await?;
    drop(req);
    // A proxy answer is rare and its fetch's state large: boxed, it stays out of this
    // future's size.
    let answer = if answer.proxy.is_some() {
        let policy = &f.def.policy;
        let method = &parts.method;
        let edge = crate::edge::answer(policy.edge.as_deref(), answer, method, policy.timeout);
        Box::pin(edge).await.inspect_err(
            |e| tracing::warn!(function = %f.def.name, error = %e, "edge proxy failed"),
        )?
    } else {
        answer
    };
    let mut resp = into_response(answer, rid);
    if let Some((at, wall)) = started {
        if f.def.policy.debug_headers {
            super::debug_headers::stamp(resp.headers_mut(), f, rid, at.elapsed());
        }
        if let Some(call_id) = call_id {
            of_headers::stamp(resp.headers_mut(), call_id, wall, at.elapsed());
        }
    }
    if let Some(c) = reissue {
        resp.headers_mut().append(SET_COOKIE, c);
    }
    Ok((resp, subject))
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

/// [`cluster::limit::known`] for an admission authenticated before the body: `Some(Ok)`
/// when a leased token was spent, `Some(Err)` when the bucket is known to be empty.
fn known_limit(
    f: &Function,
    store: Option<&Arc<ClusterStore>>,
    admission: &Admission,
    peer: IpAddr,
) -> Option<Result<(), GatewayError>> {
    let (store, limiter) = (store?, f.def.rate_limit.as_ref()?);
    let subject = admission.identity.as_ref()?.identity.subject.as_deref();
    let verdict = cluster::limit::known(store, &f.def.name, limiter, peer, subject)?;
    Some(verdict.map_err(|retry_after| {
        f.metrics.rate_limited("function");
        GatewayError::RateLimited { retry_after }
    }))
}

/// The function's limit through the cluster store (or this node's share of it).
async fn shared_limit(
    f: &Function,
    store: &Arc<ClusterStore>,
    peer: IpAddr,
    identity: &Identity,
) -> Result<(), GatewayError> {
    let Some(limiter) = &f.def.rate_limit else {
        return Ok(());
    };
    let subject = identity.subject.as_deref();
    cluster::limit::check(store, &f.def.name, limiter, peer, subject)
        .await
        .map_err(|retry_after| {
            f.metrics.rate_limited("function");
            GatewayError::RateLimited { retry_after }
        })
}

/// The verified client certificate the TLS acceptor attached to the connection's requests.
fn client_cert<B>(req: &Request<B>) -> Option<&ClientCert> {
    req.extensions().get::<Arc<ClientCert>>().map(|c| &**c)
}

/// What the asynchronous decision needs beyond the request: whether the listener is
/// TLS (OIDC cookies and redirect URIs), and where a refreshed session's cookie goes.
struct Waiting<'r> {
    tls: bool,
    reissue: &'r mut Option<HeaderValue>,
}

/// The decision on hyper's path, with what it may wait for: a key fetch when a token
/// names an unknown key (then a second decision that may not wait again), an OIDC
/// session refresh, or the login redirect for a browser without a session.
async fn authenticate_waiting(
    f: &Function,
    p: Presented<'_>,
    body: &[u8],
    now_unix: u64,
    peer: IpAddr,
    wait: Waiting<'_>,
) -> Result<Admitted, GatewayError> {
    let (req, ctx) = p.request(body, now_unix, peer, true);
    match f.def.auth.check(&req, ctx) {
        Ok(admitted) => Ok(admitted),
        Err(Refusal::RefreshKeys) => {
            f.def.auth.refresh_keys().await;
            authenticate(f, p, body, now_unix, peer, false)?.ok_or(GatewayError::AuthUnavailable)
        }
        Err(Refusal::RefreshSession) => {
            let Some(oidc) = f.def.auth.oidc() else {
                return Err(GatewayError::AuthUnavailable);
            };
            match oidc.refresh(p.headers, now_unix, wait.tls).await {
                Ok((admitted, cookie)) => {
                    *wait.reissue = cookie;
                    Ok(admitted)
                }
                Err(failure) if p.is_page() => {
                    Err(login_redirect(f, p, now_unix, wait.tls, failure))
                }
                Err(failure) => Err(refused(f, Refusal::Unauthorized(failure))),
            }
        }
        Err(Refusal::Login(failure)) if p.is_page() => {
            Err(login_redirect(f, p, now_unix, wait.tls, failure))
        }
        Err(refusal) => Err(refused(f, refusal)),
    }
}

/// The 302 to the provider with the sealed login state (counted as a refusal).
fn login_redirect(
    f: &Function,
    p: Presented<'_>,
    now_unix: u64,
    tls: bool,
    failure: crate::auth::AuthFailure,
) -> GatewayError {
    f.metrics.auth_failure(f.def.auth.kind(), failure.reason);
    let Some(oidc) = f.def.auth.oidc() else {
        return GatewayError::AuthUnavailable;
    };
    let Some(origin) = crate::auth::oidc::policy::origin(p.host(), tls) else {
        return OidcError::BadHost.into();
    };
    let return_to = match p.query {
        Some(q) => format!("{}?{q}", p.path),
        None => p.path.to_owned(),
    };
    match oidc.login(&f.def.name, &origin, &return_to, now_unix, tls) {
        Ok(r) => GatewayError::LoginRequired {
            location: r.location,
            cookie: r.cookie,
        },
        Err(e) => e.into(),
    }
}

/// [`authenticate_waiting`] with the replay guard in the cluster store (only timestamped
/// webhooks make the call).
async fn authenticate_shared(
    f: &Function,
    store: &Arc<ClusterStore>,
    p: Presented<'_>,
    body: &[u8],
    now_unix: u64,
    peer: IpAddr,
    wait: Waiting<'_>,
) -> Result<Admitted, GatewayError> {
    let (req, ctx) = p.request(body, now_unix, peer, true);
    let (admitted, claim) = match f.def.auth.verify_deferred(&req, ctx) {
        Ok(verified) => verified,
        Err(Refusal::RefreshKeys | Refusal::RefreshSession | Refusal::Login(_)) => {
            return authenticate_waiting(f, p, body, now_unix, peer, wait).await;
        }
        Err(refusal) => return Err(refused(f, refusal)),
    };
    let Some(claim) = claim else {
        return Ok(admitted);
    };
    match cluster::replay::check(store, &f.def.name, &f.def.auth, &claim, now_unix).await {
        Ok(cluster::replay::Verdict::First) => Ok(admitted),
        Ok(cluster::replay::Verdict::Replayed) => Err(refused(
            f,
            Refusal::Unauthorized(crate::auth::AuthFailure::new("replayed")),
        )),
        Err(cluster::StoreDown) => Err(GatewayError::StoreUnavailable),
    }
}

/// `Ok(None)`: the policy waits for hyper's path (only when `may_wait`): a key fetch, an
/// OIDC session refresh, or a browser's login redirect.
fn authenticate(
    f: &Function,
    p: Presented<'_>,
    body: &[u8],
    now_unix: u64,
    peer: IpAddr,
    may_wait: bool,
) -> Result<Option<Admitted>, GatewayError> {
    let (req, ctx) = p.request(body, now_unix, peer, may_wait);
    match f.def.auth.check(&req, ctx) {
        Ok(admitted) => Ok(Some(admitted)),
        Err(Refusal::RefreshKeys | Refusal::RefreshSession) if may_wait => Ok(None),
        Err(Refusal::Login(_)) if may_wait && p.is_page() => Ok(None),
        Err(refusal) => Err(refused(f, refusal)),
    }
}

/// The error for a refusal, counted and logged (never with the presented value).
fn refused(f: &Function, refusal: Refusal) -> GatewayError {
    if refusal.reason() == crate::auth::basic::THROTTLED {
        f.metrics.rate_limited("pbkdf2");
        let retry_after = crate::limits::pbkdf2_budget::RETRY_AFTER;
        return GatewayError::RateLimited { retry_after };
    }
    f.metrics.auth_failure(f.def.auth.kind(), refusal.reason());
    tracing::debug!(function = %f.def.name, reason = refusal.reason(), "auth refused");
    match refusal {
        Refusal::Unauthorized(failure) | Refusal::Login(failure) => {
            GatewayError::Unauthorized { failure }
        }
        Refusal::Forbidden(failure) => GatewayError::Forbidden { failure },
        Refusal::Unavailable(_) | Refusal::RefreshKeys => GatewayError::AuthUnavailable,
        // Only after a key fetch, whose second decision may not wait again.
        Refusal::RefreshSession => GatewayError::Unauthorized {
            failure: crate::auth::AuthFailure {
                reason: "refresh_session",
                challenge: Some(HeaderValue::from_static("Bearer")),
            },
        },
    }
}

/// Reads at most the function's `max_body_bytes` within the body-read limits; a declared
/// larger length is refused before a single body byte is read.
async fn read_body(
    f: &Function,
    parts: &Parts,
    body: ReqBody,
    limits: super::body::BodyLimits,
) -> Result<Bytes, GatewayError> {
    let limit = f.def.policy.max_body_bytes;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    match body {
        ReqBody::Hyper(body) => Box::pin(super::body::read(body, limit, limits)).await,
        ReqBody::Read(b) if b.len() as u64 > limit => Err(GatewayError::PayloadTooLarge { limit }),
        ReqBody::Read(b) => Ok(b),
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

/// Takes the head's headers; the rest of `parts` stays for the caller's metrics.
fn worker_request(
    parts: &mut Parts,
    body: Bytes,
    identity: Admitted,
    (params, path): (Vec<(String, String)>, String),
    rid: &HeaderValue,
    f: &Function,
    peer: IpAddr,
) -> WorkerRequest {
    let hidden = f.def.auth.hidden();
    let mut headers = std::mem::take(&mut parts.headers);
    let mut query = parts.uri.query().map(str::to_owned);
    if !hidden.is_empty() {
        hidden.strip(&mut headers, &mut query);
    }
    WorkerRequest {
        request_id: Arc::from(rid.to_str().unwrap_or_default()),
        method: parts.method.clone(),
        path,
        query,
        params,
        headers,
        body,
        auth: AuthContext {
            kind: identity.identity.kind,
            subject: identity.identity.subject,
            claims: identity.claims,
        },
        client_ip: Some(peer),
        meta: f.event_meta.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_versions_and_openfaas_routes_refuse_a_method_with_405() {
        assert!(method_refusal_is_405(Mode::Plain, "/hello@v2"));
        assert!(method_refusal_is_405(Mode::Sync, "/function/hello"));
        assert!(method_refusal_is_405(Mode::Async, "/async-function/hello"));
        for path in ["/hello", "/api/users/7", "/a/b@v2", "/"] {
            assert!(!method_refusal_is_405(Mode::Plain, path), "{path}");
        }
    }
}
