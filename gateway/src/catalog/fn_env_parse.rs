//! Parsing of `fn.env.json`: `{"NAME": "plain"}` or `{"NAME": {"value": "...", "is_secret": true}}`.
//! As in FastFN's runtimes, a number or boolean is taken as its text (`5`, `1.5`, `true`)
//! and a `null` value leaves the variable unset.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::fn_env::{EnvVar, FnEnv};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFull {
    value: serde_json::Value,
    #[serde(default)]
    is_secret: bool,
}

/// A scalar as FastFN's runtimes take it (`str(v)`); `Err` for objects and arrays.
fn scalar_text(v: serde_json::Value) -> Result<Option<String>, ()> {
    use serde_json::Value;
    match v {
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Null => Ok(None),
        Value::Array(_) | Value::Object(_) => Err(()),
    }
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
        let parsed = match value {
            serde_json::Value::Object(_) => serde_json::from_value::<RawFull>(value)
                .map_err(|_| ())
                .and_then(|f| scalar_text(f.value).map(|v| v.map(|v| (v, f.is_secret)))),
            other => scalar_text(other).map(|v| v.map(|v| (v, false))),
        };
        match parsed {
            Ok(Some((value, secret))) => {
                vars.insert(name, EnvVar { value, secret });
            }
            Ok(None) => {}
            Err(_) => errors.push((
                name,
                "must be a string, number, boolean or {\"value\": ..., \"is_secret\": true}".into(),
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
    fn numbers_and_booleans_as_fastfn_takes_them() {
        let env = parse(
            r#"{"N":5,"F":1.5,"B":true,"S":{"value":42,"is_secret":true},"U":null,"V":{"value":null}}"#,
        )
        .unwrap();
        assert_eq!(env.get("N").unwrap().value, "5");
        assert_eq!(env.get("F").unwrap().value, "1.5");
        assert_eq!(env.get("B").unwrap().value, "true");
        assert_eq!(env.get("S").unwrap().value, "42");
        assert!(env.get("S").unwrap().secret);
        assert!(env.get("U").is_none() && env.get("V").is_none());
    }

    #[test]
    fn bad_entries_named_without_values() {
        let e = parse(r#"{"1X":"a","OK":{"value":"hidden","secret":true},"N":[5]}"#).unwrap_err();
        let names: Vec<_> = e.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["1X", "N", "OK"]);
        assert!(!format!("{e:?}").contains("hidden"));
    }
}
