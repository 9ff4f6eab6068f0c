//! Step 3: the tick (DESIGN §2.3–2.5). Read what changed in the update set once, plan
//! incrementally, ask Redis for the changed tickers of large dirty universes, and dispatch
//! — each claim atomic with its job, batched.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use super::metrics::Metrics;
use super::step::Engine;
use crate::core::planner::Plan;
use crate::core::rule::SkipReason;
use crate::core::ticker::StrategyId;
use crate::limits::{JOB_TICKERS_MAX, LEDGER_KEEP_TICKS};
use crate::store::{
    FeedCursor, FeedRead, Intersection, RunOutcome, Store, StoreError, StrategyDispatch,
    TickerDispatch, intersect_or_fall_back,
};

impl<S: Store> Engine<S> {
    /// Reads the update set once, plans, and dispatches. If anything fails after planning,
    /// every planned strategy is evaluated fully next tick: the planner has consumed the
    /// changes, and which claims were made is unknown (each claim is atomic with its job,
    /// so re-proposing is always safe).
    pub(super) async fn tick(&mut self, now_ms: i64) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let keep_ms = self.config.tick_interval_ms * LEDGER_KEEP_TICKS;
        self.ledger.prune(now_ms, keep_ms);
        let updates = self.read_updates(now_ms).await?;
        // A restore (found here or by the catalog sync) owes the claims back first. Then
        // this instance waits one tick before it dispatches: every other instance writes its
        // claims back at its own first tick after the loss, so none re-dispatches another's
        // claim. The next read is full, so the planner loses nothing read now.
        if self.write_back_due {
            self.write_back_claims(now_ms).await?;
            self.write_back_due = false;
            self.feed = FeedCursor::default();
            return Ok(());
        }
        let plan = self.planner.plan(now_ms, &updates.updates, &updates.before);
        let m = &self.metrics;
        for (reason, n) in &plan.skipped {
            m.skipped(*reason, *n);
        }
        Metrics::add(&m.missing_universe_fallbacks, plan.missing_universe);
        Metrics::add(&m.future_stamps, plan.future_stamps);
        let planned: BTreeSet<StrategyId> = plan
            .tickers
            .iter()
            .map(|(id, ..)| *id)
            .chain(plan.strategies.iter().map(|(id, ..)| *id))
            .chain(plan.server_side.iter().map(|(id, _)| *id))
            .collect();
        let result = self.dispatch(now_ms, plan).await;
        if result.is_err() {
            planned
                .into_iter()
                .for_each(|id| self.planner.invalidate(id));
        }
        // Wall time only measures the tick for the histogram; no decision depends on it.
        self.metrics
            .observe_tick_ms(started.elapsed().as_millis() as u64);
        result
    }

    /// Reads what changed in the update set since the last tick: a delta, or a full read on
    /// start, after Redis lost its state, or when a strategy's bucket starts before what the
    /// planner knows. The planner diffs either against what it knew, so both plan the same.
    async fn read_updates(&mut self, now_ms: i64) -> Result<FeedRead, StoreError> {
        let since_ms = self.planner.read_from_ms(now_ms);
        let mut cursor = self.feed.clone();
        if since_ms < self.known_from_ms {
            cursor.epoch = None;
        }
        self.epochs_proposed += 1;
        let proposal = format!("{}/{now_ms}/{}", self.config.consumer, self.epochs_proposed);
        // Until the read succeeds the cursor is unknown: a failure leaves the next read full.
        self.feed = FeedCursor::default();
        // A direct writer's update since the last read, stamped up to the lag before it (a
        // delta only: a full read sees every time from `since_ms`).
        let recent_ms = self
            .feed_read_ms
            .saturating_sub(self.config.direct_write_lag_ms)
            .max(since_ms);
        let read = self
            .store
            .read_updates(&cursor, since_ms, recent_ms, &proposal)
            .await?;
        let lost = cursor.epoch.is_some()
            && (read.cursor.epoch != cursor.epoch || read.cursor.seq < cursor.seq);
        if lost {
            // The update set is another incarnation (or its sequence went backwards): Redis
            // lost its state, even if the change log did not show it.
            tracing::warn!("the update set was lost (Redis restart or flush): restoring");
            self.restore().await?;
        }
        if read.full {
            self.known_from_ms = since_ms;
        }
        self.feed = read.cursor.clone();
        // The engine records nothing itself: what it reports is every writer's record-script
        // calls, which the read hands back for free.
        let writes = &self.metrics.ticker_updates;
        writes.store(read.cursor.seq, std::sync::atomic::Ordering::Relaxed);
        self.feed_read_ms = now_ms;
        Ok(read)
    }

    /// Asks Redis for the changed tickers of the plan's large dirty universes (Lua, falling
    /// back to client-side), then dispatches everything the plan holds.
    async fn dispatch(&mut self, now_ms: i64, mut plan: Plan) -> Result<(), StoreError> {
        for (id, bucket) in std::mem::take(&mut plan.server_side) {
            let fallbacks = &self.store.counters().lua_fallbacks;
            let before = fallbacks.load(Ordering::Relaxed);
            let changed = match intersect_or_fall_back(
                &*self.store,
                id,
                bucket.start_ms,
                Intersection::AdaptiveLua,
            )
            .await
            {
                Err(StoreError::Damaged(damaged)) => {
                    self.isolate_damaged(damaged);
                    continue;
                }
                other => other?,
            };
            let fell_back = fallbacks.load(Ordering::Relaxed) > before;
            let m = &self.metrics;
            Metrics::add(
                if fell_back {
                    &m.lua_fallbacks
                } else {
                    &m.lua_intersections
                },
                1,
            );
            plan.tickers.extend(self.planner.add_changed(id, &changed));
        }
        let wholes: Vec<StrategyDispatch> = plan
            .strategies
            .iter()
            .map(|(id, bucket, mode, symbols)| StrategyDispatch {
                strategy: *id,
                user_id: self.user_of(*id),
                bucket: *bucket,
                mode: *mode,
                symbols: symbols.clone(),
            })
            .collect();
        self.dispatch_tickers(now_ms, &plan).await?;
        let runs = self.store.dispatch_strategies(now_ms, &wholes).await?;
        self.record_runs(&wholes, runs);
        Ok(())
    }

    /// The user a strategy's jobs name (0 for one no longer tracked).
    fn user_of(&self, id: StrategyId) -> u64 {
        self.planner.strategy(id).map_or(0, |s| s.user_id)
    }

    /// The plan's per-ticker proposals: claimed and enqueued, then recorded (planner,
    /// ledger, metrics). A proposal of more than [`JOB_TICKERS_MAX`] tickers goes out as
    /// several jobs (each claim atomic with its own job), so no script call blocks Redis for
    /// long; `origin` maps each request back to its proposal.
    async fn dispatch_tickers(&mut self, now_ms: i64, plan: &Plan) -> Result<(), StoreError> {
        let mut requests: Vec<TickerDispatch> = Vec::with_capacity(plan.tickers.len());
        let mut origin: Vec<usize> = Vec::with_capacity(plan.tickers.len());
        for (i, (id, bucket, tickers)) in plan.tickers.iter().enumerate() {
            for part in tickers.chunks(JOB_TICKERS_MAX) {
                requests.push(TickerDispatch {
                    strategy: *id,
                    user_id: self.user_of(*id),
                    bucket: *bucket,
                    tickers: part.to_vec(),
                });
                origin.push(i);
            }
        }
        let dispatched = self.store.dispatch_tickers(now_ms, &requests).await?;
        // Per proposal: whether any of its jobs was enqueued (`None`: its key is damaged).
        let mut enqueued: Vec<Option<bool>> = vec![Some(false); plan.tickers.len()];
        for ((r, d), &i) in requests.iter().zip(dispatched).zip(&origin) {
            let d = match d {
                Ok(d) => d,
                Err(damaged) => {
                    self.isolate_damaged(damaged);
                    enqueued[i] = None;
                    continue;
                }
            };
            self.planner.claimed(r.strategy, r.bucket, &r.tickers);
            if let Some(d) = &d {
                self.ledger.claimed(d.job, r.bucket, &d.tickers);
                Metrics::add(&self.metrics.jobs_enqueued, 1);
            }
            if let Some(any) = &mut enqueued[i] {
                *any |= d.is_some();
            }
        }
        for (i, any) in enqueued.into_iter().enumerate() {
            // A closing pass found all claimed is no skip: skips describe current buckets.
            match any {
                Some(true) => Metrics::add(&self.metrics.strategy_runs, 1),
                Some(false) if i >= plan.closing => self.metrics.skipped(SkipReason::BucketDup, 1),
                _ => {}
            }
        }
        Ok(())
    }

    /// Records what the whole-strategy dispatches did; a damaged run key sets its strategy
    /// aside (DESIGN §2.3, Isolation) and the others are recorded.
    fn record_runs(&mut self, wholes: &[StrategyDispatch], runs: Vec<RunOutcome>) {
        for (r, job) in wholes.iter().zip(runs) {
            let job = match job {
                Ok(job) => job,
                Err(damaged) => {
                    self.isolate_damaged(damaged);
                    continue;
                }
            };
            self.planner.ran(r.strategy, r.bucket);
            if job.is_some() {
                self.ledger.ran(r.strategy, r.bucket);
            }
            count_run(&self.metrics, job.is_some());
        }
    }
}

impl<S: Store> Engine<S> {
    /// After Redis lost its state, and before this instance dispatches again: the claims
    /// it made in open buckets go back (DESIGN §9), so the loss never makes it dispatch a
    /// ticker twice in a bucket. Other instances write back their own.
    pub(super) async fn write_back_claims(&mut self, now_ms: i64) -> Result<(), StoreError> {
        let back = self.ledger.write_back();
        let written = self.store.restore_claims(now_ms, &back).await?;
        Metrics::add(&self.metrics.claims_written_back, written);
        tracing::warn!(
            claims_written_back = written,
            buckets = back.tickers.len() + back.runs.len(),
            "claims of open buckets written back after the loss"
        );
        Ok(())
    }
}

/// A dispatch either enqueued a job, or found everything already claimed elsewhere.
fn count_run(m: &Metrics, enqueued: bool) {
    if enqueued {
        Metrics::add(&m.strategy_runs, 1);
        Metrics::add(&m.jobs_enqueued, 1);
    } else {
        m.skipped(SkipReason::BucketDup, 1);
    }
}
