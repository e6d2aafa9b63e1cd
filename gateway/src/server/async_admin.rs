//! The admin listener's view of the async queue: `GET /async/<call-id>` →
//! `{"call_id", "state", "attempts", "last_status"}`, and `GET /async?state=dead[&limit=N]`
//! → `{"calls": [...]}` (at most 1000). Read-only; the store answers.

use http::{Method, Request, StatusCode};

use crate::async_queue::machine::{CallState, Progress};
use crate::async_queue::{AsyncError, AsyncQueue};
use crate::error::GatewayError;
use crate::openfaas::headers::well_formed;

const MAX_LIST: usize = 1000;

pub async fn answer<B>(
    queue: Option<&AsyncQueue>,
    req: &Request<B>,
) -> Result<(StatusCode, Vec<u8>), GatewayError> {
    let Some(q) = queue else {
        return Err(GatewayError::NotFound);
    };
    if req.method() != Method::GET {
        let allow = http::HeaderValue::from_static("GET");
        return Err(GatewayError::MethodNotAllowed { allow });
    }
    let unavailable = |source| GatewayError::Async(AsyncError::Unavailable { source });
    if let Some(id) = req.uri().path().strip_prefix("/async/") {
        if !well_formed(id.as_bytes()) {
            return Err(GatewayError::NotFound);
        }
        let p = q.status(id).await.map_err(unavailable)?;
        let p = p.ok_or(GatewayError::NotFound)?;
        return Ok((StatusCode::OK, to_vec(&entry(id, &p))));
    }
    let mut state = CallState::Dead;
    let mut limit = MAX_LIST;
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match &*k {
            "state" => state = CallState::parse(&v).ok_or(GatewayError::NotFound)?,
            "limit" => limit = v.parse::<usize>().map_or(MAX_LIST, |n| n.min(MAX_LIST)),
            _ => {}
        }
    }
    let calls = q.list(state, limit).await.map_err(unavailable)?;
    let list: Vec<_> = calls.iter().map(|(id, p)| entry(id, p)).collect();
    Ok((
        StatusCode::OK,
        to_vec(&serde_json::json!({ "calls": list })),
    ))
}

fn entry(id: &str, p: &Progress) -> serde_json::Value {
    serde_json::json!({
        "call_id": id,
        "state": p.state.as_str(),
        "attempts": p.attempts,
        "last_status": p.last_status,
    })
}

fn to_vec(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}
