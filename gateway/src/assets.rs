//! FastFN's `assets` (top-level `fn.config.json`): a folder of static files served by the
//! gateway. Read whole into memory at load (bounded), so a request is a map lookup with no
//! IO: `run_worker_first: false` serves an existing file before any route; otherwise (and
//! for paths no function answers) a file, then, with `not_found_handling:
//! "single-page-application"`, `index.html` for navigation requests (FastFN's
//! `http/assets.lua` rules).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use serde::Deserialize;

use crate::auth::headers::Headers;
use crate::catalog::CatalogError;

/// Per file and in all: assets live in memory.
pub const MAX_FILE_BYTES: u64 = 8 << 20;
pub const MAX_TOTAL_BYTES: u64 = 128 << 20;
pub const MAX_FILES: usize = 10_000;
const MAX_DEPTH: usize = 16;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAssets {
    pub directory: String,
    pub not_found_handling: Option<String>,
    #[serde(default)]
    pub run_worker_first: bool,
}

#[derive(Debug)]
pub struct Asset {
    pub body: Bytes,
    content_type: HeaderValue,
    etag: HeaderValue,
}

#[derive(Debug)]
pub struct Assets {
    files: HashMap<String, Arc<Asset>>,
    pub spa: bool,
    pub worker_first: bool,
}

impl Assets {
    /// Compiles `assets` of the top-level config; errors name the field or file.
    pub fn load(
        root: &Path,
        raw: &serde_json::Value,
        warnings: &mut Vec<CatalogError>,
    ) -> Result<Assets, Vec<CatalogError>> {
        let cfg = root.join("fn.config.json");
        let err = |field: &str, msg: String| vec![CatalogError::new(&cfg, Some(field.into()), msg)];
        let raw: RawAssets =
            serde_json::from_value(raw.clone()).map_err(|e| err("assets", e.to_string()))?;
        let spa = match raw.not_found_handling.as_deref().map(str::trim) {
            None | Some("404") => false,
            Some("single-page-application" | "spa") => true,
            Some(other) => {
                return Err(err(
                    "assets.not_found_handling",
                    format!("{other:?} is not \"404\" or \"single-page-application\""),
                ))
            }
        };
        let dir = raw
            .directory
            .trim()
            .trim_start_matches("./")
            .trim_end_matches('/');
        let safe = !dir.is_empty()
            && !dir.starts_with('/')
            && !dir
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..");
        let abs = root.join(dir);
        if !safe || !abs.is_dir() {
            return Err(err(
                "assets.directory",
                format!("{dir:?} is not a folder inside the functions directory"),
            ));
        }
        let mut assets = Assets {
            files: HashMap::new(),
            spa,
            worker_first: raw.run_worker_first,
        };
        let mut total = 0u64;
        let base = abs
            .canonicalize()
            .map_err(|e| err("assets.directory", e.to_string()))?;
        assets.walk(&base, &base, 0, &mut total, warnings)?;
        Ok(assets)
    }

    fn walk(
        &mut self,
        base: &Path,
        dir: &Path,
        depth: usize,
        total: &mut u64,
        warnings: &mut Vec<CatalogError>,
    ) -> Result<(), Vec<CatalogError>> {
        let fail = |p: &Path, m: String| vec![CatalogError::new(p, None, m)];
        if depth > MAX_DEPTH {
            return Err(fail(
                dir,
                format!("assets nested deeper than {MAX_DEPTH} folders"),
            ));
        }
        let rd = std::fs::read_dir(dir).map_err(|e| fail(dir, format!("cannot list: {e}")))?;
        for entry in rd.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with('.') {
                continue;
            }
            let Ok(real) = path.canonicalize() else {
                continue;
            };
            if !real.starts_with(base) {
                warnings.push(CatalogError::new(
                    &path,
                    None,
                    "points outside the assets folder; not served".into(),
                ));
                continue;
            }
            if real.is_dir() {
                self.walk(base, &path, depth + 1, total, warnings)?;
                continue;
            }
            let len = real.metadata().map(|m| m.len()).unwrap_or(0);
            if len > MAX_FILE_BYTES {
                warnings.push(CatalogError::new(
                    &path,
                    None,
                    format!("is over the {MAX_FILE_BYTES}-byte asset limit; not served"),
                ));
                continue;
            }
            *total += len;
            if *total > MAX_TOTAL_BYTES || self.files.len() >= MAX_FILES {
                return Err(fail(
                    &path,
                    format!("assets exceed {MAX_FILES} files or {MAX_TOTAL_BYTES} bytes; serve them from a CDN"),
                ));
            }
            let body =
                std::fs::read(&real).map_err(|e| fail(&path, format!("cannot read: {e}")))?;
            let rel = path
                .strip_prefix(base)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let digest = ring::digest::digest(&ring::digest::SHA256, &body);
            let etag = format!(
                "W/\"{}-{}\"",
                body.len(),
                hex::encode(&digest.as_ref()[..8])
            );
            self.files.insert(
                rel.clone(),
                Arc::new(Asset {
                    content_type: HeaderValue::from_static(content_type(&rel)),
                    etag: HeaderValue::from_str(&etag).expect("hex is header-safe"),
                    body: Bytes::from(body),
                }),
            );
        }
        Ok(())
    }

    /// The file for a GET/HEAD path (`/` and `/x/` → `index.html`, `/x` → `x` or
    /// `x/index.html`); with `spa`, `index.html` for a navigation request.
    pub fn find(
        &self,
        method: &Method,
        path: &str,
        headers: Headers<'_>,
        spa: bool,
    ) -> Option<&Arc<Asset>> {
        if method != Method::GET && method != Method::HEAD {
            return None;
        }
        if path.starts_with("/_fn/") || path == "/_fn" {
            return None;
        }
        let found = candidates(path).and_then(|c| c.iter().find_map(|rel| self.files.get(rel)));
        match found {
            Some(a) => Some(a),
            None if spa && self.spa && is_navigation(path, headers) => self.files.get("index.html"),
            None => None,
        }
    }
}

impl Asset {
    /// 200 with the file, or 304 when the client's `If-None-Match` is this version.
    pub fn response(&self, req: &HeaderMap, rid: &HeaderValue) -> Response<Full<Bytes>> {
        let fresh = req
            .get(http::header::IF_NONE_MATCH)
            .is_some_and(|v| v == self.etag);
        let mut resp = Response::new(Full::new(if fresh {
            Bytes::new()
        } else {
            self.body.clone()
        }));
        if fresh {
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
        }
        let h = resp.headers_mut();
        h.insert(http::header::CONTENT_TYPE, self.content_type.clone());
        h.insert(http::header::ETAG, self.etag.clone());
        h.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=0, must-revalidate"),
        );
        h.insert(crate::request_id::HEADER_NAME.clone(), rid.clone());
        resp
    }
}

fn candidates(path: &str) -> Option<Vec<String>> {
    let mut segs = Vec::new();
    for s in path.split('/').filter(|s| !s.is_empty()) {
        if s.starts_with('.') || s.contains('\\') || s.contains('%') {
            return None;
        }
        segs.push(s);
    }
    let rel = segs.join("/");
    Some(if rel.is_empty() {
        vec!["index.html".into()]
    } else if path.ends_with('/') {
        vec![format!("{rel}/index.html")]
    } else {
        vec![rel.clone(), format!("{rel}/index.html")]
    })
}

/// FastFN's `is_navigation_request`: not under `/api`, no file extension, and a browser
/// asking for a page (or any type).
fn is_navigation(path: &str, headers: Headers<'_>) -> bool {
    if path.is_empty() || path == "/" {
        return true;
    }
    if path == "/api" || path.starts_with("/api/") || path.starts_with("/api-") {
        return false;
    }
    let last = path.rsplit('/').next().unwrap_or("");
    if last.starts_with('.') || last.rsplit_once('.').is_some_and(|(_, e)| !e.is_empty()) {
        return false;
    }
    let accept = headers
        .first(&http::header::ACCEPT)
        .map(|v| String::from_utf8_lossy(v).to_ascii_lowercase())
        .unwrap_or_default();
    accept.is_empty() || accept.contains("text/html") || accept.contains("*/*")
}

fn content_type(rel: &str) -> &'static str {
    let ext = rel.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "application/javascript; charset=utf-8",
        Some("json" | "map") => "application/json; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        Some("csv") => "text/csv; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("wasm") => "application/wasm",
        Some("woff") => "font/woff",
        Some("woff2") => "font/woff2",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_paths() {
        assert_eq!(candidates("/").unwrap(), ["index.html"]);
        assert_eq!(candidates("/a/").unwrap(), ["a/index.html"]);
        assert_eq!(
            candidates("/a/b.css").unwrap(),
            ["a/b.css", "a/b.css/index.html"]
        );
        assert!(candidates("/../x").is_none());
        assert!(candidates("/.env").is_none());
    }

    #[test]
    fn navigation() {
        let empty = HeaderMap::new();
        assert!(is_navigation("/dashboard", Headers::Map(&empty)));
        assert!(!is_navigation("/app.js", Headers::Map(&empty)));
        assert!(!is_navigation("/api/x", Headers::Map(&empty)));
        let mut json = HeaderMap::new();
        json.insert("accept", HeaderValue::from_static("application/json"));
        assert!(!is_navigation("/dashboard", Headers::Map(&json)));
    }
}
