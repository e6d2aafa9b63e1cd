//! Route clashes, found at load: two functions whose routes match the same paths with a
//! method in common are refused with both files named (FastFN answers 409 at request
//! time; edgefn refuses the tree so the clash is seen before anyone calls it).

use std::collections::HashMap;
use std::path::Path;

use super::discover::Segment;
use super::{CatalogError, FunctionDef};

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

/// Pushes one error per clash, naming both handler files, and one per duplicated name.
pub fn check(functions: &[FunctionDef], errors: &mut Vec<CatalogError>) {
    let mut seen: HashMap<Vec<Shape>, Vec<usize>> = HashMap::new();
    let mut names: HashMap<&str, &Path> = HashMap::new();
    for (i, f) in functions.iter().enumerate() {
        // Same folder, same stem (`get.py`, `get.js`): the route clash below names them.
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
        let mut mine: Vec<Vec<Shape>> = f.routes.iter().flat_map(|r| shapes(r)).collect();
        mine.dedup();
        for shape in mine {
            let list = seen.entry(shape).or_default();
            for &j in list.iter() {
                let o = &functions[j];
                let common = f
                    .policy
                    .methods
                    .iter()
                    .find(|m| o.policy.methods.contains(m));
                if let Some(m) = common {
                    // One error per handler: the first clash names the pair.
                    errors.push(CatalogError::new(
                        &f.handler,
                        None,
                        format!(
                            "serves {} {} like {} ({} and {}); keep one handler per route and method (FastFN answers 409 here)",
                            m,
                            f.route,
                            o.handler.display(),
                            f.runtime.as_str(),
                            o.runtime.as_str(),
                        ),
                    ));
                    break;
                }
            }
            list.push(i);
        }
    }
}
