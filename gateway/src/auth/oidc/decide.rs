//! What a request to an OIDC-protected function gets, from its cookie alone: no IO, so
//! the front and hyper paths (both through `pipeline::decide`) answer alike. A live
//! session is admitted; one inside [`REFRESH_MARGIN_SECS`] of its expiry with a refresh
//! token is admitted and refreshed in the background (the request does not wait); an
//! expired one with a refresh token is refreshed before answering (on failure it ends).
//! Without a usable session a browser (`Accept: text/html`) is sent to the provider and
//! anything else gets 401.

use super::revoked::Revoked;
use super::seal::KeyRing;
use super::session::{self, Session};

/// Refresh this long before the session expires.
pub const REFRESH_MARGIN_SECS: u64 = 60;

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Admit(Session),
    /// Admit, after trying to refresh the session (the answer carries the new cookie).
    AdmitAndRefresh(Session),
    /// The session expired but can be refreshed: do so, then admit or end it.
    RefreshFirst(Session),
    /// 302 to the provider (a browser), carrying why for the metrics.
    Login {
        reason: &'static str,
    },
    /// 401 (an API client).
    Unauthorized {
        reason: &'static str,
    },
}

pub struct Presented<'a> {
    pub session_cookie: Option<&'a str>,
    pub accept: Option<&'a str>,
    pub now_unix: u64,
    /// Refresh this long before expiry.
    pub margin_secs: u64,
}

pub fn is_browser(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("text/html"))
}

pub fn decide(ring: &KeyRing, function: &str, revoked: &Revoked, p: &Presented<'_>) -> Decision {
    let refuse = |reason| {
        if is_browser(p.accept) {
            Decision::Login { reason }
        } else {
            Decision::Unauthorized { reason }
        }
    };
    let Some(value) = p.session_cookie else {
        return refuse("no_session");
    };
    let s = match session::decode_allow_expired(ring, function, value) {
        Ok(s) => s,
        Err(e) => return refuse(e.reason()),
    };
    if revoked.is_revoked(&s.sid, p.now_unix) {
        return refuse("session_revoked");
    }
    if s.iat.saturating_add(session::MAX_SESSION_AGE_SECS) <= p.now_unix {
        return refuse("session_too_old");
    }
    match (s.exp > p.now_unix, s.refresh.is_some()) {
        (true, true) if s.exp <= p.now_unix + p.margin_secs => Decision::AdmitAndRefresh(s),
        (true, _) => Decision::Admit(s),
        (false, true) => Decision::RefreshFirst(s),
        (false, false) => refuse("session_expired"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn ring() -> KeyRing {
        KeyRing::parse(&base64::engine::general_purpose::STANDARD.encode([1u8; 32])).unwrap()
    }

    fn cookie(exp: u64, refresh: bool) -> String {
        let s = Session {
            sid: "s1".into(),
            sub: "alice".into(),
            claims: Default::default(),
            exp,
            iat: 0,
            refresh: refresh.then(|| "rt".into()),
        };
        session::encode(&ring(), "f", &s).unwrap()
    }

    fn run(c: Option<&str>, accept: Option<&str>, now: u64, revoked: &Revoked) -> Decision {
        let p = Presented {
            session_cookie: c,
            accept,
            now_unix: now,
            margin_secs: REFRESH_MARGIN_SECS,
        };
        decide(&ring(), "f", revoked, &p)
    }

    #[test]
    fn browsers_are_sent_to_login_and_api_clients_get_401() {
        let r = Revoked::default();
        let html = Some("text/html,application/xhtml+xml");
        assert!(matches!(
            run(None, html, 0, &r),
            Decision::Login {
                reason: "no_session"
            }
        ));
        assert!(matches!(
            run(None, Some("application/json"), 0, &r),
            Decision::Unauthorized {
                reason: "no_session"
            }
        ));
        assert!(matches!(
            run(Some("tampered"), None, 0, &r),
            Decision::Unauthorized {
                reason: "cookie_malformed"
            }
        ));
    }

    #[test]
    fn live_near_expiry_expired_and_revoked_sessions() {
        let r = Revoked::default();
        assert!(matches!(
            run(Some(&cookie(1000, true)), None, 100, &r),
            Decision::Admit(_)
        ));
        assert!(matches!(
            run(Some(&cookie(1000, true)), None, 990, &r),
            Decision::AdmitAndRefresh(_)
        ));
        assert!(matches!(
            run(Some(&cookie(1000, false)), None, 990, &r),
            Decision::Admit(_)
        ));
        assert!(matches!(
            run(Some(&cookie(1000, true)), None, 1000, &r),
            Decision::RefreshFirst(_)
        ));
        assert!(matches!(
            run(Some(&cookie(1000, false)), None, 1000, &r),
            Decision::Unauthorized {
                reason: "session_expired"
            }
        ));
        r.revoke("s1", 1000, 100);
        assert!(matches!(
            run(Some(&cookie(1000, true)), None, 200, &r),
            Decision::Unauthorized {
                reason: "session_revoked"
            }
        ));
    }
}
