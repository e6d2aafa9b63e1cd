//! The worker's frame headers read without serde: a scanner for the flat objects the
//! workers send (`res`, `err`, `cancelled`, `ready`, `fatal`), borrowing every string
//! from the frame. It answers only what it is sure of: an escaped string, a key it does
//! not know (`detail`, `proxy`, ...), a duplicate key or anything else unusual gives
//! `None`, and `FromWorker::parse` then reads the header with serde_json as before, so
//! what is accepted or refused, and how, is serde_json's decision in every case this
//! scanner does not take.

use std::borrow::Cow;

use super::json_text;

/// The fields of a worker frame header, as `protocol::RawFromWorker` holds them.
#[derive(Debug, Default, PartialEq)]
pub struct Scanned<'a> {
    pub kind_of: Option<&'a str>,
    pub id: Option<u64>,
    pub pid: Option<u32>,
    pub status: Option<i64>,
    pub headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub kind: Option<&'a str>,
    pub error: Option<&'a str>,
    pub version: Option<u64>,
}

struct Scan<'a> {
    /// The header, checked to be UTF-8 once: every string is then a slice of it.
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

pub fn scan(header: &[u8]) -> Option<Scanned<'_>> {
    // A header that is not UTF-8 throughout was never one to take (a byte above 0x7f can
    // only sit in a string, and each string is text): checked once, here, every string is
    // then a slice of it.
    let text = std::str::from_utf8(header).ok()?;
    let mut s = Scan {
        text,
        b: header,
        i: 0,
    };
    let mut out = Scanned::default();
    let mut seen = 0u16;
    s.ws();
    s.eat(b'{')?;
    s.ws();
    if !s.eat_if(b'}') {
        loop {
            s.ws();
            let key = s.key()?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            match key {
                Key::Type => out.kind_of = s.opt(Scan::string)?,
                Key::Id => out.id = s.opt(Scan::unsigned)?,
                Key::Pid => {
                    out.pid = match s.opt(Scan::unsigned)? {
                        Some(p) => Some(u32::try_from(p).ok()?),
                        None => None,
                    }
                }
                Key::Status => out.status = s.opt(Scan::signed)?,
                Key::Headers => out.headers = s.pairs()?,
                Key::Kind => out.kind = s.opt(Scan::string)?,
                Key::Error => out.error = s.opt(Scan::string)?,
                Key::Version => out.version = s.opt(Scan::unsigned)?,
            }
            let bit = 1u16 << key as u16;
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            s.ws();
            if s.eat_if(b'}') {
                break;
            }
            s.eat(b',')?;
        }
    }
    s.ws();
    (s.i == s.b.len()).then_some(out)
}

/// The keys the scanner reads; any other is serde_json's.
#[derive(Clone, Copy)]
enum Key {
    Type,
    Id,
    Pid,
    Status,
    Headers,
    Kind,
    Error,
    Version,
}

impl<'a> Scan<'a> {
    /// A known key, quotes included: its first letter names the only one it can be, and
    /// its bytes must be that name's exactly (a key spelled with an escape is none).
    fn key(&mut self) -> Option<Key> {
        let rest = self.b.get(self.i..)?;
        let (key, name): (Key, &[u8]) = match rest.get(1)? {
            b't' => (Key::Type, b"\"type\""),
            b'i' => (Key::Id, b"\"id\""),
            b'p' => (Key::Pid, b"\"pid\""),
            b's' => (Key::Status, b"\"status\""),
            b'h' => (Key::Headers, b"\"headers\""),
            b'k' => (Key::Kind, b"\"kind\""),
            b'e' => (Key::Error, b"\"error\""),
            b'v' => (Key::Version, b"\"version\""),
            _ => return None,
        };
        if !rest.starts_with(name) {
            return None;
        }
        self.i += name.len();
        Some(key)
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.eat_if(c).then_some(())
    }

    fn eat_if(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.i += usize::from(hit);
        hit
    }

    /// `null` → `Some(None)`; otherwise the value `f` reads.
    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            return Some(None);
        }
        f(self).map(Some)
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let end = start + json_text::plain_len(&self.b[start..]);
        if self.b.get(end) != Some(&b'"') {
            return None;
        }
        self.i = end + 1;
        // Both ends are next to a `"`, so on char boundaries.
        self.text.get(start..end)
    }

    /// Digits as serde_json reads an integer: no leading zero, no fraction or exponent.
    fn unsigned(&mut self) -> Option<u64> {
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.i += 1;
        }
        let digits = self.i - start;
        if digits == 0 || (digits > 1 && self.b[start] == b'0') {
            return None;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(n)
    }

    fn signed(&mut self) -> Option<i64> {
        if self.eat_if(b'-') {
            let n = self.unsigned()?;
            return 0i64.checked_sub_unsigned(n);
        }
        i64::try_from(self.unsigned()?).ok()
    }

    /// `[[name, value], ...]`.
    fn pairs(&mut self) -> Option<Vec<(Cow<'a, str>, Cow<'a, str>)>> {
        self.eat(b'[')?;
        let mut out = Vec::new();
        self.ws();
        if self.eat_if(b']') {
            return Some(out);
        }
        loop {
            self.ws();
            self.eat(b'[')?;
            self.ws();
            let name = self.string()?;
            self.ws();
            self.eat(b',')?;
            self.ws();
            let value = self.string()?;
            self.ws();
            self.eat(b']')?;
            out.push((Cow::Borrowed(name), Cow::Borrowed(value)));
            self.ws();
            if self.eat_if(b']') {
                return Some(out);
            }
            self.eat(b',')?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workers_replies_scan() {
        let s = scan(br#"{"type": "res", "id": 3, "status": 201, "headers": [["content-type", "text/plain"], ["x", ""]]}"#).unwrap();
        assert_eq!(s.kind_of, Some("res"));
        assert_eq!((s.id, s.status), (Some(3), Some(201)));
        assert_eq!(s.headers.len(), 2);
        assert_eq!(s.headers[0].1, "text/plain");
        let s = scan(br#"{"type":"err","id":1,"kind":"bad_response"}"#).unwrap();
        assert_eq!((s.kind_of, s.kind), (Some("err"), Some("bad_response")));
        let s = scan(br#"{"pid":9,"type":"ready","version":2}"#).unwrap();
        assert_eq!((s.pid, s.version), (Some(9), Some(2)));
        let s =
            scan(r#"{"type":"res","id":1,"status":200,"headers":[["x-été","😀 ok"]]}"#.as_bytes())
                .unwrap();
        assert_eq!(
            s.headers[0],
            (Cow::Borrowed("x-été"), Cow::Borrowed("😀 ok"))
        );
        let s = scan(br#"{"type":"res","id":1,"status":-7,"headers":[]}"#).unwrap();
        assert_eq!(s.status, Some(-7));
        assert_eq!(
            scan(br#"{"type":null,"id":null}"#).unwrap(),
            Scanned::default()
        );
    }

    #[test]
    fn what_serde_should_judge_is_left_to_it() {
        for h in [
            &br#"{"type":"res","id":1,"proxy":{"url":"http://x"}}"#[..],
            br#"{"type":"re\u0073","id":1}"#,
            br#"{"type":"err","id":1,"kind":"bad_response","detail":"a \"b\""}"#,
            br#"{"type":"res","headers":[["a","b\nc"]]}"#,
            br#"{"type":"res","id":1.0}"#,
            br#"{"type":"res","id":01}"#,
            br#"{"type":"res","id":-1}"#,
            br#"{"type":"res","id":18446744073709551616}"#,
            br#"{"type":"ready","pid":4294967296}"#,
            br#"{"type":"res","id":1,"id":2}"#,
            br#"{"type":"res","x":[1]}"#,
            br#"{"type":"res","x":1}"#,
            br#"{"typ":"res"}"#,
            br#"{"typex":"res"}"#,
            br#"{"Type":"res"}"#,
            br#"{"type":"res","":1}"#,
            br#"{"type":"res","i":1}"#,
            br#"{"type":"res","id":1,"ids":2}"#,
            br#"{"type":"res","\u0069d":1}"#,
            br#"{"type":"res","id"#,
            br#"{"type":"res",""#,
            br#"{"type":"res","#,
            br#"{"type":"err","id":1,"kind":"handler_error","detail":"the handler raised"}"#,
            br#"{"type":"res","headers":[["a","b","c"]]}"#,
            br#"{"type":"res"} x"#,
            br#"{"type":"res",}"#,
            b"{\"type\":\"r\xffs\"}",
            b"{\"type\":\"res\",\"headers\":[[\"a\",\"caf\xc3\"]]}",
            b"{\"type\":\"res\",\xc3\xa9\"id\":1}",
            br#"[]"#,
            br#""#,
        ] {
            assert_eq!(scan(h), None, "{}", String::from_utf8_lossy(h));
        }
    }
}
