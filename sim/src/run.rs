//! The simulation loop: the real [`Engine`] (one to three instances), stepped at the
//! simulator's own time over a synthetic market, checked against the oracle after every tick.
//!
//! Per tick, in this order (the order is what makes a run reproducible):
//! 1. faults due now are applied;
//! 2. the market's updates of the last interval are written (the oracle records them);
//! 3. worker results due by now are posted (the oracle applies failures and discoveries);
//! 4. each engine instance steps at `now`, one after another, so their order is fixed
//!    (concurrent instances are tested in `tests/`), and persists what it discovered;
//!    then, 50 times per run, the seed-faithful tick runs on the same data and is timed;
//! 5. the simulated workers take every job through redis-rs, and the independent checker
//!    (`fred`) must have read exactly the same new jobs-stream entries; the union of the
//!    instances' jobs must equal the oracle's decisions — a repeat of an earlier dispatch is a safety violation, a missing
//!    one a liveness violation, anything else a divergence;
//! 6. the decisions go into the decision log, whose SHA-256 is the run's digest.

mod checks;

pub use self::checks::Violation;
use self::checks::{compare, first_difference};

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::RngExt;
use sha2::{Digest, Sha256};
use std::sync::Arc;

use tickgate::config::EngineConfig;
use tickgate::core::catalog::Universe;
use tickgate::core::jobs::{Job, JobMode, JobRef};
use tickgate::runtime::{Engine, Metrics};
use tickgate::store::{Store, StoreError, Verdict, WorkerSide};
use tickgate::{StrategyId, Ticker};

use crate::checker::Entry;
use crate::market::Market;
use crate::oracle::{Oracle, merged};
use crate::scenario::{FaultKind, Scenario};
use crate::workload::{StrategyDef, WorkloadRng, seeded_rng};

/// A deliberately broken run, to show the checks can fail (exit codes 3, 4 and 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Everything a run measured.
#[derive(Debug, Clone)]
pub struct RunStats {
    pub ticks: u64,
    pub jobs: u64,
    pub dispatched_tickers: u64,
    pub failed_runs: u64,
    pub discoveries: u64,
    /// Runs the run-everything (legacy) mode would have made.
    pub run_everything: u64,
    /// Round trips: tickgate (all instances, measured) and seed-faithful (counted).
    pub round_trips: u64,
    pub seed_round_trips: u64,
    /// Tick latency (wall µs per instance step).
    pub tick_us: Histogram<u64>,
    /// Wall time of the seed-faithful tick at the sampled instants (see
    /// [`SEED_FAITHFUL_SAMPLES`]), and of tickgate's steps at the same instants.
    pub seed_tick_us: Histogram<u64>,
    pub sampled_tick_us: Histogram<u64>,
    /// Samples that failed (e.g. Redis restarting) and were skipped.
    pub seed_sample_errors: u64,
    /// (simulated ms, Redis used_memory bytes), sampled hourly (empty in memory mode).
    pub memory: Vec<(i64, u64)>,
    /// (simulated ms, tracked tickers), sampled hourly.
    pub tracked: Vec<(i64, u64)>,
    pub skipped: BTreeMap<&'static str, u64>,
    pub dead_letters: u64,
    pub faults_applied: Vec<String>,
    pub digest: String,
    pub wall: Duration,
    /// Wall time by phase: market, feed writes and results, engine steps, workers, oracle.
    pub phase_ms: BTreeMap<&'static str, u64>,
}

/// What the loop needs from the Redis under test (absent in memory mode).
pub trait Faults {
    /// Whether faults can be injected (a Redis this run owns); otherwise the scenario's
    /// faults are skipped with a notice.
    fn supported(&self) -> bool;
    fn pause(&mut self) -> impl std::future::Future<Output = Result<(), String>>;
    fn resume(&mut self) -> impl std::future::Future<Output = Result<(), String>>;
    fn restart_empty(&mut self) -> impl std::future::Future<Output = Result<(), String>>;
    fn script_flush(&mut self) -> impl std::future::Future<Output = Result<(), String>>;
    /// `INFO memory` used_memory, if this is a Redis.
    fn used_memory(&mut self) -> impl std::future::Future<Output = Option<u64>>;
    /// Runs the seed-faithful tick on the data under test at `now_ms` and returns its wall
    /// time; `None` when there is no Redis to run it on.
    fn seed_faithful_tick(
        &mut self,
        now_ms: i64,
        strategies: &[StrategyDef],
    ) -> impl std::future::Future<Output = Option<Result<Duration, String>>>;
    /// Every jobs-stream entry appended since the previous call, read by the independent
    /// checker (a second client); `None` when there is no Redis to read.
    fn jobs_appended(
        &mut self,
    ) -> impl std::future::Future<Output = Option<Result<Vec<Entry>, String>>>;
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
        job_visibility_ms: (scenario.workers.latency_ms * 4).max(60_000),
        // The simulator writes the catalog only at the start and through discovery (which
        // the change log carries), so the safety-net full reload can be rare.
        catalog_resync_ms: 6 * 3_600_000,
        consumer: format!("sim-engine-{instance}"),
        ..EngineConfig::default()
    }
}

/// Mixed into the seed for the simulated workers' random stream, so that it is
/// independent of the market's streams drawn from the same seed.
const WORKER_STREAM: u64 = 0x5eed_0f00_0000_0001;

/// Redis waits in the simulation (connect and response): a paused Redis costs two of them
/// per engine step, yet a loaded 2-core CI machine running tests in parallel never hits
/// it (250 ms did, in a run with two other simulations beside it).
pub const SIM_REDIS_TIMEOUT: Duration = Duration::from_millis(1_000);

/// Samples per simulated hour for the memory series.
const SAMPLE_EVERY_MS: i64 = 3_600_000;

/// Seed-faithful ticks timed per run, spread evenly over it. Each costs what the seed's tick
/// costs (hundreds of milliseconds at 1,000 strategies in a busy session: every strategy
/// re-reads the day's updates), so 50 bound the extra wall time to tens of seconds while
/// giving a stable p50; their p99 is about their maximum.
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
    let mut market = Market::new(scenario, seed);
    let mut rng: WorkloadRng = seeded_rng(seed ^ WORKER_STREAM);
    let catalog = market.catalog();
    let feed = stores().await?;
    for (id, json) in &catalog {
        feed.catalog_write(*id, Some(json), None).await?;
    }
    let mut oracle = Oracle::new(scenario.engine.per_ticker_throttle, &catalog);
    let seed_strategies = baseline_strategies(&oracle);
    let seed_every_ms = (scenario.duration_ms / SEED_FAITHFUL_SAMPLES / scenario.tick_interval_ms
        * scenario.tick_interval_ms)
        .max(scenario.tick_interval_ms);
    let mut next_seed_sample = scenario.start_ms + seed_every_ms;
    let mut engines = Vec::new();
    for i in 0..scenario.engine.instances {
        let store = Arc::new(stores().await?);
        engines.push(Engine::new(store, engine_config(scenario, i)));
    }
    let worker = stores().await?;
    let mut stats = RunStats {
        ticks: 0,
        jobs: 0,
        dispatched_tickers: 0,
        failed_runs: 0,
        discoveries: 0,
        run_everything: 0,
        round_trips: 0,
        seed_round_trips: 0,
        tick_us: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
        seed_tick_us: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
        sampled_tick_us: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
        seed_sample_errors: 0,
        memory: Vec::new(),
        tracked: Vec::new(),
        skipped: BTreeMap::new(),
        dead_letters: 0,
        faults_applied: Vec::new(),
        digest: String::new(),
        wall: Duration::ZERO,
        phase_ms: BTreeMap::new(),
    };
    let mut phase = Instant::now();
    let mut lap = |stats: &mut RunStats, name: &'static str| {
        *stats.phase_ms.entry(name).or_default() += phase.elapsed().as_micros() as u64;
        phase = Instant::now();
    };
    let mut log = Sha256::new();
    // Every (strategy, bucket, ticker) dispatched so far, and those a failure released.
    let mut dispatched: BTreeSet<(StrategyId, i64, String)> = BTreeSet::new();
    // Results scheduled by the workers: (due, sequence) → (job entry, job, result JSON).
    let mut due: BTreeMap<(i64, u64), (String, Job, String)> = BTreeMap::new();
    let mut sequence = 0u64;
    let mut paused_until: Option<i64> = None;
    let mut held_updates: Vec<(String, i64)> = Vec::new();
    let mut next_sample = scenario.start_ms;
    let end = scenario.start_ms + scenario.duration_ms;
    let mut previous = scenario.start_ms - scenario.tick_interval_ms;
    let mut now = scenario.start_ms;
    let mut outcome = Ok(());
    while now <= end {
        // 1. Faults.
        let supported = faults.supported();
        for fault in scenario.faults.iter().filter(|f| {
            let at = scenario.start_ms + f.at_ms;
            previous < at && at <= now
        }) {
            if !supported && !matches!(fault.kind, FaultKind::MalformedResults { .. }) {
                stats.faults_applied.push(format!(
                    "{:?} skipped: no Redis of this run's own",
                    fault.kind
                ));
                continue;
            }
            stats
                .faults_applied
                .push(format!("{:?} at +{} ms", fault.kind, fault.at_ms));
            match &fault.kind {
                FaultKind::RedisPause { duration_ms } => {
                    faults.pause().await.map_err(infra)?;
                    paused_until = Some(now + duration_ms);
                }
                FaultKind::RedisRestartEmpty => {
                    faults.restart_empty().await.map_err(infra)?;
                    oracle.forget_redis_state();
                    // What was dispatched before is forgotten with the claims.
                    dispatched.clear();
                }
                FaultKind::ScriptFlush => faults.script_flush().await.map_err(infra)?,
                FaultKind::MalformedResults { count } => {
                    let malformed: Vec<(String, String)> = (0..*count)
                        .map(|i| ("0-0".to_owned(), format!("{{\"job_id\":\"malformed-{i}\"")))
                        .collect();
                    worker.finish_jobs(&malformed).await?;
                }
            }
        }
        if let Some(until) = paused_until
            && now >= until
        {
            faults.resume().await.map_err(infra)?;
            paused_until = None;
        }
        let up = paused_until.is_none();

        lap(&mut stats, "faults");
        // 2. The market. While Redis is paused the feed holds its updates back.
        let step = market.step(previous, now);
        lap(&mut stats, "market");
        held_updates.extend(step.updates);
        if up && !held_updates.is_empty() {
            let mut batch = std::mem::take(&mut held_updates);
            if sabotage == Some(Sabotage::DropUpdates) {
                oracle.record(&batch);
                batch = batch
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| i % 10 != 0)
                    .map(|(_, u)| u)
                    .collect();
                once_more(|| write_updates(&feed, &batch)).await?;
            } else {
                once_more(|| write_updates(&feed, &batch)).await?;
                oracle.record(&batch);
            }
        }

        // 3. Results due by now.
        if up {
            let ready: Vec<(i64, u64)> = due.range(..=(now, u64::MAX)).map(|(k, _)| *k).collect();
            let mut posted = Vec::with_capacity(ready.len());
            for key in ready {
                let Some((entry, job, result)) = due.remove(&key) else {
                    continue;
                };
                let parsed: serde_json::Value = serde_json::from_str(&result).unwrap_or_default();
                if parsed["success"] == serde_json::Value::Bool(false) {
                    oracle.fail(&job);
                    // Its claims are released: dispatching them again is allowed.
                    for t in job.symbols.iter().flatten() {
                        dispatched.remove(&(job.strategy_id, job.bucket_start_ms, t.clone()));
                    }
                }
                if let Some(used) = parsed["used_symbols"].as_array() {
                    let used: Vec<String> = used
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect();
                    oracle.discover(job.strategy_id, &used);
                }
                posted.push((entry, result));
            }
            once_more(|| worker.finish_jobs(&posted)).await?;
        }

        lap(&mut stats, "feed and results");
        // 4. Engine steps.
        let mut any_ready = false;
        let mut step_us = 0;
        for engine in &mut engines {
            let round_trips = |e: &Engine<S>| {
                e.store()
                    .counters()
                    .round_trips
                    .load(std::sync::atomic::Ordering::Relaxed)
            };
            let before = round_trips(engine);
            let t = Instant::now();
            let report = engine.step(now).await;
            let us = t.elapsed().as_micros() as u64;
            step_us += us;
            stats.tick_us.saturating_record(us.max(1));
            engine
                .persister()
                .pass(&**engine.store(), engine.metrics())
                .await;
            stats.round_trips += round_trips(engine) - before;
            any_ready |= report.ready;
        }

        lap(&mut stats, "engine");
        // 4b. The seed-faithful tick on the same data, now and then (its own claim keys).
        if up && now >= next_seed_sample {
            next_seed_sample += seed_every_ms;
            match faults.seed_faithful_tick(now, &seed_strategies).await {
                Some(Ok(elapsed)) => {
                    let us = (elapsed.as_micros() as u64).max(1);
                    stats.seed_tick_us.saturating_record(us);
                    stats.sampled_tick_us.saturating_record(step_us.max(1));
                }
                Some(Err(_)) => stats.seed_sample_errors += 1,
                None => {}
            }
        }
        lap(&mut stats, "seed-faithful samples");
        // 5. Workers take the jobs; check them against the oracle.
        let mut jobs: BTreeSet<crate::oracle::Dispatch> = BTreeSet::new();
        if up {
            let mut taken = once_more(|| take_all(&worker)).await?;
            if sabotage == Some(Sabotage::HideJob) {
                // A client bug that loses one entry: only the independent checker sees it.
                taken.pop();
            }
            if let Some(appended) = faults.jobs_appended().await {
                let appended = appended.map_err(infra)?;
                let seen: Vec<Entry> = taken
                    .iter()
                    .map(|e| (e.id.clone(), e.payload.clone()))
                    .collect();
                if seen != appended {
                    outcome = Err(Violation::Checker {
                        tick_ms: now,
                        detail: first_difference(&seen, &appended),
                    });
                    break;
                }
            }
            for entry in taken {
                let Some(job) = entry
                    .payload
                    .as_deref()
                    .and_then(|p| serde_json::from_str::<Job>(p).ok())
                else {
                    continue;
                };
                let mode = job.mode;
                jobs.insert((
                    job.strategy_id,
                    job.bucket_start_ms,
                    mode,
                    job.symbols
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                ));
                let success = !rng.random_bool(scenario.workers.failure_rate.clamp(0.0, 1.0));
                let mut result = serde_json::json!({"job_id": job.job_id, "strategy_id": job.strategy_id, "success": success});
                if rng.random_bool(scenario.workers.used_symbols_rate.clamp(0.0, 1.0)) {
                    let n = rng.random_range(1..=8usize);
                    result["used_symbols"] = serde_json::json!(market.sample_listed(n));
                    stats.discoveries += 1;
                }
                if !success {
                    stats.failed_runs += 1;
                }
                if sabotage == Some(Sabotage::SkipClaims)
                    && mode == JobMode::PerTicker
                    && let Some(job_ref) = JobRef::parse(&job.job_id)
                {
                    // The claims vanish as if the run had failed, but nobody is told.
                    worker.complete_jobs(&[(job_ref, Verdict::Failed)]).await?;
                }
                sequence += 1;
                due.insert(
                    (now + scenario.workers.latency_ms, sequence),
                    (entry.id, job, result.to_string()),
                );
            }
        }
        lap(&mut stats, "workers");
        if any_ready {
            let (want, counts) = oracle.tick(now);
            stats.run_everything += counts.run_everything;
            stats.seed_round_trips += counts.seed_round_trips;
            for (reason, n) in &oracle.skipped {
                *stats.skipped.entry(reason.as_str()).or_default() += n;
            }
            let (got, want) = (merged(&jobs), merged(&want));
            if let Err(v) = compare(now, &got, &want, &dispatched) {
                outcome = Err(v);
                break;
            }
            for ((id, bucket, mode), symbols) in &got {
                log.update(format!(
                    "{now}\t{id}\t{bucket}\t{}\t{}\n",
                    mode.as_str(),
                    symbols.iter().cloned().collect::<Vec<_>>().join(",")
                ));
                stats.jobs += 1;
                stats.dispatched_tickers += symbols.len() as u64;
                if *mode == JobMode::PerTicker {
                    dispatched.extend(symbols.iter().map(|t| (*id, *bucket, t.clone())));
                }
            }
        }
        lap(&mut stats, "oracle");
        // 6. Samples and progress.
        if now >= next_sample {
            if let Some(bytes) = faults.used_memory().await {
                stats.memory.push((now, bytes));
                let limit_mb = scenario.cleanup.max_redis_memory_mb;
                if bytes > limit_mb as u64 * 1_000_000 {
                    outcome = Err(Violation::Memory {
                        tick_ms: now,
                        used_bytes: bytes,
                        limit_mb,
                    });
                    break;
                }
            }
            if up && let Ok(n) = feed.tracked_tickers().await {
                stats.tracked.push((now, n));
            }
            next_sample += SAMPLE_EVERY_MS;
            // Dispatches of buckets that are over can never repeat: forget them, so the
            // safety check's memory stays bounded over long runs.
            dispatched.retain(|(id, bucket, _)| {
                let current = oracle
                    .strategies
                    .get(id)
                    .and_then(|s| s.timeframe.as_ref().ok()?.bucket(now).ok());
                current.is_some_and(|b| b.start_ms <= *bucket)
            });
        }
        stats.ticks += 1;
        progress(now, &stats);
        previous = now;
        now += scenario.tick_interval_ms;
    }
    for engine in &engines {
        stats.dead_letters += Metrics::get(&engine.metrics().dead_letters);
    }
    for v in stats.phase_ms.values_mut() {
        *v /= 1000;
    }
    stats.digest = format!("{:x}", log.finalize());
    stats.wall = started.elapsed();
    Ok(outcome.map(|()| stats))
}

/// The oracle's active strategies as the seed-faithful baseline sees them (it reads the
/// universes from Redis; only id, timeframe and the global flag matter).
fn baseline_strategies(oracle: &Oracle) -> Vec<StrategyDef> {
    oracle
        .strategies
        .iter()
        .map(|(id, s)| StrategyDef {
            id: *id,
            user_id: s.user_id,
            name: String::new(),
            timeframe: match &s.timeframe {
                Ok(tf) => tf.to_string(),
                Err(_) => "invalid".to_owned(),
            },
            universe: match &s.universe {
                Universe::Global => None,
                Universe::Tickers(u) => Some(u.iter().map(|t| t.as_str().to_owned()).collect()),
                Universe::Missing => Some(Vec::new()),
            },
        })
        .collect()
}

/// Runs a feed or worker call, retrying once if the connection broke: after a Redis
/// restart the first call on an old connection fails and reconnects (a failed call wrote
/// nothing, so the retry is safe).
async fn once_more<T, Fut: std::future::Future<Output = Result<T, StoreError>>>(
    call: impl Fn() -> Fut,
) -> Result<T, StoreError> {
    match call().await {
        Err(StoreError::Disconnected { .. } | StoreError::Timeout { .. }) => call().await,
        other => other,
    }
}

fn infra(reason: String) -> StoreError {
    StoreError::Redis {
        op: "fault injection",
        reason,
    }
}

/// Writes updates through the store, dropping tickers the store would reject.
async fn write_updates<S: Store>(store: &S, batch: &[(String, i64)]) -> Result<(), StoreError> {
    let valid: Vec<&(String, i64)> = batch
        .iter()
        .filter(|(t, _)| Ticker::parse(t).is_ok())
        .collect();
    let pairs: Vec<(&str, i64)> = valid.iter().map(|(t, ts)| (t.as_str(), *ts)).collect();
    store.record_updates(&pairs).await
}

/// Jobs read per call by the simulated workers, and the bound on calls per tick (far more
/// than any scenario enqueues in one tick).
const TAKE_BATCH: usize = 1_000;
const MAX_TAKES_PER_TICK: usize = 10_000;

async fn take_all<S: WorkerSide>(
    worker: &S,
) -> Result<Vec<tickgate::store::StreamEntry>, StoreError> {
    let mut all = Vec::new();
    for _ in 0..MAX_TAKES_PER_TICK {
        let batch = worker.take_jobs("sim-worker", TAKE_BATCH).await?;
        if batch.is_empty() {
            break;
        }
        all.extend(batch);
    }
    Ok(all)
}
