//! `tickgate-sim`: the harness that proves tickgate right and fast against a real Redis.
//!
//! Map of the crate:
//! - [`provision`]: a real Redis for tests, benches and simulations — `REDIS_URL`, a
//!   container (`testcontainers`), or a local `redis-server` process — chosen by
//!   `TICKGATE_REDIS`, cleaned up on drop.
//!
//! The simulator itself (scenarios, virtual clock, oracle, reports) lands with issue 5.

pub mod provision;

pub use provision::{ProvisionError, ProvisionSettings, RedisMode, RedisServer};
