//! A queued call as the stores keep it: the request the function will see, who the
//! gateway verified, where to send the answer, and its [`Progress`]. Encoded as JSON with
//! the body in base64; the header list drops credentials the gateway already verified.

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::{Deserialize, Serialize};

use super::machine::Progress;

/// Request headers never written to the store: the gateway checked them before enqueue
/// and the function gets the verified identity instead.
const NOT_STORED: &[&str] = &["authorization", "proxy-authorization", "cookie"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Call {
    pub id: String,
    /// The function's name (its route without the leading slash).
    pub function: String,
    pub method: String,
    /// The path the function sees.
    pub path: String,
    pub query: Option<String>,
    /// Path parameters of the function's route (`[id]` folders).
    pub params: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    #[serde(with = "b64")]
    pub body: Vec<u8>,
    pub callback: Option<String>,
    pub auth_kind: String,
    pub subject: Option<String>,
    pub enqueued_unix_ms: u64,
}

/// What a store keeps per call: the request (dropped once done) and its progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub call: Option<Call>,
    pub progress: Progress,
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record always serializes")
    }

    pub fn decode(bytes: &[u8]) -> Option<Record> {
        serde_json::from_slice(bytes).ok()
    }
}

impl Call {
    /// Headers as stored: visible-ASCII values only, credentials left out (`credential`:
    /// the header the function's own policy reads its key from, e.g. `x-api-key`).
    pub fn headers_from(map: &HeaderMap, credential: Option<&str>) -> Vec<(String, String)> {
        map.iter()
            .filter(|(k, _)| !NOT_STORED.contains(&k.as_str()))
            .filter(|(k, _)| credential.is_none_or(|c| !k.as_str().eq_ignore_ascii_case(c)))
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect()
    }

    pub fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.headers.len());
        for (k, v) in &self.headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                map.append(k, v);
            }
        }
        map
    }

    pub fn http_method(&self) -> Method {
        Method::from_bytes(self.method.as_bytes()).unwrap_or(Method::POST)
    }

    pub fn body_bytes(&self) -> Bytes {
        Bytes::from(self.body.clone())
    }
}

mod b64 {
    use super::*;

    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_without_credentials() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer s3cret"));
        h.insert("x-trace", HeaderValue::from_static("t1"));
        h.insert("x-api-key", HeaderValue::from_static("k-secret"));
        let call = Call {
            id: "c1".into(),
            function: "hello".into(),
            method: "POST".into(),
            path: "/".into(),
            query: Some("a=1".into()),
            params: vec![],
            headers: Call::headers_from(&h, Some("x-api-key")),
            body: vec![0, 159, 146, 150],
            callback: None,
            auth_kind: "bearer".into(),
            subject: Some("alice".into()),
            enqueued_unix_ms: 1,
        };
        let rec = Record {
            call: Some(call.clone()),
            progress: Progress::queued(),
        };
        let bytes = rec.encode();
        assert!(!String::from_utf8_lossy(&bytes).contains("s3cret"));
        assert!(!String::from_utf8_lossy(&bytes).contains("k-secret"));
        let back = Record::decode(&bytes).unwrap();
        assert_eq!(back.call.unwrap(), call);
        assert_eq!(call.header_map().get("x-trace").unwrap(), "t1");
    }
}
