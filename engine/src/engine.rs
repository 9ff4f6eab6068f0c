//! The engine step and the service's periodic loops (see `service.rs` for the overview).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::domain::{StrategyId, Ticker};
use crate::jobs::parse_result;
use crate::metrics::Metrics;
use crate::planner::Planner;
use crate::service::{ServiceConfig, Shared};
use crate::store::{
    FeedCursor, Intersection, PendingJob, Reaped, Store, StoreError, StrategyDispatch,
    TickerDispatch, intersect_or_fall_back,
};
use crate::throttle::{Strategy, Universe};
use crate::timeframe::Timeframe;

/// The engine's mutable state, owned by the engine loop.
#[derive(Debug)]
pub struct EngineState {
    pub(crate) planner: Planner,
    /// The catalog entries as last read: written back if Redis loses them.
    catalog: BTreeMap<StrategyId, String>,
    /// Change-log version applied.
    version: u64,
    /// Logical time of the last full catalog load (`None`: not loaded yet).
    loaded_at_ms: Option<i64>,
    /// Pending results of this consumer are re-read once after start.
    pending_checked: bool,
    /// Unacknowledged job deliveries → logical time first seen pending (bounded by
    /// `max_pending_checked`: only entries of the latest read are kept).
    pending_seen: BTreeMap<PendingJob, i64>,
    /// Where this instance stands in the update set (`TICK:SEQ`); reset on lost Redis state.
    feed: FeedCursor,
    /// The planner knows the time of every ticker updated at or after this (the `since`
    /// of the last full read); a strategy whose bucket starts earlier needs a full read.
    known_from_ms: i64,
    /// Epoch names this instance has proposed, to make each one unique.
    epochs_proposed: u64,
}

impl EngineState {
    pub fn new(config: &ServiceConfig) -> EngineState {
        EngineState {
            planner: Planner::new(config.per_ticker_throttle, config.lua_threshold),
            catalog: BTreeMap::new(),
            version: 0,
            loaded_at_ms: None,
            pending_checked: false,
            pending_seen: BTreeMap::new(),
            feed: FeedCursor::default(),
            known_from_ms: i64::MAX,
            epochs_proposed: 0,
        }
    }
}

/// Ticks at multiples of the interval, starting with the first one not before `now`.
fn next_multiple(now_ms: i64, every_ms: i64) -> i64 {
    let every_ms = every_ms.max(1);
    now_ms.div_euclid(every_ms) * every_ms
        + if now_ms.rem_euclid(every_ms) == 0 {
            0
        } else {
            every_ms
        }
}

pub(crate) async fn engine_loop<S: Store, C: Clock>(
    shared: Arc<Shared<S, C>>,
    cancel: CancellationToken,
) {
    let interval = shared.config.tick_interval_ms;
    let mut next = next_multiple(shared.clock.now_ms(), interval);
    loop {
        tokio::select! {
            // Shutdown first: once asked to stop, no new step starts.
            biased;
            _ = cancel.cancelled() => return,
            _ = shared.clock.sleep_until(next) => {}
        }
        let now = shared.clock.now_ms();
        shared.began.send_replace(now);
        let ok = step(&shared, now).await;
        shared.ready.store(ok, Ordering::Relaxed);
        shared.progress.send_replace(now);
        next = next_multiple(now + 1, interval);
    }
}

/// Attempts per engine step. A connection that broke while Redis was away fails the first
/// command after it is back; the second attempt runs on the new connection. More would only
/// delay the next tick while Redis is really down.
const STEP_ATTEMPTS: usize = 2;

/// One engine step: settle results, then tick. False if Redis could not be reached.
/// Retrying is always safe: every claim is atomic with its job.
async fn step<S: Store, C: Clock>(shared: &Shared<S, C>, now: i64) -> bool {
    let mut state = shared.state.lock().await;
    for attempt in 1..=STEP_ATTEMPTS {
        let result = async {
            sync_catalog(shared, &mut state, now).await?;
            settle_results(shared, &mut state).await?;
            reap_jobs(shared, &mut state, now).await?;
            tick(shared, &mut state, now).await
        }
        .await;
        match result {
            Ok(()) => return true,
            Err(e) => {
                Metrics::add(&shared.metrics.tick_errors, 1);
                tracing::warn!(attempt, error = %e, "engine step failed");
            }
        }
    }
    false
}

/// Loads the catalog on start (and on every resync or lost Redis state), else applies the
/// strategies changed since the last step.
async fn sync_catalog<S: Store, C: Clock>(
    shared: &Shared<S, C>,
    state: &mut EngineState,
    now: i64,
) -> Result<(), StoreError> {
    let changes = shared.store.changes_since(state.version).await?;
    let resync_due = state
        .loaded_at_ms
        .is_none_or(|at| now - at >= shared.config.catalog_resync_ms);
    if changes.state_lost && state.loaded_at_ms.is_some() {
        tracing::warn!("Redis lost its state (restart or flush): restoring catalog and universes");
        restore(shared, state).await?;
    }
    if resync_due || changes.reload_all {
        shared.store.ensure_groups().await?;
        let catalog = shared.store.catalog_all().await?;
        let mut ids: BTreeSet<StrategyId> = catalog.keys().copied().collect();
        ids.extend(state.planner.strategy_ids());
        let ids: Vec<StrategyId> = ids.into_iter().collect();
        let jsons: Vec<Option<String>> = ids.iter().map(|id| catalog.get(id).cloned()).collect();
        apply(shared, state, &ids, jsons).await?;
        state.loaded_at_ms = Some(now);
    } else if !changes.strategies.is_empty() {
        let ids: Vec<StrategyId> = changes.strategies.into_iter().collect();
        let jsons = shared.store.catalog_get(&ids).await?;
        apply(shared, state, &ids, jsons).await?;
    }
    state.version = changes.version;
    Ok(())
}

/// Applies catalog entries (and their Redis universes) to the planner. An explicit
/// universe that Redis has lost is restored from the catalog (Redis is a cache).
async fn apply<S: Store, C: Clock>(
    shared: &Shared<S, C>,
    state: &mut EngineState,
    ids: &[StrategyId],
    jsons: Vec<Option<String>>,
) -> Result<(), StoreError> {
    let mut parsed: Vec<(StrategyId, Option<Strategy>)> = Vec::with_capacity(ids.len());
    for (&id, json) in ids.iter().zip(jsons) {
        match &json {
            Some(j) => state.catalog.insert(id, j.clone()),
            None => state.catalog.remove(&id),
        };
        let strategy = match json.map(|j| Strategy::from_catalog(id, &j)) {
            None => None,
            Some(Ok((s, rejected))) => {
                if !rejected.is_empty() {
                    tracing::warn!(strategy = id, dropped = rejected.len(), first = %rejected[0], "catalog universe has invalid tickers");
                }
                Some(s)
            }
            Some(Err(e)) => {
                Metrics::add(&shared.metrics.catalog_errors, 1);
                tracing::warn!(error = %e, "catalog entry ignored; the strategy keeps its previous definition");
                continue;
            }
        };
        parsed.push((id, strategy));
    }
    let explicit: Vec<StrategyId> = parsed
        .iter()
        .filter(|(_, s)| {
            matches!(
                s,
                Some(Strategy {
                    universe: Universe::Tickers(_),
                    ..
                })
            )
        })
        .map(|(id, _)| *id)
        .collect();
    let stored: BTreeMap<StrategyId, Option<BTreeSet<Ticker>>> = explicit
        .iter()
        .copied()
        .zip(shared.store.universes(&explicit).await?)
        .collect();
    for (id, mut strategy) in parsed {
        if let Some(s) = strategy.as_mut()
            && let Universe::Tickers(declared) = &s.universe
        {
            match stored.get(&id).cloned().flatten() {
                Some(current) => s.universe = Universe::Tickers(current),
                None => {
                    let list: Vec<&str> = declared.iter().map(Ticker::as_str).collect();
                    shared.store.replace_universe(id, &list).await?;
                    Metrics::add(&shared.metrics.universe_updates, 1);
                }
            }
        }
        state.planner.upsert(id, strategy);
    }
    Ok(())
}

/// After Redis lost its state: writes the catalog and the universes back from memory (Redis
/// is a cache, not the truth), and forgets the update times and claims it lost.
async fn restore<S: Store, C: Clock>(
    shared: &Shared<S, C>,
    state: &mut EngineState,
) -> Result<(), StoreError> {
    for (id, json) in &state.catalog {
        shared.store.catalog_write(*id, Some(json), None).await?;
    }
    let ids: Vec<StrategyId> = state.planner.strategy_ids().collect();
    for id in ids {
        if let Some(Strategy {
            universe: Universe::Tickers(u),
            ..
        }) = state.planner.strategy(id)
        {
            let list: Vec<&str> = u.iter().map(Ticker::as_str).collect();
            shared.store.replace_universe(id, &list).await?;
            Metrics::add(&shared.metrics.universe_updates, 1);
        }
    }
    state.planner.forget_redis_state();
    state.feed = FeedCursor::default();
    Ok(())
}

/// Settles up to `max_results_per_tick` results.
async fn settle_results<S: Store, C: Clock>(
    shared: &Shared<S, C>,
    state: &mut EngineState,
) -> Result<(), StoreError> {
    let config = &shared.config;
    let batches = config
        .max_results_per_tick
        .div_ceil(config.results_batch.max(1));
    for _ in 0..batches {
        // After a start, first what this consumer received and never acknowledged.
        let pending = !state.pending_checked;
        let entries = shared
            .store
            .read_results(&config.consumer, config.results_batch, pending)
            .await?;
        if pending {
            state.pending_checked = true;
            if entries.is_empty() {
                continue;
            }
        }
        if entries.is_empty() {
            break;
        }
        // A short batch drained the stream: no need for another read to find it empty.
        let drained = entries.len() < config.results_batch;
        // Settle the batch in three round trips whatever its size: the verdicts (one
        // pipeline of scripts), then discoveries (rare, one by one), then acknowledgements.
        let mut verdicts = Vec::new();
        let mut discoveries = Vec::new();
        let mut acks = Vec::with_capacity(entries.len());
        for entry in entries {
            match parse_result(entry.payload.as_deref()) {
                Err(e) => {
                    Metrics::add(&shared.metrics.dead_letters, 1);
                    tracing::warn!(result_id = %entry.id, error = %e, "malformed result moved to the dead-letter stream");
                    acks.push((entry, Some(e.to_string())));
                }
                Ok((job, result)) => {
                    verdicts.push((job, result.success));
                    if let Some(symbols) = result.used_symbols.filter(|s| !s.is_empty()) {
                        discoveries.push((job.strategy, symbols));
                    }
                    acks.push((entry, None));
                }
            }
        }
        let released = shared.store.complete_jobs(&verdicts).await?;
        let m = &shared.metrics;
        for ((job, success), released) in verdicts.iter().zip(released) {
            Metrics::add(
                if *success {
                    &m.results_ok
                } else {
                    &m.results_failed
                },
                1,
            );
            if released > 0 {
                Metrics::add(&m.claims_released, released);
                state.planner.invalidate(job.strategy);
            }
        }
        for (strategy, symbols) in discoveries {
            crate::discovery::discover(shared, state, strategy, &symbols).await?;
        }
        shared.store.ack_results(&acks).await?;
        if drained {
            break;
        }
    }
    Ok(())
}

/// Re-delivers jobs that stayed unacknowledged for `job_visibility_ms` (logical time, so
/// the simulator controls it), dead-lettering those delivered `max_deliveries` times.
async fn reap_jobs<S: Store, C: Clock>(
    shared: &Shared<S, C>,
    state: &mut EngineState,
    now: i64,
) -> Result<(), StoreError> {
    let pending = shared
        .store
        .pending_jobs(shared.config.max_pending_checked)
        .await?;
    let mut seen = BTreeMap::new();
    for job in pending {
        let first = state.pending_seen.get(&job).copied().unwrap_or(now);
        if now - first >= shared.config.job_visibility_ms {
            match shared
                .store
                .reap_job(&job, shared.config.max_deliveries)
                .await?
            {
                Reaped::Redelivered => Metrics::add(&shared.metrics.jobs_redelivered, 1),
                Reaped::Dead => {
                    Metrics::add(&shared.metrics.dead_letters, 1);
                    tracing::warn!(job_entry = %job.id, deliveries = job.deliveries, "job moved to the dead-letter stream");
                }
                Reaped::Nothing => {}
            }
        } else {
            seen.insert(job, first);
        }
    }
    state.pending_seen = seen;
    Ok(())
}

/// Reads the update set once, plans, and dispatches. If anything fails after planning,
/// every planned strategy is evaluated fully next tick: the planner has consumed the
/// changes, and which claims were made is unknown (each claim is atomic with its job, so
/// re-proposing is always safe).
async fn tick<S: Store, C: Clock>(
    shared: &Shared<S, C>,
    state: &mut EngineState,
    now: i64,
) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let updates = read_updates(shared, state, now).await?;
    let plan = state.planner.plan(now, &updates);
    let m = &shared.metrics;
    for (reason, n) in &plan.skipped {
        m.skipped(*reason, *n);
    }
    Metrics::add(&m.missing_universe_fallbacks, plan.missing_universe);
    let planned: BTreeSet<StrategyId> = plan
        .tickers
        .iter()
        .map(|(id, ..)| *id)
        .chain(plan.strategies.iter().map(|(id, ..)| *id))
        .chain(plan.server_side.iter().map(|(id, _)| *id))
        .collect();
    let result = dispatch(shared, state, now, plan).await;
    if result.is_err() {
        planned
            .into_iter()
            .for_each(|id| state.planner.invalidate(id));
    }
    m.observe_tick_ms(started.elapsed().as_millis() as u64);
    result
}

/// Reads what changed in the update set since the last tick: a delta, or a full read on
/// start, after Redis lost its state, or when a strategy's bucket starts before what the
/// planner knows. The planner diffs either against what it knew, so both plan the same.
async fn read_updates<S: Store, C: Clock>(
    shared: &Shared<S, C>,
    state: &mut EngineState,
    now: i64,
) -> Result<BTreeMap<Ticker, i64>, StoreError> {
    let since_ms = state.planner.read_from_ms(now);
    let mut cursor = state.feed.clone();
    if since_ms < state.known_from_ms {
        cursor.epoch = None;
    }
    state.epochs_proposed += 1;
    let proposal = format!("{}/{now}/{}", shared.config.consumer, state.epochs_proposed);
    // Until the read succeeds the cursor is unknown: a failure leaves the next read full.
    state.feed = FeedCursor::default();
    let read = shared
        .store
        .read_updates(&cursor, since_ms, &proposal)
        .await?;
    let lost = cursor.epoch.is_some()
        && (read.cursor.epoch != cursor.epoch || read.cursor.seq < cursor.seq);
    if lost {
        // The update set is another incarnation (or its sequence went backwards): Redis
        // lost its state, even if the change log did not show it.
        tracing::warn!("the update set was lost (Redis restart or flush): restoring");
        restore(shared, state).await?;
    }
    if read.full {
        state.known_from_ms = since_ms;
    }
    state.feed = read.cursor;
    Ok(read.updates)
}

async fn dispatch<S: Store, C: Clock>(
    shared: &Shared<S, C>,
    state: &mut EngineState,
    now: i64,
    mut plan: crate::planner::Plan,
) -> Result<(), StoreError> {
    let m = &shared.metrics;
    for (id, bucket) in std::mem::take(&mut plan.server_side) {
        let before = shared
            .store
            .counters()
            .lua_fallbacks
            .load(Ordering::Relaxed);
        let changed = intersect_or_fall_back(
            &shared.store,
            id,
            bucket.start_ms,
            Intersection::AdaptiveLua,
        )
        .await?;
        let fell_back = shared
            .store
            .counters()
            .lua_fallbacks
            .load(Ordering::Relaxed)
            > before;
        Metrics::add(
            if fell_back {
                &m.lua_fallbacks
            } else {
                &m.lua_intersections
            },
            1,
        );
        plan.tickers.extend(state.planner.add_changed(id, &changed));
    }
    let user = |id: StrategyId, p: &Planner| p.strategy(id).map_or(0, |s| s.user_id);
    let requests: Vec<TickerDispatch> = plan
        .tickers
        .iter()
        .map(|(id, bucket, tickers)| TickerDispatch {
            strategy: *id,
            user_id: user(*id, &state.planner),
            bucket: *bucket,
            tickers: tickers.clone(),
        })
        .collect();
    let wholes: Vec<StrategyDispatch> = plan
        .strategies
        .iter()
        .map(|(id, bucket, mode, symbols)| StrategyDispatch {
            strategy: *id,
            user_id: user(*id, &state.planner),
            bucket: *bucket,
            mode: *mode,
            symbols: symbols.clone(),
        })
        .collect();
    let dispatched = shared.store.dispatch_tickers(now, &requests).await?;
    for (r, d) in requests.iter().zip(&dispatched) {
        state.planner.claimed(r.strategy, r.bucket, &r.tickers);
        count_run(m, d.is_some());
    }
    let runs = shared.store.dispatch_strategies(now, &wholes).await?;
    for (r, job) in wholes.iter().zip(&runs) {
        state.planner.ran(r.strategy, r.bucket);
        count_run(m, job.is_some());
    }
    Ok(())
}

/// A dispatch either enqueued a job, or found everything already claimed elsewhere.
fn count_run(m: &Metrics, enqueued: bool) {
    if enqueued {
        Metrics::add(&m.strategy_runs, 1);
        Metrics::add(&m.jobs_enqueued, 1);
    } else {
        m.skipped(crate::throttle::SkipReason::BucketDup, 1);
    }
}

pub(crate) async fn cleanup_loop<S: Store, C: Clock>(
    shared: Arc<Shared<S, C>>,
    cancel: CancellationToken,
) {
    let mut next = shared.clock.now_ms() + shared.config.cleanup_initial_delay_ms;
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            _ = shared.clock.sleep_until(next) => {}
        }
        let now = shared.clock.now_ms();
        let active: Vec<Timeframe> = {
            let state = shared.state.lock().await;
            let tfs: BTreeSet<Timeframe> = state
                .planner
                .strategy_ids()
                .filter_map(|id| state.planner.strategy(id)?.timeframe.as_ref().ok().copied())
                .collect();
            tfs.into_iter().collect()
        };
        match shared
            .store
            .cleanup(now, shared.config.retention_ms, &active)
            .await
        {
            Ok(report) => {
                Metrics::add(&shared.metrics.cleanup_operations, 1);
                Metrics::add(&shared.metrics.cleanup_removed, report.removed);
                tracing::info!(
                    removed = report.removed,
                    calls = report.calls,
                    "cleanup done"
                );
            }
            Err(e) => tracing::warn!(error = %e, "cleanup failed; next run retries"),
        }
        next = now + shared.config.cleanup_interval_ms;
    }
}

pub(crate) async fn metrics_loop<S: Store, C: Clock>(
    shared: Arc<Shared<S, C>>,
    cancel: CancellationToken,
) {
    let every = shared.config.metrics_log_interval_ms;
    let mut next = shared.clock.now_ms() + every;
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            _ = shared.clock.sleep_until(next) => {}
        }
        if let Ok(n) = shared.store.tracked_tickers().await {
            shared.metrics.tracked_tickers.store(n, Ordering::Relaxed);
        }
        {
            let state = shared.state.lock().await;
            shared
                .metrics
                .set_universe_sizes(state.planner.universe_sizes());
        }
        shared.metrics.log();
        next += every;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ticks_fall_on_multiples_of_the_interval() {
        assert_eq!(super::next_multiple(0, 10), 0);
        assert_eq!(super::next_multiple(1, 10), 10);
        assert_eq!(super::next_multiple(10, 10), 10);
        assert_eq!(super::next_multiple(19, 10), 20);
    }
}
