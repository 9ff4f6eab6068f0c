//! tickgate decides, one ticker at a time, when user-defined trading strategies must be
//! re-run, so that strategy workers only execute what actually changed.
//!
//! # Layout
//!
//! Dependencies run one way: `core` ← `store` ← `config` ← `runtime` ← `http` ← `cli` ← the
//! binary; `legacy` beside `cli`.
//!
//! - [`core`]: pure decisions — tickers, timeframes and buckets, the catalog entry, the rule
//!   (full evaluation) and the incremental planner, job ids and results, discovery,
//!   retention. No tokio, no redis, no clock.
//! - [`store`]: the data layer by role (updates, universes, dispatch, settlement, catalog,
//!   maintenance, worker side); the Redis store, one typed wrapper per Lua script, and the
//!   in-memory model it is tested against.
//! - [`config`]: `tickgate.toml`, raw then validated, every problem reported at once; the
//!   collect-every-error reader the simulator's scenario files share.
//! - [`runtime`]: [`runtime::Engine`] and its `step(now_ms)`, driven by
//!   [`runtime::AlertService`] on a clock (or by the simulator on its own time); metrics,
//!   the discovery persister.
//! - [`cli`]: the `tickgate` command line: `run` (the service, its signals and its hold on
//!   the consumer name), `check-config`, `cleanup`, `strategy`, `update`, `stats`, `bucket`.
//! - [`http`]: `/metrics`, `/healthz`, `/readyz` for a running service.
//! - [`limits`]: every default and bound, with why that number.
//! - [`legacy`]: the seed's deprecated `start_alert_loop`/`stop_alert_loop`.
//! - [`redact`]: keeps credentials out of every error and log line.

pub mod cli;
pub mod config;
pub mod core;
pub mod http;
pub mod legacy;
pub mod limits;
pub mod redact;
pub mod runtime;
pub mod store;

pub use crate::core::calendar::{Bucket, BucketError, Timeframe, TimeframeError, Unit};
pub use crate::core::ticker::{InputError, StrategyId, Ticker};
