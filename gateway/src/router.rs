//! Route table, built once per snapshot. Lookup borrows the request path and returns
//! parameter spans into it, so the request path allocates nothing here.

use std::collections::HashMap;

use crate::catalog::discover::{Segment, MAX_DEPTH};

/// A folder tree deeper than this is refused at load, so spans fit a fixed array.
pub const MAX_PARAMS: usize = MAX_DEPTH + 1;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Static(Box<str>),
    Param,
}

#[derive(Debug)]
struct ParamRoute {
    segs: Box<[Seg]>,
    index: usize,
}

/// Exact paths in a hash map; parameter routes grouped by segment count, most specific
/// first (a static segment beats a parameter at the first position they differ).
#[derive(Debug, Default)]
pub struct Router {
    exact: HashMap<Box<str>, usize>,
    by_len: Vec<Vec<ParamRoute>>,
}

/// The matched function index and the byte spans of its parameters in the path.
#[derive(Debug, Clone, Copy)]
pub struct Match {
    pub index: usize,
    spans: [(usize, usize); MAX_PARAMS],
    len: usize,
}

impl Match {
    /// Parameter values, in folder order, borrowed from the path that was matched.
    pub fn params<'p>(&self, path: &'p str) -> impl Iterator<Item = &'p str> + use<'p, '_> {
        let path = normalize(path);
        self.spans[..self.len]
            .iter()
            .map(move |&(s, e)| &path[s..e])
    }
}

impl Router {
    /// Builds the table; `routes[i]` is the segment list of function `i`.
    pub fn new<'a>(routes: impl IntoIterator<Item = &'a [Segment]>) -> Router {
        let mut r = Router::default();
        for (index, segments) in routes.into_iter().enumerate() {
            if segments.iter().all(|s| matches!(s, Segment::Static(_))) {
                let path: String = segments
                    .iter()
                    .map(|s| match s {
                        Segment::Static(n) => format!("/{n}"),
                        Segment::Param(_) => unreachable!("all static"),
                    })
                    .collect();
                r.exact.insert(path.into_boxed_str(), index);
                continue;
            }
            let segs: Box<[Seg]> = segments
                .iter()
                .map(|s| match s {
                    Segment::Static(n) => Seg::Static(n.as_str().into()),
                    Segment::Param(_) => Seg::Param,
                })
                .collect();
            if r.by_len.len() <= segs.len() {
                r.by_len.resize_with(segs.len() + 1, Vec::new);
            }
            r.by_len[segs.len()].push(ParamRoute { segs, index });
        }
        for group in &mut r.by_len {
            group.sort_by_key(|p| {
                p.segs
                    .iter()
                    .map(|s| matches!(s, Seg::Param))
                    .collect::<Vec<_>>()
            });
        }
        r
    }

    pub fn lookup(&self, path: &str) -> Option<Match> {
        let path = normalize(path);
        let mut m = Match {
            index: 0,
            spans: [(0, 0); MAX_PARAMS],
            len: 0,
        };
        if let Some(&index) = self.exact.get(path) {
            m.index = index;
            return Some(m);
        }
        let rest = path.strip_prefix('/')?;
        let count = rest.split('/').count();
        let group = self.by_len.get(count)?;
        'routes: for route in group {
            m.len = 0;
            let mut offset = 1;
            for (seg, part) in route.segs.iter().zip(rest.split('/')) {
                match seg {
                    Seg::Static(s) if **s == *part => {}
                    Seg::Static(_) => continue 'routes,
                    Seg::Param if part.is_empty() => continue 'routes,
                    Seg::Param => {
                        m.spans[m.len] = (offset, offset + part.len());
                        m.len += 1;
                    }
                }
                offset += part.len() + 1;
            }
            m.index = route.index;
            return Some(m);
        }
        None
    }
}

/// `/hello/` is `/hello`: one trailing slash is forgiven.
fn normalize(path: &str) -> &str {
    match path.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(route: &str) -> Vec<Segment> {
        route
            .trim_start_matches('/')
            .split('/')
            .map(
                |s| match s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                    Some(p) => Segment::Param(p.into()),
                    None => Segment::Static(s.into()),
                },
            )
            .collect()
    }

    fn router(routes: &[&str]) -> Router {
        let all: Vec<Vec<Segment>> = routes.iter().map(|r| segs(r)).collect();
        Router::new(all.iter().map(Vec::as_slice))
    }

    #[test]
    fn exact_params_and_priority() {
        let r = router(&[
            "/hello",
            "/api/users/[id]",
            "/api/users/[id]/posts",
            "/api/[kind]/list",
            "/api/users/list",
        ]);
        assert_eq!(r.lookup("/hello").unwrap().index, 0);
        assert_eq!(r.lookup("/hello/").unwrap().index, 0);
        assert!(r.lookup("/hello/x").is_none());
        let m = r.lookup("/api/users/42").unwrap();
        assert_eq!(m.index, 1);
        assert_eq!(m.params("/api/users/42").collect::<Vec<_>>(), ["42"]);
        let m = r.lookup("/api/users/7/posts/").unwrap();
        assert_eq!(m.index, 2);
        assert_eq!(m.params("/api/users/7/posts/").collect::<Vec<_>>(), ["7"]);
        assert_eq!(r.lookup("/api/users/list").unwrap().index, 4);
        let m = r.lookup("/api/orders/list").unwrap();
        assert_eq!(m.index, 3);
        assert_eq!(m.params("/api/orders/list").collect::<Vec<_>>(), ["orders"]);
        assert!(r.lookup("/api/users/").is_none());
        assert!(r.lookup("/api//x").is_none());
        assert!(r.lookup("").is_none());
        assert!(r.lookup("/").is_none());
    }

    #[test]
    fn static_beats_param_at_first_difference() {
        let r = router(&["/[a]/x", "/b/[c]"]);
        assert_eq!(r.lookup("/b/x").unwrap().index, 1);
        assert_eq!(r.lookup("/z/x").unwrap().index, 0);
    }
}
