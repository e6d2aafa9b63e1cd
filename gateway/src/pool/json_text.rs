//! JSON string text on the worker channel, both ways: where a run of bytes that a JSON
//! string holds as they are ends (`"`, `\` and control bytes end it), and escaping the
//! rest byte for byte as serde_json does, so that the event's bytes do not depend on which
//! writer produced them. Nearly every string on the channel is one plain run, found here a
//! word (eight bytes) at a time and then copied in one piece.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each zero byte of `w`. Exact for the lowest zero byte: the borrow that
/// can mark a non-zero byte only runs upwards from a zero one.
fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(ONES) & !w & HIGHS
}

/// The high bit of each byte of `w` (little-endian) that ends a run; exact for the lowest
/// one, as [`zero_bytes`] is.
fn ends(w: u64, ascii: bool) -> u64 {
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    let quote = zero_bytes(w ^ (ONES * u64::from(b'"')));
    let backslash = zero_bytes(w ^ (ONES * u64::from(b'\\')));
    let mut m = control | quote | backslash;
    if ascii {
        m |= (w & HIGHS) | zero_bytes(w ^ (ONES * 0x7f));
    }
    m
}

fn ends_byte(c: u8, ascii: bool) -> bool {
    c < 0x20 || c == b'"' || c == b'\\' || (ascii && c >= 0x7f)
}

fn word(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().expect("eight bytes"))
}

fn run(b: &[u8], ascii: bool) -> usize {
    if b.len() < 8 {
        return b
            .iter()
            .position(|&c| ends_byte(c, ascii))
            .unwrap_or(b.len());
    }
    let mut at = 0;
    while at + 8 <= b.len() {
        let m = ends(word(&b[at..at + 8]), ascii);
        if m != 0 {
            return at + (m.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    if at == b.len() {
        return at;
    }
    // The last eight bytes, overlapping bytes already found plain (which mark nothing).
    let from = b.len() - 8;
    match ends(word(&b[from..]), ascii) {
        0 => b.len(),
        m => from + (m.trailing_zeros() / 8) as usize,
    }
}

/// How many leading bytes of `b` a JSON string holds unescaped: none is `"`, `\` or a
/// control byte (below 0x20).
pub fn plain_len(b: &[u8]) -> usize {
    run(b, false)
}

/// [`plain_len`] for printable ASCII only: also stops at DEL and at any byte from 0x80.
pub fn printable_len(b: &[u8]) -> usize {
    run(b, true)
}

/// Appends `s` as a JSON string, byte for byte what `serde_json::to_writer` writes.
pub fn string(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    contents(out, s);
    out.push(b'"');
}

/// Appends `s` escaped, without the quotes: strings written in pieces this way read as
/// their concatenation.
pub fn contents(out: &mut Vec<u8>, s: &str) {
    let mut rest = s.as_bytes();
    loop {
        let n = plain_len(rest);
        out.extend_from_slice(&rest[..n]);
        let Some((&c, tail)) = rest[n..].split_first() else {
            return;
        };
        escape(out, c);
        rest = tail;
    }
}

/// serde_json's escapes: the short forms where JSON has one, `\u00xx` (lower-case hex)
/// for the other control bytes.
fn escape(out: &mut Vec<u8>, c: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match c {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 0xf)],
            ]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow_plain(b: &[u8], ascii: bool) -> usize {
        b.iter()
            .position(|&c| ends_byte(c, ascii))
            .unwrap_or(b.len())
    }

    /// Every byte value at every offset of strings of every length up to a few words,
    /// behind plain bytes and behind bytes that themselves end a run.
    #[test]
    fn runs_end_where_a_byte_at_a_time_scan_ends_them() {
        for len in 0..40 {
            for at in 0..len {
                for c in 0..=255u8 {
                    for fill in [b'a', 0xc3, b'~'] {
                        let mut b = vec![fill; len];
                        b[at] = c;
                        if at + 1 < len {
                            b[at + 1] = b'"';
                        }
                        for ascii in [false, true] {
                            assert_eq!(
                                run(&b, ascii),
                                slow_plain(&b, ascii),
                                "{b:?} ascii {ascii}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut every: String = (0u8..0x80).map(char::from).collect();
        every.push_str("é€😀\u{7ff}\u{ffff}\u{10ffff}");
        let mut cases = vec![
            String::new(),
            "plain".into(),
            "a long plain run of text, longer than a word".into(),
            every.clone(),
            every.chars().rev().collect(),
        ];
        for c in every.chars() {
            for pad in [0, 1, 7, 8, 9, 17] {
                let run = "x".repeat(pad);
                cases.push(format!("{run}{c}{run}"));
                cases.push(format!("{c}{c}{run}"));
            }
        }
        for s in cases {
            let mut ours = Vec::new();
            string(&mut ours, &s);
            assert_eq!(ours, serde_json::to_vec(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn pieces_read_as_their_concatenation() {
        let mut out = Vec::new();
        out.push(b'"');
        contents(&mut out, "/a\"b");
        out.push(b'?');
        contents(&mut out, "q=\\\u{1}");
        out.push(b'"');
        assert_eq!(out, serde_json::to_vec("/a\"b?q=\\\u{1}").unwrap());
    }
}
