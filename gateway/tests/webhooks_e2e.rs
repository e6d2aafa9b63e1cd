//! Every webhook scheme against the real binary, signed by the publishers' own libraries
//! (`tests/webhooks/sign.py`: stripe, slack_sdk, standardwebhooks, twilio, PyNaCl;
//! `tests/webhooks/sign-github.mjs`: @octokit/webhooks-methods). Per scheme: the good
//! request reaches the Python worker; a replay, a tampered body, the wrong secret, a stale
//! timestamp and a missing header are each refused with their own `reason` in /metrics.
//! Zoom's URL validation is answered by the gateway; OpenAPI names each scheme.

mod support;

use std::collections::BTreeMap;

use reqwest::blocking::Response;
use serde_json::{json, Value};
use support::{client, get_json, prometheus, secret, tempdir, write_tree_owned, Gateway};

const HANDLER: &str = r#"def handler(event):
    return {"status": 200, "body": "ok " + str(event["context"]["auth"]["subject"])}
"#;
const SEED_A: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const SEED_B: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const WHSEC_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WHSEC_B: &str = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const PUBLIC_URL: &str = "https://hooks.example.test";

fn python(jobs: Value) -> Vec<Value> {
    support::signers::run("python3", "sign.py", &jobs)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// One function per scheme: (name, auth config, env).
fn functions(discord_pk: &str, whpk: &str) -> Vec<(&'static str, Value, Value)> {
    vec![
        (
            "stripe",
            json!({"type": "hmac", "scheme": "stripe", "secret": "S"}),
            json!({"S": secret("whsec_stripe-e2e")}),
        ),
        (
            "slack",
            json!({"type": "hmac", "scheme": "slack", "secret": "S"}),
            json!({"S": secret("slack-e2e-signing-secret")}),
        ),
        (
            "standard",
            json!({"type": "hmac", "scheme": "standard", "secret": "S"}),
            json!({"S": secret(WHSEC_A)}),
        ),
        (
            "svix",
            json!({"type": "hmac", "scheme": "svix", "secret": "S"}),
            json!({"S": secret(WHSEC_A)}),
        ),
        (
            "zoom",
            json!({"type": "hmac", "scheme": "zoom", "secret": "S"}),
            json!({"S": secret("zoom-e2e-secret-token")}),
        ),
        (
            "shopify",
            json!({"type": "hmac", "scheme": "shopify", "secret": "S"}),
            json!({"S": secret("shopify-e2e-secret")}),
        ),
        (
            "twilio",
            json!({"type": "hmac", "scheme": "twilio", "secret": "S", "public_url": PUBLIC_URL}),
            json!({"S": secret("twilio-e2e-auth-token")}),
        ),
        (
            "faas",
            json!({"type": "hmac", "scheme": "faas-cli", "secret": "S", "header": "X-Hub-Signature"}),
            json!({"S": secret("faas-e2e-key")}),
        ),
        (
            "github",
            json!({"type": "hmac", "scheme": "github", "secret": "S"}),
            json!({"S": secret("github-e2e-secret")}),
        ),
        (
            "gitlab",
            json!({"type": "token", "header": "X-Gitlab-Token", "secret": "S"}),
            json!({"S": secret("gitlab-e2e-token")}),
        ),
        (
            "discord",
            json!({"type": "ed25519", "scheme": "discord", "public_key": "PK"}),
            json!({"PK": discord_pk}),
        ),
        (
            "standard-v1a",
            json!({"type": "ed25519", "scheme": "standard", "public_key": "PK"}),
            json!({"PK": whpk}),
        ),
    ]
}

struct Env {
    _dir: tempfile::TempDir,
    gw: Gateway,
}

fn start() -> Env {
    let keys = python(json!([{"op": "ed25519_public", "seed": SEED_A}]));
    let (hex_pk, whpk) = (
        keys[0]["hex"].as_str().unwrap(),
        keys[0]["whpk"].as_str().unwrap(),
    );
    let dir = tempdir();
    let mut files = Vec::new();
    for (name, auth, env) in functions(hex_pk, whpk) {
        files.push((
            format!("{name}/fn.config.json"),
            json!({"methods": ["POST"], "auth": auth}).to_string(),
        ));
        files.push((format!("{name}/fn.env.json"), env.to_string()));
        files.push((format!("{name}/handler.py"), HANDLER.to_owned()));
    }
    write_tree_owned(dir.path(), &files);
    let gw = Gateway::start(dir.path());
    Env { _dir: dir, gw }
}

/// The signing job for `scheme`, with the right (`good`) or another secret.
fn job(scheme: &str, body: &str, ts: u64, id: &str, good: bool) -> Value {
    let pick = |a: &str, b: &str| if good { a.to_owned() } else { b.to_owned() };
    match scheme {
        "stripe" => {
            json!({"op": "stripe", "secret": pick("whsec_stripe-e2e", "whsec_other"), "body": body, "timestamp": ts})
        }
        "slack" => {
            json!({"op": "slack", "secret": pick("slack-e2e-signing-secret", "other"), "body": body, "timestamp": ts})
        }
        "standard" | "svix" => {
            json!({"op": "standard", "secret": pick(WHSEC_A, WHSEC_B), "body": body, "timestamp": ts, "id": id})
        }
        "zoom" => {
            json!({"op": "zoom", "secret": pick("zoom-e2e-secret-token", "other"), "body": body, "timestamp": ts})
        }
        "shopify" => {
            json!({"op": "shopify", "secret": pick("shopify-e2e-secret", "other"), "body": body})
        }
        "twilio" => {
            json!({"op": "twilio", "secret": pick("twilio-e2e-auth-token", "other"), "body": body, "url": format!("{PUBLIC_URL}/twilio")})
        }
        "faas" => {
            json!({"op": "faas_cli", "secret": pick("faas-e2e-key", "other"), "body": body, "header": "x-hub-signature"})
        }
        "discord" => {
            json!({"op": "discord", "seed": pick(SEED_A, SEED_B), "body": body, "timestamp": ts})
        }
        "standard-v1a" => {
            json!({"op": "standard_v1a", "seed": pick(SEED_A, SEED_B), "body": body, "timestamp": ts, "id": id})
        }
        other => panic!("no signer for {other}"),
    }
}

fn timestamped(scheme: &str) -> bool {
    matches!(
        scheme,
        "stripe" | "slack" | "standard" | "svix" | "zoom" | "discord" | "standard-v1a"
    )
}

fn body_for(scheme: &str, n: u32) -> String {
    if scheme == "twilio" {
        format!("CallSid=CA{n}&From=%2B15551234567&Body=hello+{n}")
    } else {
        format!(r#"{{"event":"test","n":{n}}}"#)
    }
}

fn post(gw: &Gateway, scheme: &str, headers: &Value, body: &str) -> Response {
    let mut rb = client()
        .post(gw.url(&format!("/{scheme}")))
        .body(body.to_owned());
    if scheme == "twilio" {
        rb = rb.header("content-type", "application/x-www-form-urlencoded");
    }
    for (k, v) in headers.as_object().unwrap() {
        rb = rb.header(k, v.as_str().unwrap());
    }
    rb.send().unwrap()
}

fn auth_failures(gw: &Gateway) -> BTreeMap<(String, String), u64> {
    prometheus::parse(&gw.metrics())
        .into_iter()
        .filter(|(name, _, _)| name == "edgefn_auth_failures_total")
        .map(|(_, l, v)| ((l["function"].clone(), l["reason"].clone()), v as u64))
        .collect()
}

fn admitted(resp: Response) -> String {
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    assert_eq!(status, 200, "{text}");
    text
}

fn refused(resp: Response) {
    let status = resp.status().as_u16();
    assert_eq!(status, 401, "{}", resp.text().unwrap());
}

#[test]
fn each_scheme_admits_its_publishers_signature_and_refuses_the_rest() {
    let env = start();
    let gw = &env.gw;
    let python_schemes = [
        "stripe",
        "slack",
        "standard",
        "svix",
        "zoom",
        "shopify",
        "twilio",
        "faas",
        "discord",
        "standard-v1a",
    ];
    let t = now();
    // Per scheme: good, wrong secret, stale (timestamped schemes only; others re-sign).
    let mut jobs = Vec::new();
    for (i, s) in python_schemes.iter().enumerate() {
        let body = body_for(s, i as u32);
        jobs.push(job(s, &body, t, &format!("msg_{i}_good"), true));
        jobs.push(job(s, &body, t, &format!("msg_{i}_wrong"), false));
        jobs.push(job(s, &body, t - 3600, &format!("msg_{i}_stale"), true));
    }
    let signed = python(Value::Array(jobs));
    let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut expect = |f: &str, reason: &str| {
        *expected
            .entry((f.to_owned(), reason.to_owned()))
            .or_default() += 1
    };
    for (i, s) in python_schemes.iter().enumerate() {
        let body = body_for(s, i as u32);
        let (good, wrong, stale) = (&signed[3 * i], &signed[3 * i + 1], &signed[3 * i + 2]);
        let subject = if matches!(*s, "discord" | "standard-v1a") {
            "ok PK"
        } else {
            "ok S"
        };
        assert_eq!(admitted(post(gw, s, good, &body)), subject, "{s}");
        if timestamped(s) {
            refused(post(gw, s, good, &body));
            expect(s, "replayed");
            refused(post(gw, s, stale, &body));
            expect(s, "stale_timestamp");
        }
        refused(post(gw, s, good, &body_for(s, 999)));
        expect(s, "bad_signature");
        refused(post(gw, s, wrong, &body));
        expect(s, "bad_signature");
        refused(post(gw, s, &json!({}), &body));
        expect(s, "missing");
    }

    // GitHub, signed by @octokit/webhooks-methods.
    let body = body_for("github", 1);
    let gh = support::signers::run(
        "node",
        "sign-github.mjs",
        &json!([{"secret": "github-e2e-secret", "body": body}, {"secret": "other", "body": body}]),
    );
    assert_eq!(admitted(post(gw, "github", &gh[0], &body)), "ok S");
    refused(post(gw, "github", &gh[0], &body_for("github", 2)));
    refused(post(gw, "github", &gh[1], &body));
    refused(post(gw, "github", &json!({}), &body));
    for r in ["bad_signature", "bad_signature", "missing"] {
        expect("github", r);
    }

    // GitLab's plain token.
    assert_eq!(
        admitted(post(
            gw,
            "gitlab",
            &json!({"x-gitlab-token": "gitlab-e2e-token"}),
            "{}"
        )),
        "ok S"
    );
    refused(post(
        gw,
        "gitlab",
        &json!({"x-gitlab-token": "gitlab-e2e-tokeN"}),
        "{}",
    ));
    refused(post(gw, "gitlab", &json!({}), "{}"));
    expect("gitlab", "unknown_token");
    expect("gitlab", "missing");

    assert_eq!(auth_failures(gw), expected);
}

#[test]
fn ed25519_subjects_and_sizes() {
    let env = start();
    let t = now();
    let body = r#"{"type":1}"#;
    let signed = python(json!([
        job("discord", body, t, "", true),
        job("standard-v1a", body, t, "msg_1", true),
    ]));
    assert_eq!(
        admitted(post(&env.gw, "discord", &signed[0], body)),
        "ok PK"
    );
    assert_eq!(
        admitted(post(&env.gw, "standard-v1a", &signed[1], body)),
        "ok PK"
    );
    // An over-long signature header is malformed, not parsed.
    let long =
        json!({"x-signature-ed25519": "a".repeat(5000), "x-signature-timestamp": t.to_string()});
    refused(post(&env.gw, "discord", &long, body));
    assert_eq!(
        auth_failures(&env.gw).get(&("discord".into(), "malformed".into())),
        Some(&1)
    );
}

/// Zoom's `endpoint.url_validation`, signed like any event, is answered by the gateway
/// with the HMAC of `plainToken`; an unsigned one is refused.
#[test]
fn zoom_url_validation_is_answered_by_the_gateway() {
    let env = start();
    let body = r#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    let signed = python(json!([job("zoom", body, now(), "", true)]));
    let resp = post(&env.gw, "zoom", &signed[0], body);
    assert_eq!(resp.status().as_u16(), 200);
    let answer: Value = resp.json().unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"zoom-e2e-secret-token");
    let expected = hex::encode(ring::hmac::sign(&key, b"qgg8vlvZRS6UYooatFL8Aw"));
    assert_eq!(
        answer,
        json!({"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected})
    );
    refused(post(&env.gw, "zoom", &json!({}), body));
}

#[test]
fn openapi_describes_each_scheme_without_secrets() {
    let env = start();
    let doc: Value = get_json(&env.gw.url("/_fn/openapi.json"));
    let text = doc.to_string();
    for needle in [
        "webhook-signature",
        "x-zm-signature",
        "x-shopify-hmac-sha256",
        "x-twilio-signature",
        "x-hub-signature",
        "x-gitlab-token",
        "x-signature-ed25519",
        "v1a",
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    for secret in [
        "whsec_Mf",
        "zoom-e2e",
        "shopify-e2e",
        "twilio-e2e",
        "gitlab-e2e",
        "faas-e2e",
    ] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
}
