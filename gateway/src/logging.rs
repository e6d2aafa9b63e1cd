//! Log set-up and the two structured lines the request path and the pools emit.
//!
//! Everything goes to stderr through one `tracing` subscriber, written in batches by
//! [`crate::log_sink`] so no request waits on stderr: human-readable (coloured
//! only when stderr is a terminal) or one JSON object per line. `RUST_LOG` filters
//! (default `info`); the access log has its own target, `edgefn::access`, so operators can
//! turn it off with `RUST_LOG=info,edgefn::access=off` or route it elsewhere. Function
//! stdout/stderr lines use the target `edgefn::function`. No line carries a presented
//! credential: the access line holds only the verified subject (a key id, a user name).

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use http::{Method, StatusCode};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::log_sink::{self, LogSink};

/// Target of the per-request access line.
pub const ACCESS_TARGET: &str = "edgefn::access";
/// Target of lines a function's worker wrote to its stdout/stderr.
pub const FUNCTION_TARGET: &str = "edgefn::function";

static SINK: OnceLock<LogSink> = OnceLock::new();

/// Installs the global subscriber (once; later calls are ignored), writing through the
/// batching sink; without a writer thread it falls back to unbuffered stderr.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    let sub = match LogSink::spawn(std::io::stderr(), log_sink::BUFFER_BYTES) {
        Ok(sink) => {
            let _ = SINK.set(sink.clone());
            subscriber(format, filter, ansi, sink)
        }
        Err(e) => {
            eprintln!("edgefn: cannot start the log writer thread ({e}); logging unbuffered");
            subscriber(format, filter, ansi, std::io::stderr)
        }
    };
    let _ = tracing::subscriber::set_global_default(sub);
}

/// Writes every buffered line; called at shutdown (bounded: a stuck stderr cannot hold
/// the exit up for more than `limit`).
pub fn flush(limit: Duration) {
    if let Some(sink) = SINK.get() {
        sink.flush(limit);
    }
}

/// The subscriber `init` installs, with the writer as a parameter so tests can read it.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    ansi: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Human => Box::new(builder.with_ansi(ansi).finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .finish(),
        ),
    }
}

/// One access-log line per request, target `edgefn::access`; never a credential.
pub fn access(
    request_id: &[u8],
    function: &str,
    method: &Method,
    status: StatusCode,
    elapsed: Duration,
    subject: Option<&str>,
) {
    tracing::info!(
        target: ACCESS_TARGET,
        request_id = std::str::from_utf8(request_id).unwrap_or_default(),
        function,
        method = method.as_str(),
        status = status.as_u16(),
        duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        auth_subject = subject.unwrap_or("-"),
    );
}

/// Which stream of a worker a captured line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line a function printed, tagged with the function (target `edgefn::function`).
/// The caller has already masked secret values (the runtimes replace them with `***`).
pub fn function_output(function: &str, stream: Stream, line: &str) {
    match stream {
        Stream::Stdout => {
            tracing::info!(target: FUNCTION_TARGET, function, stream = "stdout", "{line}")
        }
        Stream::Stderr => {
            tracing::warn!(target: FUNCTION_TARGET, function, stream = "stderr", "{line}")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    fn capture(format: LogFormat, filter: &str, emit: impl FnOnce()) -> String {
        let buf = Buf::default();
        let sub = subscriber(format, EnvFilter::new(filter), false, buf.clone());
        tracing::subscriber::with_default(sub, emit);
        let out = buf.0.lock().unwrap().clone();
        String::from_utf8(out).unwrap()
    }

    fn emit_access() {
        access(
            b"rid-1",
            "secure-api",
            &Method::POST,
            StatusCode::UNAUTHORIZED,
            Duration::from_micros(1234),
            Some("key-2026"),
        );
    }

    #[test]
    fn json_access_line_has_every_field() {
        let out = capture(LogFormat::Json, "info", emit_access);
        let line: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
        assert_eq!(line["target"], ACCESS_TARGET);
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["request_id"], "rid-1");
        assert_eq!(line["function"], "secure-api");
        assert_eq!(line["method"], "POST");
        assert_eq!(line["status"], 401);
        assert_eq!(line["duration_us"], 1234);
        assert_eq!(line["auth_subject"], "key-2026");
    }

    #[test]
    fn human_access_line_and_filtering_by_target() {
        let out = capture(LogFormat::Human, "info", emit_access);
        assert!(out.contains("edgefn::access"), "{out}");
        assert!(
            out.contains("status=401") && out.contains("function=\"secure-api\""),
            "{out}"
        );
        assert!(
            !out.contains('\u{1b}'),
            "no ANSI when not a terminal: {out:?}"
        );
        let off = capture(LogFormat::Human, "info,edgefn::access=off", emit_access);
        assert_eq!(off, "");
    }

    #[test]
    fn function_output_is_tagged() {
        let out = capture(LogFormat::Json, "info", || {
            function_output("hello", Stream::Stderr, "Traceback: boom ***");
        });
        let line: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
        assert_eq!(line["target"], FUNCTION_TARGET);
        assert_eq!(line["function"], "hello");
        assert_eq!(line["stream"], "stderr");
        assert_eq!(line["message"], "Traceback: boom ***");
    }
}
