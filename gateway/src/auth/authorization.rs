//! The `Authorization` header parser shared by `bearer` and `basic`: `<scheme> <token68>`
//! (RFC 9110 §11.6.2, scheme case-insensitive). Outside input, fuzzed in `gateway/fuzz`.

use http::header::AUTHORIZATION;

use super::headers::{Headers, One};

/// Longest credentials accepted (JWTs with many claims stay well below).
pub const MAX_CREDENTIALS: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizationError {
    #[error("no Authorization header")]
    Missing,
    #[error("the Authorization header uses another scheme")]
    WrongScheme,
    #[error("the Authorization header is malformed")]
    Malformed,
}

impl AuthorizationError {
    pub fn reason(self) -> &'static str {
        match self {
            AuthorizationError::Missing => "missing",
            AuthorizationError::WrongScheme => "wrong_scheme",
            AuthorizationError::Malformed => "malformed",
        }
    }
}

/// The credentials of the single `Authorization` header, which must use `scheme`.
pub fn credentials<'a>(headers: Headers<'a>, scheme: &str) -> Result<&'a str, AuthorizationError> {
    match headers.one(&AUTHORIZATION) {
        One::Missing => Err(AuthorizationError::Missing),
        One::Value(v) => parse(v, scheme),
        One::Repeated => Err(AuthorizationError::Malformed),
    }
}

/// Parses one header value: `scheme`, one or more spaces, then a token68.
pub fn parse<'a>(value: &'a [u8], scheme: &str) -> Result<&'a str, AuthorizationError> {
    let value = std::str::from_utf8(value).map_err(|_| AuthorizationError::Malformed)?;
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let (given, rest) = value.split_once(' ').unwrap_or((value, ""));
    if given.is_empty()
        || !given
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(AuthorizationError::Malformed);
    }
    if !given.eq_ignore_ascii_case(scheme) {
        return Err(AuthorizationError::WrongScheme);
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() || token.len() > MAX_CREDENTIALS || !is_token68(token) {
        return Err(AuthorizationError::Malformed);
    }
    Ok(token)
}

/// `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
pub fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse(b"Bearer abc.def-_", "bearer"), Ok("abc.def-_"));
        assert_eq!(parse(b"bearer   abc", "Bearer"), Ok("abc"));
        assert_eq!(parse(b"Basic dXNlcjpwYXNz", "basic"), Ok("dXNlcjpwYXNz"));
        assert_eq!(parse(b"Basic YQ==", "basic"), Ok("YQ=="));
    }

    #[test]
    fn refuses() {
        assert_eq!(
            parse(b"Basic abc", "bearer"),
            Err(AuthorizationError::WrongScheme)
        );
        for bad in [
            &b""[..],
            b"Bearer",
            b"Bearer ",
            b"Bearer a b",
            b"Bearer =",
            b"Bearer a=b",
            b"Be@rer x",
            b"Bearer \xff",
        ] {
            assert_eq!(
                parse(bad, "bearer"),
                Err(AuthorizationError::Malformed),
                "{bad:?}"
            );
        }
        let long = format!("Bearer {}", "a".repeat(MAX_CREDENTIALS + 1));
        assert_eq!(
            parse(long.as_bytes(), "bearer"),
            Err(AuthorizationError::Malformed)
        );
    }
}
