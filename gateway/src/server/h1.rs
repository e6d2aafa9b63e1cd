//! The HTTP/1.1 wire pieces of the front (`front.rs`): which parsed requests it may answer
//! itself ([`screen`]) and the bytes of those answers ([`write_answer`]). The front only
//! takes the plain case — HTTP/1.1, a standard method, an origin-form target of ordinary
//! characters, no body, no upgrade — and leaves every other request to hyper, so hyper
//! stays the one judge of what is malformed.

use std::cell::RefCell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::Method;

use crate::request_id;
use crate::respond::Answer;

/// A request the front may answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Plain<'b> {
    pub method: Method,
    pub path: &'b str,
    pub query: Option<&'b str>,
    /// `Connection: close`: answer, then close.
    pub close: bool,
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
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            if h.value != b"0" {
                return None;
            }
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
    })
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
    DATE.with_borrow_mut(|d| out.extend_from_slice(d.at(now)));
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
    static DATE: RefCell<CachedDate> = const {
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
        for hyper_takes in [
            &b"GET / HTTP/1.0\r\n\r\n"[..],
            b"BREW / HTTP/1.1\r\n\r\n",
            b"CONNECT h:443 HTTP/1.1\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\n\r\n",
            b"GET http://h/a HTTP/1.1\r\n\r\n",
            b"GET /a{b} HTTP/1.1\r\n\r\n",
            b"GET /a?q=<x> HTTP/1.1\r\n\r\n",
            b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
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
