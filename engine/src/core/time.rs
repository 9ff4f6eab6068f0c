//! Time constants, in milliseconds (units last in names). The one place they are written:
//! the engine, the simulator, the tests and the benches all use these.

/// One second.
pub const SECOND_MS: i64 = 1_000;
/// One minute.
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
/// One hour.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// One 24-hour day (a civil day in New York lasts 23, 24 or 25 hours: see `calendar`).
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// Seven 24-hour days.
pub const WEEK_MS: i64 = 7 * DAY_MS;
