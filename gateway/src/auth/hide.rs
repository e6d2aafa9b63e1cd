//! What a function sees of the credential the gateway verified: nothing, unless the
//! policy says `"forward_credentials": true`. At compile time each policy names where its
//! credential travels (an API-key header or `?api_key=`, `Authorization` for bearer and
//! basic); after admission those headers and query parameters are removed from the
//! request handed to the worker. Any-of lists hide every alternative's credential.
//! Webhook signature headers are left: they are not credentials a function could replay.

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName};

/// Where a policy's credentials travel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hidden {
    pub headers: Vec<HeaderName>,
    pub query_params: Vec<&'static str>,
}

impl Hidden {
    pub fn authorization() -> Hidden {
        Hidden {
            headers: vec![AUTHORIZATION],
            query_params: Vec::new(),
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
    }

    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.query_params.is_empty()
    }

    /// Removes the credential headers, and rewrites `query` without the credential
    /// parameters (other pairs keep their bytes and order).
    pub fn strip(&self, headers: &mut HeaderMap, query: &mut Option<String>) {
        for h in &self.headers {
            headers.remove(h);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_headers_and_query_pairs() {
        let mut h = Hidden::authorization();
        h.merge(Hidden {
            headers: vec![HeaderName::from_static("x-api-key")],
            query_params: vec!["api_key"],
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
}
