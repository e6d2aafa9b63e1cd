//! Route clashes, found at load: two functions whose routes match the same paths with a
//! method in common. FastFN serves such a tree (its own `examples/functions` root has
//! `session-demo` in every runtime folder, and `rest-api-methods` has every route once
//! per runtime) and answers 409 on the routes both claim; edgefn loads it the same way,
//! with a warning naming both files, so the clash is seen before anyone calls it.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::discover::Segment;
use super::{route_text, CatalogError, FunctionDef};

/// The shape a route matches: statics kept, parameter names dropped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Shape {
    Static(String),
    Param,
    Tail,
}

/// `[[...x]]` matches both with and without its tail.
fn shapes(segments: &[Segment]) -> Vec<Vec<Shape>> {
    let mut cur = Vec::new();
    let mut out = Vec::new();
    for s in segments {
        match s {
            Segment::Static(n) => cur.push(Shape::Static(n.clone())),
            Segment::Param(_) => cur.push(Shape::Param),
            Segment::CatchAll(_) => cur.push(Shape::Tail),
            Segment::OptionalCatchAll(_) => {
                if !cur.is_empty() {
                    out.push(cur.clone());
                }
                cur.push(Shape::Tail);
            }
        }
    }
    out.push(cur);
    out
}

/// A catch-all must end its route: the router matches it against the rest of the path.
pub fn check_shapes(handler: &Path, routes: &[Vec<Segment>]) -> Result<(), CatalogError> {
    for r in routes {
        let tail_at = r
            .iter()
            .position(|s| matches!(s, Segment::CatchAll(_) | Segment::OptionalCatchAll(_)));
        if let Some(i) = tail_at {
            if i + 1 != r.len() {
                return Err(CatalogError::new(
                    handler,
                    None,
                    format!(
                        "route {} has a catch-all before its end; a [...name] folder or token must be the last part of the route",
                        super::route_text(r)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A route shape as segments, for the router of ambiguous routes.
fn shape_segments(shape: &[Shape]) -> Vec<Segment> {
    let mut n = 0;
    shape
        .iter()
        .map(|s| match s {
            Shape::Static(name) => Segment::Static(name.clone()),
            Shape::Param => {
                n += 1;
                Segment::Param(format!("p{n}"))
            }
            Shape::Tail => Segment::CatchAll("rest".into()),
        })
        .collect()
}

/// Finds every route clash: the route is taken from both functions, a warning names both
/// files, and the route comes back in the result to answer 409 as in FastFN; a function
/// left without routes is not served. A function name used by two folders is an error.
pub fn check(
    functions: &mut Vec<FunctionDef>,
    errors: &mut Vec<CatalogError>,
    warnings: &mut Vec<CatalogError>,
) -> Vec<Vec<Segment>> {
    let mut seen: HashMap<Vec<Shape>, Vec<(usize, usize)>> = HashMap::new();
    let mut dropped: HashSet<(usize, usize)> = HashSet::new();
    let mut ambiguous: Vec<Vec<Shape>> = Vec::new();
    for (i, f) in functions.iter().enumerate() {
        let mut reported = false;
        for (k, route) in f.routes.iter().enumerate() {
            let mut mine = shapes(route);
            mine.dedup();
            for shape in mine {
                let list = seen.entry(shape.clone()).or_default();
                for &(j, kj) in list.iter() {
                    let o = &functions[j];
                    let common = f
                        .policy
                        .methods
                        .iter()
                        .find(|m| o.policy.methods.contains(m));
                    let Some(m) = common else { continue };
                    dropped.insert((i, k));
                    dropped.insert((j, kj));
                    if !ambiguous.contains(&shape) {
                        ambiguous.push(shape.clone());
                    }
                    if !reported {
                        // One warning per handler: the first clash names the pair.
                        warnings.push(CatalogError::new(
                            &f.handler,
                            None,
                            format!(
                                "serves {} {} like {} ({} and {}); neither serves it: it answers 409 \"ambiguous function\", as in FastFN (keep one handler per route and method, or limit the runtimes with FN_RUNTIMES)",
                                m,
                                route_text(route),
                                o.handler.display(),
                                f.runtime.as_str(),
                                o.runtime.as_str(),
                            ),
                        ));
                    }
                    reported = true;
                    break;
                }
                list.push((i, k));
            }
        }
    }
    // FastFN takes the whole route, every method: a handler on it without a clash of its
    // own (`delete.js` beside a clashing `get.py`, `get.js`) does not serve it either.
    for (shape, list) in &seen {
        if ambiguous.contains(shape) {
            dropped.extend(list.iter().copied());
        }
    }
    if !dropped.is_empty() {
        let mut i = 0;
        functions.retain_mut(|f| {
            let had = f.routes.len();
            let mut k = 0;
            f.routes.retain(|_| {
                k += 1;
                !dropped.contains(&(i, k - 1))
            });
            i += 1;
            if f.routes.len() == had {
                return true;
            }
            match f.routes.first() {
                Some(first) => {
                    f.segments = first.clone();
                    f.route = route_text(first);
                    true
                }
                None => false,
            }
        });
    }
    // Same folder, same stem (`get.py`, `get.js`): the clash above took their routes.
    let mut names: HashMap<&str, &Path> = HashMap::new();
    for f in functions.iter() {
        let prev = names.insert(&f.name, &f.handler);
        if let Some(other) = prev.filter(|o| o.parent() != f.handler.parent()) {
            errors.push(CatalogError::new(
                &f.handler,
                None,
                format!(
                    "has the function name {} of {} too; rename one of them",
                    f.name,
                    other.display()
                ),
            ));
        }
    }
    ambiguous.iter().map(|s| shape_segments(s)).collect()
}
