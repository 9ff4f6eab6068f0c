//! tickgate decides, one ticker at a time, when user-defined trading strategies must be
//! re-run, so that strategy workers only execute what actually changed.
//!
//! Map of the crate (DESIGN.md §4 is the full picture):
//! - [`timeframe`]: timeframes (`5m`, `1d`, `1q`) and the calendar-aligned buckets that
//!   decide "once per bucket" — pure, host-independent (bundled tz database).
//! - [`domain`]: validated inputs — tickers, strategy ids, timestamps.
//! - [`jobs`]: job and result JSON (DESIGN §2.8), job ids that name their claims.
//! - [`store`]: the data layer: a [`store::Store`] trait with the Redis store and the
//!   in-memory model (the oracle), atomic claims, Lua intersection, chunked cleanup.
//! - [`legacy`]: the seed's deprecated `start_alert_loop`/`stop_alert_loop`.
//! - [`redact`]: keeps credentials out of every error and log line.
//!
//! - [`throttle`]: the decision core — pure, synchronous full evaluation (the oracle).
//! - [`planner`]: the incremental tick: the same decisions, work proportional to change.
//! - [`config`]: `tickgate.toml`, every problem reported at once; env overrides.
//! - [`clock`]: the one source of time (system, or manual for tests and the simulator).
//! - [`service`]: `AlertService` — the engine loop (results, then the tick), cleanup,
//!   metrics log and discovery persister, started and stopped as one.
//! - [`metrics`]: every counter of DESIGN §2.9 in one struct.

pub mod clock;
pub mod config;
mod discovery;
pub mod domain;
mod engine;
pub mod jobs;
pub mod legacy;
pub mod metrics;
pub mod planner;
pub mod redact;
pub mod service;
pub mod store;
pub mod throttle;
pub mod timeframe;

pub use domain::{InputError, StrategyId, Ticker};

pub use timeframe::{Bucket, BucketError, Timeframe, TimeframeError, Unit};
