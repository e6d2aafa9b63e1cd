//! Zoom's endpoint validation: when an event subscription is saved (and every 72 hours)
//! Zoom posts a signed `{"event": "endpoint.url_validation", "payload": {"plainToken": ..}}`
//! and expects `{"plainToken": .., "encryptedToken": hex(HMAC-SHA256(secret, plainToken))}`
//! back. The gateway answers it itself after the signature check, so functions only see
//! real events and the secret never has to reach a worker.

use bytes::Bytes;
use ring::hmac;
use serde::Deserialize;

pub const VALIDATION_EVENT: &str = "endpoint.url_validation";
/// Longest `plainToken` answered (Zoom's are 22 characters); a longer one goes to the
/// function like any other event.
pub const MAX_PLAIN_TOKEN_LEN: usize = 256;

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    event: Option<std::borrow::Cow<'a, str>>,
    payload: Option<Payload>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "plainToken")]
    plain_token: Option<String>,
}

/// The answer to a validation event signed with `key`; `None` for any other body.
pub fn challenge_answer(key: &hmac::Key, body: &[u8]) -> Option<Bytes> {
    let ev: Event<'_> = serde_json::from_slice(body).ok()?;
    if ev.event.as_deref() != Some(VALIDATION_EVENT) {
        return None;
    }
    let token = ev.payload?.plain_token?;
    if token.is_empty() || token.len() > MAX_PLAIN_TOKEN_LEN {
        return None;
    }
    let encrypted = hex::encode(hmac::sign(key, token.as_bytes()));
    let answer = serde_json::json!({"plainToken": token, "encryptedToken": encrypted});
    Some(Bytes::from(answer.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_only_validation_events() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"zoom-secret");
        let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
        let answer: serde_json::Value =
            serde_json::from_slice(&challenge_answer(&key, body).unwrap()).unwrap();
        let expected = hex::encode(hmac::sign(&key, b"qgg8vlvZRS6UYooatFL8Aw"));
        assert_eq!(answer["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
        assert_eq!(answer["encryptedToken"], expected.as_str());
        for other in [
            &br#"{"event":"meeting.started","payload":{"plainToken":"x"}}"#[..],
            br#"{"event":"endpoint.url_validation","payload":{}}"#,
            b"not json",
        ] {
            assert!(challenge_answer(&key, other).is_none());
        }
        let long = format!(
            r#"{{"event":"endpoint.url_validation","payload":{{"plainToken":"{}"}}}}"#,
            "a".repeat(MAX_PLAIN_TOKEN_LEN + 1)
        );
        assert!(challenge_answer(&key, long.as_bytes()).is_none());
    }
}
