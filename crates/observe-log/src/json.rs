//! JSON string escaping, the one guard between untrusted text and a log line.
//!
//! Everything a client controls (paths, headers, user fields) and everything
//! an application logs goes through [`escape_into`]: quotes, backslashes and
//! every control character are escaped, so no value can end a line, open a
//! key or break the object. U+2028 and U+2029 are escaped too, since some
//! JavaScript-based log viewers treat them as line ends.

use std::fmt;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `text` to `out` as the inside of a JSON string.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: &str = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f | 0x7f => "",
            // The first byte of U+2028 and U+2029 (E2 80 A8 / E2 80 A9).
            0xe2 if matches!(bytes.get(index + 1..index + 3), Some([0x80, 0xa8 | 0xa9])) => "",
            _ => continue,
        };
        out.push_str(&text[start..index]);
        if escape.is_empty() {
            if byte == 0xe2 {
                // `index + 3` is a char boundary: the three bytes were matched above.
                let separator = if bytes[index + 2] == 0xa8 {
                    "\\u2028"
                } else {
                    "\\u2029"
                };
                out.push_str(separator);
                start = index + 3;
                continue;
            }
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = index + 1;
    }
    // A U+2028 just handled may have moved `start` past the end of a skipped
    // run; slicing from it is still on a boundary.
    out.push_str(&text[start.min(text.len())..]);
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

/// Appends an integer.
pub(crate) fn integer_into(out: &mut String, value: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// Appends a float; JSON has no NaN or infinity, so those become strings.
pub(crate) fn float_into(out: &mut String, value: f64) {
    if value.is_finite() {
        out.push_str(ryu::Buffer::new().format_finite(value));
    } else {
        string_into(out, if value.is_nan() { "NaN" } else { "inf" });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
