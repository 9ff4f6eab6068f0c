//! Output for people: instants in New York time beside their epoch ms, grouped digits,
//! durations in the largest exact unit.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::config::human_ms;
use crate::core::calendar::MARKET_TIME_ZONE;

/// `2024-07-15 00:30:00 EDT` for epoch ms (milliseconds shown when not zero), or why it
/// cannot be shown.
pub fn et(ms: i64) -> String {
    let Ok(ts) = Timestamp::from_millisecond(ms) else {
        return "(not a representable instant)".to_owned();
    };
    let fraction = match ms.rem_euclid(1_000) {
        0 => String::new(),
        n => format!(".{n:03}"),
    };
    match TimeZone::get(MARKET_TIME_ZONE) {
        Ok(tz) => {
            let zoned = ts.to_zoned_datetime(tz);
            let base = zoned.strftime("%Y-%m-%d %H:%M:%S");
            format!("{base}{fraction} {}", zoned.strftime("%Z"))
        }
        Err(_) => format!("{}{fraction} UTC", ts.strftime("%Y-%m-%d %H:%M:%S")),
    }
}

/// `1721017800000 (2024-07-15 00:30:00 EDT)`.
pub fn instant(ms: i64) -> String {
    format!("{ms} ({})", et(ms))
}

/// `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `90 days (7776000000 ms)`.
pub fn duration(ms: i64) -> String {
    format!("{} ({ms} ms)", human_ms(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_read_in_new_york_time() {
        assert_eq!(et(1_721_017_800_000), "2024-07-15 00:30:00 EDT");
        assert_eq!(et(1_704_085_200_250), "2024-01-01 00:00:00.250 EST");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(999), "999");
        assert_eq!(duration(90 * 86_400_000), "90 days (7776000000 ms)");
    }
}
