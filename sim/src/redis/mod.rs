//! The Redis under test and everything that touches it besides the engine: provisioning,
//! faults and probes, the bulk writes that set a run up, and the seed-faithful baseline.
//!
//! - [`provision`]: a real Redis for tests, benches and simulations — `REDIS_URL`, a
//!   container, or a local `redis-server` — chosen by `TICKGATE_REDIS`, removed on drop.
//! - [`faults`]: the [`Faults`] the run loop injects and probes through; [`RedisFaults`]
//!   on a server the run owns, [`NoFaults`] for the in-memory store.
//! - `probes`: memory, command statistics, a timed seed-faithful tick, the `fred` reader.
//! - [`load`]: bulk writes of universes, catalog entries and updates; trigger-state reset.
//! - [`baseline`]: the seed-faithful tick (the original Go algorithm with its concurrency)
//!   and the seed's intersection script (`intersect_seed.lua`), so every speed-up of
//!   tickgate is a ratio measured on the same Redis in the same run.

pub mod baseline;
pub mod faults;
pub mod load;
mod probes;
pub mod provision;

use std::time::Duration;

pub use self::faults::{Faults, NoFaults, RedisFaults};

/// Redis waits in the simulation (connect and response): a paused Redis costs two of them
/// per engine step, yet a loaded 2-core CI machine running tests in parallel never hits
/// it (250 ms did, in a run with two other simulations beside it).
pub const SIM_REDIS_TIMEOUT: Duration = Duration::from_millis(1_000);
