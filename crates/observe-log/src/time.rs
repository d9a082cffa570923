//! RFC 3339 UTC timestamps, by humantime.

use std::{fmt::Write as _, time::SystemTime};

/// Appends `2026-11-25T21:49:36.123456Z`.
pub(crate) fn rfc3339_micros_into(out: &mut String, time: SystemTime) {
    // Writing into a String cannot fail.
    let _ = write!(out, "{}", humantime::format_rfc3339_micros(time));
}

/// The UTC date and hour `time` falls in, as `2026-11-25T21`, for file names.
pub(crate) fn hour_stamp(time: SystemTime) -> [u8; 13] {
    let mut stamp = *b"1970-01-01T00";
    let text = humantime::format_rfc3339_seconds(time).to_string();
    if let Some(hour) = text.as_bytes().get(..13) {
        stamp.copy_from_slice(hour);
    }
    stamp
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn at(seconds: u64, micros: u32) -> String {
        let mut out = String::new();
        rfc3339_micros_into(
            &mut out,
            UNIX_EPOCH + Duration::new(seconds, micros * 1000 + 999),
        );
        out
    }

    #[test]
    fn known_instants() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(at(1_764_107_376, 123_456), "2025-11-25T21:49:36.123456Z");
        assert_eq!(at(4_102_444_799, 999_999), "2099-12-31T23:59:59.999999Z");
        assert_eq!(
            &hour_stamp(UNIX_EPOCH + Duration::from_secs(1_764_107_376)),
            b"2025-11-25T21"
        );
    }
}
