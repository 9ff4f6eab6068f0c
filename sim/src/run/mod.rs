//! The simulation loop: the real [`Engine`](tickgate::runtime::Engine) (one to three
//! instances), stepped at the simulator's own time over a synthetic market, judged after
//! every tick by the independent guarantee checker ([`crate::check`]) and the oracle — a
//! second driver of the same `Engine::step` the production service runs, as a backtest
//! drives the live kernel.
//!
//! Per tick, in this order (the order is what makes a run reproducible; each is a named
//! phase in `phases`); every raw event goes to the independent checker as it happens:
//! 1. faults due now are applied;
//! 2. the market's updates of the last interval are written (the oracle records them);
//! 3. worker results due by now are posted (the oracle applies failures and discoveries);
//! 4. each engine instance steps at `now`, one after another, so their order is fixed
//!    (concurrent instances are tested in `tests/`), and persists what it discovered;
//!    the jobs it dead-lettered are read; then, `seed_faithful_samples` times per run, the
//!    seed-faithful tick runs on the same data and is timed;
//! 5. the simulated worker takes every job through redis-rs, and the independent reader
//!    (`fred`) must have read exactly the same new jobs-stream entries;
//! 6. the independent checker closes the buckets whose closing tick this is (liveness;
//!    safety was judged as each job was read); the union of the instances' jobs must equal
//!    the oracle's decisions — a repeat of an earlier dispatch is a safety violation, a
//!    missing one a liveness violation, anything else a divergence;
//! 7. the decisions go into the decision log, whose SHA-256 is the run's digest.
//!
//! The oracle's, the reader's and the memory bound's first violation ends the run (unless
//! [`Checks::Independent`]): at once if it is a safety violation, else after
//! [`SAFETY_GRACE_TICKS`] more ticks or at a safety violation of either checker, whichever
//! comes first — a break of safety may show first as a liveness symptom. The independent
//! checker's findings are gathered to the end. The verdict is a safety violation if either
//! checker found one, else the violation that ended the run, else the independent
//! checker's first (liveness) finding.
//!
//! - `phases`: the loop's state and its phases, each at most ~70 lines.
//! - `stats`: [`RunStats`], what a run measured.
//! - [`report`]: the markdown report and its SVG charts.
//! - [`timeline`]: the run's measures over simulated time, its faults, its slowest step.
//! - `sabotage`: the deliberately broken runs.
//! - [`command`]: `tickgate-sim run` — provisioning, the run, the report, the summary.
//! - [`server`]: where the command line's Redis comes from (`--redis`), shared by `run`
//!   and `tickgate-sim redis`.
//! - [`paths`]: command-line paths from anywhere in the checkout; the default report.

pub mod command;
mod edits;
pub mod paths;
mod phases;
pub mod report;
mod sabotage;
pub mod server;
mod stats;
pub mod timeline;

use std::time::Instant;

use tickgate::Ticker;
use tickgate::config::EngineConfig;
use tickgate::core::rule;
use tickgate::core::time::{HOUR_MS, MINUTE_MS};
use tickgate::store::{Store, StoreError, WorkerSide};

pub use self::sabotage::Sabotage;
pub use self::stats::RunStats;
pub use crate::oracle::Violation;
pub use crate::redis::{Faults, SIM_REDIS_TIMEOUT};
use crate::world::scenario::Scenario;

use self::phases::Sim;

/// Which checkers judge a run. Whatever the choice, every checker runs (their costs and
/// the decision log stay comparable); only whose findings fail the run differs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Checks {
    /// The independent guarantee checker, the oracle (safety, liveness, divergence), the
    /// `fred` reader and the memory bound. The first violation of the oracle, the reader or
    /// the memory bound ends the run (after a short grace unless it is of safety: module
    /// docs); the independent checker's findings are gathered to the end (their counts by
    /// kind are the useful part). Safety wins the verdict from either side.
    #[default]
    All,
    /// Only the independent guarantee checker: shows that it catches a break by itself.
    Independent,
}

/// How a run is made: deliberately broken or not, and judged by whom.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOptions {
    pub sabotage: Option<Sabotage>,
    pub checks: Checks,
}

impl From<Option<Sabotage>> for RunOptions {
    fn from(sabotage: Option<Sabotage>) -> RunOptions {
        RunOptions {
            sabotage,
            checks: Checks::All,
        }
    }
}

/// A run that failed a check: the violation, and what the run measured up to it (the
/// independent checker's summary included).
#[derive(Debug)]
pub struct Failure {
    /// The verdict: the independent checker's first finding, else `stopped`.
    pub violation: Violation,
    /// What ended the run early — the oracle's, the `fred` reader's or the memory bound's
    /// first violation — if anything did.
    pub stopped: Option<Violation>,
    pub stats: Box<RunStats>,
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
        // Long enough for the slowest simulated run: a slow result is the hard case to
        // exercise, not a lost job to re-deliver.
        job_visibility_ms: (slowest_run_ms(scenario) * 4).max(MINUTE_MS),
        // The simulator writes the catalog only at the start and through discovery (which
        // the change log carries), so the safety-net full reload can be rare.
        catalog_resync_ms: 6 * HOUR_MS,
        consumer: format!("sim-engine-{instance}"),
        // Simulated time is not wall time (the simulator drives `Engine::step` itself, so
        // the service's check would not run anyway).
        max_clock_skew_ms: None,
        ..EngineConfig::default()
    }
}

/// The longest a simulated worker takes for a run: its latency, or its tail's maximum.
fn slowest_run_ms(scenario: &Scenario) -> i64 {
    let w = &scenario.workers;
    if w.latency_tail_share > 0.0 {
        w.latency_ms.max(w.latency_tail_max_ms)
    } else {
        w.latency_ms
    }
}

/// Updates stamped further ahead of their write than this are not owed by the independent
/// checker (DESIGN §2.3 lets the engine reject them at `max_future_ms`). A minute is below
/// the engine's default bound ([`tickgate::limits::DEFAULT_MAX_FUTURE_MS`], which the
/// simulated engines and stores use) and any an operator would configure, so the checker
/// never owes what the engine may rightly reject.
pub const MAX_FUTURE_MS: i64 = MINUTE_MS;

// The checker must never owe an update the engines may reject.
const _: () = assert!(MAX_FUTURE_MS <= tickgate::limits::DEFAULT_MAX_FUTURE_MS);

/// The updates of `batch` the store accepts at `now`: stamped at most the engine's
/// `max_future_ms` ahead (the stores and engines of a run use the default bound).
pub(crate) fn admitted(now: i64, batch: Vec<(String, i64)>) -> Vec<(String, i64)> {
    let bound = tickgate::limits::DEFAULT_MAX_FUTURE_MS;
    batch
        .into_iter()
        .filter(|(_, ts)| rule::admitted(*ts, now, bound))
        .collect()
}

/// Writes updates through the store at `now`, dropping tickers the store would reject.
pub(crate) async fn write_updates<S: Store>(
    store: &S,
    now: i64,
    batch: &[(String, i64)],
) -> Result<(), StoreError> {
    let valid: Vec<&(String, i64)> = batch
        .iter()
        .filter(|(t, _)| Ticker::parse(t).is_ok())
        .collect();
    let pairs: Vec<(&str, i64)> = valid.iter().map(|(t, ts)| (t.as_str(), *ts)).collect();
    store.record_updates(now, &pairs).await
}

/// Samples per simulated hour for the memory series.
const SAMPLE_EVERY_MS: i64 = HOUR_MS;

pub use crate::world::scenario::SEED_FAITHFUL_SAMPLES;

/// Runs `scenario` with `seed` as `options` say (a sabotage alone converts into options
/// that judge with every checker). `stores` makes a store handle (one per engine instance,
/// plus the market's and the workers'); `faults` controls the Redis under test.
pub async fn run<S, F, Fut>(
    scenario: &Scenario,
    seed: u64,
    stores: F,
    faults: &mut impl Faults,
    options: impl Into<RunOptions>,
    mut progress: impl FnMut(i64, &RunStats),
) -> Result<Result<RunStats, Failure>, StoreError>
where
    S: Store + WorkerSide + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<S, StoreError>>,
{
    let started = Instant::now();
    let mut sim = Sim::new(scenario, seed, &stores, faults, options.into()).await?;
    let end = scenario.start_ms + scenario.duration_ms;
    let mut now = scenario.start_ms;
    let mut grace_end = None;
    while now <= end {
        sim.tick(now).await?;
        progress(now, sim.stats());
        // The oracle's first violation ends the run, at once if safety is broken, else
        // after a grace in which a safety violation it may be the consequence of can show.
        if sim.first_violation().is_some() {
            let grace = SAFETY_GRACE_TICKS * scenario.tick_interval_ms;
            if sim.safety_found() || now >= *grace_end.get_or_insert(now + grace) {
                break;
            }
        }
        now += scenario.tick_interval_ms;
    }
    let stopped = sim.stopped();
    let stats = sim.finish(started);
    let verdict = verdict(&stats, stopped.as_ref());
    Ok(match verdict {
        None => Ok(stats),
        Some(violation) => Err(Failure {
            violation,
            stopped,
            stats: Box::new(stats),
        }),
    })
}

/// Ticks a run goes on after the oracle's first violation if it is not one of safety,
/// watching for one: a lost claim shows first as a missed retry (the failed run had
/// nothing to release), then as a duplicate when one of its tickers updates again in the
/// bucket — within a few ticks in every bundled scenario, whose active tickers update
/// every few seconds. Thirty ticks cost about a second in a debug build.
pub const SAFETY_GRACE_TICKS: i64 = 30;

/// A failed run's verdict, in the order the README gives: a safety violation from either
/// checker (the independent checker's if it has one), else the violation that stopped
/// the run (the oracle's, the `fred` reader's or the memory bound's), else the independent
/// checker's first finding (liveness).
fn verdict(stats: &RunStats, stopped: Option<&Violation>) -> Option<Violation> {
    let guarantee = |finding: &crate::check::GuaranteeFinding| Violation::Guarantee {
        finding: Box::new(finding.clone()),
        found: stats.guarantee.counts(),
    };
    let first = stats.guarantee.first();
    match (first, stopped) {
        (Some(f), _) if f.kind.is_safety() => Some(guarantee(f)),
        (_, Some(v)) => Some(v.clone()),
        (Some(f), None) => Some(guarantee(f)),
        (None, None) => None,
    }
}

/// Runs a feed or worker call, retrying once if the connection broke: after a Redis
/// restart the first call on an old connection fails and reconnects (a failed call wrote
/// nothing, so the retry is safe).
pub(crate) async fn once_more<T, Fut: std::future::Future<Output = Result<T, StoreError>>>(
    call: impl Fn() -> Fut,
) -> Result<T, StoreError> {
    match call().await {
        Err(StoreError::Disconnected { .. } | StoreError::Timeout { .. }) => call().await,
        other => other,
    }
}

pub(crate) fn infra(reason: String) -> StoreError {
    StoreError::Redis {
        op: "fault injection",
        reason,
    }
}
