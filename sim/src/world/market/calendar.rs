//! The US market's civil calendar: America/New_York days, regular hours 09:30–16:00
//! Monday–Friday (no holiday calendar: a holiday trades like any weekday), through `jiff`
//! with its bundled tzdb so DST is exact and the host's zoneinfo never matters.

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use tickgate::core::calendar::MARKET_TIME_ZONE;

use tickgate::core::time::DAY_MS;

/// Regular session open (hour, minute), New York time.
pub(super) const OPEN: (i8, i8) = (9, 30);
/// Regular session close (hour, minute), New York time; options expire then.
pub(super) const CLOSE: (i8, i8) = (16, 0);

/// One New York civil day: `[start_ms, end_ms)`, and its regular session
/// `[open_ms, close_ms)` (empty on weekends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Day {
    /// `None` only for instants outside jiff's range, which no scenario reaches.
    pub date: Option<Date>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub open_ms: i64,
    pub close_ms: i64,
}

impl Day {
    pub fn contains(&self, t_ms: i64) -> bool {
        self.start_ms <= t_ms && t_ms < self.end_ms
    }

    /// Inside the regular session.
    pub fn is_open(&self, t_ms: i64) -> bool {
        self.open_ms <= t_ms && t_ms < self.close_ms
    }
}

pub(super) struct Calendar {
    tz: TimeZone,
}

impl Calendar {
    pub fn new() -> Calendar {
        // The tzdb is compiled in, so `get` cannot fail in practice; should it, New York's
        // standard time keeps the market's shape (hours off by one in summer) without a
        // panic.
        let tz = TimeZone::get(MARKET_TIME_ZONE).unwrap_or(TimeZone::fixed(jiff::tz::offset(-5)));
        Calendar { tz }
    }

    /// The New York date of an instant.
    pub fn date_of(&self, t_ms: i64) -> Option<Date> {
        let ts = Timestamp::from_millisecond(t_ms).ok()?;
        Some(self.tz.to_datetime(ts).date())
    }

    /// UTC ms of `date` at `hour:minute` New York time (DST gaps resolved forwards; market
    /// hours and midnight are never in one).
    pub fn at(&self, date: Date, (hour, minute): (i8, i8)) -> Option<i64> {
        let ts = self.tz.to_timestamp(date.at(hour, minute, 0, 0)).ok()?;
        Some(ts.as_millisecond())
    }

    /// The day containing `t_ms`. Outside jiff's range (never inside a valid scenario) it
    /// falls back to a closed UTC day, so a stray timestamp cannot panic the market.
    pub fn day(&self, t_ms: i64) -> Day {
        self.try_day(t_ms).unwrap_or_else(|| {
            let start_ms = t_ms.div_euclid(DAY_MS).saturating_mul(DAY_MS);
            Day {
                date: None,
                start_ms,
                end_ms: start_ms.saturating_add(DAY_MS),
                open_ms: start_ms,
                close_ms: start_ms,
            }
        })
    }

    fn try_day(&self, t_ms: i64) -> Option<Day> {
        let date = self.date_of(t_ms)?;
        let start_ms = self.at(date, (0, 0))?;
        let end_ms = self.at(date.tomorrow().ok()?, (0, 0))?;
        let (open_ms, close_ms) = if is_weekday(date) {
            (self.at(date, OPEN)?, self.at(date, CLOSE)?)
        } else {
            (start_ms, start_ms)
        };
        Some(Day {
            date: Some(date),
            start_ms,
            end_ms,
            open_ms,
            close_ms,
        })
    }
}

pub(super) fn is_weekday(date: Date) -> bool {
    !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

pub(super) fn add_days(date: Date, days: i64) -> Option<Date> {
    date.checked_add(jiff::Span::new().days(days)).ok()
}

/// `YYMMDD`, as in OCC option symbols.
pub(super) fn yymmdd(date: Date) -> String {
    format!(
        "{:02}{:02}{:02}",
        i32::from(date.year()).rem_euclid(100),
        date.month(),
        date.day()
    )
}
