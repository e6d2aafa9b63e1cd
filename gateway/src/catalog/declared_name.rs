//! FastFN's `name` key (`routes.lua`: `explicit_function_name`, and the functions it
//! registers from `zero_config_explicit_functions`): a folder with an entry file and a
//! `name` is the function of that name — catalog name `name`, routes `/<name>` and
//! `/<name>/*` — instead of its folder path. A name FastFN finds unsafe (absolute,
//! `..`, `//`, `\`) falls back to the folder's own name, as there.

use std::path::Path;

use super::discover::{parse_segment, Segment, WILDCARD};

/// The function a `name` declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub name: String,
    pub segments: Vec<Segment>,
    /// Why the name given was not taken, when it was not.
    pub note: Option<String>,
}

/// `name` from a folder's `fn.config.json`, read leniently (the catalog parses the file
/// strictly); `None` when absent, not text or blank. `Err` when no route can be made.
pub fn read(dir: &Path) -> Option<Result<Declared, String>> {
    let text = super::read_optional(&dir.join("fn.config.json")).ok()??;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let given = v.get("name")?.as_str()?.trim();
    if given.is_empty() {
        return None;
    }
    Some(declare(given, dir))
}

fn declare(given: &str, dir: &Path) -> Result<Declared, String> {
    let (name, note) = if safe_relative(given) {
        (given.to_owned(), None)
    } else {
        let folder = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let note = format!(
            "name {given:?} is not a relative path FastFN accepts; the function keeps its folder's name {folder:?}, as in FastFN"
        );
        (folder, Some(note))
    };
    let mut segments = Vec::new();
    for token in name.split('/').filter_map(route_token) {
        segments.push(parse_segment(&token).map_err(|e| format!("name {name:?}: {e}"))?);
    }
    if segments.is_empty() {
        return Err(format!("name {name:?} makes no route; name a path"));
    }
    if let Some(Segment::Static(first)) = segments.first() {
        if first == "function" || first == "async-function" {
            return Err(format!(
                "name {name:?}: the route /{first} would collide with OpenFaaS's /{first}/<name> routes; choose another name"
            ));
        }
    }
    if segments
        .iter()
        .any(|s| !matches!(s, Segment::Static(_) | Segment::Param(_)))
    {
        return Err(format!(
            "name {name:?}: a catch-all cannot be part of a function name (its route ends in /* already)"
        ));
    }
    segments.push(Segment::OptionalCatchAll(WILDCARD.into()));
    Ok(Declared {
        name,
        segments,
        note,
    })
}

/// FastFN's `is_safe_relative_path`.
fn safe_relative(path: &str) -> bool {
    !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains("//")
        && !path.split('/').any(|s| s == "." || s == "..")
}

/// FastFN's `normalize_route_token`: entry-file names drop out, `[id]` stays a parameter
/// (lower-cased), anything else is lower-cased with runs of other characters made `-`.
fn route_token(token: &str) -> Option<String> {
    let t = token.trim();
    let lower = t.to_ascii_lowercase();
    if lower.is_empty() || ["index", "handler", "main"].contains(&lower.as_str()) {
        return None;
    }
    if t.starts_with('[') {
        return Some(lower);
    }
    let mut out = String::new();
    for c in lower.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-');
    (!out.is_empty()).then(|| out.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(given: &str) -> Result<(String, String), String> {
        declare(given, Path::new("/t/tools/folder"))
            .map(|d| (d.name, super::super::route_text(&d.segments)))
    }

    #[test]
    fn names_make_fastfns_routes() {
        let r = |given: &str| route(given).unwrap();
        assert_eq!(r("hello"), ("hello".into(), "/hello/{wildcard}".into()));
        let (name, text) = r("Hello_World");
        assert_eq!(name, "Hello_World");
        assert!(text.starts_with("/hello-world"), "{text}");
        let (name, text) = r("api/v1/[ID]");
        assert_eq!(name, "api/v1/[ID]");
        assert!(text.starts_with("/api/v1/{id}"), "{text}");
        // Unsafe: the folder's own name, with a note.
        let d = declare("../x", Path::new("/t/tools/folder")).unwrap();
        assert_eq!(d.name, "folder");
        assert!(d.note.unwrap().contains("not a relative path"));
        assert!(route("index").is_err());
        assert!(route("function/x").is_err());
        // `_fn` is the gateway's; FastFN's token rule makes it `fn`.
        assert!(r("_fn").1.starts_with("/fn/"));
        assert!(route("a/[...rest]").is_err());
    }
}
