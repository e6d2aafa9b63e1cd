//! The end of an admitted `POST /async-function/...`: its callback URL checked, the call
//! stored, and the 202 with `X-Call-Id`, sent only once the store holds the call.

use std::time::SystemTime;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

use super::headers as of;
use crate::async_queue::call::Call;
use crate::async_queue::store::now_ms;
use crate::async_queue::store::StoreError;
use crate::async_queue::{AsyncError, AsyncQueue};
use crate::auth::Identity;
use crate::error::GatewayError;
use crate::request_id;
use crate::respond::Body;
use crate::snapshot::Function;

#[allow(clippy::too_many_arguments)]
pub async fn enqueue(
    queue: Option<&AsyncQueue>,
    f: &Function,
    parts: Parts,
    body: Bytes,
    identity: Identity,
    params: Vec<(String, String)>,
    path: String,
    rid: &HeaderValue,
) -> Result<Response<Body>, GatewayError> {
    let started = SystemTime::now();
    let Some(queue) = queue else {
        // Only reachable if the routes were on without a queue: refuse rather than run.
        return Err(AsyncError::Unavailable {
            source: StoreError::Closed,
        }
        .into());
    };
    let callback = match parts.headers.get(&of::CALLBACK_URL) {
        Some(v) => Some(queue.check_callback(v.as_bytes()).await?),
        None => None,
    };
    let call_id = of::call_id(&parts.headers, rid);
    // The header an api_key policy reads is a credential too: not written to the store.
    let credential = f.def.auth.openapi_scheme().and_then(|s| {
        (s["type"] == "apiKey" && s["in"] == "header")
            .then(|| s["name"].as_str().map(str::to_owned))
            .flatten()
    });
    let call = Call {
        id: call_id.to_str().unwrap_or_default().to_owned(),
        function: f.def.name.to_string(),
        method: parts.method.as_str().to_owned(),
        path,
        query: parts.uri.query().map(str::to_owned),
        params,
        headers: Call::headers_from(&parts.headers, credential.as_deref()),
        body: body.to_vec(),
        callback,
        auth_kind: identity.kind.to_owned(),
        subject: identity.subject.as_deref().map(str::to_owned),
        enqueued_unix_ms: now_ms(),
    };
    queue.enqueue(call).await?;
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::ACCEPTED;
    let h = resp.headers_mut();
    h.insert(request_id::HEADER_NAME.clone(), rid.clone());
    h.insert(of::CALL_ID.clone(), call_id);
    h.insert(of::START_TIME.clone(), of::unix_nanos(started));
    Ok(resp)
}
