//! `tickgate-sim`: the harness that proves tickgate right and fast against a real Redis.
//!
//! Map of the crate:
//! - [`provision`]: a real Redis for tests, benches and simulations — `REDIS_URL`, a
//!   container (`testcontainers`), or a local `redis-server` process — chosen by
//!   `TICKGATE_REDIS`, cleaned up on drop.
//! - [`workload`]: the reference workload W-100k (DESIGN §6) and smaller variants,
//!   generated deterministically from a seed; writes universes and updates to Redis.
//! - [`baseline`]: the seed-faithful tick (the original Go algorithm with its concurrency),
//!   so every speed-up of tickgate is a ratio measured on the same Redis in the same run.
//!
//! The simulator itself (scenarios, virtual clock, oracle, reports) lands with issue 5.

pub mod baseline;
pub mod provision;
pub mod workload;

pub use provision::{ProvisionError, ProvisionSettings, RedisMode, RedisServer};
