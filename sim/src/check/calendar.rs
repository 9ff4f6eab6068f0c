//! The checker's own timeframes and buckets (DESIGN §2.1–2.2), written against `jiff`
//! directly: nothing here calls tickgate's calendar, so a mistake there cannot hide
//! itself by being repeated here.
//!
//! - `Nm`, `Nh`: UTC epoch milliseconds truncated to a multiple of N minutes or hours;
//! - `Nd`: civil days in America/New_York counted from 1970-01-01, grouped by N;
//! - `Nw`: weeks counted from Monday 1970-01-05, grouped by N;
//! - `Nq`: quarters counted from 1970 Q1, grouped by N;
//! - `Ny`: years counted from 1970, grouped by N.
//!
//! Civil units start at local midnight of their first day, so a day is 23, 24 or 25 hours
//! long.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

/// The market's time zone, named here rather than imported: the checker's calendar is its
/// own.
const MARKET_TZ: &str = "America/New_York";

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

/// Monday 1970-01-05: where weeks are counted from.
const FIRST_MONDAY: Date = Date::constant(1970, 1, 5);
/// 1970-01-01: where days, quarters and years are counted from.
const EPOCH_DATE: Date = Date::constant(1970, 1, 1);

/// Largest count the checker accepts for any unit: a thousand years of days is far beyond
/// any strategy, and keeps every product below far from overflow. A larger count is an
/// invalid timeframe for the checker (the engine's own cap is lower, so the two agree on
/// every timeframe a scenario can hold).
const MAX_COUNT: i64 = 1_000 * 366 * 24 * 60;

/// A calendar unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    Minute,
    Hour,
    Day,
    Week,
    Quarter,
    Year,
}

/// `count` units per bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frame {
    pub count: i64,
    pub unit: Unit,
}

/// A bucket `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bucket {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Frame {
    /// `^(\d+)([mhdwqy]?)$`, case-insensitive, `N >= 1`; no unit means minutes. `None` for
    /// anything else.
    pub fn parse(text: &str) -> Option<Frame> {
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let (number, suffix) = text.split_at(digits);
        let unit = match suffix.to_ascii_lowercase().as_str() {
            "" | "m" => Unit::Minute,
            "h" => Unit::Hour,
            "d" => Unit::Day,
            "w" => Unit::Week,
            "q" => Unit::Quarter,
            "y" => Unit::Year,
            _ => return None,
        };
        let count: i64 = number.parse().ok()?;
        (1..=MAX_COUNT)
            .contains(&count)
            .then_some(Frame { count, unit })
    }

    /// The bucket containing `t_ms`; `None` outside the calendar's range.
    pub fn bucket(&self, t_ms: i64) -> Option<Bucket> {
        let n = self.count;
        match self.unit {
            Unit::Minute => fixed(t_ms, n.checked_mul(MINUTE_MS)?),
            Unit::Hour => fixed(t_ms, n.checked_mul(HOUR_MS)?),
            Unit::Day => {
                let index = days_between(EPOCH_DATE, local_date(t_ms)?)?;
                let first = index.div_euclid(n) * n;
                civil(
                    add_days(EPOCH_DATE, first)?,
                    add_days(EPOCH_DATE, first + n)?,
                )
            }
            Unit::Week => {
                let week = days_between(FIRST_MONDAY, local_date(t_ms)?)?.div_euclid(7);
                let first = week.div_euclid(n) * n;
                let start = add_days(FIRST_MONDAY, first * 7)?;
                civil(start, add_days(FIRST_MONDAY, (first + n) * 7)?)
            }
            Unit::Quarter => {
                let date = local_date(t_ms)?;
                let quarter = (i64::from(date.year()) - 1970) * 4 + i64::from(date.month() - 1) / 3;
                let first = quarter.div_euclid(n) * n;
                civil(quarter_start(first)?, quarter_start(first + n)?)
            }
            Unit::Year => {
                let year = i64::from(local_date(t_ms)?.year()) - 1970;
                let first = year.div_euclid(n) * n;
                civil(year_start(first)?, year_start(first + n)?)
            }
        }
    }
}

fn tz() -> &'static TimeZone {
    static TZ: std::sync::OnceLock<TimeZone> = std::sync::OnceLock::new();
    // The tzdb is bundled (jiff's `tzdb-bundle-always`): the lookup cannot fail at run
    // time. Should it ever, UTC would put civil buckets 4–5 hours off, and the differential
    // test against the engine's calendar would say so.
    TZ.get_or_init(|| TimeZone::get(MARKET_TZ).unwrap_or(TimeZone::UTC))
}

fn fixed(t_ms: i64, width_ms: i64) -> Option<Bucket> {
    let start_ms = t_ms.div_euclid(width_ms).checked_mul(width_ms)?;
    Some(Bucket {
        start_ms,
        end_ms: start_ms.checked_add(width_ms)?,
    })
}

fn local_date(t_ms: i64) -> Option<Date> {
    let ts = Timestamp::from_millisecond(t_ms).ok()?;
    Some(tz().to_datetime(ts).date())
}

fn days_between(from: Date, to: Date) -> Option<i64> {
    Some(i64::from(to.since(from).ok()?.get_days()))
}

fn add_days(date: Date, days: i64) -> Option<Date> {
    date.checked_add(Span::new().try_days(days).ok()?).ok()
}

fn quarter_start(quarter: i64) -> Option<Date> {
    let year = 1970 + quarter.div_euclid(4);
    let month = quarter.rem_euclid(4) * 3 + 1;
    Date::new(i16::try_from(year).ok()?, month as i8, 1).ok()
}

fn year_start(year: i64) -> Option<Date> {
    Date::new(i16::try_from(1970 + year).ok()?, 1, 1).ok()
}

/// `[midnight of start, midnight of end)` in the market's time zone.
fn civil(start: Date, end: Date) -> Option<Bucket> {
    let midnight = |d: Date| -> Option<i64> {
        let ts = tz().to_timestamp(d.at(0, 0, 0, 0)).ok()?;
        Some(ts.as_millisecond())
    };
    Some(Bucket {
        start_ms: midnight(start)?,
        end_ms: midnight(end)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        rfc3339.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn bucket(tf: &str, at: &str) -> (i64, i64) {
        let b = Frame::parse(tf).unwrap().bucket(ms(at)).unwrap();
        (b.start_ms, b.end_ms)
    }

    #[test]
    fn timeframes_parse_as_design_says() {
        assert_eq!(
            Frame::parse("5"),
            Some(Frame {
                count: 5,
                unit: Unit::Minute
            })
        );
        assert_eq!(Frame::parse("2D").map(|f| f.unit), Some(Unit::Day));
        for bad in ["0m", "5x", "0d", "1.5h", "m5", "-1h", "", "1mm", " 1m"] {
            assert_eq!(Frame::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn buckets_by_hand() {
        // Minutes and hours: UTC truncation.
        let at = "2024-06-04T14:07:59.999Z";
        assert_eq!(
            bucket("5m", at),
            (ms("2024-06-04T14:05:00Z"), ms("2024-06-04T14:10:00Z"))
        );
        assert_eq!(
            bucket("4h", at),
            (ms("2024-06-04T12:00:00Z"), ms("2024-06-04T16:00:00Z"))
        );
        // The fall-back day lasts 25 hours; the first hour after midnight is that day's.
        assert_eq!(
            bucket("1d", "2024-11-03T04:30:00Z"),
            (ms("2024-11-03T04:00:00Z"), ms("2024-11-04T05:00:00Z"))
        );
        // 2d: 2024-11-03 is day 20,030 since 1970-01-01, an even index.
        assert_eq!(
            bucket("2d", "2024-11-04T12:00:00Z"),
            (ms("2024-11-03T04:00:00Z"), ms("2024-11-05T05:00:00Z"))
        );
        // Weeks start on Monday at midnight ET; New Year's Eve 2024 is a Tuesday.
        assert_eq!(
            bucket("1w", "2024-12-31T23:00:00-05:00"),
            (ms("2024-12-30T05:00:00Z"), ms("2025-01-06T05:00:00Z"))
        );
        // Quarters and years turn at midnight ET, five hours after UTC in winter.
        assert_eq!(
            bucket("1q", "2025-01-01T04:59:59Z"),
            (ms("2024-10-01T04:00:00Z"), ms("2025-01-01T05:00:00Z"))
        );
        assert_eq!(
            bucket("1y", "2025-01-01T05:00:00Z"),
            (ms("2025-01-01T05:00:00Z"), ms("2026-01-01T05:00:00Z"))
        );
        // 2y from 1970: 2024 and 2025 together.
        assert_eq!(
            bucket("2y", "2025-06-01T00:00:00Z"),
            (ms("2024-01-01T05:00:00Z"), ms("2026-01-01T05:00:00Z"))
        );
        // 3q from 1970 Q1: quarter 219 (2024 Q4) is in the group starting at 219.
        assert_eq!(
            bucket("3q", "2024-12-01T00:00:00Z"),
            (ms("2024-10-01T04:00:00Z"), ms("2025-07-01T04:00:00Z"))
        );
    }

    /// A differential test, not a dependency: the engine's calendar and this one were
    /// written apart and must agree on every instant tried.
    #[test]
    fn agrees_with_the_engine_on_many_instants() {
        let frames = [
            "1m", "7m", "1h", "5h", "1d", "2d", "3d", "1w", "2w", "1q", "2q", "1y", "3y",
        ];
        let mut t = ms("2023-12-30T00:00:00Z");
        let end = ms("2026-01-03T00:00:00Z");
        while t < end {
            for tf in frames {
                let ours = Frame::parse(tf).unwrap().bucket(t).unwrap();
                let engine: tickgate::Timeframe = tf.parse().unwrap();
                let theirs = engine.bucket(t).unwrap();
                assert_eq!(
                    (ours.start_ms, ours.end_ms),
                    (theirs.start_ms, theirs.end_ms),
                    "{tf} at {t}"
                );
            }
            // An odd step, so instants land at every offset of the hour and day.
            t += 97 * MINUTE_MS + 13_000;
        }
    }
}
