//! FastFN's file-name conventions, pure: which files are routes, their method prefix and
//! their route tokens (`post.users.[id].js` → POST, `users`, `[id]`). Discovery calls
//! this for every code file it lists.

use http::Method;

use super::runtime::Runtime;

/// The entry-file stems, in the order FastFN tries them in a folder.
pub const ENTRY_STEMS: [&str; 3] = ["handler", "main", "index"];

/// A code file's name, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    pub runtime: Runtime,
    /// The stem without the extension (`get.items`).
    pub stem: String,
    pub method: Option<Method>,
    /// Route tokens after the method; entry stems (`index`, `handler`, `main`) dropped.
    pub tokens: Vec<String>,
}

/// Why a code file is not a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRoute {
    /// Not a handler extension, a `.d.ts`, or a hidden file.
    NotCode,
    /// `_private.py`, `x.test.js`, `x.spec.ts`: never routed.
    Private,
    /// `get.post.py`: two method prefixes; FastFN ignores it with a warning.
    AmbiguousMethod,
}

/// Parses a file name; `Err` says why it is not a route.
pub fn parse(file_name: &str) -> Result<FileName, NotRoute> {
    if file_name.starts_with('.') || file_name.to_ascii_lowercase().ends_with(".d.ts") {
        return Err(NotRoute::NotCode);
    }
    let (stem, ext) = file_name.rsplit_once('.').ok_or(NotRoute::NotCode)?;
    let runtime = Runtime::from_extension(&ext.to_ascii_lowercase()).ok_or(NotRoute::NotCode)?;
    let lower = stem.to_ascii_lowercase();
    if lower.starts_with('_') || lower.ends_with(".test") || lower.ends_with(".spec") {
        return Err(NotRoute::Private);
    }
    let mut parts = split_tokens(stem);
    let method = parts.first().and_then(|p| method_of(p));
    if method.is_some() {
        parts.remove(0);
        if parts.iter().any(|p| method_of(p).is_some()) {
            return Err(NotRoute::AmbiguousMethod);
        }
    }
    let tokens = parts.into_iter().filter(|t| !is_entry_stem(t)).collect();
    Ok(FileName {
        runtime,
        stem: stem.to_owned(),
        method,
        tokens,
    })
}

impl FileName {
    /// In a folder that has an entry file, only these files are routes too: a method
    /// prefix, an entry stem or a `[param]` token makes the intent explicit.
    pub fn is_explicit(&self) -> bool {
        self.method.is_some()
            || split_tokens(&self.stem)
                .iter()
                .any(|t| is_entry_stem(t) || t.starts_with('['))
    }

    /// `handler.py`, `main.js`, `index.ts`: the folder's own function.
    pub fn is_entry(&self) -> bool {
        self.method.is_none() && ENTRY_STEMS.contains(&self.stem.to_ascii_lowercase().as_str())
    }
}

pub fn is_entry_stem(t: &str) -> bool {
    ENTRY_STEMS.contains(&t.to_ascii_lowercase().as_str())
}

fn method_of(token: &str) -> Option<Method> {
    match token.to_ascii_lowercase().as_str() {
        "get" => Some(Method::GET),
        "post" => Some(Method::POST),
        "put" => Some(Method::PUT),
        "patch" => Some(Method::PATCH),
        "delete" => Some(Method::DELETE),
        _ => None,
    }
}

/// Splits on `.` outside brackets, so `[...slug]` stays one token.
fn split_tokens(stem: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in stem.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            '.' if depth == 0 => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_owned());
                }
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(name: &str) -> FileName {
        parse(name).unwrap_or_else(|e| panic!("{name}: {e:?}"))
    }

    #[test]
    fn methods_and_tokens() {
        let f = ok("post.users.[id].js");
        assert_eq!(f.method, Some(Method::POST));
        assert_eq!(f.tokens, ["users", "[id]"]);
        assert_eq!(f.runtime, Runtime::Node);
        let f = ok("get.py");
        assert_eq!((f.method, f.tokens.len()), (Some(Method::GET), 0));
        assert_eq!(ok("get.items.py").tokens, ["items"]);
        assert_eq!(ok("[...slug].py").tokens, ["[...slug]"]);
        assert_eq!(ok("[[...a.b]].py").tokens, ["[[...a.b]]"]);
        assert_eq!(ok("hello.js").tokens, ["hello"]);
        assert!(ok("index.js").tokens.is_empty());
        assert!(ok("handler.php").is_entry());
        assert!(!ok("get.php").is_entry());
    }

    #[test]
    fn explicit_in_mixed_folders() {
        assert!(ok("get.form.js").is_explicit());
        assert!(ok("[id].js").is_explicit());
        assert!(ok("index.js").is_explicit());
        assert!(!ok("core.js").is_explicit());
    }

    #[test]
    fn never_routes() {
        assert_eq!(parse("_shared.py"), Err(NotRoute::Private));
        assert_eq!(parse("x.test.js"), Err(NotRoute::Private));
        assert_eq!(parse("x.spec.ts"), Err(NotRoute::Private));
        assert_eq!(parse("types.d.ts"), Err(NotRoute::NotCode));
        assert_eq!(parse("report.csv"), Err(NotRoute::NotCode));
        assert_eq!(parse("main.rb"), Err(NotRoute::NotCode));
        assert_eq!(parse("get.post.py"), Err(NotRoute::AmbiguousMethod));
    }
}
