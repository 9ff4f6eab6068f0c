//! The simulated world: everything outside tickgate that a run replays, each a function of
//! the scenario and the seed.
//!
//! - [`rng`]: the one seeded generator and the bounded draws made with it.
//! - [`scenario`]: scenario files (TOML), read with `tickgate::config::Reader`, every
//!   problem reported at once.
//! - [`market`]: the synthetic market of a scenario and seed — tickers and their churn, US
//!   market hours, bursts, the strategy catalog. The one world generator: the simulator and
//!   the W-100k bench (`fixtures/scenarios/w100k.toml`) both use it.
//! - [`worker`]: one simulated strategy worker (jobs in, results out, failures and
//!   `used_symbols` from its own stream); integration tests use it too.

pub mod market;
pub mod rng;
pub mod scenario;
pub mod worker;
