//! A worker's stdout and stderr, captured line by line into the gateway's log with the
//! function name, every secret value of `fn.env.json` replaced by `***` first. Lines are
//! bounded: a handler printing without newlines cannot grow the gateway's memory.

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::logging::{self, Stream};

const MAX_LINE: usize = 16 << 10;

/// Replaces every secret in a line; longest first so a secret containing another is
/// masked whole.
#[derive(Debug, Clone)]
pub struct Masker {
    secrets: Arc<[String]>,
}

impl Masker {
    pub fn new(secrets: &[String]) -> Masker {
        let mut secrets: Vec<String> = secrets.iter().filter(|s| !s.is_empty()).cloned().collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Masker {
            secrets: secrets.into(),
        }
    }

    pub fn mask(&self, line: &str) -> String {
        let mut out = line.to_owned();
        for s in self.secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}

/// Forwards one stream until the worker closes it.
pub async fn forward<R: AsyncRead + Unpin>(
    function: Arc<str>,
    stream: Stream,
    reader: R,
    masker: Masker,
) {
    let mut reader = BufReader::with_capacity(8 << 10, reader);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        // Bounded read: at most MAX_LINE bytes per log line, the rest continues on the next.
        match read_bounded_line(&mut reader, &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        let text = String::from_utf8_lossy(&line);
        logging::function_output(&function, stream, &masker.mask(&text));
    }
}

async fn read_bounded_line<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
    out: &mut Vec<u8>,
) -> std::io::Result<usize> {
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(out.len());
        }
        let room = MAX_LINE - out.len();
        let take = buf.len().min(room);
        match buf[..take].iter().position(|b| *b == b'\n') {
            Some(i) => {
                out.extend_from_slice(&buf[..=i]);
                reader.consume(i + 1);
                return Ok(out.len());
            }
            None => {
                out.extend_from_slice(&buf[..take]);
                reader.consume(take);
                if out.len() >= MAX_LINE {
                    return Ok(out.len());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_secret_longest_first() {
        let m = Masker::new(&["abc".into(), "abcdef".into(), String::new()]);
        assert_eq!(m.mask("x abcdef y abc"), "x *** y ***");
        assert_eq!(m.mask("nothing"), "nothing");
    }

    #[tokio::test]
    async fn long_lines_are_split() {
        let data = vec![b'a'; MAX_LINE + 10];
        let mut r = BufReader::new(data.as_slice());
        let mut line = Vec::new();
        assert_eq!(
            read_bounded_line(&mut r, &mut line).await.unwrap(),
            MAX_LINE
        );
        line.clear();
        assert_eq!(read_bounded_line(&mut r, &mut line).await.unwrap(), 10);
    }
}
