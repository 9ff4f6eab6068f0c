//! The simulation loop: the real [`Engine`](tickgate::runtime::Engine) (one to three
//! instances), stepped at the simulator's own time over a synthetic market, checked against
//! the oracle after every tick — a second driver of the same `Engine::step` the production
//! service runs, as a backtest drives the live kernel.
//!
//! Per tick, in this order (the order is what makes a run reproducible; each is a named
//! phase in `phases`):
//! 1. faults due now are applied;
//! 2. the market's updates of the last interval are written (the oracle records them);
//! 3. worker results due by now are posted (the oracle applies failures and discoveries);
//! 4. each engine instance steps at `now`, one after another, so their order is fixed
//!    (concurrent instances are tested in `tests/`), and persists what it discovered;
//!    then, 50 times per run, the seed-faithful tick runs on the same data and is timed;
//! 5. the simulated worker takes every job through redis-rs, and the independent checker
//!    (`fred`) must have read exactly the same new jobs-stream entries; the union of the
//!    instances' jobs must equal the oracle's decisions — a repeat of an earlier dispatch
//!    is a safety violation, a missing one a liveness violation, anything else a
//!    divergence;
//! 6. the decisions go into the decision log, whose SHA-256 is the run's digest.
//!
//! - `phases`: the loop's state and its phases, each at most ~70 lines.
//! - `stats`: [`RunStats`], what a run measured.
//! - [`report`]: the markdown report and its SVG charts.
//! - [`command`]: `tickgate-sim run` — provisioning, the run, the report, the summary.

pub mod command;
mod phases;
pub mod report;
mod stats;

use std::time::Instant;

use tickgate::config::EngineConfig;
use tickgate::core::time::{HOUR_MS, MINUTE_MS};
use tickgate::store::{Store, StoreError, WorkerSide};

pub use self::stats::RunStats;
pub use crate::oracle::Violation;
pub use crate::redis::{Faults, SIM_REDIS_TIMEOUT};
use crate::world::scenario::Scenario;

use self::phases::{Sim, Stop};

/// A deliberately broken run, to show the checks can fail (exit codes 3, 4 and 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sabotage {
    /// Every per-ticker claim is released right after its job is taken: an engine that
    /// does not hold its claims, so another instance dispatches the same tickers again.
    SkipClaims,
    /// One update in ten never reaches Redis (the oracle still sees it).
    DropUpdates,
    /// The workers' client loses the last job entry of every tick: only the independent
    /// checker, reading through another client, can tell (exit code 5).
    HideJob,
}

/// Engine settings for a scenario: the scenario's knobs, short Redis waits (a paused
/// Redis must not stall the simulation for long).
pub fn engine_config(scenario: &Scenario, instance: usize) -> EngineConfig {
    EngineConfig {
        tick_interval_ms: scenario.tick_interval_ms,
        per_ticker_throttle: scenario.engine.per_ticker_throttle,
        lua_threshold: scenario.engine.lua_threshold,
        retention_ms: scenario.cleanup.retention_ms,
        cleanup_initial_delay_ms: scenario.cleanup.initial_delay_ms,
        cleanup_interval_ms: scenario.cleanup.interval_ms,
        // The seed's 5-minute log lines would flood a 30-day run's output.
        metrics_log_interval_ms: i64::MAX / 4,
        job_visibility_ms: (scenario.workers.latency_ms * 4).max(MINUTE_MS),
        // The simulator writes the catalog only at the start and through discovery (which
        // the change log carries), so the safety-net full reload can be rare.
        catalog_resync_ms: 6 * HOUR_MS,
        consumer: format!("sim-engine-{instance}"),
        ..EngineConfig::default()
    }
}

/// Samples per simulated hour for the memory series.
const SAMPLE_EVERY_MS: i64 = HOUR_MS;

/// Seed-faithful ticks timed per run, spread evenly over it. Each costs what the seed's
/// tick costs (hundreds of milliseconds at 1,000 strategies in a busy session: every
/// strategy re-reads the day's updates), so 50 bound the extra wall time to tens of seconds
/// while giving a stable p50; their p99 is about their maximum.
pub const SEED_FAITHFUL_SAMPLES: i64 = 50;

/// Runs `scenario` with `seed`. `stores` makes a store handle (one per engine instance,
/// plus the market's and the workers'); `faults` controls the Redis under test.
pub async fn run<S, F, Fut>(
    scenario: &Scenario,
    seed: u64,
    stores: F,
    faults: &mut impl Faults,
    sabotage: Option<Sabotage>,
    mut progress: impl FnMut(i64, &RunStats),
) -> Result<Result<RunStats, Violation>, StoreError>
where
    S: Store + WorkerSide + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<S, StoreError>>,
{
    let started = Instant::now();
    let mut sim = Sim::new(scenario, seed, &stores, faults, sabotage).await?;
    let end = scenario.start_ms + scenario.duration_ms;
    let mut now = scenario.start_ms;
    while now <= end {
        match sim.tick(now).await {
            Ok(()) => {}
            Err(Stop::Crash(e)) => return Err(e),
            Err(Stop::Violation(v)) => return Ok(Err(v)),
        }
        progress(now, sim.stats());
        now += scenario.tick_interval_ms;
    }
    Ok(Ok(sim.finish(started)))
}
