use super::*;

fn segs(route: &str) -> Vec<Segment> {
    route
        .trim_start_matches('/')
        .split('/')
        .map(|s| {
            if let Some(p) = s.strip_prefix("[[...").and_then(|s| s.strip_suffix("]]")) {
                Segment::OptionalCatchAll(p.into())
            } else if let Some(p) = s.strip_prefix("[...").and_then(|s| s.strip_suffix(']')) {
                Segment::CatchAll(p.into())
            } else if let Some(p) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                Segment::Param(p.into())
            } else {
                Segment::Static(s.into())
            }
        })
        .collect()
}

const ANY: [Method; 2] = [Method::GET, Method::POST];

fn router(routes: &[&str]) -> Router {
    let all: Vec<Vec<Segment>> = routes.iter().map(|r| segs(r)).collect();
    Router::new(all.iter().enumerate().map(|(index, s)| RouteSpec {
        index,
        segments: s,
        methods: &ANY,
    }))
}

fn found(r: &Router, path: &str) -> Option<(usize, Vec<(String, String)>)> {
    match r.lookup(path, &Method::GET) {
        Lookup::Found(m) => {
            let params = m
                .params(path)
                .map(|(k, v)| (k.to_owned(), v.into_owned()))
                .collect();
            Some((m.index, params))
        }
        _ => None,
    }
}

fn index(r: &Router, path: &str) -> Option<usize> {
    found(r, path).map(|(i, _)| i)
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
    assert_eq!(index(&r, "/hello"), Some(0));
    assert_eq!(index(&r, "/hello/"), Some(0));
    assert!(index(&r, "/hello/x").is_none());
    let (i, p) = found(&r, "/api/users/42").unwrap();
    assert_eq!((i, p), (1, vec![("id".into(), "42".into())]));
    assert_eq!(index(&r, "/api/users/7/posts/"), Some(2));
    assert_eq!(index(&r, "/api/users/list"), Some(4));
    let (i, p) = found(&r, "/api/orders/list").unwrap();
    assert_eq!((i, p), (3, vec![("kind".into(), "orders".into())]));
    assert!(index(&r, "/api/users/").is_none());
    assert!(index(&r, "/api//x").is_none());
    assert!(index(&r, "").is_none());
    assert!(index(&r, "/").is_none());
}

#[test]
fn static_then_param_then_catch_all_then_optional() {
    let r = router(&[
        "/docs/[[...rest]]",
        "/docs/[...slug]",
        "/docs/[page]",
        "/docs/intro",
    ]);
    assert_eq!(index(&r, "/docs/intro"), Some(3));
    assert_eq!(index(&r, "/docs/other"), Some(2));
    // The catch-all shape is shared by [...slug] and [[...rest]]: the first by text wins.
    let (i, p) = found(&r, "/docs/a/b%20c").unwrap();
    assert_eq!(i, 0);
    assert_eq!(p, vec![("rest".into(), "a/b c".into())]);
    assert_eq!(found(&r, "/docs").unwrap(), (0, vec![]));
}

#[test]
fn catch_all_needs_one_segment_optional_none() {
    let r = router(&["/files/[...path]", "/blog/[[...slug]]"]);
    assert!(index(&r, "/files").is_none());
    assert_eq!(
        found(&r, "/files/a/b.txt").unwrap().1,
        vec![("path".into(), "a/b.txt".into())]
    );
    assert_eq!(found(&r, "/blog").unwrap(), (1, vec![]));
    assert_eq!(
        found(&r, "/blog/2024/x").unwrap().1,
        vec![("slug".into(), "2024/x".into())]
    );
}

#[test]
fn more_static_segments_win_over_fewer() {
    let r = router(&["/[a]/[b]", "/blog/[...slug]"]);
    assert_eq!(index(&r, "/blog/x"), Some(1));
    assert_eq!(index(&r, "/other/x"), Some(0));
    let r = router(&["/[a]/x", "/b/[c]"]);
    assert_eq!(index(&r, "/b/x"), Some(1));
    assert_eq!(index(&r, "/z/x"), Some(0));
}

#[test]
fn methods_split_one_path_and_405_lists_the_union() {
    let p = segs("/products");
    let get = [Method::GET];
    let post = [Method::POST];
    let r = Router::new([
        RouteSpec {
            index: 0,
            segments: &p,
            methods: &get,
        },
        RouteSpec {
            index: 1,
            segments: &p,
            methods: &post,
        },
    ]);
    assert!(matches!(r.lookup("/products", &Method::GET), Lookup::Found(m) if m.index == 0));
    assert!(matches!(r.lookup("/products", &Method::POST), Lookup::Found(m) if m.index == 1));
    match r.lookup("/products", &Method::DELETE) {
        Lookup::MethodNotAllowed { allow, .. } => assert_eq!(allow, "GET, POST"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(r.lookup("/nope", &Method::GET), Lookup::NotFound));
}

#[test]
fn percent_decoding() {
    assert_eq!(percent_decode("a%2Fb"), "a/b");
    assert_eq!(percent_decode("100%"), "100%");
    assert_eq!(percent_decode("%ff"), "%ff");
}

#[test]
fn a_path_climbing_above_the_root_is_seen_encoded_or_not() {
    assert!(climbs_above_root("/%2e%2e/api-node/handler.js"));
    assert!(climbs_above_root("/%2E%2e/x"));
    assert!(climbs_above_root("/../x"));
    assert!(climbs_above_root("/a/../../x"));
    assert!(!climbs_above_root("/a/../x"));
    assert!(!climbs_above_root("/a/..b/%2e"));
    assert!(!climbs_above_root("/a%2eb"));
    assert!(!climbs_above_root("/hello"));
}
