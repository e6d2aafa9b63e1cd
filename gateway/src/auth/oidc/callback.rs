//! The callback's and logout's outside inputs and outputs: the query the provider sends
//! the browser back with (`code` and `state`, or `error`), read with caps before anything
//! else, and the provider's `end_session_endpoint` URL a logout redirects to.

use super::login_state::{MAX_CODE, MAX_STATE};

/// The whole callback query is refused past this (code + state + a few provider extras).
pub const MAX_QUERY: usize = 4096;
/// Provider `error` values kept as a metric reason; any other becomes `other` (the value
/// itself is never echoed).
const KNOWN_ERRORS: [&str; 4] = [
    "access_denied",
    "login_required",
    "consent_required",
    "interaction_required",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub code: String,
    pub state: String,
}

/// Each is answered 400: a bad callback is a bad request from the browser.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum CallbackError {
    #[error("callback query too long")]
    TooLong,
    #[error("callback without code or state")]
    Missing,
    #[error("the provider refused the login ({reason})")]
    Provider { reason: &'static str },
}

impl CallbackError {
    pub fn reason(self) -> &'static str {
        match self {
            CallbackError::TooLong => "callback_too_long",
            CallbackError::Missing => "callback_missing",
            CallbackError::Provider { .. } => "provider_refused",
        }
    }
}

pub fn parse(query: Option<&str>) -> Result<Callback, CallbackError> {
    let q = query.unwrap_or_default();
    if q.len() > MAX_QUERY {
        return Err(CallbackError::TooLong);
    }
    let (mut code, mut state) = (None, None);
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        match &*k {
            "code" => code = Some(v.into_owned()),
            "state" => state = Some(v.into_owned()),
            "error" => {
                let reason = KNOWN_ERRORS
                    .into_iter()
                    .find(|e| *e == v)
                    .unwrap_or("other");
                return Err(CallbackError::Provider { reason });
            }
            _ => {}
        }
    }
    match (code, state) {
        (Some(c), Some(s)) if c.len() > MAX_CODE || s.len() > MAX_STATE => {
            Err(CallbackError::TooLong)
        }
        (Some(code), Some(state)) if !code.is_empty() && !state.is_empty() => {
            Ok(Callback { code, state })
        }
        _ => Err(CallbackError::Missing),
    }
}

/// Where `GET /_fn/oidc/logout` sends the browser after clearing the cookie: the
/// provider's end-session endpoint (RP-initiated logout) when it has one, else `fallback`.
pub fn logout_redirect(
    end_session_endpoint: Option<&str>,
    client_id: &str,
    post_logout_redirect_uri: &str,
) -> String {
    match end_session_endpoint {
        None => post_logout_redirect_uri.to_owned(),
        Some(ep) => {
            let q = form_urlencoded::Serializer::new(String::new())
                .append_pair("client_id", client_id)
                .append_pair("post_logout_redirect_uri", post_logout_redirect_uri)
                .finish();
            let sep = if ep.contains('?') { '&' } else { '?' };
            format!("{ep}{sep}{q}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_and_state_with_caps() {
        assert_eq!(
            parse(Some("code=c%2F1&state=s&iss=x")).unwrap(),
            Callback {
                code: "c/1".into(),
                state: "s".into()
            }
        );
        assert_eq!(parse(Some("code=c")), Err(CallbackError::Missing));
        assert_eq!(parse(None), Err(CallbackError::Missing));
        assert_eq!(parse(Some("code=&state=s")), Err(CallbackError::Missing));
        let long_state = format!("code=c&state={}", "s".repeat(MAX_STATE + 1));
        assert_eq!(parse(Some(&long_state)), Err(CallbackError::TooLong));
        let long_code = format!("code={}&state=s", "c".repeat(MAX_CODE + 1));
        assert_eq!(parse(Some(&long_code)), Err(CallbackError::TooLong));
        let huge = "x".repeat(MAX_QUERY + 1);
        assert_eq!(parse(Some(&huge)), Err(CallbackError::TooLong));
        assert_eq!(
            parse(Some("error=access_denied&state=s")),
            Err(CallbackError::Provider {
                reason: "access_denied"
            })
        );
        assert_eq!(
            parse(Some("error=%3Cscript%3E")),
            Err(CallbackError::Provider { reason: "other" })
        );
    }

    #[test]
    fn logout_goes_to_the_end_session_endpoint_when_there_is_one() {
        assert_eq!(
            logout_redirect(Some("https://id.example/session/end"), "web", "http://127.0.0.1:8080/"),
            "https://id.example/session/end?client_id=web&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2F"
        );
        assert_eq!(logout_redirect(None, "web", "/"), "/");
    }
}
