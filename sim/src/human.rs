//! Times and durations as a person reads them: a date in UTC and in New York (where the
//! market's days and the day-and-longer buckets are) beside the epoch milliseconds the
//! logs and Redis hold, and durations in the largest whole units.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// `ms` as `2024-06-04 14:00:00 UTC = 10:00:00 EDT (1717509600000 ms)`; the New York date
/// is repeated when it differs from UTC's.
pub fn when(ms: i64) -> String {
    let Ok(ts) = Timestamp::from_millisecond(ms) else {
        return format!("{ms} ms");
    };
    let utc = ts.to_zoned_datetime(TimeZone::UTC);
    let Ok(tz) = TimeZone::get("America/New_York") else {
        return format!("{} UTC ({ms} ms)", utc.strftime("%Y-%m-%d %H:%M:%S"));
    };
    let et = ts.to_zoned_datetime(tz);
    let et_text = if et.date() == utc.date() {
        et.strftime("%H:%M:%S %Z").to_string()
    } else {
        et.strftime("%Y-%m-%d %H:%M:%S %Z").to_string()
    };
    format!(
        "{} UTC = {et_text} ({ms} ms)",
        utc.strftime("%Y-%m-%d %H:%M:%S")
    )
}

/// A duration in ms as `2 d 3 h`, `10 min`, `30 s`, `250 ms`: at most two units, the
/// largest first.
pub fn duration(ms: i64) -> String {
    const UNITS: [(i64, &str); 5] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "min"),
        (1_000, "s"),
        (1, "ms"),
    ];
    if ms == 0 {
        return "0 ms".to_owned();
    }
    let sign = if ms < 0 { "-" } else { "" };
    let mut rest = ms.unsigned_abs();
    let mut parts = Vec::new();
    for (size, unit) in UNITS {
        let size = size as u64;
        if rest >= size && parts.len() < 2 {
            parts.push(format!("{} {unit}", rest / size));
            rest %= size;
        } else if !parts.is_empty() {
            break;
        }
    }
    format!("{sign}{}", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_read_in_utc_and_new_york_beside_their_ms() {
        assert_eq!(
            when(1_717_509_600_000),
            "2024-06-04 14:00:00 UTC = 10:00:00 EDT (1717509600000 ms)"
        );
        // New Year's Eve in New York is already next year in UTC.
        assert_eq!(
            when(1_735_700_400_000),
            "2025-01-01 03:00:00 UTC = 2024-12-31 22:00:00 EST (1735700400000 ms)"
        );
    }

    #[test]
    fn durations_read_in_their_two_largest_units() {
        assert_eq!(duration(600_000), "10 min");
        assert_eq!(duration(295_200_000), "3 d 10 h");
        assert_eq!(duration(90_061_000), "1 d 1 h");
        assert_eq!(duration(1_500), "1 s 500 ms");
        assert_eq!(duration(30_000), "30 s");
        assert_eq!(duration(0), "0 ms");
        assert_eq!(duration(-60_000), "-1 min");
    }
}
