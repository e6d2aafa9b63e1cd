//! Helpers of the identity tests: a real OpenID provider (`oidc-provider` on Node, from
//! `gateway/tests/oidc`, installed by `scripts/setup.sh --test`) on a loopback port, and
//! tokens minted by PyJWT (a third-party library, not the gateway's code).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use std::collections::BTreeMap;

use reqwest::blocking::Client;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{json, Value};

pub const CLIENT_ID: &str = "machine";
pub const CLIENT_SECRET: &str = "machine-secret-0123456789abcdef";
pub const RESOURCE: &str = "urn:edgefn:api";

fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

pub use crate::support::free_port;

pub struct Provider {
    child: Child,
    pub port: u16,
}

impl Provider {
    /// Starts the provider on `port` publishing `kids` (the first one signs); keys live in
    /// `keys_dir`, so a restart keeps old keys. Waits for its "ready" line.
    pub fn start(port: u16, keys_dir: &Path, kids: &str) -> Provider {
        Self::start_with(port, keys_dir, kids, &[])
    }

    /// As [`Provider::start`], plus the browser-login client `web` whose redirect URI is
    /// this gateway port's `/_fn/oidc/callback`.
    pub fn start_with_login(port: u16, keys_dir: &Path, kids: &str, gateway_port: u16) -> Provider {
        Self::start_with(port, keys_dir, kids, &[gateway_port.to_string()])
    }

    fn start_with(port: u16, keys_dir: &Path, kids: &str, extra: &[String]) -> Provider {
        let dir = oidc_dir();
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "oidc-provider is not installed in {}: run scripts/setup.sh --test",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .arg(port.to_string())
            .arg(keys_dir)
            .arg(kids)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs (scripts/setup.sh installs it)");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.starts_with("ready ") => Provider { child, port },
            other => {
                let _ = child.kill();
                panic!("the OpenID provider did not start: {other:?}");
            }
        }
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client-credentials access token (a JWT for `RESOURCE`) with `scope`.
    pub fn token(&self, scope: &str) -> String {
        let resp = reqwest::blocking::Client::new()
            .post(format!("{}/token", self.issuer()))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200, "token endpoint");
        let v: Value = resp.json().unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `kid` in a token's header.
pub fn kid(token: &str) -> String {
    use base64::Engine;
    let head = token.split('.').next().unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .unwrap();
    let v: Value = serde_json::from_slice(&raw).unwrap();
    v["kid"].as_str().unwrap_or_default().to_owned()
}

const MINT: &str = r#"
import json, sys, jwt
from cryptography.hazmat.primitives.asymmetric import rsa, ec, ed25519
from jwt.algorithms import RSAAlgorithm, ECAlgorithm, OKPAlgorithm

spec = json.load(sys.stdin)
keys = {
    "RS256": (rsa.generate_private_key(public_exponent=65537, key_size=2048), RSAAlgorithm),
    "ES256": (ec.generate_private_key(ec.SECP256R1()), ECAlgorithm),
    "EdDSA": (ed25519.Ed25519PrivateKey.generate(), OKPAlgorithm),
}
jwks = []
for alg, (key, algo) in keys.items():
    jwk = json.loads(algo.to_jwk(key.public_key()))
    jwk.update({"kid": alg.lower(), "alg": alg})
    jwks.append(jwk)
tokens = []
for t in spec:
    if t["alg"] == "none":
        tokens.append(jwt.encode(t["claims"], None, algorithm="none"))
    else:
        tokens.append(jwt.encode(t["claims"], keys[t["alg"]][0], algorithm=t["alg"],
                                 headers={"kid": t["alg"].lower()}))
print(json.dumps({"jwks": {"keys": jwks}, "tokens": tokens}))
"#;

/// Mints one token per `(alg, claims)` with fresh keys; returns the public JWKS and tokens.
pub fn pyjwt(specs: &[(&str, Value)]) -> (Value, Vec<String>) {
    let mut child = Command::new("python3")
        .args(["-c", MINT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    let input: Vec<Value> = specs
        .iter()
        .map(|(alg, claims)| json!({"alg": alg, "claims": claims}))
        .collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&input).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "PyJWT minting failed (pip install pyjwt cryptography: scripts/setup.sh --test)"
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tokens = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    (v["jwks"].clone(), tokens)
}

/// A browser's cookie jar for one host, and manual redirects (to stop at the callback).
pub struct Browser {
    pub http: Client,
    pub jar: BTreeMap<String, String>,
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            http: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: BTreeMap::new(),
        }
    }

    pub fn send(&mut self, req: reqwest::blocking::RequestBuilder) -> reqwest::blocking::Response {
        let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let resp = req.header(COOKIE, cookies.join("; ")).send().unwrap();
        for sc in resp.headers().get_all(SET_COOKIE) {
            let sc = sc.to_str().unwrap();
            let (k, v) = sc.split(';').next().unwrap().split_once('=').unwrap();
            // `Max-Age=0` clears the cookie, as a browser does.
            if sc.contains("Max-Age=0") {
                self.jar.remove(k.trim());
            } else {
                self.jar.insert(k.trim().to_owned(), v.to_owned());
            }
        }
        resp
    }

    /// Follows redirects and submits the provider's login and consent forms until the
    /// provider redirects to `callback`; returns that URL.
    pub fn login(&mut self, issuer: &str, start: &str, callback: &str, user: &str) -> reqwest::Url {
        let mut url = start.to_owned();
        for _ in 0..20 {
            let resp = self.send(self.http.get(&url));
            if resp.status().is_redirection() {
                let loc = resp.headers()[LOCATION].to_str().unwrap().to_owned();
                if loc.starts_with(callback) {
                    return reqwest::Url::parse(&loc).unwrap();
                }
                url = absolute(issuer, &loc);
                continue;
            }
            let html = resp.text().unwrap();
            let action = html
                .split("action=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_else(|| panic!("no form on the provider's page: {html}"))
                .to_owned();
            let form: Vec<(&str, &str)> = if html.contains(r#"name="prompt" value="login""#) {
                vec![("prompt", "login"), ("login", user), ("password", "any")]
            } else {
                vec![("prompt", "consent")]
            };
            let resp = self.send(self.http.post(absolute(issuer, &action)).form(&form));
            assert!(
                resp.status().is_redirection(),
                "form answered {}",
                resp.status()
            );
            url = absolute(issuer, resp.headers()[LOCATION].to_str().unwrap());
        }
        panic!("the provider never redirected to the callback");
    }
}

pub fn absolute(issuer: &str, loc: &str) -> String {
    if loc.starts_with("http") {
        loc.to_owned()
    } else {
        format!("{issuer}{loc}")
    }
}
