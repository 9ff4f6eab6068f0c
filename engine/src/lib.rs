//! tickgate decides, one ticker at a time, when user-defined trading strategies must be
//! re-run, so that strategy workers only execute what actually changed.
//!
//! Map of the crate (DESIGN.md §4 is the full picture):
//! - [`timeframe`]: timeframes (`5m`, `1d`, `1q`) and the calendar-aligned buckets that
//!   decide "once per bucket" — pure, host-independent (bundled tz database).
//! - [`domain`]: validated inputs — tickers, strategy ids, timestamps.
//! - [`store`]: the data layer: a [`store::Store`] trait with the Redis store and the
//!   in-memory model (the oracle), atomic claims, Lua intersection, chunked cleanup.
//! - [`redact`]: keeps credentials out of every error and log line.
//!
//! The pure decision core and the service loops land with issue 4.

pub mod domain;
pub mod redact;
pub mod store;
pub mod timeframe;

pub use domain::{InputError, StrategyId, Ticker};

pub use timeframe::{Bucket, BucketError, Timeframe, TimeframeError, Unit};
