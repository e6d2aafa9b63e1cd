//! FastFN's `FN_RUNTIMES` (for example `python,node`): the runtimes a gateway serves. A tree
//! such as FastFN's `rest-api-methods`, which implements every route once per runtime, is
//! served by the one runtime enabled, as FastFN serves it; without the variable every
//! runtime is on and two runtimes on one route stay a load error.

use std::collections::BTreeMap;
use std::path::Path;

use super::discover::Found;
use super::runtime::Runtime;
use super::CatalogError;

pub const VAR: &str = "FN_RUNTIMES";

/// FastFN's runtime names.
const KNOWN: [&str; 6] = ["python", "node", "php", "lua", "rust", "go"];

/// FastFN's name for a runtime: TypeScript handlers run on Node there.
fn fastfn_name(r: Runtime) -> &'static str {
    match r {
        Runtime::TypeScript => "node",
        other => other.as_str(),
    }
}

/// The enabled names, `None` when every runtime is (unset or blank); an unknown name is
/// an error naming it.
pub fn parse(value: Option<&str>) -> Result<Option<Vec<String>>, String> {
    let Some(text) = value.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let mut names = Vec::new();
    for name in text.split(',').map(|n| n.trim().to_ascii_lowercase()) {
        if name.is_empty() {
            continue;
        }
        if !KNOWN.contains(&name.as_str()) {
            return Err(format!(
                "names the runtime `{name}`; FastFN's runtimes are {}",
                KNOWN.join(", ")
            ));
        }
        names.push(name);
    }
    Ok(Some(names))
}

/// Drops the functions of runtimes `FN_RUNTIMES` leaves out, with one warning that counts
/// them per runtime (a silent drop would look like a missing route).
pub fn apply(
    found: &mut Vec<Found>,
    root: &Path,
    errors: &mut Vec<CatalogError>,
    warnings: &mut Vec<CatalogError>,
) {
    let raw = std::env::var(VAR).ok();
    let enabled = match parse(raw.as_deref()) {
        Ok(Some(names)) => names,
        Ok(None) => return,
        Err(message) => {
            errors.push(CatalogError::new(root, Some(VAR.to_owned()), message));
            return;
        }
    };
    let mut skipped: BTreeMap<&'static str, usize> = BTreeMap::new();
    found.retain(|f| {
        let name = fastfn_name(f.runtime);
        let keep = enabled.iter().any(|e| e == name);
        if !keep {
            *skipped.entry(name).or_default() += 1;
        }
        keep
    });
    if !skipped.is_empty() {
        let counts: Vec<String> = skipped.iter().map(|(r, n)| format!("{r} {n}")).collect();
        warnings.push(CatalogError::new(
            root,
            Some(VAR.to_owned()),
            format!(
                "is `{}`: handlers of the other runtimes are not served ({})",
                enabled.join(","),
                counts.join(", ")
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_fastfns() {
        assert_eq!(parse(None), Ok(None));
        assert_eq!(parse(Some("  ")), Ok(None));
        assert_eq!(
            parse(Some("Python, node,")),
            Ok(Some(vec!["python".to_owned(), "node".to_owned()]))
        );
        assert!(parse(Some("python,pyton")).unwrap_err().contains("`pyton`"));
        assert_eq!(fastfn_name(Runtime::TypeScript), "node");
    }
}
