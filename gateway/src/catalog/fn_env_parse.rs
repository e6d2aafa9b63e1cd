//! Parsing of `fn.env.json`: `{"NAME": "plain"}` or `{"NAME": {"value": "...", "is_secret": true}}`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::fn_env::{EnvVar, FnEnv};

#[derive(Deserialize)]
#[serde(untagged)]
enum RawValue {
    Plain(String),
    Full(RawFull),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFull {
    value: String,
    #[serde(default)]
    is_secret: bool,
}

/// Parses the file's text; errors are `(field, message)` and never contain a value.
pub fn parse(text: &str) -> Result<FnEnv, Vec<(String, String)>> {
    let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(text).map_err(|e| {
        vec![(
            "-".to_owned(),
            format!("not a JSON object of NAME → value ({e})"),
        )]
    })?;
    let mut vars = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, value) in map {
        if !valid_name(&name) {
            errors.push((
                name.clone(),
                "is not a valid variable name; use letters, digits and _ (not first a digit)"
                    .into(),
            ));
            continue;
        }
        match serde_json::from_value::<RawValue>(value) {
            Ok(RawValue::Plain(value)) => {
                vars.insert(
                    name,
                    EnvVar {
                        value,
                        secret: false,
                    },
                );
            }
            Ok(RawValue::Full(f)) => {
                vars.insert(
                    name,
                    EnvVar {
                        value: f.value,
                        secret: f.is_secret,
                    },
                );
            }
            Err(_) => errors.push((
                name,
                "must be a string or {\"value\": \"...\", \"is_secret\": true}".into(),
            )),
        }
    }
    if errors.is_empty() {
        Ok(FnEnv::new(vars))
    } else {
        Err(errors)
    }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && n.len() <= 128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms() {
        let env = parse(r#"{"A":"x","B":{"value":"s3cret","is_secret":true}}"#).unwrap();
        assert_eq!(env.get("A").unwrap().value, "x");
        assert!(env.get("B").unwrap().secret);
        assert_eq!(env.secret_values(), vec!["s3cret".to_owned()]);
        assert!(!format!("{env:?}").contains("s3cret"));
    }

    #[test]
    fn bad_entries_named_without_values() {
        let e = parse(r#"{"1X":"a","OK":{"value":"hidden","secret":true},"N":5}"#).unwrap_err();
        let names: Vec<_> = e.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["1X", "N", "OK"]);
        assert!(!format!("{e:?}").contains("hidden"));
    }
}
