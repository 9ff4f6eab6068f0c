//! The pure core: no tokio, no redis, no clock. Everything here is a function of its
//! arguments, so the runtime, the simulator and the tests run the very same decisions.
//!
//! - [`time`]: time constants in milliseconds.
//! - [`ticker`]: validated inputs — tickers, strategy ids, timestamp bounds.
//! - [`calendar`]: timeframes and the calendar-aligned buckets they cut time into.
//! - [`catalog`]: the catalog entry JSON (both ways), [`catalog::Strategy`], its universe.
//! - [`rule`]: the full evaluation of one strategy at one instant (DESIGN §2.3–2.4).
//! - [`planner`]: the incremental tick — the rule's decisions, with work proportional to
//!   what changed.
//! - [`jobs`]: job ids, the job and result JSON.
//! - [`ledger`]: the claims one instance made in open buckets, written back after Redis
//!   loses them.
//! - [`discovery`]: what a worker's `used_symbols` does to a universe.
//! - [`retention`]: the effective retention of update times.

pub mod calendar;
pub mod catalog;
pub mod discovery;
pub mod jobs;
pub mod ledger;
pub mod planner;
pub mod retention;
pub mod rule;
pub mod ticker;
pub mod time;
