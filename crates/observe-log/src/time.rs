//! RFC 3339 UTC timestamps, by humantime.

use std::{
    cell::Cell,
    fmt::Write as _,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use arrayvec::ArrayString;

/// `2026-11-25T21:49:36.`: the part of a timestamp that a second's lines share.
type SecondPrefix = ArrayString<20>;

thread_local! {
    /// The last second this thread formatted, and its prefix: most lines
    /// fall in the same second as the one before, so humantime (through
    /// `core::fmt`) runs once a second, not once a line.
    static LAST_SECOND: Cell<Option<(u64, SecondPrefix)>> = const { Cell::new(None) };
}

/// Appends `2026-11-25T21:49:36.123456Z`.
pub(crate) fn rfc3339_micros_into(out: &mut String, time: SystemTime) {
    let Ok(since_epoch) = time.duration_since(UNIX_EPOCH) else {
        // Before 1970: humantime's text, whatever it is.
        let _ = write!(out, "{}", humantime::format_rfc3339_micros(time));
        return;
    };
    let second = since_epoch.as_secs();
    let cached = LAST_SECOND
        .try_with(Cell::get)
        .ok()
        .flatten()
        .filter(|(cached, _)| *cached == second);
    let prefix = match cached {
        Some((_, prefix)) => prefix,
        None => {
            let Some(prefix) = second_prefix(second) else {
                // Past the year 9999: humantime's text, whatever it is.
                let _ = write!(out, "{}", humantime::format_rfc3339_micros(time));
                return;
            };
            let _ = LAST_SECOND.try_with(|last| last.set(Some((second, prefix))));
            prefix
        }
    };
    out.push_str(&prefix);
    let mut digits = itoa::Buffer::new();
    let micros = digits.format(since_epoch.subsec_micros());
    // Six digits, zero-padded.
    for _ in micros.len()..6 {
        out.push('0');
    }
    out.push_str(micros);
    out.push('Z');
}

/// `2026-11-25T21:49:36.` for `second` seconds after the epoch.
/// `None` when the text does not fit (a year past 9999).
fn second_prefix(second: u64) -> Option<SecondPrefix> {
    let mut prefix = SecondPrefix::new();
    // `2026-11-25T21:49:36Z`: the `Z` gives way to the dot.
    write!(
        prefix,
        "{}",
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(second))
    )
    .ok()?;
    prefix.pop();
    prefix.push('.');
    Some(prefix)
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
    fn lines_in_one_second_share_its_prefix_and_the_next_second_has_its_own() {
        // The same second twice (the cached prefix), then the next one, then
        // an earlier one again: each as humantime writes it.
        for (seconds, micros) in [
            (1_764_107_376, 5),
            (1_764_107_376, 999_999),
            (1_764_107_377, 0),
            (1_764_107_376, 10),
            (4_102_444_799, 999_999),
        ] {
            let time = UNIX_EPOCH + Duration::new(seconds, micros * 1000);
            assert_eq!(
                at(seconds, micros),
                humantime::format_rfc3339_micros(time).to_string()
            );
        }
    }

    #[test]
    fn a_year_past_9999_does_not_panic_or_reach_the_cache() {
        // humantime cannot write it; the line gets what it wrote, and the
        // next line of an ordinary second is whole.
        let _ = at(253_402_300_800, 42);
        assert_eq!(at(0, 7), "1970-01-01T00:00:00.000007Z");
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
