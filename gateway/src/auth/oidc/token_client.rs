//! The POST to the token endpoint (code exchange and refresh): form body, connect and
//! total timeouts, no redirects, no proxy from the environment, the answer read up to
//! [`MAX_TOKEN_RESPONSE`] while streaming. Its own client rather than the discovery
//! fetcher's because it posts credentials; the same limits apply.

use super::token::{parse_response, TokenError, TokenResponse, MAX_TOKEN_RESPONSE};

pub use crate::auth::http_fetch::{CONNECT_TIMEOUT, TOTAL_TIMEOUT};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// Connection, timeout or read failure (the detail never includes the form).
    #[error("token endpoint unreachable: {detail}")]
    Transport { detail: String },
    /// The provider refused the code or refresh token (e.g. `invalid_grant`).
    #[error("token endpoint answered HTTP {status}")]
    Status { status: u16 },
    #[error(transparent)]
    Token(#[from] TokenError),
}

use crate::auth::http_fetch::client;

pub async fn post_form(endpoint: &str, form: String) -> Result<TokenResponse, ExchangeError> {
    let transport = |e: reqwest::Error| ExchangeError::Transport {
        detail: e.without_url().to_string(),
    };
    let mut resp = client()
        .post(endpoint)
        .header(http::header::ACCEPT, "application/json")
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form)
        .send()
        .await
        .map_err(transport)?;
    if !resp.status().is_success() {
        return Err(ExchangeError::Status {
            status: resp.status().as_u16(),
        });
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_TOKEN_RESPONSE as u64)
    {
        return Err(TokenError::TooLarge.into());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_TOKEN_RESPONSE {
            return Err(TokenError::TooLarge.into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(parse_response(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A loopback server answering one request with `status` and `body` (chunked, so the
    /// cap is enforced while reading, not from Content-Length).
    async fn serve_once(status: u16, body: Vec<u8>) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", l.local_addr().unwrap());
        let h = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut req = vec![0u8; 16 * 1024];
            let n = s.read(&mut req).await.unwrap();
            req.truncate(n);
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                 transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
            );
            let _ = s.write_all(head.as_bytes()).await;
            for c in body.chunks(8192) {
                let _ = s.write_all(format!("{:x}\r\n", c.len()).as_bytes()).await;
                let _ = s.write_all(c).await;
                let _ = s.write_all(b"\r\n").await;
            }
            let _ = s.write_all(b"0\r\n\r\n").await;
            req
        });
        (url, h)
    }

    #[tokio::test]
    async fn posts_the_form_and_parses_the_answer() {
        let (url, h) = serve_once(200, br#"{"id_token":"a.b.c","expires_in":5}"#.to_vec()).await;
        let r = post_form(&url, "grant_type=refresh_token&refresh_token=r1".into())
            .await
            .unwrap();
        assert_eq!(r.id_token.as_deref(), Some("a.b.c"));
        let req = String::from_utf8(h.await.unwrap()).unwrap();
        assert!(req.starts_with("POST /token "));
        assert!(req.contains("application/x-www-form-urlencoded"));
    }

    #[tokio::test]
    async fn an_answer_over_the_cap_and_a_refusal_are_errors() {
        let (url, _h) = serve_once(200, vec![b' '; MAX_TOKEN_RESPONSE + 10]).await;
        assert_eq!(
            post_form(&url, String::new()).await,
            Err(ExchangeError::Token(TokenError::TooLarge))
        );
        let (url, _h) = serve_once(400, br#"{"error":"invalid_grant"}"#.to_vec()).await;
        assert_eq!(
            post_form(&url, String::new()).await,
            Err(ExchangeError::Status { status: 400 })
        );
    }

    #[tokio::test]
    async fn a_provider_that_never_answers_is_given_up_on() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", l.local_addr().unwrap());
        let _hold = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            // Keep the connection open without answering until the client gives up.
            let mut s = s;
            let mut buf = [0u8; 1024];
            while s.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        });
        assert!(matches!(
            post_form(&url, String::new()).await,
            Err(ExchangeError::Transport { .. })
        ));
    }
}
