//! The framed channel between the gateway and a worker (runtimes/PROTOCOL.md):
//! `u32 total | u32 header_len | JSON header | raw body`. The request header (the event)
//! is written by `event.rs`, the workers' headers are read by `reply_scan.rs` (serde_json
//! for anything unusual); sizes are checked before a single byte of a frame is allocated.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

pub use super::event::Encoding;
use super::WorkerResponse;

/// Largest response body a worker may send, plus room for its header.
pub const MAX_RESPONSE_BODY: u32 = 64 << 20;
pub const MAX_HEADER: u32 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the worker closed its channel")]
    Closed,
    #[error("channel read failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {total} bytes exceeds the limit")]
    TooLarge { total: u32 },
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
    #[error("frame header is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Reads one frame; `Closed` on a clean EOF at a frame boundary.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<(Bytes, Bytes), FrameError> {
    let mut head = [0u8; 8];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let (len, hlen) = lengths(head)?;
    let mut buf = BytesMut::zeroed(len);
    r.read_exact(&mut buf).await?;
    let mut buf = buf.freeze();
    let body = buf.split_off(hlen);
    Ok((buf, body))
}

/// A frame found whole in the read buffer: header, body, bytes it takes on the wire.
pub type Buffered<'a> = (&'a [u8], &'a [u8], usize);

/// The frame at the start of `buffered` when all of it is there: its header and body,
/// borrowed, and its length on the wire. A reply usually arrives whole in one read, and
/// is then parsed where it lies: only its body is copied out.
pub fn buffered_frame(buffered: &[u8]) -> Result<Option<Buffered<'_>>, FrameError> {
    let Some(head) = buffered.first_chunk::<8>() else {
        return Ok(None);
    };
    let (len, hlen) = lengths(*head)?;
    let Some(frame) = buffered.get(8..8 + len) else {
        return Ok(None);
    };
    let (header, body) = frame.split_at(hlen);
    Ok(Some((header, body, 8 + len)))
}

/// A frame prefix's lengths (after the prefix, and of the header), checked against the
/// limits before anything is allocated for it.
fn lengths(head: [u8; 8]) -> Result<(usize, usize), FrameError> {
    let total = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let hlen = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    if total > MAX_RESPONSE_BODY + MAX_HEADER {
        return Err(FrameError::TooLarge { total });
    }
    if total < 4 || hlen > total - 4 || hlen > MAX_HEADER {
        return Err(FrameError::Malformed("header length out of range"));
    }
    Ok(((total - 4) as usize, hlen as usize))
}

/// Builds one frame's prefix and header JSON; the body is returned beside it (not copied)
/// for one vectored write, or `None` when empty.
pub fn encode(header: &impl Serialize, body: &Bytes) -> (Vec<u8>, Option<Bytes>) {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&[0u8; 8]);
    serde_json::to_writer(&mut out, header).expect("serialising to a Vec cannot fail");
    let hlen = (out.len() - 8) as u32;
    let total = 4 + hlen + body.len() as u32;
    out[0..4].copy_from_slice(&total.to_be_bytes());
    out[4..8].copy_from_slice(&hlen.to_be_bytes());
    (out, (!body.is_empty()).then(|| body.clone()))
}

/// Appends one request frame's prefix and header, in the encoding the worker announced, to
/// `out` (the body follows it in the same vectored write).
pub fn encode_request(
    out: &mut Vec<u8>,
    id: u64,
    function: &str,
    req: &super::WorkerRequest,
    encoding: Encoding,
) {
    let at = out.len();
    out.extend_from_slice(&[0u8; 8]);
    match encoding {
        Encoding::Json => super::event::write_request_header(out, id, function, req),
        Encoding::Flat => super::event::write_flat_request_header(out, id, function, req),
    }
    let hlen = (out.len() - at - 8) as u32;
    let total = 4 + hlen + req.body.len() as u32;
    out[at..at + 4].copy_from_slice(&total.to_be_bytes());
    out[at + 4..at + 8].copy_from_slice(&hlen.to_be_bytes());
}

/// The protocol this gateway speaks; `init` carries it and `ready` must echo it.
pub const PROTOCOL_VERSION: u32 = 2;

#[derive(Serialize)]
pub struct Init<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub version: u32,
    pub function: &'a str,
    pub runtime: &'static str,
    /// The whole `fn.env.json`, sent once per worker.
    pub env: EnvRef<'a>,
    /// The callable to call instead of the runtime's default lookup.
    pub handler_name: Option<&'a str>,
}

/// `{"type":"cancel","id":N}`: the gateway gave up on request N.
#[derive(Serialize)]
pub struct Cancel {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: u64,
}

pub struct EnvRef<'a>(pub &'a [(String, String)]);

impl Serialize for EnvRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// Any frame a worker sends, by its `type`.
#[derive(Debug)]
pub enum FromWorker<'a> {
    Ready {
        pid: u32,
        /// Absent from a protocol-1 worker.
        version: Option<u64>,
        /// The request encoding the worker asked for (`request_encoding`).
        encoding: Encoding,
    },
    Fatal {
        error: String,
    },
    Res {
        id: u64,
        status: i64,
        headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
        proxy: Option<Box<serde_json::Value>>,
    },
    Err {
        id: u64,
        kind: Cow<'a, str>,
        /// The status FastFN's runtime answers for this failure (500 when absent).
        status: Option<i64>,
        /// FastFN's `error` text for it: the exception's message.
        detail: Option<Cow<'a, str>>,
    },
    Cancelled {
        id: u64,
    },
}

/// The wire shape, flat: serde's internally tagged enums buffer every frame into an
/// intermediate tree first, which was most of the gateway's per-reply cost.
#[derive(Deserialize)]
struct RawFromWorker<'a> {
    #[serde(rename = "type", borrow)]
    kind_of: Cow<'a, str>,
    id: Option<u64>,
    pid: Option<u32>,
    status: Option<i64>,
    #[serde(default, borrow)]
    headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    error: Option<String>,
    #[serde(borrow)]
    detail: Option<Cow<'a, str>>,
    version: Option<u64>,
    /// FastFN's `{"proxy": {...}}`: the handler asks the gateway to fetch an upstream.
    proxy: Option<Box<serde_json::Value>>,
    /// `ready`'s cheaper request encoding (unknown to the scanner: read by serde, once per
    /// worker).
    #[serde(borrow)]
    request_encoding: Option<Cow<'a, str>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("frame of type {0:?} lacks a required field")]
    Missing(String),
}

impl<'a> FromWorker<'a> {
    pub fn parse(header: &'a [u8]) -> Result<FromWorker<'a>, ParseError> {
        let scanned = super::reply_scan::scan(header).filter(|s| s.kind_of.is_some());
        let raw = match scanned {
            Some(s) => RawFromWorker {
                kind_of: Cow::Borrowed(s.kind_of.unwrap_or_default()),
                id: s.id,
                pid: s.pid,
                status: s.status,
                headers: s.headers,
                kind: s.kind.map(Cow::Borrowed),
                error: s.error.map(str::to_owned),
                version: s.version,
                detail: None,
                proxy: None,
                request_encoding: None,
            },
            None => serde_json::from_slice(header)?,
        };
        let missing = || ParseError::Missing(raw.kind_of.to_string());
        Ok(match &*raw.kind_of {
            "res" => FromWorker::Res {
                id: raw.id.ok_or_else(missing)?,
                status: raw.status.ok_or_else(missing)?,
                headers: raw.headers,
                proxy: raw.proxy,
            },
            "err" => FromWorker::Err {
                id: raw.id.ok_or_else(missing)?,
                kind: raw.kind.ok_or_else(missing)?,
                status: raw.status,
                detail: raw.detail,
            },
            "ready" => FromWorker::Ready {
                pid: raw.pid.ok_or_else(missing)?,
                version: raw.version,
                encoding: Encoding::announced(raw.request_encoding.as_deref()),
            },
            "cancelled" => FromWorker::Cancelled {
                id: raw.id.ok_or_else(missing)?,
            },
            "fatal" => FromWorker::Fatal {
                error: raw.error.unwrap_or_default(),
            },
            _ => return Err(missing()),
        })
    }
}

/// The content types the runtimes give an answer whose handler named none (nearly every
/// answer carries one): shared, where any other value is copied out of the frame.
const IMPLIED_TYPES: [HeaderValue; 4] = [
    HeaderValue::from_static("text/plain; charset=utf-8"),
    HeaderValue::from_static("application/json"),
    HeaderValue::from_static("application/json; charset=utf-8"),
    HeaderValue::from_static("text/html; charset=utf-8"),
];

/// Validates a handler's answer: status range, header syntax, and no framing headers
/// (the gateway owns Content-Length, Transfer-Encoding and Connection).
pub fn response(
    status: i64,
    headers: Vec<(Cow<'_, str>, Cow<'_, str>)>,
    body: Bytes,
) -> Result<WorkerResponse, &'static str> {
    if !(100..=599).contains(&status) {
        return Err("status outside 100-599");
    }
    let status = StatusCode::from_u16(status as u16).map_err(|_| "status outside 100-599")?;
    // Room for the `x-request-id` the gateway adds to every answer: filling the map to
    // its capacity first would make that insert grow (reallocate and rehash) it.
    let mut map = HeaderMap::with_capacity(headers.len() + 1);
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| "invalid header name")?;
        let value = match IMPLIED_TYPES
            .iter()
            .find(|t| t.as_bytes() == value.as_bytes())
        {
            Some(t) => t.clone(),
            None => HeaderValue::from_str(&value).map_err(|_| "invalid header value")?,
        };
        if matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection" | "keep-alive" | "upgrade"
        ) {
            continue;
        }
        map.append(name, value);
    }
    Ok(WorkerResponse {
        status,
        headers: map,
        body,
        proxy: None,
    })
}

/// The longest `err` detail that becomes an answer's `error` text: an exception's message
/// may be as long as a frame (1 MiB), and a client or a log line needs its head only.
pub const MAX_ERROR_TEXT: usize = 4096;

/// `text` cut to at most [`MAX_ERROR_TEXT`] bytes, on a char boundary.
pub fn error_text(text: &str) -> &str {
    if text.len() <= MAX_ERROR_TEXT {
        return text;
    }
    let mut end = MAX_ERROR_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_text_is_cut_at_4_kib_on_a_char_boundary() {
        assert_eq!(error_text("short"), "short");
        let exact = "a".repeat(MAX_ERROR_TEXT);
        assert_eq!(error_text(&exact), exact);
        let long = "b".repeat(MAX_ERROR_TEXT * 256);
        assert_eq!(error_text(&long).len(), MAX_ERROR_TEXT);
        // `é` is two bytes: one byte short of the cap, the next one straddles it.
        let wide = format!("{}{}", "c".repeat(MAX_ERROR_TEXT - 1), "é".repeat(10));
        let cut = error_text(&wide);
        assert_eq!(cut.len(), MAX_ERROR_TEXT - 1);
        assert!(cut.chars().all(|c| c == 'c'));
    }

    #[tokio::test]
    async fn oversized_frames_are_refused_before_allocation() {
        let mut frame = Vec::new();
        frame.extend_from_slice(&u32::MAX.to_be_bytes());
        frame.extend_from_slice(&2u32.to_be_bytes());
        assert!(matches!(
            read_frame(&mut frame.as_slice()).await,
            Err(FrameError::TooLarge { .. })
        ));
        let mut bad = Vec::new();
        bad.extend_from_slice(&10u32.to_be_bytes());
        bad.extend_from_slice(&20u32.to_be_bytes());
        assert!(matches!(
            read_frame(&mut bad.as_slice()).await,
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            read_frame(&mut [].as_slice()).await,
            Err(FrameError::Closed)
        ));
    }

    /// A whole frame at the front of the buffer is taken in place; a partial one is left
    /// for `read_frame`; a bad prefix is refused as `read_frame` refuses it.
    #[test]
    fn buffered_frames_are_taken_only_when_whole() {
        let (mut frame, _) = encode(
            &Cancel {
                kind: "cancel",
                id: 7,
            },
            &Bytes::new(),
        );
        let header_len = frame.len() - 8;
        frame.extend_from_slice(b"body");
        let total = (4 + header_len + 4) as u32;
        frame[0..4].copy_from_slice(&total.to_be_bytes());
        let mut two = frame.clone();
        two.extend_from_slice(&frame);
        let (header, body, used) = buffered_frame(&two).unwrap().unwrap();
        assert_eq!(header, br#"{"type":"cancel","id":7}"#);
        assert_eq!(body, b"body");
        assert_eq!(used, frame.len());
        for cut in [0, 3, 8, frame.len() - 1] {
            assert!(
                buffered_frame(&frame[..cut]).unwrap().is_none(),
                "cut at {cut}"
            );
        }
        let mut bad = frame.clone();
        bad[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            buffered_frame(&bad),
            Err(FrameError::Malformed(_))
        ));
        bad[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            buffered_frame(&bad),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn responses_are_validated() {
        assert!(response(99, vec![], Bytes::new()).is_err());
        assert!(response(600, vec![], Bytes::new()).is_err());
        assert!(response(200, vec![("bad name".into(), "v".into())], Bytes::new()).is_err());
        assert!(response(200, vec![("x".into(), "a\nb".into())], Bytes::new()).is_err());
        let parsed = FromWorker::parse(
            br#"{"type":"res","id":3,"status":201,"headers":[["x-a","b\"c"],["y","z"]]}"#,
        )
        .unwrap();
        let FromWorker::Res {
            id,
            status,
            headers,
            ..
        } = parsed
        else {
            panic!("res")
        };
        assert_eq!((id, status), (3, 201));
        assert_eq!(headers[0].1, "b\"c");
        assert_eq!(headers[1].1, "z");
        assert!(FromWorker::parse(br#"{"type":"res","id":3}"#).is_err());
        assert!(FromWorker::parse(br#"{"type":"nope"}"#).is_err());
        assert!(matches!(
            FromWorker::parse(br#"{"type":"err","id":1,"kind":"bad_response","detail":"x"}"#),
            Ok(FromWorker::Err { id: 1, .. })
        ));
        let ok = response(
            201,
            vec![
                ("set-cookie".into(), "a=1".into()),
                ("set-cookie".into(), "b=2".into()),
                ("content-length".into(), "999".into()),
            ],
            Bytes::from_static(b"hi"),
        )
        .unwrap();
        assert_eq!(ok.status, 201);
        let typed = response(
            200,
            vec![
                ("content-type".into(), "text/plain; charset=utf-8".into()),
                ("x-json".into(), "application/json".into()),
                ("x-near".into(), "application/json; charset=utf-16".into()),
            ],
            Bytes::new(),
        )
        .unwrap();
        assert_eq!(typed.headers["content-type"], "text/plain; charset=utf-8");
        assert_eq!(typed.headers["x-json"], "application/json");
        assert_eq!(typed.headers["x-near"], "application/json; charset=utf-16");
        assert!(!typed.headers["content-type"].is_sensitive());
        assert_eq!(ok.headers.get_all("set-cookie").iter().count(), 2);
        assert!(ok.headers.get("content-length").is_none());
    }

    #[tokio::test]
    async fn v2_init_and_cancel_frames() {
        let env = vec![("A".to_owned(), "1".to_owned())];
        let init = Init {
            kind: "init",
            version: PROTOCOL_VERSION,
            function: "f",
            runtime: "node",
            env: EnvRef(&env),
            handler_name: Some("main"),
        };
        let (frame, rest) = encode(&init, &Bytes::new());
        assert!(rest.is_none());
        let (header, body) = read_frame(&mut frame.as_slice()).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&header).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "init", "version": 2, "function": "f",
                "runtime": "node", "env": {"A": "1"}, "handler_name": "main"})
        );
        assert!(body.is_empty());
        let (frame, _) = encode(
            &Cancel {
                kind: "cancel",
                id: 7,
            },
            &Bytes::new(),
        );
        let (header, _) = read_frame(&mut frame.as_slice()).await.unwrap();
        assert_eq!(&header[..], br#"{"type":"cancel","id":7}"#);
    }

    /// Whatever the scanner takes, it reads exactly as serde_json does.
    #[test]
    fn the_scanner_agrees_with_serde() {
        for h in [
            &br#"{"type":"res","id":3,"status":201,"headers":[["x-a","b"],["y",""]]}"#[..],
            br#"{ "type" : "res" , "id" : 0 , "status" : -2 , "headers" : [ ] }"#,
            br#"{"type":"err","id":1,"kind":"handler_error"}"#,
            br#"{"type":"ready","version":2,"pid":9}"#,
            br#"{"type":"ready","pid":9,"version":null}"#,
            br#"{"type":"fatal","error":"boom"}"#,
            br#"{"type":"cancelled","id":18446744073709551615}"#,
            br#"{"type":"res","id":1,"status":200,"headers":[["content-type","text/plain; charset=utf-8"]]}"#,
            r#"{"type":"res","id":1,"status":200,"headers":[["x-long-header-name","été 😀, a value of a few words"]]}"#.as_bytes(),
            br#"{"type":"err","id":1,"kind":"a-kind-longer-than-a-word","error":null}"#,
        ] {
            let s = super::super::reply_scan::scan(h).expect("scanned");
            let r: RawFromWorker<'_> = serde_json::from_slice(h).unwrap();
            assert_eq!(s.kind_of, Some(&*r.kind_of));
            assert_eq!((s.id, s.pid, s.status, s.version), (r.id, r.pid, r.status, r.version));
            assert_eq!(s.headers, r.headers);
            assert_eq!(s.kind, r.kind.as_deref());
            assert_eq!(s.error, r.error.as_deref());
        }
    }

    /// Mutated replies (bytes dropped, doubled, replaced with JSON's punctuation): none
    /// the scanner takes reads otherwise than serde_json reads it.
    #[test]
    fn mutated_replies_scan_as_serde_reads_them() {
        let seeds: [&[u8]; 4] = [
            br#"{"type":"res","id":3,"status":201,"headers":[["x-a","b"],["content-type","text/plain; charset=utf-8"]]}"#,
            br#"{"type":"err","id":1,"kind":"handler_error","status":500}"#,
            br#"{"type":"ready","version":2,"pid":9,"error":null}"#,
            br#"{ "type" : "cancelled" , "id" : 18446744073709551615 }"#,
        ];
        let alphabet = b"\"\\:,[]{} \n0123456789-.eE+nulltrue\x01\xc3\xa9\xff";
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        let mut taken = 0;
        for round in 0..200_000 {
            let mut h = seeds[round % seeds.len()].to_vec();
            for _ in 0..1 + next(3) {
                let at = next(h.len());
                match next(3) {
                    0 => {
                        h.remove(at);
                    }
                    1 => h.insert(at, h[at]),
                    _ => h[at] = alphabet[next(alphabet.len())],
                }
            }
            // As `FromWorker::parse` takes it: a scan without a type is serde's too.
            let scanned = super::super::reply_scan::scan(&h).filter(|s| s.kind_of.is_some());
            let Some(s) = scanned else {
                continue;
            };
            taken += 1;
            let text = String::from_utf8_lossy(&h);
            let r: RawFromWorker<'_> = serde_json::from_slice(&h)
                .unwrap_or_else(|e| panic!("scanned but serde refuses {text}: {e}"));
            assert_eq!(s.kind_of, Some(&*r.kind_of), "{text}");
            assert_eq!(
                (s.id, s.pid, s.status, s.version),
                (r.id, r.pid, r.status, r.version),
                "{text}"
            );
            assert_eq!(s.headers, r.headers, "{text}");
            assert_eq!(s.kind, r.kind.as_deref(), "{text}");
            assert_eq!(s.error, r.error.as_deref(), "{text}");
        }
        assert!(taken > 10_000, "only {taken} mutants scanned");
    }

    #[test]
    fn v2_worker_frames_parse() {
        assert!(matches!(
            FromWorker::parse(br#"{"type":"ready","version":2,"pid":9}"#),
            Ok(FromWorker::Ready {
                pid: 9,
                version: Some(2),
                encoding: Encoding::Json,
            })
        ));
        // The Node worker's announcement; an encoding this gateway does not know is ignored.
        assert!(matches!(
            FromWorker::parse(
                br#"{"type":"ready","version":2,"pid":9,"request_encoding":"flat1"}"#
            ),
            Ok(FromWorker::Ready {
                encoding: Encoding::Flat,
                ..
            })
        ));
        assert!(matches!(
            FromWorker::parse(
                br#"{"type":"ready","version":2,"pid":9,"request_encoding":"flat9"}"#
            ),
            Ok(FromWorker::Ready {
                encoding: Encoding::Json,
                ..
            })
        ));
        // A protocol-1 worker's ready has no version: the handshake refuses it.
        assert!(matches!(
            FromWorker::parse(br#"{"type":"ready","pid":9}"#),
            Ok(FromWorker::Ready { version: None, .. })
        ));
        assert!(matches!(
            FromWorker::parse(br#"{"type":"cancelled","id":4}"#),
            Ok(FromWorker::Cancelled { id: 4 })
        ));
        assert!(FromWorker::parse(br#"{"type":"cancelled"}"#).is_err());
    }
}
