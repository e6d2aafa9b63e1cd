//! Reading and writing the OIDC cookies in HTTP headers. A presented `Cookie` header is
//! read up to [`MAX_COOKIE_HEADER`]; [`strip`] rewrites it without the gateway's own
//! cookies so the function never sees the session. [`set_cookie`] writes the attributes
//! every OIDC cookie carries: `HttpOnly`, `SameSite=Lax`, `Path=/`, `Secure` under TLS.

/// A `Cookie` header longer than this is not searched (browsers send at most ~8 KB).
pub const MAX_COOKIE_HEADER: usize = 8192;

/// The value of cookie `name` in a `Cookie` header, if present and the header is in cap.
pub fn find<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    if header.len() > MAX_COOKIE_HEADER {
        return None;
    }
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v.trim_matches('"'))
    })
}

/// The header without cookies named in `names`; `None` when nothing is left.
pub fn strip(header: &str, names: &[&str]) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|pair| {
            let k = pair.split('=').next().unwrap_or_default();
            !pair.is_empty() && !names.contains(&k)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// A `Set-Cookie` value; `max_age_secs` 0 clears the cookie.
pub fn set_cookie(name: &str, value: &str, max_age_secs: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Max-Age={max_age_secs}; Path=/; HttpOnly; SameSite=Lax{secure}")
}

pub fn clear_cookie(name: &str, secure: bool) -> String {
    set_cookie(name, "", 0, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_and_strip() {
        let h = "a=1; __edgefn_session=xyz; b=2";
        assert_eq!(find(h, "__edgefn_session"), Some("xyz"));
        assert_eq!(find(h, "c"), None);
        assert_eq!(strip(h, &["__edgefn_session"]).as_deref(), Some("a=1; b=2"));
        assert_eq!(strip("__edgefn_session=xyz", &["__edgefn_session"]), None);
        let long = format!("{h}; pad={}", "p".repeat(MAX_COOKIE_HEADER));
        assert_eq!(find(&long, "a"), None);
    }

    #[test]
    fn attributes() {
        assert_eq!(
            set_cookie("s", "v", 60, true),
            "s=v; Max-Age=60; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
        assert_eq!(
            clear_cookie("s", false),
            "s=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
        );
    }
}
