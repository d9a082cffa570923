//! RFC 3339 UTC timestamps with microseconds, written without a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Appends `2026-11-25T21:49:36.123456Z`.
pub(crate) fn rfc3339_micros_into(out: &mut String, time: SystemTime) {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let second_of_day = seconds % 86_400;
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    digits(&mut text[0..4], u64::from(year));
    digits(&mut text[5..7], u64::from(month));
    digits(&mut text[8..10], u64::from(day));
    digits(&mut text[11..13], second_of_day / 3600);
    digits(&mut text[14..16], second_of_day % 3600 / 60);
    digits(&mut text[17..19], second_of_day % 60);
    digits(&mut text[20..26], u64::from(since_epoch.subsec_micros()));
    // Only ASCII digits and separators were written.
    out.push_str(std::str::from_utf8(&text).unwrap_or("1970-01-01T00:00:00.000000Z"));
}

/// The UTC date and hour `time` falls in, as `2026-11-25T21`, for file names.
pub(crate) fn hour_stamp(time: SystemTime) -> [u8; 13] {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let mut text = *b"0000-00-00T00";
    digits(&mut text[0..4], u64::from(year));
    digits(&mut text[5..7], u64::from(month));
    digits(&mut text[8..10], u64::from(day));
    digits(&mut text[11..13], seconds % 86_400 / 3600);
    text
}

fn digits(slot: &mut [u8], mut value: u64) {
    for byte in slot.iter_mut().rev() {
        *byte = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Howard Hinnant's `civil_from_days`, for days since 1970-01-01 (no dates
/// before the epoch reach here).
fn civil_from_days(days: u64) -> (u32, u32, u32) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year as u32, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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

    #[test]
    fn every_day_for_two_centuries_follows_the_previous_one() {
        let mut previous = civil_from_days(0);
        for days in 1..73_000 {
            let (year, month, day) = civil_from_days(days);
            let next_day = (previous.0, previous.1, previous.2 + 1);
            let next_month = (previous.0, previous.1 + 1, 1);
            let next_year = (previous.0 + 1, 1, 1);
            assert!(
                [next_day, next_month, next_year].contains(&(year, month, day)),
                "{days}: {previous:?} -> {:?}",
                (year, month, day)
            );
            assert!((1..=31).contains(&day) && (1..=12).contains(&month));
            previous = (year, month, day);
        }
    }
}
