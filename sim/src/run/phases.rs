//! The loop's state and its phases, in the order a tick runs them (module docs of
//! [`super`]). Each phase is one method; the checks themselves live in [`crate::oracle`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tickgate::core::catalog::Strategy;
use tickgate::core::jobs::JobMode;
use tickgate::runtime::{Engine, Metrics};
use tickgate::store::{Store, StoreError, StreamEntry, WorkerSide};

use super::edits::{Editor, Write, clock_offsets};
use super::sabotage;
use super::stats::{Laps, RunStats, StrategyBuckets};
use super::timeline::{AppliedFault, Sample, Timeline};
use super::{Checks, Faults, RunOptions, SAMPLE_EVERY_MS, Sabotage};
use super::{MAX_FUTURE_MS, admitted, engine_config, infra, once_more, write_updates};
use crate::check::{Guarantee, Settings};
use crate::oracle::fred::{self, Entry};
use crate::oracle::{Dispatch, Merged, Oracle, Safety, Violation, check_tick, dispatch_of};
use crate::oracle::{memory, merged};
use crate::redis::baseline::SeedStrategy;
use crate::world::market::Market;
use crate::world::scenario::{FaultKind, Scenario};
use crate::world::worker::Worker;

/// Everything a run holds between ticks.
pub(super) struct Sim<'a, S: Store, F> {
    scenario: &'a Scenario,
    sabotage: Option<Sabotage>,
    checks: Checks,
    faults: &'a mut F,
    market: Market,
    worker: Worker,
    /// The market's store handle: catalog, updates, samples.
    feed: S,
    /// The worker's store handle: jobs in, results out.
    worker_store: S,
    engines: Vec<Engine<S>>,
    /// Each instance's clock offset from the simulation's time.
    offsets: Vec<i64>,
    /// The catalog as the scenario last wrote it, and the platform that edits it.
    catalog: BTreeMap<u64, String>,
    editor: Editor,
    oracle: Oracle,
    safety: Safety,
    /// The independent guarantee checker, fed the raw events as they happen.
    guarantee: Guarantee,
    /// The strategies the seed-faithful samples evaluate (as at the start).
    seed_strategies: Vec<SeedStrategy>,
    seed_every_ms: i64,
    next_seed_sample: i64,
    next_sample: i64,
    /// While Redis is paused the feed holds its updates back.
    paused_until: Option<i64>,
    held_updates: Vec<(String, i64)>,
    /// Whether Redis answers this tick (not paused).
    up: bool,
    previous: i64,
    log: Sha256,
    strategy_buckets: StrategyBuckets,
    /// The first violation of the oracle, the `fred` reader or the memory bound, and the
    /// first safety violation among them (what a run that goes on after the first looks
    /// for: a break of safety may show first as a missed retry).
    first_violation: Option<Violation>,
    safety_violation: Option<Violation>,
    stats: RunStats,
    laps: Laps,
}

impl<'a, S, F> Sim<'a, S, F>
where
    S: Store + WorkerSide + 'static,
    F: Faults,
{
    /// The world at the start: the market and its catalog (written through the feed), the
    /// oracle over it, the engine instances and the worker, each with its own store handle.
    pub async fn new<Fut>(
        scenario: &'a Scenario,
        seed: u64,
        stores: &impl Fn() -> Fut,
        faults: &'a mut F,
        options: RunOptions,
    ) -> Result<Self, StoreError>
    where
        Fut: std::future::Future<Output = Result<S, StoreError>>,
    {
        let mut market = Market::new(scenario, seed);
        let worker = Worker::new(&scenario.workers, seed);
        let catalog = market.catalog();
        let feed = stores().await?;
        for (id, json) in &catalog {
            feed.catalog_write(*id, Some(json), None).await?;
        }
        let oracle = Oracle::new(scenario.engine.per_ticker_throttle, &catalog);
        let offsets = clock_offsets(scenario, seed);
        let mut guarantee = Guarantee::new(Settings {
            per_ticker_throttle: scenario.engine.per_ticker_throttle,
            max_universe: tickgate::limits::DEFAULT_MAX_UNIVERSE,
            max_future_ms: MAX_FUTURE_MS,
            max_clock_offset_ms: offsets.iter().copied().max().unwrap_or(0),
        });
        for (id, json) in &catalog {
            guarantee.catalog(scenario.start_ms, *id, Some(json), true);
        }
        let seed_strategies = oracle.strategies.values().map(SeedStrategy::of).collect();
        let tick = scenario.tick_interval_ms;
        let samples = scenario.seed_faithful_samples;
        let seed_every_ms = match samples {
            0 => i64::MAX / 4,
            n => (scenario.duration_ms / n / tick * tick).max(tick),
        };
        let mut engines = Vec::new();
        for i in 0..scenario.engine.instances {
            let store = Arc::new(stores().await?);
            engines.push(Engine::new(store, engine_config(scenario, i)));
        }
        let worker_store = stores().await?;
        let mut stats = RunStats::new();
        stats.timeline = Timeline::new(scenario.start_ms, scenario.duration_ms, tick);
        Ok(Sim {
            scenario,
            sabotage: options.sabotage,
            checks: options.checks,
            faults,
            market,
            worker,
            feed,
            worker_store,
            engines,
            offsets,
            catalog,
            editor: Editor::new(scenario, seed),
            oracle,
            safety: Safety::default(),
            guarantee,
            seed_strategies,
            seed_every_ms,
            next_seed_sample: scenario.start_ms.saturating_add(seed_every_ms),
            next_sample: scenario.start_ms,
            paused_until: None,
            held_updates: Vec::new(),
            up: true,
            previous: scenario.start_ms - tick,
            log: Sha256::new(),
            strategy_buckets: StrategyBuckets::default(),
            first_violation: None,
            safety_violation: None,
            stats,
            laps: Laps::start(),
        })
    }

    pub fn stats(&self) -> &RunStats {
        &self.stats
    }

    /// One tick at `now`: every phase, in order.
    pub async fn tick(&mut self, now: i64) -> Result<(), StoreError> {
        self.apply_faults(now).await?;
        self.feed(now).await?;
        self.post_results(now).await?;
        let (ready, step_us) = self.step_engines(now).await;
        self.read_dead_letters(now).await?;
        self.sample_seed_faithful(now, step_us).await;
        let jobs = self.work(now).await?;
        // The independent checker first: a bucket closing now is judged after this tick's
        // dispatches, and before the oracle may end the run.
        self.guarantee.close_tick(now);
        self.laps.lap(&mut self.stats, "independent checker");
        if ready {
            let checked = self.check(now, &jobs);
            if self.oracle_judges() {
                self.judge(checked);
            }
        }
        self.laps.lap(&mut self.stats, "oracle");
        let sampled = self.sample(now).await;
        self.judge(sampled);
        self.stats.ticks += 1;
        self.stats.timeline.at(now).ticks += 1;
        self.previous = now;
        Ok(())
    }

    /// Records a violation from the oracle, the `fred` reader or the memory bound, unless
    /// only the independent checker judges the run.
    fn judge(&mut self, checked: Result<(), Violation>) {
        let Err(v) = checked else { return };
        if self.checks == Checks::Independent {
            return;
        }
        if self.safety_violation.is_none() && matches!(v, Violation::Safety { .. }) {
            self.safety_violation = Some(v.clone());
        }
        self.first_violation.get_or_insert(v);
    }

    /// The oracle's (or reader's, or memory bound's) first violation, if any.
    pub fn first_violation(&self) -> Option<&Violation> {
        self.first_violation.as_ref()
    }

    /// Whether either checker has found safety broken so far.
    pub fn safety_found(&self) -> bool {
        let found = &self.guarantee.summary().found;
        self.safety_violation.is_some() || found.iter().any(|(k, n)| k.is_safety() && *n > 0)
    }

    /// What stopped the run: the first safety violation of the oracle if there is one, else
    /// its first violation.
    pub fn stopped(&self) -> Option<Violation> {
        self.safety_violation
            .clone()
            .or_else(|| self.first_violation.clone())
    }

    /// The oracle evaluates at the simulation's time: with instances' clocks skewed it
    /// cannot judge their decisions near bucket ends (the independent checker does).
    fn oracle_judges(&self) -> bool {
        self.offsets.iter().all(|o| *o == 0)
    }

    /// What the run measured, once it is over (or stopped), the independent checker's
    /// summary included.
    pub fn finish(mut self, started: Instant) -> RunStats {
        for engine in &self.engines {
            self.stats.dead_letters += Metrics::get(&engine.metrics().dead_letters);
        }
        self.guarantee.finish();
        self.stats.guarantee = self.guarantee.summary().clone();
        self.stats.oracle_judged = self.oracle_judges() && self.checks == Checks::All;
        Laps::finish(&mut self.stats);
        self.stats.digest = format!("{:x}", self.log.finalize());
        self.stats.wall = started.elapsed();
        self.stats
    }

    /// Phase 1: the scenario's faults due in `(previous, now]`; then the end of a pause.
    async fn apply_faults(&mut self, now: i64) -> Result<(), StoreError> {
        let (scenario, previous) = (self.scenario, self.previous);
        let supported = self.faults.supported();
        for fault in scenario.faults.iter().filter(|f| {
            let at = scenario.start_ms + f.at_ms;
            previous < at && at <= now
        }) {
            let in_memory_too = matches!(
                fault.kind,
                FaultKind::MalformedResults { .. }
                    | FaultKind::MarketBurst
                    | FaultKind::CatalogEdit { .. }
                    | FaultKind::CatalogDelete { .. }
            );
            let edit = matches!(
                fault.kind,
                FaultKind::CatalogEdit { .. } | FaultKind::CatalogDelete { .. }
            );
            let skipped = if edit && self.paused_until.is_some() {
                Some("Redis paused")
            } else if !supported && !in_memory_too {
                Some("no Redis of this run's own")
            } else {
                None
            };
            self.stats.timeline.faults.push(AppliedFault {
                at_ms: now,
                offset_ms: fault.at_ms,
                kind: fault.kind.clone(),
                skipped,
            });
            if skipped.is_none() {
                self.inject(now, &fault.kind).await?;
            }
        }
        if let Some(until) = self.paused_until
            && now >= until
        {
            self.faults.resume().await.map_err(infra)?;
            self.guarantee.redis_resumed();
            self.paused_until = None;
        }
        self.up = self.paused_until.is_none();
        self.laps.lap(&mut self.stats, "faults");
        Ok(())
    }

    async fn inject(&mut self, now: i64, kind: &FaultKind) -> Result<(), StoreError> {
        match kind {
            FaultKind::RedisPause { duration_ms } => {
                self.faults.pause().await.map_err(infra)?;
                self.guarantee.redis_paused(now);
                self.paused_until = Some(now + duration_ms);
            }
            FaultKind::RedisRestartEmpty => {
                self.faults.restart_empty().await.map_err(infra)?;
                // The engines write their claims back (DESIGN §9): the safety checker keeps
                // what was dispatched before.
                self.guarantee.redis_restarted_empty(now);
                self.oracle.forget_redis_state();
            }
            FaultKind::ScriptFlush => {
                self.faults.script_flush().await.map_err(infra)?;
                self.guarantee.script_flushed();
            }
            FaultKind::MalformedResults { count } => {
                let malformed: Vec<(String, String)> = (0..*count)
                    .map(|i| ("0-0".to_owned(), format!("{{\"job_id\":\"malformed-{i}\"")))
                    .collect();
                self.worker_store.finish_jobs(&malformed).await?;
            }
            FaultKind::MarketBurst => {
                // Written by the feed phase that follows, with this tick's updates.
                let stamp = now - 1;
                let burst = self.market.listed().into_iter().map(|t| (t, stamp));
                self.held_updates.extend(burst);
            }
            FaultKind::CatalogEdit { count } => {
                let listed = self.market.listed();
                let writes = self.editor.edit(&self.catalog, &listed, *count as usize);
                self.write_catalog(now, writes).await?;
            }
            FaultKind::CatalogDelete { count } => {
                let writes = self.editor.delete(&self.catalog, *count as usize);
                self.write_catalog(now, writes).await?;
            }
        }
        Ok(())
    }

    /// The platform writes the catalog (before the engines step, so each sees it this
    /// tick): Redis, the scenario's copy, the independent checker and the oracle.
    async fn write_catalog(&mut self, now: i64, writes: Vec<Write>) -> Result<(), StoreError> {
        for (id, json) in writes {
            once_more(|| self.feed.catalog_write(id, json.as_deref(), None)).await?;
            self.guarantee.catalog(now, id, json.as_deref(), false);
            let strategy = json
                .as_deref()
                .and_then(|j| Strategy::from_catalog(id, j).ok())
                .map(|(s, _)| s)
                .filter(|s| s.active);
            match strategy {
                Some(s) => self.oracle.strategies.insert(id, s),
                None => self.oracle.strategies.remove(&id),
            };
            match json {
                Some(j) => self.catalog.insert(id, j),
                None => self.catalog.remove(&id),
            };
        }
        Ok(())
    }

    /// Phase 2: the market's events of `[previous, now)`; its updates are written unless
    /// Redis is paused (then held back), and recorded by the oracle.
    async fn feed(&mut self, now: i64) -> Result<(), StoreError> {
        let step = self.market.step(self.previous, now);
        self.laps.lap(&mut self.stats, "market");
        self.held_updates.extend(step.updates);
        if !self.up || self.held_updates.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.held_updates);
        // The checker sees every update the market made now, as the oracle does: a
        // sabotage loses some inside the system under test.
        self.guarantee.updates(now, &batch);
        // The feed's store rejects a batch with a stamp too far ahead of its clock
        // (DESIGN §2.3): a well-behaved feed drops those stamps, and so does the oracle.
        let batch = admitted(now, batch);
        if self.sabotage == Some(Sabotage::DropUpdates) {
            self.oracle.record(&batch);
            let kept: Vec<(String, i64)> = batch
                .into_iter()
                .enumerate()
                .filter(|(i, _)| i % 10 != 0)
                .map(|(_, u)| u)
                .collect();
            once_more(|| write_updates(&self.feed, now, &kept)).await
        } else {
            once_more(|| write_updates(&self.feed, now, &batch)).await?;
            self.oracle.record(&batch);
            Ok(())
        }
    }

    /// Phase 3: the worker's results due by `now`: failures release their claims (in the
    /// oracle and in the safety checker's ledger), `used_symbols` replace universes.
    async fn post_results(&mut self, now: i64) -> Result<(), StoreError> {
        if self.up {
            let due = self.worker.due(now);
            for answer in &due {
                let used = answer.used_symbols.as_deref();
                let (job, taken) = (&answer.payload, answer.taken_ms);
                self.guarantee.result(now, job, taken, answer.success, used);
                if !answer.success {
                    self.oracle.fail(&answer.job);
                    self.safety.release(&answer.job);
                }
                if let Some(used) = &answer.used_symbols {
                    self.oracle.discover(answer.job.strategy_id, used);
                }
            }
            once_more(|| Worker::post(&self.worker_store, &due)).await?;
        }
        self.laps.lap(&mut self.stats, "feed and results");
        Ok(())
    }

    /// Phase 4: every engine instance steps at `now`, in a fixed order, and persists what
    /// it discovered. Returns whether any reached Redis, and their wall time in µs.
    async fn step_engines(&mut self, now: i64) -> (bool, u64) {
        let round_trips = |e: &Engine<S>| {
            e.store()
                .counters()
                .round_trips
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        let (mut any_ready, mut step_us) = (false, 0);
        let instances = self.engines.iter_mut().zip(&self.offsets).enumerate();
        for (instance, (engine, offset)) in instances {
            let before = round_trips(engine);
            let t = Instant::now();
            let report = engine.step(now + offset).await;
            let us = t.elapsed().as_micros() as u64;
            step_us += us;
            self.stats.tick_us.saturating_record(us.max(1));
            self.stats.timeline.step(now, instance, us);
            engine
                .persister()
                .pass(&**engine.store(), engine.metrics())
                .await;
            let made = round_trips(engine) - before;
            self.stats.round_trips += made;
            self.stats.timeline.at(now).round_trips += made;
            self.guarantee.engine_step(report.ready);
            any_ready |= report.ready;
        }
        self.laps.lap(&mut self.stats, "engine");
        (any_ready, step_us)
    }

    /// Phase 4b: the job entries the engine dead-lettered this tick, for the independent
    /// checker (their claims are released).
    async fn read_dead_letters(&mut self, now: i64) -> Result<(), StoreError> {
        if !self.up {
            return Ok(());
        }
        if let Some(dead) = self.faults.dead_jobs_appended().await {
            for job in dead.map_err(infra)? {
                self.guarantee.dead_letter(now, &job);
            }
        }
        Ok(())
    }

    /// Phase 4c: now and then, the seed-faithful tick on the same data (its own claim
    /// keys), timed beside tickgate's steps at the same instant.
    async fn sample_seed_faithful(&mut self, now: i64, step_us: u64) {
        if self.up && now >= self.next_seed_sample {
            self.next_seed_sample += self.seed_every_ms;
            match self
                .faults
                .seed_faithful_tick(now, &self.seed_strategies)
                .await
            {
                Some(Ok(elapsed)) => {
                    let us = (elapsed.as_micros() as u64).max(1);
                    self.stats.seed_tick_us.saturating_record(us);
                    self.stats.sampled_tick_us.saturating_record(step_us.max(1));
                    self.stats.timeline.samples.push(Sample {
                        at_ms: now,
                        seed_us: us,
                        tickgate_us: step_us.max(1),
                    });
                }
                Some(Err(_)) => self.stats.seed_sample_errors += 1,
                None => {}
            }
        }
        self.laps.lap(&mut self.stats, "seed-faithful samples");
    }

    /// Phase 5: the worker takes every job through redis-rs; the independent reader must
    /// have read the same entries; each job is answered. Returns the jobs taken.
    async fn work(&mut self, now: i64) -> Result<BTreeSet<Dispatch>, StoreError> {
        let mut jobs = BTreeSet::new();
        if self.up {
            let mut taken = once_more(|| self.worker.take(&self.worker_store)).await?;
            if self.sabotage == Some(Sabotage::HideJob) {
                // A client bug that loses one entry: only the independent checker sees it.
                taken.pop();
            }
            for entry in &taken {
                self.guarantee.job(now, entry.payload.as_deref());
            }
            if let Some(appended) = self.faults.jobs_appended().await {
                let appended = appended.map_err(infra)?;
                let seen: Vec<Entry> = taken
                    .iter()
                    .map(|e| (e.id.clone(), e.payload.clone()))
                    .collect();
                self.judge(fred::check(now, &seen, &appended));
            }
            for entry in taken {
                self.answer(now, entry, &mut jobs).await?;
            }
        }
        self.laps.lap(&mut self.stats, "workers");
        Ok(jobs)
    }

    /// The worker answers one job (its draws: `world::worker`).
    async fn answer(
        &mut self,
        now: i64,
        entry: StreamEntry,
        jobs: &mut BTreeSet<Dispatch>,
    ) -> Result<(), StoreError> {
        let market = &mut self.market;
        let Some(answer) = self.worker.answer(now, entry, |n| market.sample_listed(n)) else {
            return Ok(());
        };
        jobs.insert(dispatch_of(&answer.job));
        let tickers = answer.job.symbols.as_ref().map_or(0, Vec::len) as u64;
        self.stats.largest_job_tickers = self.stats.largest_job_tickers.max(tickers);
        self.stats.discoveries += u64::from(answer.used_symbols.is_some());
        self.stats.failed_runs += u64::from(!answer.success);
        if self.sabotage == Some(Sabotage::SkipClaims) && answer.job.mode == JobMode::PerTicker {
            sabotage::drop_claims(&self.worker_store, now, &answer.job).await?;
        }
        Ok(())
    }

    /// Phase 6: the oracle's full evaluation at `now` against the union of the instances'
    /// jobs; the decisions that pass go into the decision log.
    fn check(&mut self, now: i64, jobs: &BTreeSet<Dispatch>) -> Result<(), Violation> {
        let (want, counts) = self.oracle.tick(now);
        self.stats.run_everything += counts.run_everything;
        self.stats.seed_round_trips += counts.seed_round_trips;
        let bin = self.stats.timeline.at(now);
        bin.run_everything += counts.run_everything;
        bin.seed_round_trips += counts.seed_round_trips;
        for (reason, n) in &self.oracle.skipped {
            *self.stats.skipped.entry(reason.as_str()).or_default() += n;
        }
        let (got, want) = (merged(jobs), merged(&want));
        let verdict = check_tick(now, &got, &want, &self.safety);
        // Logged whether the oracle agrees or not: a run the oracle does not judge (clock
        // skew, `Checks::Independent`) still has its decisions in the digest.
        self.log(now, &got);
        // What was dispatched is remembered unless it repeated: a run that goes on after a
        // missed dispatch must still see a later repeat.
        if !matches!(verdict, Err(Violation::Safety { .. })) {
            self.safety.record(&got);
        }
        verdict
    }

    /// Appends a tick's decisions to the decision log (the digest's input).
    fn log(&mut self, now: i64, got: &Merged) {
        for ((id, bucket, mode), symbols) in got {
            self.log.update(format!(
                "{now}\t{id}\t{bucket}\t{}\t{}\n",
                mode.as_str(),
                symbols.iter().cloned().collect::<Vec<_>>().join(",")
            ));
            self.stats.jobs += 1;
            self.stats.timeline.at(now).jobs += 1;
            self.stats.strategy_buckets += u64::from(self.strategy_buckets.first(*id, *bucket));
            self.stats.dispatched_tickers += symbols.len() as u64;
            let claim = &mut self.stats.largest_claim_tickers;
            *claim = (*claim).max(symbols.len() as u64);
        }
    }

    /// Hourly: Redis memory (checked against the scenario's bound) and tracked tickers;
    /// the safety ledger forgets buckets that are over.
    async fn sample(&mut self, now: i64) -> Result<(), Violation> {
        if now < self.next_sample {
            return Ok(());
        }
        let mut verdict = Ok(());
        if let Some(bytes) = self.faults.used_memory().await {
            self.stats.memory.push((now, bytes));
            verdict = memory::check(now, bytes, self.scenario.cleanup.max_redis_memory_mb);
        }
        if self.up
            && let Ok(n) = self.feed.tracked_tickers().await
        {
            self.stats.tracked.push((now, n));
        }
        self.next_sample += SAMPLE_EVERY_MS;
        self.safety.retain_open(now, &self.oracle.strategies);
        verdict
    }
}
