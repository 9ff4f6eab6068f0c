//! `tickgate-sim`: the harness that proves tickgate right and fast against a real Redis.
//!
//! # Layout
//!
//! Dependencies run one way: `world`, `check` and `oracle` depend on nothing here, `redis` on
//! `oracle` (its cost model and independent reader), `run` on all three; `main` is the CLI.
//!
//! - [`world`]: what a run replays, all from one seed — seeded randomness, scenario files,
//!   the synthetic market (the one world generator, also the W-100k bench's), one simulated
//!   worker.
//! - [`check`]: the independent guarantee checker — DESIGN §2.3's guarantee judged from
//!   the run's raw events (updates, jobs, results, dead letters, catalog writes, faults),
//!   with its own calendar and parsing, sharing no decision code with the engine.
//! - [`oracle`]: what must happen — the full evaluation through `tickgate::core`, the
//!   seed's algorithm and its one cost model, and one checker per property: safety,
//!   liveness, divergence, memory, and the independent `fred` reader.
//! - [`redis`]: the server under test — provisioning, faults and probes, bulk setup writes,
//!   the seed-faithful baseline and the seed's intersection script.
//! - [`human`]: times and durations for people (UTC and New York dates beside epoch ms).
//! - [`run`]: the simulation loop in named phases, its statistics and timeline, the
//!   report, and the `tickgate-sim run` and `redis` commands behind the binary.
//!
//! The shorter paths below ([`provision`], [`scenario`], and the provisioning types at the
//! root) are the ones the integration tests and benches name.

pub mod check;
pub mod human;
pub mod oracle;
pub mod redis;
pub mod run;
pub mod world;

pub use self::redis::provision::{self, ProvisionError, ProvisionSettings, RedisMode, RedisServer};
pub use self::world::scenario;
