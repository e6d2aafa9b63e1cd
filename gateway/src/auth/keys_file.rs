//! `keys_file` for `api_key`: one accepted key per line as `<key-id> sha256:<hex>`, the
//! digest printed by `edgefn hash-key`. The file never holds a key itself, so it can be
//! committed or shared with the people who hand out keys; `#` starts a comment.
//!
//! Read at reload (path relative to the function folder, never leaving it), parsed here
//! into `(id, digest)` pairs that become a [`super::secrets::SecretSet`].

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// `(key id, SHA-256 digest)` pairs, in file order.
pub type Keys = Vec<(Arc<str>, [u8; 32])>;

/// Largest keys file read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Most keys one file may list.
pub const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysFileError {
    #[error("must be a relative path inside the function folder, without \"..\"")]
    PathEscapes,
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path} is {size} bytes, over the {MAX_FILE_BYTES}-byte limit")]
    TooLarge { path: PathBuf, size: u64 },
    #[error(
        "{path} line {line}: expected `<key-id> sha256:<64 hex digits>` (from `edgefn hash-key`)"
    )]
    Syntax { path: PathBuf, line: usize },
    #[error("{path} line {line}: key id {id:?} must be 1-64 characters of [A-Za-z0-9._-]")]
    BadId {
        path: PathBuf,
        line: usize,
        id: String,
    },
    #[error("{path} line {line}: key id {id:?} appears twice")]
    DuplicateId {
        path: PathBuf,
        line: usize,
        id: String,
    },
    #[error("{path} lists no key")]
    Empty { path: PathBuf },
    #[error("{path} lists more than {MAX_KEYS} keys")]
    TooMany { path: PathBuf },
}

/// Resolves `rel` below `fn_dir`, refusing absolute paths and `..`.
pub fn resolve_path(fn_dir: &Path, rel: &str) -> Result<PathBuf, KeysFileError> {
    let p = Path::new(rel);
    let ok = !rel.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(fn_dir.join(p))
    } else {
        Err(KeysFileError::PathEscapes)
    }
}

/// Reads and parses the file; every problem is returned.
pub fn load(path: &Path) -> Result<Keys, Vec<KeysFileError>> {
    let read_err = |e: std::io::Error| {
        vec![KeysFileError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        }]
    };
    let meta = std::fs::symlink_metadata(path).map_err(read_err)?;
    if meta.file_type().is_symlink() {
        return Err(vec![KeysFileError::Read {
            path: path.to_path_buf(),
            message: "is a symlink; use a regular file".into(),
        }]);
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(vec![KeysFileError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
        }]);
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    parse(path, &text)
}

/// Parses the text of a keys file (`path` only names it in errors).
pub fn parse(path: &Path, text: &str) -> Result<Keys, Vec<KeysFileError>> {
    let mut keys: Vec<(Arc<str>, [u8; 32])> = Vec::new();
    let mut errors = Vec::new();
    let mut ids = std::collections::HashSet::new();
    let path_buf = || path.to_path_buf();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let mut parts = content.split_whitespace();
        let (Some(id), Some(digest), None) = (parts.next(), parts.next(), parts.next()) else {
            errors.push(KeysFileError::Syntax {
                path: path_buf(),
                line,
            });
            continue;
        };
        if !valid_id(id) {
            errors.push(KeysFileError::BadId {
                path: path_buf(),
                line,
                id: id.chars().take(80).collect(),
            });
            continue;
        }
        let Some(bytes) = parse_digest(digest) else {
            errors.push(KeysFileError::Syntax {
                path: path_buf(),
                line,
            });
            continue;
        };
        if !ids.insert(id) {
            errors.push(KeysFileError::DuplicateId {
                path: path_buf(),
                line,
                id: id.to_owned(),
            });
            continue;
        }
        keys.push((Arc::from(id), bytes));
    }
    if keys.len() > MAX_KEYS {
        errors.push(KeysFileError::TooMany { path: path_buf() });
    }
    if keys.is_empty() && errors.is_empty() {
        errors.push(KeysFileError::Empty { path: path_buf() });
    }
    if errors.is_empty() {
        Ok(keys)
    } else {
        Err(errors)
    }
}

/// `sha256:<64 hex>` → the digest.
pub fn parse_digest(s: &str) -> Option<[u8; 32]> {
    let hex_part = s.strip_prefix("sha256:")?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut out).ok()?;
    Some(out)
}

/// Key ids end up as `event.context.auth.subject` and in logs: keep them plain.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

    #[test]
    fn parses_with_comments() {
        let text = format!("# keys\nalice {D}\n\nbob  {D}  # rotated 2026-01\n");
        let keys = parse(Path::new("k"), &text).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(&*keys[1].0, "bob");
        // sha256("foo")
        assert_eq!(keys[0].1[..2], [0x2c, 0x26]);
    }

    #[test]
    fn every_error_reported() {
        let text =
            format!("alice\nbad/id {D}\nalice {D}\nalice {D}\ncarol sha256:zz\ndan plain-key\n");
        let errs = parse(Path::new("k"), &text).unwrap_err();
        assert_eq!(errs.len(), 5, "{errs:?}");
        assert!(matches!(errs[0], KeysFileError::Syntax { line: 1, .. }));
        assert!(matches!(errs[1], KeysFileError::BadId { line: 2, .. }));
        assert!(matches!(
            errs[2],
            KeysFileError::DuplicateId { line: 4, .. }
        ));
    }

    #[test]
    fn empty_refused() {
        assert!(matches!(
            parse(Path::new("k"), "# nothing\n").unwrap_err()[0],
            KeysFileError::Empty { .. }
        ));
    }

    #[test]
    fn paths_stay_inside() {
        let dir = Path::new("/f");
        assert!(resolve_path(dir, "keys.txt").is_ok());
        assert!(resolve_path(dir, "sub/keys.txt").is_ok());
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "./x"] {
            assert_eq!(
                resolve_path(dir, bad),
                Err(KeysFileError::PathEscapes),
                "{bad}"
            );
        }
    }
}
