//! A queued call as the stores keep it: the request the function will see, who the
//! gateway verified, where to send the answer, and its [`Progress`]. The header list drops
//! credentials the gateway already verified.
//!
//! Encoding (a record is written once per enqueue and rewritten per state change, so it is
//! compact and its progress sits at a fixed place, readable and patchable without decoding
//! the request): `MAGIC`, the progress (state u8, attempts u32, last status u16 with 0 for
//! none, little-endian), then `1` and the call's fields in declaration order, or `0` once
//! the request is dropped. A string or byte field is a u32 length and its bytes; an
//! optional one a `0`/`1` flag first; a list a u32 count. Records written as JSON by
//! earlier versions (they start with `{`) are still read.

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::{Deserialize, Serialize};

use super::machine::{CallState, Progress};

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

/// First byte of a binary record (never `{`, which starts a legacy JSON one).
const MAGIC: u8 = 0xE1;
/// `MAGIC` and the progress.
const HEAD: usize = 1 + 1 + 4 + 2;

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        match &self.call {
            Some(call) => encode_call(self.progress, call),
            None => Self::finished(self.progress),
        }
    }

    /// The record of a call just enqueued.
    pub fn queued(call: &Call) -> Vec<u8> {
        encode_call(Progress::queued(), call)
    }

    /// The record of a call whose request is dropped (done).
    pub fn finished(progress: Progress) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD + 1);
        put_head(&mut out, progress);
        out.push(0);
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Record> {
        if bytes.first() == Some(&b'{') {
            return serde_json::from_slice(bytes).ok();
        }
        let progress = Self::progress_of(bytes)?;
        let mut r = Reader(&bytes[HEAD..]);
        let call = match r.u8()? {
            0 => None,
            1 => Some(r.call()?),
            _ => return None,
        };
        r.0.is_empty().then_some(Record { call, progress })
    }

    /// The progress alone, without decoding the request.
    pub fn progress_of(bytes: &[u8]) -> Option<Progress> {
        if bytes.first() == Some(&b'{') {
            return Self::decode(bytes).map(|r| r.progress);
        }
        if bytes.len() < HEAD || bytes[0] != MAGIC {
            return None;
        }
        let state = match bytes[1] {
            0 => CallState::Queued,
            1 => CallState::Running,
            2 => CallState::Done,
            3 => CallState::Dead,
            _ => return None,
        };
        let attempts = u32::from_le_bytes(bytes[2..6].try_into().ok()?);
        let last = u16::from_le_bytes(bytes[6..8].try_into().ok()?);
        Some(Progress {
            state,
            attempts,
            last_status: (last != 0).then_some(last),
        })
    }

    /// `bytes` with its progress replaced, the request kept as it is.
    pub fn with_progress(bytes: &[u8], progress: Progress) -> Option<Vec<u8>> {
        if bytes.first() == Some(&b'{') {
            let mut rec = Self::decode(bytes)?;
            rec.progress = progress;
            return Some(rec.encode());
        }
        Self::progress_of(bytes)?;
        let mut out = bytes.to_vec();
        let mut head = Vec::with_capacity(HEAD);
        put_head(&mut head, progress);
        out[..HEAD].copy_from_slice(&head);
        Some(out)
    }
}

fn put_head(out: &mut Vec<u8>, p: Progress) {
    out.push(MAGIC);
    out.push(match p.state {
        CallState::Queued => 0,
        CallState::Running => 1,
        CallState::Done => 2,
        CallState::Dead => 3,
    });
    out.extend_from_slice(&p.attempts.to_le_bytes());
    out.extend_from_slice(&p.last_status.unwrap_or(0).to_le_bytes());
}

fn encode_call(progress: Progress, c: &Call) -> Vec<u8> {
    let opt = |s: &Option<String>| 1 + s.as_ref().map_or(0, |s| 4 + s.len());
    let pairs =
        |v: &[(String, String)]| 4 + v.iter().map(|(k, v)| 8 + k.len() + v.len()).sum::<usize>();
    let len = HEAD
        + 1
        + 4 * 5
        + c.id.len()
        + c.function.len()
        + c.method.len()
        + c.path.len()
        + opt(&c.query)
        + pairs(&c.params)
        + pairs(&c.headers)
        + 4
        + c.body.len()
        + opt(&c.callback)
        + c.auth_kind.len()
        + opt(&c.subject)
        + 8;
    let mut w = Writer(Vec::with_capacity(len));
    put_head(&mut w.0, progress);
    w.0.push(1);
    w.bytes(c.id.as_bytes());
    w.bytes(c.function.as_bytes());
    w.bytes(c.method.as_bytes());
    w.bytes(c.path.as_bytes());
    w.opt(&c.query);
    w.pairs(&c.params);
    w.pairs(&c.headers);
    w.bytes(&c.body);
    w.opt(&c.callback);
    w.bytes(c.auth_kind.as_bytes());
    w.opt(&c.subject);
    w.0.extend_from_slice(&c.enqueued_unix_ms.to_le_bytes());
    debug_assert_eq!(w.0.len(), len);
    w.0
}

struct Writer(Vec<u8>);

impl Writer {
    fn bytes(&mut self, b: &[u8]) {
        // Bodies and headers are bounded far below 4 GiB before they get here.
        self.0.extend_from_slice(&(b.len() as u32).to_le_bytes());
        self.0.extend_from_slice(b);
    }

    fn opt(&mut self, s: &Option<String>) {
        match s {
            Some(s) => {
                self.0.push(1);
                self.bytes(s.as_bytes());
            }
            None => self.0.push(0),
        }
    }

    fn pairs(&mut self, v: &[(String, String)]) {
        self.0.extend_from_slice(&(v.len() as u32).to_le_bytes());
        for (k, val) in v {
            self.bytes(k.as_bytes());
            self.bytes(val.as_bytes());
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }

    fn opt(&mut self) -> Option<Option<String>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.string()?)),
            _ => None,
        }
    }

    fn pairs(&mut self) -> Option<Vec<(String, String)>> {
        let n = self.u32()? as usize;
        // Each pair takes at least 8 bytes: a corrupt count cannot reserve more than that.
        let mut v = Vec::with_capacity(n.min(self.0.len() / 8));
        for _ in 0..n {
            v.push((self.string()?, self.string()?));
        }
        Some(v)
    }

    fn call(&mut self) -> Option<Call> {
        Some(Call {
            id: self.string()?,
            function: self.string()?,
            method: self.string()?,
            path: self.string()?,
            query: self.opt()?,
            params: self.pairs()?,
            headers: self.pairs()?,
            body: self.bytes()?.to_vec(),
            callback: self.opt()?,
            auth_kind: self.string()?,
            subject: self.opt()?,
            enqueued_unix_ms: u64::from_le_bytes(self.take(8)?.try_into().ok()?),
        })
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

    fn sample() -> Call {
        Call {
            id: "c2".into(),
            function: "api/users".into(),
            method: "PUT".into(),
            path: "/42".into(),
            query: None,
            params: vec![("id".into(), "42".into())],
            headers: vec![("x-a".into(), "1".into()), ("x-b".into(), "".into())],
            body: (0..=255).collect(),
            callback: Some("http://127.0.0.1:9/cb".into()),
            auth_kind: "none".into(),
            subject: None,
            enqueued_unix_ms: u64::MAX - 1,
        }
    }

    #[test]
    fn progress_is_read_and_replaced_without_the_request() {
        let rec = Record {
            call: Some(sample()),
            progress: Progress::queued(),
        };
        let bytes = rec.encode();
        assert_eq!(Record::progress_of(&bytes), Some(Progress::queued()));
        let (done, _) = Progress::queued().start().finish(503, 3);
        let patched = Record::with_progress(&bytes, done).unwrap();
        assert_eq!(patched.len(), bytes.len());
        let back = Record::decode(&patched).unwrap();
        assert_eq!(back.progress, done);
        assert_eq!(back.call.unwrap(), sample());
        let finished = Record::finished(done);
        let back = Record::decode(&finished).unwrap();
        assert!(back.call.is_none());
        assert_eq!(back.progress.last_status, Some(503));
    }

    #[test]
    fn records_written_as_json_are_still_read() {
        let rec = Record {
            call: Some(sample()),
            progress: Progress::queued().start(),
        };
        let legacy = serde_json::to_vec(&rec).unwrap();
        assert_eq!(Record::decode(&legacy).unwrap().call.unwrap(), sample());
        assert_eq!(Record::progress_of(&legacy), Some(rec.progress));
        let patched = Record::with_progress(&legacy, Progress::queued()).unwrap();
        assert_eq!(
            Record::decode(&patched).unwrap().progress,
            Progress::queued()
        );
        assert_ne!(
            patched.first(),
            Some(&b'{'),
            "rewritten in the current encoding"
        );
    }

    #[test]
    fn damaged_records_are_refused_not_misread() {
        let bytes = Record {
            call: Some(sample()),
            progress: Progress::queued(),
        }
        .encode();
        for cut in 0..bytes.len() {
            assert!(Record::decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Record::decode(&longer).is_none());
        let mut bad_state = bytes.clone();
        bad_state[1] = 9;
        assert!(Record::decode(&bad_state).is_none());
        let mut huge_count = bytes;
        // The params count sits after the head, the flag and four strings and the query flag.
        let at = HEAD + 1 + (4 + 2) + (4 + 9) + (4 + 3) + (4 + 3) + 1;
        huge_count[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Record::decode(&huge_count).is_none());
    }
}
