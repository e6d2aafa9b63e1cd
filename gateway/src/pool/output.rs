//! A worker's stdout and stderr, captured into the gateway's log with the function name,
//! every secret value of `fn.env.json` replaced by `***` first.
//!
//! Bytes flow: pipe → `pending` (the unmasked look-behind) → [`Masker::mask_stream`] →
//! masked bytes → [`LineCut`] → one log record per line. Masking runs over the byte
//! stream, not per line, so a multi-line secret (a PEM key) or one split across two
//! reads is still whole when matched; only the last `longest secret - 1` bytes are held
//! back, and only until more output arrives or the stream is quiet for [`QUIET`]. Lines
//! are cut at [`MAX_LINE`] after masking, so a secret across the cut is masked too.
//!
//! Each secret is matched in the forms a handler's printing gives it: as is, without its
//! trailing newline, JSON-escaped (also ASCII-only, as Python's `json.dumps`), escaped
//! as a Python `repr` / Node `util.inspect` string body (any of its quotes), and each line of
//! a multi-line secret of at least [`MIN_LINE_PART`] bytes in those forms. All forms are
//! compiled into one Aho-Corasick automaton per pool, so the cost per output byte is one
//! automaton step whatever the number of secrets.

use std::sync::Arc;
use std::time::Duration;

use aho_corasick::{AhoCorasick, MatchKind};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::logging::{self, Stream};

const MAX_LINE: usize = 16 << 10;
/// Lines of a multi-line secret shorter than this are too common to mask on their own.
pub const MIN_LINE_PART: usize = 8;
/// How long a quiet stream's held-back bytes wait for more before they are passed on.
const QUIET: Duration = Duration::from_millis(50);
const READ_CHUNK: usize = 8 << 10;
const MASK: &[u8] = b"***";

/// Every form of every secret, compiled once per pool; cheap to clone.
#[derive(Debug, Clone)]
pub struct Masker {
    compiled: Option<Arc<Compiled>>,
}

#[derive(Debug)]
struct Compiled {
    automaton: AhoCorasick,
    longest: usize,
}

impl Masker {
    pub fn new(secrets: &[String]) -> Masker {
        let mut patterns: Vec<Vec<u8>> = secrets
            .iter()
            .filter(|s| !s.is_empty())
            .flat_map(|s| forms(s))
            .filter(|p| !p.is_empty())
            .collect();
        patterns.sort();
        patterns.dedup();
        let longest = patterns.iter().map(Vec::len).max().unwrap_or(0);
        let compiled = (!patterns.is_empty())
            .then(|| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&patterns)
                    .ok()
            })
            .flatten()
            .map(|automaton| Arc::new(Compiled { automaton, longest }));
        Masker { compiled }
    }

    /// `text` with every form of every secret replaced (the whole text at once).
    pub fn mask(&self, text: &str) -> String {
        let mut out = Vec::with_capacity(text.len());
        self.mask_all(text.as_bytes(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn mask_all(&self, bytes: &[u8], out: &mut Vec<u8>) {
        let used = self.mask_upto(bytes, bytes.len(), out);
        out.extend_from_slice(&bytes[used..]);
    }

    /// Masks the part of `pending` that no later byte can change and appends it to `out`;
    /// returns how many bytes of `pending` it consumed (the rest is the look-behind).
    pub fn mask_stream(&self, pending: &[u8], out: &mut Vec<u8>) -> usize {
        let hold = self.compiled.as_ref().map_or(0, |c| c.longest - 1);
        self.mask_upto(pending, pending.len().saturating_sub(hold), out)
    }

    /// Masks every match starting before `safe` (each is complete: no form is longer than
    /// the look-behind) and copies the plain bytes up to `safe` or the last match's end.
    fn mask_upto(&self, bytes: &[u8], safe: usize, out: &mut Vec<u8>) -> usize {
        let Some(c) = &self.compiled else {
            out.extend_from_slice(&bytes[..safe]);
            return safe;
        };
        let mut last = 0;
        for m in c.automaton.find_iter(bytes) {
            if m.start() >= safe {
                break;
            }
            out.extend_from_slice(&bytes[last..m.start()]);
            out.extend_from_slice(MASK);
            last = m.end();
        }
        let end = last.max(safe);
        out.extend_from_slice(&bytes[last..end]);
        end
    }
}

/// The forms in which `secret` may reach a worker's output (see the module doc).
fn forms(secret: &str) -> Vec<Vec<u8>> {
    let mut bases = vec![secret];
    let trimmed = secret.trim_end_matches(['\n', '\r']);
    if trimmed != secret {
        bases.push(trimmed);
    }
    if secret.contains('\n') {
        bases.extend(
            secret
                .split('\n')
                .map(|l| l.trim_end_matches('\r'))
                .filter(|l| l.len() >= MIN_LINE_PART),
        );
    }
    let mut out = Vec::new();
    for b in bases {
        out.push(b.as_bytes().to_vec());
        out.push(json_escaped(b, false));
        out.push(json_escaped(b, true));
        out.push(repr_escaped(b, '\''));
        out.push(repr_escaped(b, '"'));
        // Node quotes a string holding both quote kinds with backticks.
        out.push(repr_escaped(b, '`'));
    }
    out
}

/// The body of a JSON string (no quotes); `ascii_only` escapes non-ASCII as `\uXXXX`.
fn json_escaped(s: &str, ascii_only: bool) -> Vec<u8> {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    let body = &quoted[1..quoted.len().saturating_sub(1).max(1)];
    if !ascii_only {
        return body.as_bytes().to_vec();
    }
    let mut out = String::with_capacity(body.len());
    for ch in body.chars() {
        if ch.is_ascii() {
            out.push(ch);
        } else {
            let mut units = [0u16; 2];
            for u in ch.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out.into_bytes()
}

/// The body of a Python `repr` (and Node `util.inspect`) string quoted with `quote`.
fn repr_escaped(s: &str, quote: char) -> Vec<u8> {
    let mut out = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.into_bytes()
}

/// Masked bytes → lines of at most [`MAX_LINE`] bytes, each handed to `sink`.
#[derive(Default)]
struct LineCut {
    line: Vec<u8>,
}

impl LineCut {
    fn push(&mut self, mut masked: &[u8], sink: &mut impl FnMut(&[u8])) {
        while !masked.is_empty() {
            let room = MAX_LINE - self.line.len();
            let take = masked.len().min(room);
            match masked[..take].iter().position(|b| *b == b'\n') {
                Some(i) => {
                    self.line.extend_from_slice(&masked[..i]);
                    masked = &masked[i + 1..];
                    self.emit(sink);
                }
                None => {
                    self.line.extend_from_slice(&masked[..take]);
                    masked = &masked[take..];
                    if self.line.len() >= MAX_LINE {
                        self.emit(sink);
                    }
                }
            }
        }
    }

    fn emit(&mut self, sink: &mut impl FnMut(&[u8])) {
        while self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        sink(&self.line);
        self.line.clear();
    }

    fn finish(&mut self, sink: &mut impl FnMut(&[u8])) {
        if !self.line.is_empty() {
            self.emit(sink);
        }
    }
}

/// Forwards one stream until the worker closes it.
pub async fn forward<R: AsyncRead + Unpin>(
    function: Arc<str>,
    stream: Stream,
    mut reader: R,
    masker: Masker,
) {
    let mut lines = LineCut::default();
    let mut sink = |line: &[u8]| {
        logging::function_output(&function, stream, &String::from_utf8_lossy(line));
    };
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut pending: Vec<u8> = Vec::new();
    let mut masked: Vec<u8> = Vec::new();
    loop {
        let read = if pending.is_empty() {
            Ok(reader.read(&mut chunk).await)
        } else {
            tokio::time::timeout(QUIET, reader.read(&mut chunk)).await
        };
        masked.clear();
        match read {
            // Quiet: nothing more is coming for now, so the look-behind is complete.
            Err(_elapsed) => {
                masker.mask_all(&pending, &mut masked);
                pending.clear();
            }
            Ok(Ok(0)) | Ok(Err(_)) => {
                masker.mask_all(&pending, &mut masked);
                lines.push(&masked, &mut sink);
                lines.finish(&mut sink);
                return;
            }
            Ok(Ok(n)) => {
                pending.extend_from_slice(&chunk[..n]);
                let used = masker.mask_stream(&pending, &mut masked);
                pending.drain(..used);
            }
        }
        lines.push(&masked, &mut sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `output` through the stream masker in chunks of `step` bytes (as reads would
    /// deliver it), then the end of the stream; returns the lines logged.
    fn through(masker: &Masker, output: &[u8], step: usize) -> Vec<String> {
        let mut logged = Vec::new();
        let mut sink = |l: &[u8]| logged.push(String::from_utf8_lossy(l).into_owned());
        let (mut lines, mut pending, mut masked) = (LineCut::default(), Vec::new(), Vec::new());
        for chunk in output.chunks(step) {
            pending.extend_from_slice(chunk);
            masked.clear();
            let used = masker.mask_stream(&pending, &mut masked);
            pending.drain(..used);
            lines.push(&masked, &mut sink);
        }
        masked.clear();
        masker.mask_all(&pending, &mut masked);
        lines.push(&masked, &mut sink);
        lines.finish(&mut sink);
        logged
    }

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----\n";

    #[test]
    fn masks_every_secret_longest_first() {
        let m = Masker::new(&["abc".into(), "abcdef".into(), String::new()]);
        assert_eq!(m.mask("x abcdef y abc"), "x *** y ***");
        assert_eq!(m.mask("nothing"), "nothing");
    }

    #[test]
    fn a_secret_split_across_reads_is_masked_at_every_split() {
        let m = Masker::new(&["s3cr3t-value-1234".into()]);
        let out = b"before s3cr3t-value-1234 after\nnext s3cr3t-value-1234\n";
        for step in 1..out.len() {
            assert_eq!(
                through(&m, out, step),
                ["before *** after", "next ***"],
                "step {step}"
            );
        }
    }

    #[test]
    fn a_multi_line_secret_is_masked_whole_and_line_by_line() {
        let m = Masker::new(&[PEM.into()]);
        let whole = format!("key: {PEM}done\n");
        assert_eq!(through(&m, whole.as_bytes(), 7), ["key: ***done"]);
        // Printed line by line (or in part): each identifying line on its own.
        let partial = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n";
        assert_eq!(through(&m, partial.as_bytes(), 5), ["***", "***"]);
    }

    #[test]
    fn encoded_forms_are_masked() {
        let secret = "demo:pa\"ss\\wo'rd\n";
        let m = Masker::new(&[secret.into()]);
        let cases = [
            "demo:pa\"ss\\wo'rd".to_owned(),
            serde_json::to_string(secret).unwrap(),
            serde_json::to_string(secret.trim_end()).unwrap(),
            "{'U': 'demo:pa\"ss\\\\wo\\'rd\\n'}".to_owned(),
            "{'U': \"demo:pa\\\"ss\\\\wo'rd\\n\"}".to_owned(),
        ];
        for printed in cases {
            let masked = m.mask(&printed);
            assert!(masked.contains("***"), "{printed} -> {masked}");
            assert!(
                !masked.contains("wo'rd") && !masked.contains("wo\\'rd"),
                "{printed} -> {masked}"
            );
        }
        let unicode = Masker::new(&["pässwörd-1".into()]);
        assert_eq!(
            unicode.mask(r#"{"p": "p\u00e4ssw\u00f6rd-1"}"#),
            r#"{"p": "***"}"#
        );
    }

    #[test]
    fn long_lines_are_cut_after_masking() {
        let m = Masker::new(&["the-secret-across-the-cut".into()]);
        let mut out = vec![b'a'; MAX_LINE - 10];
        out.extend_from_slice(b"the-secret-across-the-cut z\n");
        let lines = through(&m, &out, 4096);
        assert_eq!(lines.len(), 1, "masked, the line fits");
        assert!(lines[0].ends_with("a*** z"));
        let plain = vec![b'a'; MAX_LINE + 10];
        let lines = through(&m, &plain, 4096);
        assert_eq!(
            lines.iter().map(String::len).collect::<Vec<_>>(),
            [MAX_LINE, 10]
        );
    }

    #[test]
    fn short_lines_of_a_multi_line_secret_are_not_masked_alone() {
        let m = Masker::new(&["ok\nlong-enough-line\n".into()]);
        assert_eq!(m.mask("ok then"), "ok then");
        assert_eq!(m.mask("x long-enough-line"), "x ***");
    }
}
