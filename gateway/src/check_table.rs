//! The route table `edgefn check` prints: every path each function answers with its
//! effective methods, timeout and auth, so no default has to be guessed (FastFN's and
//! edgefn's defaults differ; see "Coming from FastFN" in the README).

use std::io::Write;

use crate::catalog::discover::Segment;
use crate::catalog::{route_text, FunctionDef};

/// `ambiguous`: the routes two handlers claim, listed as answering 409 (FastFN's answer).
pub fn print(functions: &[FunctionDef], ambiguous: &[Vec<Segment>], out: &mut impl Write) {
    let _ = writeln!(
        out,
        "{:<16} {:<36} {:<28} {:<10} {:>8} AUTH",
        "METHODS", "PATH", "FUNCTION", "RUNTIME", "TIMEOUT"
    );
    for f in functions {
        let methods: Vec<&str> = f.policy.methods.iter().map(|m| m.as_str()).collect();
        let methods = methods.join(",");
        let timeout = format!("{}ms", f.policy.timeout.as_millis());
        for r in &f.routes {
            let mut paths = Vec::new();
            if let Some(Segment::OptionalCatchAll(_)) = r.last() {
                if r.len() > 1 {
                    paths.push(route_text(&r[..r.len() - 1]));
                }
            }
            paths.push(route_text(r));
            for path in paths {
                let _ = writeln!(
                    out,
                    "{:<16} {:<36} {:<28} {:<10} {:>8} {}",
                    methods,
                    path,
                    f.name,
                    f.runtime.as_str(),
                    timeout,
                    f.auth.label()
                );
            }
        }
        if f.routes.is_empty() {
            let _ = writeln!(
                out,
                "{:<16} {:<36} {:<28} {:<10} {:>8} {}",
                methods,
                "(no route)",
                f.name,
                f.runtime.as_str(),
                timeout,
                f.auth.label()
            );
        }
    }
    for r in ambiguous {
        let _ = writeln!(
            out,
            "{:<16} {:<36} {:<28} {:<10} {:>8} -",
            "ANY",
            route_text(r),
            "(409 ambiguous)",
            "-",
            "-"
        );
    }
}
