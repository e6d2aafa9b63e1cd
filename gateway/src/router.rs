//! Route table, built once per snapshot from every function's routes and methods. Lookup
//! borrows the request path, tries the exact table, then the dynamic routes in FastFN's
//! order (`routes.lua`'s `sort_dynamic_routes`: more static segments first, then more
//! segments, then fewer catch-alls, then more parameters, then by text), and matches the
//! method there: a path served by one function per method (`get.py` beside `post.py`)
//! is one route here. Parameter values are spans into the path, decoded only when copied.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderValue, Method};

use crate::catalog::discover::{Segment, MAX_DEPTH};

/// A folder tree deeper than this is refused at load, so spans fit a fixed array.
pub const MAX_PARAMS: usize = MAX_DEPTH + 2;

/// What the table is built from: one route of one function.
pub struct RouteSpec<'a> {
    pub index: usize,
    pub segments: &'a [Segment],
    pub methods: &'a [Method],
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Static(Box<str>),
    Param,
    /// One or more segments; always last.
    Tail,
}

#[derive(Debug)]
struct Entry {
    index: usize,
    methods: Box<[Method]>,
}

/// Every function answering one path shape, and the `Allow` header of their union.
#[derive(Debug, Default)]
struct Slot {
    entries: Vec<Entry>,
    allow: Option<HeaderValue>,
}

#[derive(Debug)]
struct Pattern {
    segs: Box<[Seg]>,
    names: Arc<[Box<str>]>,
    text: String,
    slot: Slot,
}

#[derive(Debug, Default)]
pub struct Router {
    exact: HashMap<Box<str>, Slot>,
    dynamic: Vec<Pattern>,
}

/// The matched function and the byte spans of its parameters in the (normalised) path.
#[derive(Debug, Clone)]
pub struct Match {
    pub index: usize,
    names: Option<Arc<[Box<str>]>>,
    spans: [Span; MAX_PARAMS],
    len: usize,
}

/// A parameter's byte range in the path: `u32` halves the `Match` that travels by value
/// with every admitted request (a path never nears 4 GiB; one that did would not match).
type Span = (u32, u32);

fn span(start: usize, end: usize) -> Option<Span> {
    Some((u32::try_from(start).ok()?, u32::try_from(end).ok()?))
}

/// The outcome of a lookup; returned by value and taken apart at once, so the size
/// difference of the variants costs a copy, not memory held.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Lookup<'r> {
    Found(Match),
    /// The path is served, not with this method: the first function found (for metrics)
    /// and the methods the path accepts.
    MethodNotAllowed {
        index: usize,
        allow: &'r HeaderValue,
    },
    NotFound,
}

impl Match {
    /// `(name, value)` of every parameter, percent-decoded as FastFN hands them over; a
    /// catch-all value is the rest of the path (`a/b/c`).
    pub fn params<'p>(
        &'p self,
        path: &'p str,
    ) -> impl Iterator<Item = (&'p str, Cow<'p, str>)> + 'p {
        let path = normalize(path);
        let names = self.names.as_deref().unwrap_or(&[]);
        names
            .iter()
            .zip(&self.spans[..self.len])
            .map(move |(n, &(s, e))| (&**n, percent_decode(&path[s as usize..e as usize])))
    }
}

impl Router {
    pub fn new<'a>(routes: impl IntoIterator<Item = RouteSpec<'a>>) -> Router {
        let mut r = Router::default();
        for spec in routes {
            for (segs, names) in expand(spec.segments) {
                let entry = Entry {
                    index: spec.index,
                    methods: spec.methods.into(),
                };
                if names.is_empty() {
                    let path: String = segs
                        .iter()
                        .map(|s| match s {
                            Seg::Static(n) => format!("/{n}"),
                            Seg::Param | Seg::Tail => unreachable!("no parameters"),
                        })
                        .collect();
                    r.exact.entry(path.into()).or_default().entries.push(entry);
                    continue;
                }
                match r.dynamic.iter_mut().find(|p| p.segs[..] == segs[..]) {
                    Some(p) => p.slot.entries.push(entry),
                    None => r.dynamic.push(Pattern {
                        text: text(&segs, &names),
                        segs: segs.into(),
                        names: names.into(),
                        slot: Slot {
                            entries: vec![entry],
                            allow: None,
                        },
                    }),
                }
            }
        }
        r.dynamic.sort_by(|a, b| {
            sort_key(&a.segs)
                .cmp(&sort_key(&b.segs))
                .then_with(|| static_first(&a.segs).cmp(&static_first(&b.segs)))
                .then_with(|| a.text.cmp(&b.text))
        });
        for slot in r
            .exact
            .values_mut()
            .chain(r.dynamic.iter_mut().map(|p| &mut p.slot))
        {
            slot.allow = Some(allow_header(&slot.entries));
        }
        r
    }

    pub fn lookup(&self, path: &str, method: &Method) -> Lookup<'_> {
        let path = normalize(path);
        let mut refused: Option<(usize, &HeaderValue)> = None;
        if let Some(slot) = self.exact.get(path) {
            match pick(slot, method) {
                Ok(index) => {
                    return Lookup::Found(Match {
                        index,
                        names: None,
                        spans: [(0, 0); MAX_PARAMS],
                        len: 0,
                    })
                }
                Err(first) => refused = Some(first),
            }
        }
        if let Some(rest) = path.strip_prefix('/') {
            for p in &self.dynamic {
                let Some((spans, len)) = match_pattern(&p.segs, rest) else {
                    continue;
                };
                match pick(&p.slot, method) {
                    Ok(index) => {
                        return Lookup::Found(Match {
                            index,
                            names: Some(p.names.clone()),
                            spans,
                            len,
                        })
                    }
                    Err(first) => {
                        refused.get_or_insert(first);
                    }
                }
            }
        }
        match refused {
            Some((index, allow)) => Lookup::MethodNotAllowed { index, allow },
            None => Lookup::NotFound,
        }
    }
}

fn pick<'s>(slot: &'s Slot, method: &Method) -> Result<usize, (usize, &'s HeaderValue)> {
    match slot.entries.iter().find(|e| e.methods.contains(method)) {
        Some(e) => Ok(e.index),
        None => Err((
            slot.entries[0].index,
            slot.allow.as_ref().expect("set at build"),
        )),
    }
}

/// `[[...x]]` is two routes: without the tail and with it.
fn expand(segments: &[Segment]) -> Vec<(Vec<Seg>, Vec<Box<str>>)> {
    let mut segs = Vec::with_capacity(segments.len());
    let mut names = Vec::new();
    let mut out = Vec::new();
    for s in segments {
        match s {
            Segment::Static(n) => segs.push(Seg::Static(n.as_str().into())),
            Segment::Param(n) => {
                segs.push(Seg::Param);
                names.push(n.as_str().into());
            }
            Segment::CatchAll(n) => {
                segs.push(Seg::Tail);
                names.push(n.as_str().into());
            }
            Segment::OptionalCatchAll(n) => {
                if !segs.is_empty() {
                    out.push((segs.clone(), names.clone()));
                }
                segs.push(Seg::Tail);
                names.push(n.as_str().into());
            }
        }
    }
    out.push((segs, names));
    out
}

fn match_pattern(segs: &[Seg], rest: &str) -> Option<([Span; MAX_PARAMS], usize)> {
    let mut spans = [(0, 0); MAX_PARAMS];
    let mut len = 0;
    let mut offset = 1;
    let mut parts = rest.split('/');
    for seg in segs {
        if *seg == Seg::Tail {
            let tail = rest.get(offset - 1..).filter(|t| !t.is_empty())?;
            spans[len] = span(offset, offset + tail.len())?;
            return Some((spans, len + 1));
        }
        let part = parts.next()?;
        match seg {
            Seg::Static(s) if **s == *part => {}
            Seg::Param if !part.is_empty() => {
                spans[len] = span(offset, offset + part.len())?;
                len += 1;
            }
            _ => return None,
        }
        offset += part.len() + 1;
    }
    parts.next().is_none().then_some((spans, len))
}

/// FastFN's order as an ascending key: static segments desc, segments desc, catch-alls
/// asc, parameters desc.
fn sort_key(segs: &[Seg]) -> (isize, isize, usize, isize) {
    let statics = segs.iter().filter(|s| matches!(s, Seg::Static(_))).count();
    let tails = segs.iter().filter(|s| **s == Seg::Tail).count();
    let params = segs.len() - statics - tails;
    (
        -(statics as isize),
        -(segs.len() as isize),
        tails,
        -(params as isize),
    )
}

/// Where FastFN's key ties, a static segment beats a parameter at the first position
/// the two routes differ (edgefn's rule; FastFN would fall back to the text alone).
fn static_first(segs: &[Seg]) -> Vec<u8> {
    segs.iter()
        .map(|s| match s {
            Seg::Static(_) => 0,
            Seg::Param => 1,
            Seg::Tail => 2,
        })
        .collect()
}

fn text(segs: &[Seg], names: &[Box<str>]) -> String {
    let mut names = names.iter();
    segs.iter()
        .map(|s| match s {
            Seg::Static(n) => format!("/{n}"),
            Seg::Param => format!("/:{}", names.next().map_or("", |n| n)),
            Seg::Tail => format!("/:{}*", names.next().map_or("", |n| n)),
        })
        .collect()
}

fn allow_header(entries: &[Entry]) -> HeaderValue {
    let mut all: Vec<&Method> = Vec::new();
    for m in entries.iter().flat_map(|e| e.methods.iter()) {
        if !all.contains(&m) {
            all.push(m);
        }
    }
    let joined = all
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    HeaderValue::from_str(&joined).expect("method names are header-safe")
}

/// `/hello/` is `/hello`: one trailing slash is forgiven.
fn normalize(path: &str) -> &str {
    match path.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => path,
    }
}

/// Whether a `..` segment, also percent-encoded (`/%2e%2e/x`), takes the path above `/`.
/// FastFN's nginx refuses such a request with 400 before any route or file is looked at.
pub fn climbs_above_root(path: &str) -> bool {
    if !may_climb(path.as_bytes()) {
        return false;
    }
    let mut depth = 0usize;
    for seg in path.split('/').skip(1) {
        match &*percent_decode(seg) {
            ".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
            "." | "" => {}
            _ => depth += 1,
        }
    }
    false
}

/// Whether `path` holds `..` or an escaped dot (`%2e`): one pass, as every request asks.
fn may_climb(b: &[u8]) -> bool {
    b.windows(2).enumerate().any(|(i, w)| match w {
        [b'.', b'.'] => true,
        [b'%', b'2'] => matches!(b.get(i + 2), Some(b'e' | b'E')),
        _ => false,
    })
}

/// `%XX` decoded; an invalid escape or non-UTF-8 result leaves the text as sent.
fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied(), b.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_or(Cow::Borrowed(s), Cow::Owned)
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
