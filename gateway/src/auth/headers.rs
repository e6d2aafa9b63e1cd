//! A read-only view of a request's header fields that works both on hyper's parsed
//! [`HeaderMap`] and on the raw `httparse` fields of the HTTP/1 front
//! (`server/front.rs`), so the same verification code serves both without building a
//! `HeaderMap` for a request the gateway is about to refuse.

use http::{HeaderMap, HeaderName};

#[derive(Clone, Copy)]
pub enum Headers<'a> {
    Map(&'a HeaderMap),
    Raw(&'a [httparse::Header<'a>]),
}

/// The values of one field name.
pub enum Values<'a, 'n> {
    Map(http::header::ValueIter<'a, http::HeaderValue>),
    Raw {
        rest: std::slice::Iter<'a, httparse::Header<'a>>,
        name: &'n str,
    },
}

impl<'a> Iterator for Values<'a, '_> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match self {
            Values::Map(it) => it.next().map(http::HeaderValue::as_bytes),
            Values::Raw { rest, name } => rest
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value),
        }
    }
}

/// What a field that must appear at most once holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum One<'a> {
    Missing,
    Value(&'a [u8]),
    /// Present more than once: malformed rather than "first wins", so proxies can't
    /// disagree about which one counted.
    Repeated,
}

impl<'a> Headers<'a> {
    /// Every value of `name`, in the order received. `HeaderName`s are lower case; raw
    /// names are compared without regard to case, as HTTP requires.
    pub fn get_all<'n>(self, name: &'n HeaderName) -> Values<'a, 'n> {
        match self {
            Headers::Map(m) => Values::Map(m.get_all(name).iter()),
            Headers::Raw(h) => Values::Raw {
                rest: h.iter(),
                name: name.as_str(),
            },
        }
    }

    pub fn one(self, name: &HeaderName) -> One<'a> {
        let mut it = self.get_all(name);
        match (it.next(), it.next()) {
            (None, _) => One::Missing,
            (Some(v), None) => One::Value(v),
            (Some(_), Some(_)) => One::Repeated,
        }
    }

    pub fn first(self, name: &HeaderName) -> Option<&'a [u8]> {
        self.get_all(name).next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn raw_and_map_views_agree() {
        let raw = [
            httparse::Header {
                name: "Host",
                value: b"x",
            },
            httparse::Header {
                name: "X-Api-Key",
                value: b"k1",
            },
            httparse::Header {
                name: "x-twice",
                value: b"a",
            },
            httparse::Header {
                name: "X-TWICE",
                value: b"b",
            },
        ];
        let mut map = HeaderMap::new();
        for h in &raw {
            map.append(
                HeaderName::from_bytes(h.name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(h.value).unwrap(),
            );
        }
        let key = HeaderName::from_static("x-api-key");
        let twice = HeaderName::from_static("x-twice");
        let absent = HeaderName::from_static("x-absent");
        for view in [Headers::Raw(&raw), Headers::Map(&map)] {
            assert_eq!(view.one(&key), One::Value(b"k1"));
            assert_eq!(view.one(&twice), One::Repeated);
            assert_eq!(view.one(&absent), One::Missing);
            assert_eq!(view.get_all(&twice).collect::<Vec<_>>(), [b"a", b"b"]);
            assert_eq!(view.first(&twice), Some(&b"a"[..]));
        }
    }
}
