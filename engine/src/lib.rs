//! tickgate decides, one ticker at a time, when user-defined trading strategies must be
//! re-run, so that strategy workers only execute what actually changed.
//!
//! Map of the crate (DESIGN.md §4 is the full picture):
//! - [`timeframe`]: timeframes (`5m`, `1d`, `1q`) and the calendar-aligned buckets that
//!   decide "once per bucket" — pure, host-independent (bundled tz database).
//! - [`redact`]: keeps credentials out of every error and log line.
//!
//! The store (Redis and the in-memory model), the pure decision core and the service loops
//! land with issues 3 and 4.

pub mod redact;
pub mod timeframe;

pub use timeframe::{Bucket, BucketError, Timeframe, TimeframeError, Unit};
