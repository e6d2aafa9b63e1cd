//! The `edgefn` subcommands, called by the thin `main.rs`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::catalog::Catalog;
use crate::config::{Config, Overrides, RuntimeFlavor};
use crate::{logging, server};

/// `edgefn serve`: exit code.
pub fn serve(config_path: Option<PathBuf>, overrides: Overrides) -> i32 {
    let config = match Config::load(config_path.as_deref(), &overrides) {
        Ok(c) => c,
        Err(errors) => return print_errors("configuration", &errors),
    };
    logging::init(config.log_format);
    let runtime = match runtime_builder(config.runtime).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("edgefn: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(server::run(config, config_path, overrides));
    // Buffered lines first, so the final error is the last thing on stderr.
    logging::flush(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("edgefn: {e:#}");
            1
        }
    }
}

/// On one CPU a multi-threaded runtime only adds hand-offs: the thread blocked in
/// `block_on`, work-stealing bookkeeping and cross-thread wake-ups on every request, with
/// nothing to run in parallel. `auto` picks one thread there and a worker per CPU elsewhere.
fn runtime_builder(flavor: RuntimeFlavor) -> tokio::runtime::Builder {
    let one_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    match (flavor, one_cpu) {
        (RuntimeFlavor::CurrentThread, _) | (RuntimeFlavor::Auto, true) => {
            tokio::runtime::Builder::new_current_thread()
        }
        (RuntimeFlavor::MultiThread, _) | (RuntimeFlavor::Auto, false) => {
            tokio::runtime::Builder::new_multi_thread()
        }
    }
}

/// `edgefn check`: validates everything, prints the route table, exit 1 on any error.
pub fn check(config_path: Option<PathBuf>, overrides: Overrides, out: &mut impl Write) -> i32 {
    let config = match Config::load(config_path.as_deref(), &overrides) {
        Ok(c) => c,
        Err(errors) => return print_errors("configuration", &errors),
    };
    match Catalog::load(&config.functions_dir) {
        Ok(catalog) => {
            for w in &catalog.warnings {
                let _ = writeln!(out, "warning: {w}");
            }
            crate::check_table::print(&catalog.functions, &catalog.ambiguous, out);
            let _ = writeln!(
                out,
                "ok: {} function(s) in {}",
                catalog.functions.len(),
                config.functions_dir.display()
            );
            0
        }
        Err(errors) => print_errors(&config.functions_dir.display().to_string(), &errors),
    }
}

/// `edgefn openapi`: the document the gateway serves at `/_fn/openapi.json`.
pub fn openapi(functions_dir: &Path, out: &mut impl Write) -> i32 {
    match Catalog::load(functions_dir) {
        Ok(catalog) => {
            let _ = out.write_all(&crate::openapi::render(&catalog.functions));
            let _ = writeln!(out);
            0
        }
        Err(errors) => print_errors(&functions_dir.display().to_string(), &errors),
    }
}

fn print_errors<E: std::fmt::Display>(what: &str, errors: &[E]) -> i32 {
    eprintln!("edgefn: {} error(s) in {what}:", errors.len());
    for e in errors {
        eprintln!("  error: {e}");
    }
    1
}

/// `edgefn hash-key`: reads a key (or, with `basic`, `user:password` / a password with
/// `user`) on stdin and prints the line to store: `sha256:<hex>` (`<id> sha256:<hex>` with
/// `id`) for api_key keys files, `user:pbkdf2-sha256$...` for basic users. Exit 2 on bad input.
pub fn hash_key(basic: bool, user: Option<&str>, id: Option<&str>) -> i32 {
    use std::io::Read;
    let mut input = Vec::new();
    let limit = crate::auth::hash_key::MAX_INPUT as u64 + 1;
    if let Err(e) = std::io::stdin().take(limit).read_to_end(&mut input) {
        eprintln!("edgefn: cannot read stdin: {e}");
        return 2;
    }
    match crate::auth::hash_key::run(basic, user, id, &input) {
        Ok(line) => {
            println!("{line}");
            0
        }
        Err(e) => {
            eprintln!("edgefn: hash-key: {e}");
            2
        }
    }
}

/// `edgefn import openfaas STACK --out DIR`: exit 0 when every function was imported, 1
/// when some were skipped, 2 when the stack file could not be read.
pub fn import_openfaas(stack: &Path, out: &Path, w: &mut impl Write) -> i32 {
    match crate::openfaas::import::run(stack, out) {
        Ok(report) => {
            crate::openfaas::import::print(&report, out, w);
            i32::from(!report.skipped.is_empty())
        }
        Err(e) => {
            eprintln!("edgefn: import: {e}");
            2
        }
    }
}
