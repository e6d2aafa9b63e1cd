//! The HTTP/1.1 wire pieces of the front (`front.rs`): which parsed requests it may take
//! itself ([`screen`]), the head it hands to the worker path ([`request_parts`]), and the
//! bytes of its answers ([`write_answer`] for the gateway's own, [`write_response`] for a
//! served request, both as hyper's encoder writes them). The front only takes the plain
//! case — HTTP/1.1, a standard method, an origin-form target of ordinary characters, no
//! body or one framed by a single `Content-Length`, no upgrade — and leaves every other
//! request to hyper, so hyper stays the one judge of what is malformed.

use std::cell::RefCell;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use hyper::body::Body as _;

use crate::request_id;
use crate::respond::{Answer, Body};

/// A request the front may answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Plain<'b> {
    pub method: Method,
    pub path: &'b str,
    pub query: Option<&'b str>,
    /// `Connection: close`: answer, then close.
    pub close: bool,
    /// The body's `Content-Length` (0: none).
    pub body_len: u64,
}

/// `None`: hyper takes the request (and the rest of the connection).
pub fn screen<'b>(req: &httparse::Request<'_, 'b>) -> Option<Plain<'b>> {
    if req.version != Some(1) {
        return None;
    }
    let method = match req.method? {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "DELETE" => Method::DELETE,
        "PATCH" => Method::PATCH,
        "OPTIONS" => Method::OPTIONS,
        _ => return None,
    };
    let target = req.path?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    if !path.starts_with('/')
        || !path.bytes().all(|b| plain_target_byte(b) && b != b'?')
        || !query.is_none_or(|q| q.bytes().all(plain_target_byte))
    {
        return None;
    }
    let mut close = false;
    let mut body_len = None;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            // A repeated length, or one hyper might read differently: hyper's.
            if body_len.is_some() {
                return None;
            }
            body_len = Some(plain_length(h.value)?);
        } else if name.eq_ignore_ascii_case(b"connection") {
            if h.value.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if !h.value.eq_ignore_ascii_case(b"keep-alive") {
                return None;
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"upgrade")
            || name.eq_ignore_ascii_case(b"expect")
        {
            return None;
        }
    }
    Some(Plain {
        method,
        path,
        query,
        close,
        body_len: body_len.unwrap_or(0),
    })
}

/// Decimal digits without a leading zero (or `0` itself), short enough not to overflow.
fn plain_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 15 || (v[0] == b'0' && v.len() > 1) {
        return None;
    }
    v.iter().try_fold(0u64, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// The request head as hyper would have built it for the service: method, the
/// origin-form target, HTTP/1.1 and every header field in order, and the body. The
/// request's bytes (`whole`, which holds the target, the fields and the body) are copied
/// once and the target, every value and the body share that copy. `None` (hyper takes the
/// request) for a value `HeaderValue` refuses.
pub fn request_parts(
    plain: &Plain<'_>,
    whole: &[u8],
    target: &str,
    fields: &[httparse::Header<'_>],
    body: &[u8],
) -> Option<(Parts, Bytes)> {
    let shared = Bytes::copy_from_slice(whole);
    let part = |p: &[u8]| {
        let at = (p.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
        if at <= whole.len() && p.len() <= whole.len() - at {
            shared.slice(at..at + p.len())
        } else {
            Bytes::copy_from_slice(p)
        }
    };
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = plain.method.clone();
    parts.uri = Uri::from_maybe_shared(part(target.as_bytes())).ok()?;
    let mut headers = HeaderMap::with_capacity(fields.len());
    for h in fields {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_maybe_shared(part(h.value)).ok()?;
        headers.append(name, value);
    }
    parts.headers = headers;
    Some((parts, part(body)))
}

/// Appends `resp` as hyper's HTTP/1.1 server encoder writes it for a request with this
/// method: the status line, the answer's fields in order (values of `connection` joined on
/// one line), `content-length` after them unless the status has none (204, 304), and
/// `date` last unless the answer set one; `connection: close` when closing. A HEAD, 204 or
/// 304 answer has no body. Returns whether the connection must close after it (the
/// request or the answer said so, or the status cannot be sent: hyper answers a 1xx
/// from a service with an empty 500 and closes).
pub fn write_response(
    out: &mut Vec<u8>,
    resp: Response<Body>,
    head_only: bool,
    close: bool,
    now: Instant,
) -> bool {
    let (parts, body) = resp.into_parts();
    let (status, mut headers) = (parts.status, parts.headers);
    let mut body = full_bytes(body);
    let mut close = close;
    if status.is_informational() {
        let mut fallback = Response::new(Body::default());
        *fallback.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        write_response(out, fallback, head_only, true, now);
        return true;
    }
    if close && !headers.get_all(CONNECTION).iter().any(connection_close) {
        headers.append(CONNECTION, HeaderValue::from_static("close"));
    }
    out.reserve(64 + headers.len() * 32 + body.len());
    if status == StatusCode::OK {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let bodyless_status = matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED);
    let (mut wrote_len, mut wrote_date) = (false, false);
    // A `content-length` or `connection` line is left open: further values of the same
    // name are joined to it (hyper's way), and it ends when the next name starts.
    let mut open: Option<HeaderName> = None;
    for (name, value) in headers.iter() {
        if open.as_ref().is_some_and(|o| o != name) {
            out.extend_from_slice(b"\r\n");
            open = None;
        }
        match *name {
            CONTENT_LENGTH if body.is_empty() && !head_only => continue,
            CONTENT_LENGTH => {
                if open.is_none() && !wrote_len {
                    out.extend_from_slice(b"content-length: ");
                    out.extend_from_slice(value.as_bytes());
                    open = Some(CONTENT_LENGTH);
                    wrote_len = true;
                }
                continue;
            }
            // A full body is never chunked: the worker path strips this field anyway.
            TRANSFER_ENCODING => continue,
            CONNECTION => {
                close |= connection_close(value);
                if open.is_some() {
                    out.extend_from_slice(b", ");
                } else {
                    out.extend_from_slice(b"connection: ");
                    open = Some(CONNECTION);
                }
                out.extend_from_slice(value.as_bytes());
                continue;
            }
            DATE => wrote_date = true,
            _ => {}
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if open.is_some() {
        out.extend_from_slice(b"\r\n");
    }
    // No length for 204/304, nor for an empty answer to HEAD (hyper's implicit zero).
    let implicit = bodyless_status || (body.is_empty() && head_only);
    if !wrote_len && !implicit {
        out.extend_from_slice(b"content-length: ");
        push_decimal(out, body.len());
        out.extend_from_slice(b"\r\n");
    }
    if head_only || bodyless_status {
        body = Bytes::new();
    }
    if wrote_date {
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(b"date: ");
        DATE_CACHE.with_borrow_mut(|d| out.extend_from_slice(d.at(now)));
        out.extend_from_slice(b"\r\n\r\n");
    }
    out.extend_from_slice(&body);
    close
}

fn connection_close(v: &HeaderValue) -> bool {
    v.as_bytes()
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
}

/// The bytes of a full body (its one data frame, ready at once).
fn full_bytes(mut body: Body) -> Bytes {
    let mut cx = Context::from_waker(Waker::noop());
    let mut all = Bytes::new();
    while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) {
        if let Ok(data) = frame.into_data() {
            if all.is_empty() {
                all = data;
            } else {
                all = [all, data].concat().into();
            }
        }
    }
    all
}

/// Unreserved, sub-delims, `:@/%?`: a strict subset of what hyper's URI parser accepts,
/// so no target the front answers would have been a 400 from hyper.
fn plain_target_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
                | b'%'
                | b'?'
        )
}

/// Appends the response: the headers hyper would send for the same `Answer`
/// (content-type, request id, the answer's extra header, content-length, date, and
/// `connection: close` when closing). `head_only`: a HEAD request gets no body. `now`: the
/// caller's latest clock reading, which decides whether the cached `Date` is still current.
pub fn write_answer(
    out: &mut Vec<u8>,
    a: &Answer,
    rid: &[u8],
    head_only: bool,
    close: bool,
    now: Instant,
) {
    out.reserve(160 + rid.len() + a.body.len());
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(a.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(a.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\ncontent-type: application/json\r\n");
    out.extend_from_slice(request_id::HEADER.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(rid);
    out.extend_from_slice(b"\r\n");
    if let Some((name, value)) = &a.extra {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"content-length: ");
    push_decimal(out, a.body.len());
    out.extend_from_slice(b"\r\ndate: ");
    DATE_CACHE.with_borrow_mut(|d| out.extend_from_slice(d.at(now)));
    out.extend_from_slice(b"\r\n\r\n");
    if !head_only {
        out.extend_from_slice(&a.body);
    }
}

fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

thread_local! {
    /// The `Date` value, rendered once per second per thread (as hyper does) and valid
    /// until the next second starts: checked against a monotonic instant the caller already
    /// has, so most answers read no wall clock at all.
    static DATE_CACHE: RefCell<CachedDate> = const {
        RefCell::new(CachedDate { valid_until: None, text: [0; 29] })
    };
}

struct CachedDate {
    valid_until: Option<Instant>,
    text: [u8; 29],
}

impl CachedDate {
    fn at(&mut self, now: Instant) -> &[u8] {
        if self.valid_until.is_none_or(|until| now >= until) {
            let wall = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let second = UNIX_EPOCH + Duration::from_secs(wall.as_secs());
            let rendered = httpdate::fmt_http_date(second);
            if rendered.len() == self.text.len() {
                self.text.copy_from_slice(rendered.as_bytes());
                let into_second = Duration::from_nanos(wall.subsec_nanos().into());
                self.valid_until = Some(now + (Duration::from_secs(1) - into_second));
            }
        }
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::WWW_AUTHENTICATE;
    use http::{HeaderValue, StatusCode};

    fn parse(raw: &[u8]) -> Option<Plain<'_>> {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(raw).unwrap().is_complete());
        screen(&req)
    }

    #[test]
    fn takes_only_the_plain_case() {
        let p = parse(b"GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: h\r\nX-Api-Key: k\r\n\r\n").unwrap();
        assert_eq!(
            (p.method, p.path, p.query, p.close),
            (Method::GET, "/a/b", Some("x=1&y=%20"), false)
        );
        let p =
            parse(b"HEAD / HTTP/1.1\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert!(p.close && p.method == Method::HEAD);
        let p = parse(b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi").unwrap();
        assert_eq!((p.method, p.body_len), (Method::POST, 2));
        for hyper_takes in [
            &b"GET / HTTP/1.0\r\n\r\n"[..],
            b"BREW / HTTP/1.1\r\n\r\n",
            b"CONNECT h:443 HTTP/1.1\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\n\r\n",
            b"GET http://h/a HTTP/1.1\r\n\r\n",
            b"GET /a{b} HTTP/1.1\r\n\r\n",
            b"GET /a?q=<x> HTTP/1.1\r\n\r\n",
            b"POST /a HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
            b"POST /a HTTP/1.1\r\nContent-Length: +2\r\n\r\nhi",
            b"POST /a HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"GET /a HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"PUT /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
            b"GET /a HTTP/1.1\r\nContent-Length: 00\r\n\r\n",
        ] {
            assert_eq!(
                parse(hyper_takes),
                None,
                "{}",
                String::from_utf8_lossy(hyper_takes)
            );
        }
    }

    #[test]
    fn answers_parse_back_as_http() {
        let a = Answer {
            status: StatusCode::UNAUTHORIZED,
            extra: Some((
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"x\""),
            )),
            body: bytes::Bytes::from_static(br#"{"error":"unauthorized"}"#),
        };
        for (head_only, close) in [(false, false), (true, true)] {
            let mut out = Vec::new();
            write_answer(&mut out, &a, b"rid-1", head_only, close, Instant::now());
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut resp = httparse::Response::new(&mut headers);
            let n = match resp.parse(&out).unwrap() {
                httparse::Status::Complete(n) => n,
                httparse::Status::Partial => panic!("incomplete head"),
            };
            assert_eq!((resp.code, resp.reason), (Some(401), Some("Unauthorized")));
            let get = |name: &str| {
                resp.headers
                    .iter()
                    .find(|h| h.name == name)
                    .map(|h| std::str::from_utf8(h.value).unwrap().to_owned())
            };
            assert_eq!(get("content-length").unwrap(), a.body.len().to_string());
            assert_eq!(get("x-request-id").unwrap(), "rid-1");
            assert_eq!(get("www-authenticate").unwrap(), "Basic realm=\"x\"");
            assert_eq!(get("content-type").unwrap(), "application/json");
            assert!(httpdate::parse_http_date(&get("date").unwrap()).is_ok());
            assert_eq!(get("connection").is_some(), close);
            let body = &out[n..];
            assert_eq!(body, if head_only { &b""[..] } else { &a.body[..] });
        }
    }

    /// What hyper's HTTP/1 server writes for `resp` answering `request`, read from a real
    /// connection over an in-memory pipe until the answer is complete.
    async fn hyper_writes(request: &'static [u8], resp: Response<Body>) -> Vec<u8> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let resp = std::sync::Mutex::new(Some(resp));
        let svc = hyper::service::service_fn(move |_req| {
            let r = resp.lock().unwrap().take().unwrap();
            async move { Ok::<_, std::convert::Infallible>(r) }
        });
        // Half-close: the client's EOF right after its request must not cancel the answer.
        let conn = hyper::server::conn::http1::Builder::new()
            .half_close(true)
            .serve_connection(hyper_util::rt::TokioIo::new(server), svc);
        let served = tokio::spawn(conn);
        client.write_all(request).await.unwrap();
        client.shutdown().await.unwrap();
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.unwrap();
        let _ = served.await;
        out
    }

    /// The `date` value masked: the two sides may render different seconds.
    fn masked(bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes).into_owned();
        match text.find("date: ") {
            Some(i) => format!("{}date: *{}", &text[..i], &text[i + 6 + 29..]),
            None => text,
        }
    }

    #[tokio::test]
    async fn served_answers_are_hypers_bytes() {
        use http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
        let plain = |status: u16, fields: &[(HeaderName, &'static str)], body: &'static [u8]| {
            let mut r = Response::new(Body::new(Bytes::from_static(body)));
            *r.status_mut() = StatusCode::from_u16(status).unwrap();
            for (n, v) in fields {
                r.headers_mut()
                    .append(n.clone(), HeaderValue::from_static(v));
            }
            r
        };
        let get = b"GET /f HTTP/1.1\r\nhost: t\r\n\r\n";
        let head = b"HEAD /f HTTP/1.1\r\nhost: t\r\n\r\n";
        let close = b"GET /f HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n";
        let typed = [
            (CONTENT_TYPE, "text/plain"),
            (SET_COOKIE, "a=1"),
            (SET_COOKIE, "b=2"),
        ];
        let cases: Vec<(&'static [u8], Response<Body>, bool, bool)> = vec![
            (get, plain(200, &typed, b"hello"), false, false),
            (
                get,
                plain(201, &[(CACHE_CONTROL, "no-store")], b"{}"),
                false,
                false,
            ),
            (get, plain(200, &[], b""), false, false),
            (get, plain(204, &[], b""), false, false),
            (
                get,
                plain(304, &[(CACHE_CONTROL, "max-age=1")], b"ignored"),
                false,
                false,
            ),
            (get, plain(599, &[], b"odd"), false, false),
            (
                get,
                plain(200, &[(DATE, "Tue, 01 Dec 2026 00:00:00 GMT")], b"x"),
                false,
                false,
            ),
            (
                get,
                plain(200, &[(CONNECTION, "close")], b"bye"),
                false,
                true,
            ),
            (
                get,
                plain(200, &[(CONTENT_LENGTH, "3")], b"abc"),
                false,
                false,
            ),
            (head, plain(200, &typed, b"hello"), true, false),
            (head, plain(200, &[], b""), true, false),
            (close, plain(404, &typed, b"gone"), false, true),
            (
                close,
                plain(200, &[(CONNECTION, "keep-alive")], b"k"),
                false,
                true,
            ),
        ];
        for (request, resp, head_only, closes) in cases {
            let mut copy = Response::new(Body::new(full_bytes_of(&resp)));
            *copy.status_mut() = resp.status();
            *copy.headers_mut() = resp.headers().clone();
            let theirs = hyper_writes(request, copy).await;
            let asked_close = request == close;
            let mut ours = Vec::new();
            let shut = write_response(&mut ours, resp, head_only, asked_close, Instant::now());
            assert_eq!(masked(&ours), masked(&theirs));
            assert_eq!(shut, closes, "{}", masked(&ours));
        }
    }

    fn full_bytes_of(r: &Response<Body>) -> Bytes {
        full_bytes(r.body().clone())
    }

    #[test]
    fn date_stays_until_the_next_second_starts() {
        let mut d = CachedDate {
            valid_until: None,
            text: [0; 29],
        };
        let t = Instant::now();
        let text = std::str::from_utf8(d.at(t)).unwrap().to_owned();
        let shown = httpdate::parse_http_date(&text).unwrap();
        let wall = SystemTime::now();
        assert!(wall.duration_since(shown).unwrap() < Duration::from_secs(2));
        let until = d.valid_until.unwrap();
        assert!(until > t && until <= t + Duration::from_secs(1));
    }

    #[test]
    fn decimals() {
        for n in [0usize, 7, 10, 24, 65535, usize::MAX] {
            let mut v = Vec::new();
            push_decimal(&mut v, n);
            assert_eq!(v, n.to_string().as_bytes());
        }
    }
}
