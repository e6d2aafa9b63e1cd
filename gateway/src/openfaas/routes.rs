//! `/function/<name>[/<rest>]` and `/async-function/<name>[/<rest>]`: the prefix is cut,
//! the longest leading part of `<name>/<rest>` that is a route picks the function, and the
//! remainder is the path the function sees. Everything else is looked up as it came.
//! The result, a [`View`], is a few offsets into the request path, so nothing is copied.

/// How a request reached its function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Its own route.
    Plain,
    /// `/function/...`: synchronous, with the OpenFaaS headers on the answer.
    Sync,
    /// `/async-function/...`: queued, answered 202.
    Async,
}

const SYNC: &str = "/function";
const ASYNC: &str = "/async-function";

/// Offsets into the request path: `[start, end)` is what the router matched (it starts
/// with `/`), `end..` is the rest the function sees.
#[derive(Debug, Clone, Copy)]
pub struct View {
    pub mode: Mode,
    start: usize,
    end: usize,
}

impl View {
    /// The part of `path` the router matched; parameter spans refer to it.
    pub fn routed<'p>(&self, path: &'p str) -> &'p str {
        match self.mode {
            Mode::Plain => path,
            Mode::Sync | Mode::Async => &path[self.start..self.end],
        }
    }

    /// The path the function sees: its own for a plain route, `<rest>` or `/` otherwise.
    pub fn worker_path<'p>(&self, path: &'p str) -> &'p str {
        match self.mode {
            Mode::Plain => path,
            Mode::Sync | Mode::Async => match &path[self.end..] {
                "" => "/",
                rest => rest,
            },
        }
    }
}

/// The route behind `path`; `prefixes` is `[openfaas] enabled`. `lookup` is the router's
/// own lookup (any answer but "no route" ends the search), so this module does not
/// depend on the router's types.
pub fn resolve<T>(
    path: &str,
    prefixes: bool,
    mut lookup: impl FnMut(&str) -> Option<T>,
) -> Option<(T, View)> {
    let plain = View {
        mode: Mode::Plain,
        start: 0,
        end: path.len(),
    };
    if !prefixes {
        return lookup(path).map(|m| (m, plain));
    }
    let (mode, start) = if let Some(tail) = path.strip_prefix(SYNC) {
        (Mode::Sync, tail)
    } else if let Some(tail) = path.strip_prefix(ASYNC) {
        (Mode::Async, tail)
    } else {
        return lookup(path).map(|m| (m, plain));
    };
    if !start.starts_with('/') {
        // `/functionality` is an ordinary route.
        return lookup(path).map(|m| (m, plain));
    }
    let start = path.len() - start.len();
    let mut end = path.len();
    // Each step drops one trailing segment; the path's length bounds the loop.
    loop {
        if let Some(m) = lookup(&path[start..end]) {
            return Some((m, View { mode, start, end }));
        }
        end = start + 1 + path[start + 1..end].rfind('/')?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::discover::Segment;
    use crate::router::{Lookup, Match, RouteSpec, Router};

    fn router(routes: &[&str]) -> Router {
        let all: Vec<Vec<Segment>> = routes
            .iter()
            .map(|r| {
                r.trim_start_matches('/')
                    .split('/')
                    .map(|s| crate::catalog::discover::parse_segment(s).unwrap())
                    .collect()
            })
            .collect();
        Router::new(all.iter().enumerate().map(|(index, segments)| RouteSpec {
            index,
            segments,
            methods: &[http::Method::GET, http::Method::POST],
        }))
    }

    fn find(r: &Router, p: &str) -> Option<Match> {
        match r.lookup(p, &http::Method::GET) {
            Lookup::Found(m) => Some(m),
            _ => None,
        }
    }

    fn check(r: &Router, path: &str) -> Option<(usize, Mode, String, String)> {
        resolve(path, true, |p| find(r, p)).map(|(m, v)| {
            (
                m.index,
                v.mode,
                v.routed(path).to_owned(),
                v.worker_path(path).to_owned(),
            )
        })
    }

    #[test]
    fn prefixes_cut_and_rest_kept() {
        let r = router(&["/hello", "/api/users/[id]", "/api"]);
        let s = |s: &str| s.to_owned();
        assert_eq!(
            check(&r, "/function/hello"),
            Some((0, Mode::Sync, s("/hello"), s("/")))
        );
        assert_eq!(
            check(&r, "/function/hello/"),
            Some((0, Mode::Sync, s("/hello/"), s("/")))
        );
        assert_eq!(
            check(&r, "/function/hello/a/b"),
            Some((0, Mode::Sync, s("/hello"), s("/a/b")))
        );
        assert_eq!(
            check(&r, "/async-function/api/users/42"),
            Some((1, Mode::Async, s("/api/users/42"), s("/")))
        );
        let (m, v) = resolve("/function/api/users/42/x", true, |p| find(&r, p)).unwrap();
        assert_eq!(m.index, 1);
        let p = "/function/api/users/42/x";
        assert_eq!(
            m.params(v.routed(p)).collect::<Vec<_>>(),
            [("id", "42".into())]
        );
        assert_eq!(v.worker_path(p), "/x");
        assert_eq!(
            check(&r, "/function/api/other"),
            Some((2, Mode::Sync, s("/api"), s("/other")))
        );
        assert_eq!(
            check(&r, "/hello"),
            Some((0, Mode::Plain, s("/hello"), s("/hello")))
        );
        assert!(check(&r, "/function/").is_none());
        assert!(check(&r, "/function").is_none());
        assert!(check(&r, "/function/nope/hello").is_none());
        assert!(check(&r, "/functionhello").is_none());
    }

    #[test]
    fn disabled_prefixes_are_plain_paths() {
        let r = router(&["/hello"]);
        assert!(resolve("/function/hello", false, |p| find(&r, p)).is_none());
        assert!(resolve("/hello", false, |p| find(&r, p)).is_some());
    }
}
