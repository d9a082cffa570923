//! JSON string escaping, the one guard between untrusted text and a log line.
//!
//! Everything a client controls (paths, headers, user fields) and everything
//! an application logs goes through [`escape_into`]: quotes, backslashes and
//! every control character are escaped, so no value can end a line, open a
//! key or break the object. U+2028 and U+2029 are escaped too, since some
//! JavaScript-based log viewers treat them as line ends.

use std::fmt;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the 8 bytes in `word` is zero (may flag more than one).
const fn has_zero(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word & HIGHS
}

/// Whether any byte of `word` may need escaping: a control character, `"`,
/// `\`, DEL, or a non-ASCII byte (checked one by one: most are fine).
const fn needs_a_look(word: u64) -> bool {
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    (below_space
        | has_zero(word ^ (ONES * b'"' as u64))
        | has_zero(word ^ (ONES * b'\\' as u64))
        | has_zero(word ^ (ONES * 0x7f))
        | (word & HIGHS))
        != 0
}

/// Whether no byte of `bytes` needs escaping, eight at a time, the last
/// few padded with a plain byte: nearly every value (methods, routes, ids,
/// addresses) is plain ASCII, copied whole after one pass.
fn is_plain(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut eight = [0; 8];
        eight.copy_from_slice(word);
        if needs_a_look(u64::from_le_bytes(eight)) {
            return false;
        }
    }
    let rest = words.remainder();
    let mut last = [b'a'; 8];
    last[..rest.len()].copy_from_slice(rest);
    !needs_a_look(u64::from_le_bytes(last))
}

/// Appends `text` to `out` as the inside of a JSON string.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    if is_plain(bytes) {
        out.push_str(text);
        return;
    }
    let mut start = 0;
    let mut index = 0;
    while index < bytes.len() {
        // Eight plain ASCII bytes at a time: the common case.
        if let Some(chunk) = bytes.get(index..index + 8) {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            if !needs_a_look(u64::from_le_bytes(word)) {
                index += 8;
                continue;
            }
        }
        let byte = bytes[index];
        let escape: &str = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f | 0x7f => "",
            // U+2028 and U+2029 (E2 80 A8 / E2 80 A9).
            0xe2 if matches!(bytes.get(index + 1..index + 3), Some([0x80, 0xa8 | 0xa9])) => {
                out.push_str(&text[start..index]);
                out.push_str(if bytes[index + 2] == 0xa8 {
                    "\\u2028"
                } else {
                    "\\u2029"
                });
                index += 3;
                start = index;
                continue;
            }
            _ => {
                index += 1;
                continue;
            }
        };
        out.push_str(&text[start..index]);
        if escape.is_empty() {
            let mut digits = [0u8; 2];
            // Two digits for one byte: the slice always fits.
            let _ = hex::encode_to_slice([byte], &mut digits);
            out.push_str("\\u00");
            out.push(char::from(digits[0]));
            out.push(char::from(digits[1]));
        } else {
            out.push_str(escape);
        }
        index += 1;
        start = index;
    }
    out.push_str(&text[start..]);
}

/// Appends `"text"`.
pub(crate) fn string_into(out: &mut String, text: &str) {
    out.push('"');
    escape_into(out, text);
    out.push('"');
}

/// A [`fmt::Write`] that escapes as it goes, for `Debug` and `Display`
/// values: nothing is formatted into a temporary first.
pub(crate) struct Escaper<'a>(pub(crate) &'a mut String);

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        escape_into(self.0, text);
        Ok(())
    }
}

/// [`Escaper`] that keeps at most `left` bytes of what it is given (cut at
/// a character boundary) and remembers whether it cut.
pub(crate) struct CappedEscaper<'a> {
    pub(crate) out: &'a mut String,
    pub(crate) left: usize,
    pub(crate) cut: bool,
}

impl fmt::Write for CappedEscaper<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if text.len() <= self.left {
            escape_into(self.out, text);
            self.left -= text.len();
            return Ok(());
        }
        let mut end = self.left;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        escape_into(self.out, &text[..end]);
        self.left = 0;
        self.cut = true;
        Ok(())
    }
}

/// Appends an integer.
pub(crate) fn integer_into(out: &mut String, value: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// Appends a float; JSON has no NaN or infinity, so those become strings.
pub(crate) fn float_into(out: &mut String, value: f64) {
    if thousandths_into(out, value) {
        return;
    }
    if value.is_finite() {
        out.push_str(ryu::Buffer::new().format_finite(value));
    } else {
        string_into(out, if value.is_nan() { "NaN" } else { "inf" });
    }
}

/// Below this, a whole number of thousandths has at most 15 significant
/// digits: the decimal is then the shortest text of its float.
const MAX_THOUSANDTHS_VALUE: f64 = 1e12;

/// Writes `value` when it is a whole number of thousandths (a request line's
/// `duration_ms`, whole microseconds) from integers, as `ryu` writes it
/// (`2.0`, `0.25`, `13.042`); `false`, writing nothing, otherwise.
///
/// Such a value is the float nearest to its decimal of at most 15
/// significant digits, and no shorter decimal maps to the same float, so
/// that decimal is the shortest round-trip text `ryu` would find.
fn thousandths_into(out: &mut String, value: f64) -> bool {
    if !(0.0..MAX_THOUSANDTHS_VALUE).contains(&value) || value.is_sign_negative() {
        return false;
    }
    let thousandths = (value * 1000.0).round();
    if thousandths / 1000.0 != value {
        return false;
    }
    let thousandths = thousandths as u64;
    out.push_str(itoa::Buffer::new().format(thousandths / 1000));
    out.push('.');
    let fraction = thousandths % 1000;
    let digits = [fraction / 100, fraction / 10 % 10, fraction % 10];
    let kept = match digits {
        [_, 0, 0] => 1,
        [_, _, 0] => 2,
        _ => 3,
    };
    for digit in &digits[..kept] {
        out.push(char::from(b'0' + *digit as u8));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ryu_text(value: f64) -> String {
        ryu::Buffer::new().format_finite(value).to_owned()
    }

    fn float_text(value: f64) -> String {
        let mut out = String::new();
        float_into(&mut out, value);
        out
    }

    proptest::proptest! {
        #[test]
        fn whole_thousandths_are_written_as_ryu_writes_them(thousandths in 0u64..1_000_000_000_000_000) {
            let value = thousandths as f64 / 1000.0;
            proptest::prop_assert_eq!(float_text(value), ryu_text(value));
        }

        #[test]
        fn any_finite_float_is_written_as_ryu_writes_it(value in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO) {
            proptest::prop_assert_eq!(float_text(value), ryu_text(value));
        }
    }

    #[test]
    fn durations_are_written_as_ryu_writes_them() {
        for value in [
            0.0,
            -0.0,
            0.001,
            0.01,
            0.1,
            1.0,
            2.5,
            13.042,
            1234.5,
            999_999_999_999.999,
            1e12,
            0.0005,
            1.0 / 3.0,
        ] {
            assert_eq!(float_text(value), ryu_text(value), "{value}");
        }
    }

    fn escaped(text: &str) -> String {
        let mut out = String::new();
        string_into(&mut out, text);
        out
    }

    #[test]
    fn plain_text_is_copied() {
        assert_eq!(escaped("GET /api/v1"), "\"GET /api/v1\"");
        assert_eq!(escaped(""), "\"\"");
        assert_eq!(escaped("здравствуй"), "\"здравствуй\"");
    }

    #[test]
    fn everything_that_could_break_a_line_is_escaped() {
        assert_eq!(
            escaped("a\"b\\c\r\nd\te\u{0}f\u{1b}g\u{7f}"),
            r#""a\"b\\c\r\nd\te\u0000f\u001bg\u007f""#
        );
        assert_eq!(escaped("x\u{2028}y\u{2029}"), r#""x\u2028y\u2029""#);
        // The same lead byte in other characters is left alone.
        assert_eq!(escaped("\u{2026}"), "\"\u{2026}\"");
    }

    #[test]
    fn every_char_round_trips_through_a_json_parser() {
        let text: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let line = escaped(&text);
        assert!(!line.contains('\n') && !line.contains('\r'));
        let parsed: String = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(parsed, text);
    }

    #[test]
    fn escapes_are_found_at_every_offset_of_a_word() {
        for special in [
            "\"", "\\", "\n", "\u{0}", "\u{7f}", "\u{1f}", "é", "\u{2028}",
        ] {
            for at in 0..20 {
                let text = format!("{}{special}{}", "a".repeat(at), "b".repeat(20 - at));
                let line = escaped(&text);
                let parsed: String = serde_json::from_str(&line).unwrap_or_default();
                assert_eq!(parsed, text, "{line}");
                assert!(
                    !line
                        .chars()
                        .any(|c| u32::from(c) < 0x20 || c == '\u{7f}' || c == '\u{2028}'),
                    "{special:?} at {at}: {line}"
                );
            }
        }
    }

    #[test]
    fn numbers() {
        let mut out = String::new();
        integer_into(&mut out, -42i64);
        out.push(' ');
        float_into(&mut out, 1.25);
        out.push(' ');
        float_into(&mut out, f64::NAN);
        assert_eq!(out, "-42 1.25 \"NaN\"");
    }
}

#[cfg(test)]
mod properties {
    #![allow(clippy::unwrap_used)]

    use std::fmt::Write as _;

    use proptest::prelude::*;

    use super::{CappedEscaper, string_into};

    proptest! {
        /// Whatever the text, the output is one JSON string that reads back
        /// as the text, on one line.
        #[test]
        fn every_string_round_trips_through_a_json_parser(text in any::<String>()) {
            let mut out = String::new();
            string_into(&mut out, &text);
            prop_assert!(!out.contains('\n') && !out.contains('\r'));
            let parsed: String = serde_json::from_str(&out).unwrap();
            prop_assert_eq!(parsed, text);
        }

        /// A capped value is a prefix of the text, cut at a character
        /// boundary, never longer than the cap.
        #[test]
        fn capped_values_are_prefixes_within_the_cap(text in any::<String>(), cap in 0usize..64) {
            let mut out = String::from("\"");
            let mut capped = CappedEscaper { out: &mut out, left: cap, cut: false };
            capped.write_str(&text).unwrap();
            let cut = capped.cut;
            out.push('"');
            let parsed: String = serde_json::from_str(&out).unwrap();
            prop_assert!(text.starts_with(&parsed));
            prop_assert!(parsed.len() <= cap);
            prop_assert_eq!(cut, parsed.len() < text.len());
        }
    }
}
