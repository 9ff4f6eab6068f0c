//! Timeframes (`5m`, `1h`, `2d`, …) and the calendar-aligned buckets they cut time into
//! (DESIGN §2.1–2.2).
//!
//! Minutes and hours are plain truncations of UTC epoch milliseconds. Days, weeks, quarters
//! and years follow the civil calendar of the US market (`America/New_York`): a `1d` bucket
//! starts at local midnight and lasts 23, 24 or 25 hours. Multi-unit buckets (`2d`, `3w`, …)
//! are aligned by counting *civil* units since 1970, never by dividing durations — the
//! original Go code divided hours by 24 and so put 00:00–01:00 ET of every summer day into
//! the previous day's bucket.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::ticker::{MAX_TIMESTAMP_MS, excerpt};
use super::time::{DAY_MS, HOUR_MS, MINUTE_MS};

/// The time zone whose civil calendar aligns `d`, `w`, `q` and `y` buckets.
pub const MARKET_TIME_ZONE: &str = "America/New_York";

/// Earliest instant a bucket can be computed for: 1900-01-01T00:00:00Z. Inputs start at
/// 1970, but the bucket of an instant early in 1970 can start in 1969 (the week of
/// 1970-01-01 starts on Monday 1969-12-29), and that start must itself have a bucket.
pub const MIN_BUCKET_INSTANT_MS: i64 = -2_208_988_800_000;

/// Day number of Monday 1970-01-05, the origin of week alignment.
const FIRST_MONDAY_DAY: i64 = 4;

/// Calendar unit of a timeframe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    Minute,
    Hour,
    Day,
    Week,
    Quarter,
    Year,
}

impl Unit {
    /// All units, in increasing length.
    pub const ALL: [Unit; 6] = [
        Unit::Minute,
        Unit::Hour,
        Unit::Day,
        Unit::Week,
        Unit::Quarter,
        Unit::Year,
    ];

    /// The suffix letter, as written in a timeframe.
    pub fn suffix(self) -> char {
        match self {
            Unit::Minute => 'm',
            Unit::Hour => 'h',
            Unit::Day => 'd',
            Unit::Week => 'w',
            Unit::Quarter => 'q',
            Unit::Year => 'y',
        }
    }

    fn from_suffix(c: char) -> Option<Unit> {
        Unit::ALL
            .into_iter()
            .find(|u| u.suffix() == c.to_ascii_lowercase())
    }

    /// Largest N accepted for this unit: about a century. Far beyond any timeframe a
    /// strategy uses, and the cap keeps bucket arithmetic far from any overflow.
    pub fn max_count(self) -> u32 {
        match self {
            Unit::Minute => 100 * 365 * 24 * 60,
            Unit::Hour => 100 * 365 * 24,
            Unit::Day => 100 * 365,
            Unit::Week => 100 * 52,
            Unit::Quarter => 100 * 4,
            Unit::Year => 100,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Unit::Minute => "minutes",
            Unit::Hour => "hours",
            Unit::Day => "days",
            Unit::Week => "weeks",
            Unit::Quarter => "quarters",
            Unit::Year => "years",
        }
    }
}

/// A parsed timeframe: `count` units per bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeframe {
    count: u32,
    unit: Unit,
}

/// Why a timeframe string was rejected. Every variant names the input and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeframeError {
    #[error(
        "timeframe {input:?} does not match ^(\\d+)([mhdwqy]?)$: expected a count and an optional unit m, h, d, w, q or y (no unit means minutes)"
    )]
    Malformed { input: String },
    #[error("timeframe {input:?} has a count of 0; the count must be at least 1")]
    Zero { input: String },
    #[error("timeframe {input:?} is longer than the maximum of {max} {unit}")]
    TooLong {
        input: String,
        max: u32,
        unit: &'static str,
    },
}

/// Why a bucket could not be computed for an instant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BucketError {
    #[error(
        "timestamp {ts_ms} ms is outside the supported range {MIN_BUCKET_INSTANT_MS}..{MAX_TIMESTAMP_MS} ms (1900 to 3000)"
    )]
    OutOfRange { ts_ms: i64 },
    #[error("calendar arithmetic failed for timestamp {ts_ms} ms: {reason}")]
    Calendar { ts_ms: i64, reason: String },
}

/// A bucket `[start_ms, end_ms)` in UTC epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bucket {
    /// First instant of the bucket (inclusive); also the bucket's identity in trigger state.
    pub start_ms: i64,
    /// First instant after the bucket (exclusive); the next bucket starts here.
    pub end_ms: i64,
}

impl Bucket {
    /// Whether `t_ms` lies in `[start_ms, end_ms)`.
    pub fn contains(&self, t_ms: i64) -> bool {
        self.start_ms <= t_ms && t_ms < self.end_ms
    }

    /// Length of the bucket.
    pub fn len_ms(&self) -> i64 {
        self.end_ms - self.start_ms
    }
}

impl FromStr for Timeframe {
    type Err = TimeframeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let malformed = || TimeframeError::Malformed {
            input: excerpt(input),
        };
        let digits_end = input
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(input.len());
        let (digits, rest) = input.split_at(digits_end);
        let mut rest_chars = rest.chars();
        let unit = match (rest_chars.next(), rest_chars.next()) {
            (None, _) => Unit::Minute,
            (Some(c), None) => Unit::from_suffix(c).ok_or_else(malformed)?,
            (Some(_), Some(_)) => return Err(malformed()),
        };
        if digits.is_empty() {
            return Err(malformed());
        }
        let too_long = || TimeframeError::TooLong {
            input: excerpt(input),
            max: unit.max_count(),
            unit: unit.name(),
        };
        // Digits only, so a parse failure can only be overflow.
        let count: u32 = digits.parse().map_err(|_| too_long())?;
        if count == 0 {
            return Err(TimeframeError::Zero {
                input: excerpt(input),
            });
        }
        if count > unit.max_count() {
            return Err(too_long());
        }
        Ok(Timeframe { count, unit })
    }
}

impl fmt::Display for Timeframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.count, self.unit.suffix())
    }
}

fn market_tz() -> &'static TimeZone {
    static TZ: OnceLock<TimeZone> = OnceLock::new();
    TZ.get_or_init(|| {
        // The tzdb is compiled into the binary (jiff's `tzdb-bundle-always`), so this
        // lookup cannot depend on the host and cannot fail at run time.
        TimeZone::get(MARKET_TIME_ZONE).expect("bundled tzdb contains America/New_York")
    })
}

impl Timeframe {
    /// Builds a timeframe from its parts, with the same rules as parsing.
    pub fn new(count: u32, unit: Unit) -> Result<Self, TimeframeError> {
        format!("{count}{}", unit.suffix()).parse()
    }

    /// Number of units per bucket.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The calendar unit.
    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// The bucket `[start_ms, end_ms)` containing `t_ms`.
    pub fn bucket(&self, t_ms: i64) -> Result<Bucket, BucketError> {
        if !(MIN_BUCKET_INSTANT_MS..MAX_TIMESTAMP_MS).contains(&t_ms) {
            return Err(BucketError::OutOfRange { ts_ms: t_ms });
        }
        let n = i64::from(self.count);
        let fixed = |width_ms: i64| {
            let start_ms = t_ms.div_euclid(width_ms) * width_ms;
            Ok(Bucket {
                start_ms,
                end_ms: start_ms + width_ms,
            })
        };
        match self.unit {
            Unit::Minute => fixed(n * MINUTE_MS),
            Unit::Hour => fixed(n * HOUR_MS),
            Unit::Day => {
                let day = local_day(t_ms)?;
                let start_day = day.div_euclid(n) * n;
                civil_bucket(t_ms, start_day, start_day + n)
            }
            Unit::Week => {
                let week = (local_day(t_ms)? - FIRST_MONDAY_DAY).div_euclid(7);
                let start_day = FIRST_MONDAY_DAY + week.div_euclid(n) * n * 7;
                civil_bucket(t_ms, start_day, start_day + n * 7)
            }
            Unit::Quarter => {
                let (year, month, _) = civil_from_days(local_day(t_ms)?);
                let quarter = (year - 1970) * 4 + (month - 1) / 3;
                let first = quarter.div_euclid(n) * n;
                civil_bucket(t_ms, quarter_start_day(first), quarter_start_day(first + n))
            }
            Unit::Year => {
                let (year, _, _) = civil_from_days(local_day(t_ms)?);
                let first = (year - 1970).div_euclid(n) * n;
                civil_bucket(
                    t_ms,
                    days_from_civil(1970 + first, 1, 1),
                    days_from_civil(1970 + first + n, 1, 1),
                )
            }
        }
    }

    /// An upper bound on the length of any bucket this timeframe can produce, tight to
    /// within the one DST hour: `1q` gives 92 days + 1 h, `1y` 366 days + 1 h. Cleanup
    /// retention must never be shorter than this (DESIGN §2.6).
    pub fn max_bucket_ms(&self) -> i64 {
        let n = i64::from(self.count);
        // A run of civil days gains at most one hour net from DST: fall-back and
        // spring-forward alternate in America/New_York.
        let civil = |days: i64| days * DAY_MS + HOUR_MS;
        match self.unit {
            Unit::Minute => n * MINUTE_MS,
            Unit::Hour => n * HOUR_MS,
            Unit::Day => civil(n),
            Unit::Week => civil(7 * n),
            // The Gregorian calendar repeats every 400 years (1600 quarters), so the
            // longest run of n quarters or years is found by trying each start in a cycle.
            Unit::Quarter => civil(
                (0..1600)
                    .map(|q| quarter_start_day(q + n) - quarter_start_day(q))
                    .max()
                    .unwrap_or(0),
            ),
            Unit::Year => civil(
                (1970..1970 + 400)
                    .map(|y| days_from_civil(y + n, 1, 1) - days_from_civil(y, 1, 1))
                    .max()
                    .unwrap_or(0),
            ),
        }
    }
}

/// The civil day (days since 1970-01-01) of `t_ms` on the market's wall clock.
fn local_day(t_ms: i64) -> Result<i64, BucketError> {
    let ts = Timestamp::from_millisecond(t_ms).map_err(|e| calendar(t_ms, e))?;
    let offset_ms = i64::from(market_tz().to_offset(ts).seconds()) * 1000;
    Ok((t_ms + offset_ms).div_euclid(DAY_MS))
}

/// The bucket from local midnight of `start_day` to local midnight of `end_day`.
fn civil_bucket(t_ms: i64, start_day: i64, end_day: i64) -> Result<Bucket, BucketError> {
    Ok(Bucket {
        start_ms: local_midnight_ms(t_ms, start_day)?,
        end_ms: local_midnight_ms(t_ms, end_day)?,
    })
}

fn local_midnight_ms(t_ms: i64, day: i64) -> Result<i64, BucketError> {
    let (year, month, dom) = civil_from_days(day);
    let narrow = |v: i64| i8::try_from(v).map_err(|e| calendar(t_ms, e));
    let year = i16::try_from(year).map_err(|e| calendar(t_ms, e))?;
    let date = jiff::civil::Date::new(year, narrow(month)?, narrow(dom)?)
        .map_err(|e| calendar(t_ms, e))?;
    // Midnight always exists in New York (DST switches at 02:00), so the "compatible"
    // disambiguation never has to choose.
    let midnight = date.to_datetime(jiff::civil::Time::midnight());
    let ts = market_tz()
        .to_ambiguous_timestamp(midnight)
        .compatible()
        .map_err(|e| calendar(t_ms, e))?;
    Ok(ts.as_millisecond())
}

fn calendar(ts_ms: i64, e: impl fmt::Display) -> BucketError {
    BucketError::Calendar {
        ts_ms,
        reason: e.to_string(),
    }
}

fn quarter_start_day(quarter_since_1970: i64) -> i64 {
    days_from_civil(
        1970 + quarter_since_1970.div_euclid(4),
        quarter_since_1970.rem_euclid(4) * 3 + 1,
        1,
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: `(year, month, day)` of a day number.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_day_arithmetic_round_trips() {
        for day in -800_000..800_000 {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2024, 3, 10), 19_792);
    }
}
