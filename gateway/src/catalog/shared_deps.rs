//! FastFN's `shared_deps`: named dependency packs shared by functions, under
//! `<root>/.fastfn/packs/<runtime>/<pack>/` (for a runtime-scoped root such as
//! `<root>/python`, one level up too, as FastFN looks). Resolved at load: a missing pack
//! is a warning naming it and where it was looked for, a malformed name an error.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::runtime::Runtime;

const MAX_PACKS: usize = 32;

/// The resolved pack folders, and a note when the key has no effect for the runtime.
pub type Resolved = (Vec<PathBuf>, Option<String>);

/// The pack folders `shared_deps` names, in order; `(field, message)` on failure. `Ok`
/// with a note when the runtime has no packs in FastFN (the key then has no effect).
pub fn resolve(
    raw: &Value,
    root: &Path,
    runtime: Runtime,
) -> Result<Resolved, Vec<(String, String)>> {
    let names: Vec<&str> = match raw {
        Value::Null => return Ok((Vec::new(), None)),
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => match items.iter().map(Value::as_str).collect::<Option<_>>() {
            Some(v) => v,
            None => return Err(vec![field("is not a list of pack names")]),
        },
        _ => {
            return Err(vec![field(
                "must be an array of pack names, a string, or null",
            )])
        }
    };
    if names.len() > MAX_PACKS {
        return Err(vec![field(&format!(
            "lists {} packs; at most {MAX_PACKS}",
            names.len()
        ))]);
    }
    let kind = match runtime {
        Runtime::Python => "python",
        Runtime::Node | Runtime::TypeScript => "node",
        other => {
            let note = format!(
                "packs are for Python and Node functions; it has no effect on a {} function",
                other.as_str()
            );
            return Ok((Vec::new(), Some(note)));
        }
    };
    let mut errors = Vec::new();
    let mut missing = Vec::new();
    let mut out = Vec::new();
    let bases: Vec<PathBuf> = std::iter::once(root.to_path_buf())
        .chain(root.parent().map(Path::to_path_buf))
        .map(|b| b.join(".fastfn/packs").join(kind))
        .collect();
    for name in names {
        let name = name.trim();
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            errors.push(field(&format!(
                "{name:?} is not a pack name; use letters, digits, _ and -"
            )));
            continue;
        }
        match bases.iter().map(|b| b.join(name)).find(|d| d.is_dir()) {
            Some(dir) => out.push(dir),
            None => missing.push(format!(
                "pack {name:?} not found; create {} (requirements.txt for Python, package.json or node_modules/ for Node)",
                bases[0].join(name).display()
            )),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // A tree copied without its packs still loads, as in FastFN, which fails only the
    // requests of that function.
    let note = (!missing.is_empty()).then(|| {
        format!(
            "{}; the function is served without it (FastFN answers 500 on its requests)",
            missing.join("; ")
        )
    });
    Ok((out, note))
}

fn field(msg: &str) -> (String, String) {
    ("shared_deps".into(), msg.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_resolve_or_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("python");
        std::fs::create_dir_all(dir.path().join(".fastfn/packs/python/common")).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        let v = serde_json::json!(["common"]);
        let (packs, note) = resolve(&v, &root, Runtime::Python).unwrap();
        assert_eq!(packs.len(), 1);
        assert!(note.is_none());
        let (packs, note) = resolve(
            &serde_json::json!(["common", "nope"]),
            &root,
            Runtime::Python,
        )
        .unwrap();
        assert_eq!(packs.len(), 1);
        assert!(note.unwrap().contains("pack \"nope\" not found"));
        let e = resolve(&serde_json::json!(["nope", "a/b"]), &root, Runtime::Python).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].1.contains("not a pack name"), "{e:?}");
        assert!(resolve(&v, &root, Runtime::Lua).unwrap().1.is_some());
    }
}
