//! `tickgate-sim`: the harness that proves tickgate right and fast against a real Redis.
//!
//! Map of the crate:
//! - [`provision`]: a real Redis for tests, benches and simulations — `REDIS_URL`, a
//!   container (`testcontainers`), or a local `redis-server` process — chosen by
//!   `TICKGATE_REDIS`, cleaned up on drop.
//! - [`workload`]: the reference workload W-100k (DESIGN §6) and smaller variants,
//!   generated deterministically from a seed; writes universes and updates to Redis.
//! - [`oracle`]: full evaluation of DESIGN §2.3–2.4 every tick — what the engine must
//!   dispatch — and what the baselines would cost on the same world.
//! - [`run`]: the simulation loop — the real engine on a manual clock, a market, workers,
//!   faults — checked against the oracle every tick.
//! - [`scenario`]: scenario files (TOML): population, activity, strategies, workers,
//!   cleanup, engine instances and faults, every problem reported at once.
//! - [`market`]: the synthetic market of a scenario and seed — US market hours, bursts,
//!   listings, expiring options, the strategy catalog — generated minute by minute.
//! - [`faults`]: pause, restart-empty and script-flush of the Redis under test, and its
//!   probes (memory, a timed seed-faithful tick, the independent checker).
//! - [`checker`]: a second Redis client (`fred`) reading the jobs stream, compared every
//!   tick with what the workers read through redis-rs.
//! - [`report`]: the markdown report and its SVG charts.
//! - [`baseline`]: the seed-faithful tick (the original Go algorithm with its concurrency),
//!   so every speed-up of tickgate is a ratio measured on the same Redis in the same run.

pub mod baseline;
pub mod checker;
pub mod faults;
pub mod market;
pub mod oracle;
pub mod provision;
pub mod report;
pub mod run;
pub mod scenario;
pub mod workload;

pub use provision::{ProvisionError, ProvisionSettings, RedisMode, RedisServer};
