//! What a function sees of the credential the gateway verified: nothing, unless the
//! policy says `"forward_credentials": true`. At compile time each policy names where its
//! credential travels (an API-key header or `?api_key=`, `Authorization` for bearer and
//! basic); after admission those headers and query parameters are removed from the
//! request handed to the worker. Any-of lists hide every alternative's credential.
//! Webhook signature headers are left: they are not credentials a function could replay.
//! Cookies are removed one by one (the OIDC session and login-state cookies): the
//! function's own cookies in the same `Cookie` header pass.

use http::header::{Entry, AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::auth::oidc::cookies;

/// Where a policy's credentials travel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hidden {
    pub headers: Vec<HeaderName>,
    pub query_params: Vec<&'static str>,
    /// Cookie names removed from `Cookie` headers.
    pub cookies: Vec<&'static str>,
}

impl Hidden {
    pub fn authorization() -> Hidden {
        Hidden {
            headers: vec![AUTHORIZATION],
            ..Default::default()
        }
    }

    /// The OIDC session cookie and the login-state cookie.
    pub fn oidc_cookies() -> Hidden {
        Hidden {
            cookies: vec![
                crate::auth::oidc::session::COOKIE_NAME,
                crate::auth::oidc::login_state::COOKIE_NAME,
            ],
            ..Default::default()
        }
    }

    pub fn merge(&mut self, other: Hidden) {
        for h in other.headers {
            if !self.headers.contains(&h) {
                self.headers.push(h);
            }
        }
        for q in other.query_params {
            if !self.query_params.contains(&q) {
                self.query_params.push(q);
            }
        }
        for c in other.cookies {
            if !self.cookies.contains(&c) {
                self.cookies.push(c);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.query_params.is_empty() && self.cookies.is_empty()
    }

    /// Removes the credential headers, and rewrites `query` without the credential
    /// parameters (other pairs keep their bytes and order).
    pub fn strip(&self, headers: &mut HeaderMap, query: &mut Option<String>) {
        for h in &self.headers {
            headers.remove(h);
        }
        if !self.cookies.is_empty() {
            self.strip_cookies(headers);
        }
        if self.query_params.is_empty() {
            return;
        }
        let Some(q) = query.as_deref() else { return };
        let kept: Vec<&str> = q
            .split('&')
            .filter(|pair| {
                let name = pair.split('=').next().unwrap_or_default();
                let decoded: String = form_urlencoded::parse(name.as_bytes())
                    .next()
                    .map(|(k, _)| k.into_owned())
                    .unwrap_or_default();
                !self.query_params.contains(&decoded.as_str())
            })
            .collect();
        *query = (!kept.is_empty()).then(|| kept.join("&"));
    }
}

impl Hidden {
    /// Rewrites every `Cookie` header without the hidden cookies (a header left empty
    /// goes; one that is not text is dropped rather than searched).
    fn strip_cookies(&self, headers: &mut HeaderMap) {
        let values: Vec<_> = match headers.entry(COOKIE) {
            Entry::Occupied(e) => e.remove_entry_mult().1.collect(),
            Entry::Vacant(_) => return,
        };
        for v in values {
            let Ok(text) = v.to_str() else { continue };
            if let Some(kept) = cookies::strip(text, &self.cookies) {
                if let Ok(kept) = HeaderValue::try_from(kept) {
                    headers.append(COOKIE, kept);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_headers_and_query_pairs() {
        let mut h = Hidden::authorization();
        h.merge(Hidden {
            headers: vec![HeaderName::from_static("x-api-key")],
            query_params: vec!["api_key"],
            ..Default::default()
        });
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, "Bearer t".parse().unwrap());
        headers.insert("x-api-key", "k".parse().unwrap());
        headers.insert("accept", "*/*".parse().unwrap());
        let mut q = Some("a=1&api_key=secret&api%5Fkey=x&b=2".to_owned());
        h.strip(&mut headers, &mut q);
        assert_eq!(headers.len(), 1);
        assert_eq!(q.as_deref(), Some("a=1&b=2"));
        let mut only = Some("api_key=secret".to_owned());
        h.strip(&mut headers, &mut only);
        assert_eq!(only, None);
    }

    #[test]
    fn strips_only_the_gateway_cookies() {
        let h = Hidden::oidc_cookies();
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, "theme=dark; __edgefn_session=s".parse().unwrap());
        headers.append(COOKIE, "__edgefn_oidc_login=l".parse().unwrap());
        headers.append(COOKIE, "cart=3".parse().unwrap());
        h.strip(&mut headers, &mut None);
        let left: Vec<_> = headers.get_all(COOKIE).iter().collect();
        assert_eq!(left, ["theme=dark", "cart=3"]);
    }
}
