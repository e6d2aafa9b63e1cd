//! The provider's authorization URL for a login in flight: authorization code flow with
//! PKCE S256, `state` and `nonce` from the sealed [`LoginState`], the one callback path
//! every function shares.

use super::login_state::LoginState;

pub const CALLBACK_PATH: &str = "/_fn/oidc/callback";
pub const LOGOUT_PATH: &str = "/_fn/oidc/logout";

/// `origin` is `scheme://host[:port]` of this gateway as the browser sees it.
pub fn redirect_uri(origin: &str) -> String {
    format!("{}{CALLBACK_PATH}", origin.trim_end_matches('/'))
}

pub fn url(
    authorization_endpoint: &str,
    client_id: &str,
    redirect_uri: &str,
    scopes: &str,
    login: &LoginState,
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", scopes)
        .append_pair("state", &login.state)
        .append_pair("nonce", &login.nonce)
        .append_pair("code_challenge", &login.challenge())
        .append_pair("code_challenge_method", "S256");
    // OpenID Connect Core §11: a refresh token for offline_access needs prompt=consent.
    if scopes.split_whitespace().any(|s| s == "offline_access") {
        query.append_pair("prompt", "consent");
    }
    let query = query.finish();
    let sep = if authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{authorization_endpoint}{sep}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_pkce_state_and_nonce() {
        let login = LoginState::start("hello", "/hello", 0).unwrap();
        let u = url(
            "https://id.example/auth",
            "web app",
            &redirect_uri("http://127.0.0.1:8080/"),
            "openid offline_access",
            &login,
        );
        let parsed = reqwest::Url::parse(&u).unwrap();
        let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "web app");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:8080/_fn/oidc/callback");
        assert_eq!(q["scope"], "openid offline_access");
        assert_eq!(q["state"], login.state);
        assert_eq!(q["nonce"], login.nonce);
        assert_eq!(q["code_challenge"], login.challenge());
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["prompt"], "consent");
        assert!(
            url("https://id.example/auth?x=1", "c", "r", "openid", &login)
                .starts_with("https://id.example/auth?x=1&response_type=code")
        );
    }
}
