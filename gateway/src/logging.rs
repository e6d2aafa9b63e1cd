//! Log set-up and the two structured lines the request path and the pools emit.
//!
//! Everything goes to stderr through one `tracing` subscriber, written in batches by
//! [`crate::log_sink`] so no request waits on stderr: human-readable (coloured
//! only when stderr is a terminal) or one JSON object per line. `RUST_LOG` filters
//! (default `info`); the access log has its own target, `edgefn::access`, so operators can
//! turn it off with `RUST_LOG=info,edgefn::access=off` or route it elsewhere. Function
//! stdout/stderr lines use the target `edgefn::function`. No line carries a presented
//! credential: the access line holds only the verified subject (a key id, a user name).

use std::cell::RefCell;
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
/// Set for the JSON format and for the human one without colours: access lines are
/// formatted here, byte for byte as tracing-subscriber would, and appended to the sink
/// directly. Going through the subscriber cost about as much as the rest of a refused
/// request (field visitors, `Debug` escaping or a `serde_json` map of every field, a
/// calendar conversion per line). `None` when the filter turns the access log off: the
/// filter is fixed at start (`RUST_LOG`), so it is asked once, not once per request.
static DIRECT_ACCESS: OnceLock<Option<(LogSink, LogFormat)>> = OnceLock::new();

/// Installs the global subscriber (once; later calls are ignored), writing through the
/// batching sink; without a writer thread it falls back to unbuffered stderr.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    let mut direct = None;
    let sub = match LogSink::spawn(std::io::stderr(), log_sink::BUFFER_BYTES) {
        Ok(sink) => {
            let _ = SINK.set(sink.clone());
            if format == LogFormat::Json || !ansi {
                direct = Some(sink.clone());
            }
            subscriber(format, filter, ansi, sink)
        }
        Err(e) => {
            eprintln!("edgefn: cannot start the log writer thread ({e}); logging unbuffered");
            subscriber(format, filter, ansi, std::io::stderr)
        }
    };
    if tracing::subscriber::set_global_default(sub).is_ok() {
        if let Some(sink) = direct {
            // The subscriber's filter still decides (`RUST_LOG=...,edgefn::access=off`).
            let on = tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO);
            let _ = DIRECT_ACCESS.set(on.then_some((sink, format)));
        }
    }
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
    if let Some(direct) = DIRECT_ACCESS.get() {
        if let Some((sink, format)) = direct {
            let line_of = match format {
                LogFormat::Human => human_access_line,
                LogFormat::Json => json_access_line,
            };
            LINE.with_borrow_mut(|line| {
                line.clear();
                line_of(
                    line,
                    SystemTime::now(),
                    request_id,
                    function,
                    method,
                    status,
                    elapsed,
                    subject,
                );
                sink.append(line);
            });
        }
        return;
    }
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

thread_local! {
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(256));
    /// The last second formatted, and its `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: RefCell<(u64, [u8; 19])> = const { RefCell::new((u64::MAX, [0; 19])) };
}

/// The line tracing-subscriber's default (full, no ANSI) format writes for [`access`]'s
/// event: `<RFC 3339 UTC, µs>  INFO edgefn::access: request_id="…" … auth_subject="…"`.
#[allow(clippy::too_many_arguments)]
fn human_access_line(
    out: &mut Vec<u8>,
    now: SystemTime,
    request_id: &[u8],
    function: &str,
    method: &Method,
    status: StatusCode,
    elapsed: Duration,
    subject: Option<&str>,
) {
    push_timestamp(out, now);
    out.extend_from_slice(b"  INFO ");
    out.extend_from_slice(ACCESS_TARGET.as_bytes());
    out.extend_from_slice(b": request_id=");
    // Ids are `[A-Za-z0-9-_.:]` (request_id.rs) and methods are tokens: nothing to escape.
    push_quoted(
        out,
        std::str::from_utf8(request_id)
            .unwrap_or_default()
            .as_bytes(),
    );
    out.extend_from_slice(b" function=");
    push_debug_str(out, function);
    out.extend_from_slice(b" method=");
    push_quoted(out, method.as_str().as_bytes());
    out.extend_from_slice(b" status=");
    push_padded(out, u64::from(status.as_u16()), 1);
    out.extend_from_slice(b" duration_us=");
    push_padded(
        out,
        u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        1,
    );
    out.extend_from_slice(b" auth_subject=");
    push_debug_str(out, subject.unwrap_or("-"));
    out.push(b'\n');
}

/// The line tracing-subscriber's JSON format (`flatten_event`, no span) writes for
/// [`access`]'s event: `{"timestamp":"…","level":"INFO","request_id":"…",…,"target":"edgefn::access"}`.
#[allow(clippy::too_many_arguments)]
fn json_access_line(
    out: &mut Vec<u8>,
    now: SystemTime,
    request_id: &[u8],
    function: &str,
    method: &Method,
    status: StatusCode,
    elapsed: Duration,
    subject: Option<&str>,
) {
    out.extend_from_slice(b"{\"timestamp\":\"");
    push_timestamp(out, now);
    out.extend_from_slice(b"\",\"level\":\"INFO\",\"request_id\":");
    push_json_str(out, std::str::from_utf8(request_id).unwrap_or_default());
    out.extend_from_slice(b",\"function\":");
    push_json_str(out, function);
    out.extend_from_slice(b",\"method\":");
    push_json_str(out, method.as_str());
    out.extend_from_slice(b",\"status\":");
    push_padded(out, u64::from(status.as_u16()), 1);
    out.extend_from_slice(b",\"duration_us\":");
    push_padded(
        out,
        u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        1,
    );
    out.extend_from_slice(b",\"auth_subject\":");
    push_json_str(out, subject.unwrap_or("-"));
    out.extend_from_slice(b",\"target\":\"");
    out.extend_from_slice(ACCESS_TARGET.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, as tracing-subscriber's default timer writes it.
fn push_timestamp(out: &mut Vec<u8>, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != secs {
            *cached = secs;
            *text = rfc3339_second(secs);
        }
        out.extend_from_slice(&text[..]);
    });
    out.push(b'.');
    push_padded(out, u64::from(since.subsec_micros()), 6);
    out.push(b'Z');
}

/// `s` as a JSON string, escaped as `serde_json` escapes it (which tracing-subscriber
/// uses): printable ASCII other than `"` and `\` is written as is.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        push_quoted(out, s.as_bytes());
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// `s` as `{:?}` writes it: quoted, escaped. Printable ASCII other than `"` and `\` is
/// written as is (ids, names, methods); anything else takes the standard formatter.
fn push_debug_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        push_quoted(out, s.as_bytes());
    } else {
        use std::io::Write;
        let _ = write!(out, "{s:?}");
    }
}

fn push_quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(s);
    out.push(b'"');
}

/// Decimal `v`, left-padded with zeros to at least `width` digits.
fn push_padded(out: &mut Vec<u8>, mut v: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    while v > 0 || digits.len() - i < width {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&digits[i..]);
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) of a Unix time, for years up to 9999.
fn rfc3339_second(secs: u64) -> [u8; 19] {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut text = *b"0000-00-00T00:00:00";
    let mut put = |at: usize, v: u64, n: usize| {
        let mut v = v;
        for i in (at..at + n).rev() {
            text[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year.clamp(0, 9999) as u64, 4);
    put(5, month as u64, 2);
    put(8, day as u64, 2);
    put(11, rem / 3600, 2);
    put(14, rem / 60 % 60, 2);
    put(17, rem % 60, 2);
    text
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
    fn direct_access_line_is_what_the_subscriber_writes() {
        let cases: [(&[u8], &str, Method, Option<&str>); 3] = [
            (b"rid-1", "secure-api", Method::POST, Some("key-2026")),
            (b"0a1b2c3d-000000000001", "_unmatched", Method::GET, None),
            (
                b"r",
                "f",
                Method::DELETE,
                Some("ann \"o'neil\"\t\u{e9}\u{1b}[0m"),
            ),
        ];
        for (rid, func, method, subject) in cases {
            let elapsed = Duration::from_micros(1_234_567);
            let via = capture(LogFormat::Human, "info", || {
                access(rid, func, &method, StatusCode::FORBIDDEN, elapsed, subject)
            });
            let mut direct = Vec::new();
            let now = SystemTime::now();
            human_access_line(
                &mut direct,
                now,
                rid,
                func,
                &method,
                StatusCode::FORBIDDEN,
                elapsed,
                subject,
            );
            let direct = String::from_utf8(direct).unwrap();
            // The timestamps differ by the time between the two; the rest is identical.
            let (ts_via, rest_via) = via.split_once(' ').unwrap();
            let (ts, rest) = direct.split_once(' ').unwrap();
            assert_eq!(rest, rest_via);
            assert_eq!(ts.len(), ts_via.len(), "{ts} vs {ts_via}");
            assert_eq!(&ts[..15], &ts_via[..15], "{ts} vs {ts_via}");
        }
    }

    #[test]
    fn direct_json_access_line_is_what_the_subscriber_writes() {
        let cases: [(&[u8], &str, Method, Option<&str>); 3] = [
            (b"rid-1", "secure-api", Method::POST, Some("key-2026")),
            (b"0a1b2c3d-000000000001", "_unmatched", Method::GET, None),
            (
                b"r",
                "f/\"x\"",
                Method::DELETE,
                Some("ann \"o'neil\"\t\u{e9}\u{1b}[0m\u{7f}\\"),
            ),
        ];
        for (rid, func, method, subject) in cases {
            let elapsed = Duration::from_micros(1_234_567);
            let via = capture(LogFormat::Json, "info", || {
                access(rid, func, &method, StatusCode::FORBIDDEN, elapsed, subject)
            });
            let mut direct = Vec::new();
            json_access_line(
                &mut direct,
                SystemTime::now(),
                rid,
                func,
                &method,
                StatusCode::FORBIDDEN,
                elapsed,
                subject,
            );
            let direct = String::from_utf8(direct).unwrap();
            // The timestamps differ by the time between the two; the rest is identical.
            let ts = |line: &str| line[14..41].to_owned();
            let rest = |line: &str| format!("{}{}", &line[..14], &line[41..]);
            assert_eq!(rest(&direct), rest(&via), "{direct} vs {via}");
            assert_eq!(&ts(&direct)[..15], &ts(&via)[..15], "{direct} vs {via}");
            let parsed: serde_json::Value = serde_json::from_str(direct.trim()).unwrap();
            assert_eq!(parsed["auth_subject"], subject.unwrap_or("-"));
            assert_eq!(parsed["function"], func);
        }
    }

    #[test]
    fn timestamps_match_the_calendar() {
        let at = |secs: u64, micros: u32| {
            let mut out = Vec::new();
            let t = UNIX_EPOCH + Duration::new(secs, micros * 1000);
            human_access_line(
                &mut out,
                t,
                b"r",
                "f",
                &Method::GET,
                StatusCode::OK,
                Duration::ZERO,
                None,
            );
            String::from_utf8(out).unwrap()[..27].to_owned()
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(at(1_796_227_199, 999_999), "2026-12-02T15:59:59.999999Z");
        assert_eq!(at(4_102_444_800, 120), "2100-01-01T00:00:00.000120Z");
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
