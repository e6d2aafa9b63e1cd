//! The one Prometheus text parser the integration tests share, and Prometheus's own
//! checker for what a parser of ours would accept too readily.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

pub type Labels = BTreeMap<String, String>;

/// Every sample line of an exposition page as `(name, labels, value)`.
pub fn parse(text: &str) -> Vec<(String, Labels, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
            let (name, labels) = parse_series(series);
            (name, labels, value.parse().expect("numeric value"))
        })
        .collect()
}

/// `name{k="v",...}` into its name and labels.
pub fn parse_series(series: &str) -> (String, Labels) {
    let (name, labels) = match series.split_once('{') {
        Some((n, rest)) => (n, rest.strip_suffix('}').expect("closing brace")),
        None => (series, ""),
    };
    let labels = labels
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').expect("label has =");
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect();
    (name.to_owned(), labels)
}

/// Value of the series with exactly these labels; 0 when absent (never seen yet).
pub fn get(page: &[(String, Labels, f64)], name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: Labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    page.iter()
        .find(|(n, l, _)| n == name && *l == want)
        .map_or(0.0, |(_, _, v)| *v)
}

/// Runs `promtool <args>` with `input` on its stdin and fails the test with promtool's
/// report unless it passes; `needed_for` says why the test cannot do without it.
pub fn promtool(args: &[&str], input: &[u8], needed_for: &str) {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "promtool is required to {needed_for} and could not run ({e}); \
                 install it with `scripts/setup.sh --test` (Debian package `prometheus`)"
            )
        });
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool {} failed ({}):\n{}{}\n--- input ---\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(input)
    );
}
