//! `fn.env.json`: a function's environment. Parsed once at load; the values reach the
//! function as `event.env`, and the secret ones are remembered so every output path
//! (logs, error bodies, OpenAPI, worker stdout) can keep them out.

use std::collections::BTreeMap;

/// One variable of `fn.env.json`.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub value: String,
    pub secret: bool,
}

impl std::fmt::Debug for EnvVar {
    // A Debug print of a config must never leak a secret into a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.secret {
            f.write_str("EnvVar(***)")
        } else {
            write!(f, "EnvVar({:?})", self.value)
        }
    }
}

/// The whole environment of one function, ordered by name for stable output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FnEnv {
    vars: BTreeMap<String, EnvVar>,
}

impl FnEnv {
    pub fn new(vars: BTreeMap<String, EnvVar>) -> Self {
        Self { vars }
    }

    pub fn get(&self, name: &str) -> Option<&EnvVar> {
        self.vars.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &EnvVar)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The values marked `is_secret` (non-empty only), for masking.
    pub fn secret_values(&self) -> Vec<String> {
        self.vars
            .values()
            .filter(|v| v.secret && !v.value.is_empty())
            .map(|v| v.value.clone())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }
}
