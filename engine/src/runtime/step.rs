//! [`Engine`]: one engine instance's state, and [`Engine::step`], everything the instance
//! does at one instant. The step never sleeps and never reads a clock: the caller passes the
//! time and the step says when it is due next (mini-redis's `purge_expired_keys`). Two
//! drivers call it: [`super::AlertService`] on a real clock, and the simulator and benches
//! on their own time (NautilusTrader's backtest kernel is the live one).
//!
//! A step, in this order (the order is what makes a simulation reproducible):
//! 1. catalog changes (or the whole catalog on start, resync, or lost Redis state);
//! 2. the workers' results (releases, discoveries, dead letters), then stale jobs, then
//!    the streams trimmed (and backpressure: no tick while the workers lag too far);
//! 3. the tick: what changed in the update set, planned incrementally, dispatched;
//! 4. periodic work that is due: cleanup, the metrics log.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::metrics::Metrics;
use super::persister::Persister;
use crate::config::EngineConfig;
use crate::core::calendar::Timeframe;
use crate::core::ledger::Ledger;
use crate::core::planner::Planner;
use crate::core::ticker::StrategyId;
use crate::limits::STEP_ATTEMPTS;
use crate::store::{CleanupReport, FeedCursor, PendingJob, PendingResult, Store, StoreError};

/// What one step did, and when the next is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// Whether the step reached Redis and was not held back by backpressure (`/readyz`);
    /// when false, nothing was dispatched and the next step retries.
    pub ready: bool,
    /// The step reached Redis (it may still have been held back by backpressure).
    pub reached_redis: bool,
    /// The workers' backlog was above `jobs_stream_max`: nothing was dispatched.
    pub backpressure: bool,
    /// Jobs this step enqueued.
    pub jobs_enqueued: u64,
    /// Results this step settled.
    pub results_settled: u64,
    /// The cleanup run, when one was due.
    pub cleanup: Option<CleanupReport>,
    /// The next multiple of the tick interval after this step: when the next step is due.
    pub next_step_ms: i64,
}

/// One engine instance: its store, settings, counters and everything it remembers between
/// steps.
pub struct Engine<S> {
    pub(super) store: Arc<S>,
    pub(super) config: EngineConfig,
    pub(super) metrics: Arc<Metrics>,
    pub(super) persister: Arc<Persister>,
    pub(super) planner: Planner,
    /// The claims this instance made in open buckets, written back after a Redis loss.
    pub(super) ledger: Ledger,
    /// Redis lost its state and the ledger's claims are not written back yet: the next
    /// tick writes them back before it dispatches.
    pub(super) write_back_due: bool,
    /// The catalog entries as last read: written back if Redis loses them.
    pub(super) catalog: BTreeMap<StrategyId, String>,
    /// Change-log version applied.
    pub(super) version: u64,
    /// Fields of the catalog hash when the change log was last read (see
    /// [`crate::store::Changes::catalog_fields`]).
    pub(super) catalog_fields: u64,
    /// Strategies set aside (bad entry, damaged key, oversized universe) → the problem last
    /// logged, so each is logged once.
    pub(super) isolated: BTreeMap<StrategyId, String>,
    /// Logical time of the last full catalog load (`None`: not loaded yet).
    pub(super) loaded_at_ms: Option<i64>,
    /// The planner's revision the universe gauges were computed at.
    gauges_revision: Option<u64>,
    /// Universe writes of this instance not yet read back from the change log: strategy →
    /// the version its write was recorded at (see `sync_catalog`).
    pub(super) own_changes: BTreeMap<StrategyId, u64>,
    /// Where the sweep (the rolling safety resync) goes on in the catalog's scan.
    pub(super) sweep_cursor: u64,
    /// Logical time of the last sweep (or full load): the next one reads the entries' share
    /// of the time since.
    pub(super) swept_at_ms: i64,
    /// Pending results of this consumer are re-read once after start.
    pub(super) pending_checked: bool,
    /// Unacknowledged job deliveries → logical time first seen pending (bounded by
    /// `max_pending_checked`: only entries of the latest read are kept).
    pub(super) pending_seen: BTreeMap<PendingJob, i64>,
    /// Results pending with other instances' consumers → logical time first seen so
    /// (bounded like `pending_seen`); taken over after `result_takeover_ms`.
    pub(super) orphans_seen: BTreeMap<PendingResult, i64>,
    /// Results the engines' group held unacknowledged at the end of the last step (after
    /// this instance acknowledged its own): only then are orphans looked for, so a step
    /// pays no round trip for them while there are none.
    pub(super) results_pending: u64,
    /// Where this instance stands in the update set (`TICK:SEQ`); reset on lost Redis state.
    pub(super) feed: FeedCursor,
    /// The time of the last successful read of the update set: the next delta also reads
    /// every ticker with a time at or after it minus `direct_write_lag_ms`.
    pub(super) feed_read_ms: i64,
    /// The planner knows the time of every ticker updated at or after this (the `since`
    /// of the last full read); a strategy whose bucket starts earlier needs a full read.
    pub(super) known_from_ms: i64,
    /// Epoch names this instance has proposed, to make each one unique.
    pub(super) epochs_proposed: u64,
    /// The last step found the workers' backlog above `jobs_stream_max` and dispatched
    /// nothing.
    pub(super) backpressure: bool,
    /// When periodic work is due (`None` until the first step sets the schedule).
    next_cleanup_ms: Option<i64>,
    next_metrics_log_ms: Option<i64>,
}

/// Ticks at multiples of the interval: the first one not before `now`.
pub fn next_multiple(now_ms: i64, every_ms: i64) -> i64 {
    let every_ms = every_ms.max(1);
    now_ms.div_euclid(every_ms) * every_ms
        + if now_ms.rem_euclid(every_ms) == 0 {
            0
        } else {
            every_ms
        }
}

impl<S: Store> Engine<S> {
    /// An engine that has not stepped yet; the first step loads the catalog.
    pub fn new(store: Arc<S>, config: EngineConfig) -> Engine<S> {
        Engine::with_metrics(store, config, Arc::default())
    }

    /// An engine counting into `metrics` (shared with whoever else counts there: the
    /// legacy shims count their calls into the legacy service's).
    pub fn with_metrics(store: Arc<S>, config: EngineConfig, metrics: Arc<Metrics>) -> Engine<S> {
        let persister = Arc::new(Persister::new(
            config.discovery_queue_capacity,
            config.discovery_attempts,
        ));
        Engine {
            store,
            planner: Planner::new(
                config.per_ticker_throttle,
                config.lua_threshold,
                config.max_future_ms,
            ),
            ledger: Ledger::default(),
            write_back_due: false,
            config,
            metrics,
            persister,
            catalog: BTreeMap::new(),
            version: 0,
            catalog_fields: 0,
            isolated: BTreeMap::new(),
            loaded_at_ms: None,
            gauges_revision: None,
            own_changes: BTreeMap::new(),
            sweep_cursor: 0,
            swept_at_ms: 0,
            pending_checked: false,
            pending_seen: BTreeMap::new(),
            orphans_seen: BTreeMap::new(),
            results_pending: 0,
            feed: FeedCursor::default(),
            feed_read_ms: i64::MIN,
            known_from_ms: i64::MAX,
            epochs_proposed: 0,
            backpressure: false,
            next_cleanup_ms: None,
            next_metrics_log_ms: None,
        }
    }

    /// The counters (DESIGN §2.9).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The store this engine runs on.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// Whether the catalog has been read in full at least once (`/readyz`).
    pub fn catalog_loaded(&self) -> bool {
        self.loaded_at_ms.is_some()
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The queue of discovered universes waiting to be written to the catalog.
    pub fn persister(&self) -> &Arc<Persister> {
        &self.persister
    }

    /// Everything due at `now_ms`: results, catalog changes, the tick, then periodic work.
    /// A failed step is retried at once, up to [`STEP_ATTEMPTS`]: every claim is atomic with
    /// its job, so retrying is always safe.
    pub async fn step(&mut self, now_ms: i64) -> StepReport {
        let jobs_before = Metrics::get(&self.metrics.jobs_enqueued);
        let settled_before = self.settled();
        let (mut ready, mut reached_redis) = (false, false);
        for attempt in 1..=STEP_ATTEMPTS {
            match self.engine_step(now_ms).await {
                Ok(()) => {
                    reached_redis = true;
                    ready = !self.backpressure;
                    break;
                }
                Err(e) => {
                    Metrics::add(&self.metrics.tick_errors, 1);
                    tracing::warn!(attempt, error = %e, "engine step failed");
                }
            }
        }
        let cleanup = self.cleanup_if_due(now_ms).await;
        // The universe gauges follow every catalog change and discovery at once; their pass
        // over all strategies is paid only after the planner changed.
        let revision = self.planner.revision();
        if self.gauges_revision != Some(revision) {
            self.gauges_revision = Some(revision);
            let active = self.planner.len() as u64;
            self.metrics
                .set_universe_sizes(active, self.planner.universe_sizes());
        }
        self.log_metrics_if_due(now_ms).await;
        StepReport {
            ready,
            reached_redis,
            backpressure: self.backpressure,
            jobs_enqueued: Metrics::get(&self.metrics.jobs_enqueued) - jobs_before,
            results_settled: self.settled() - settled_before,
            cleanup,
            next_step_ms: next_multiple(now_ms + 1, self.config.tick_interval_ms),
        }
    }

    fn settled(&self) -> u64 {
        Metrics::get(&self.metrics.results_ok) + Metrics::get(&self.metrics.results_failed)
    }

    async fn engine_step(&mut self, now_ms: i64) -> Result<(), StoreError> {
        self.sync_catalog(now_ms).await?;
        self.settle_results().await?;
        self.take_over_results(now_ms).await?;
        self.reap_jobs(now_ms).await?;
        if self.hold_back().await? {
            return Ok(());
        }
        self.tick(now_ms).await
    }

    /// Trims the streams below what every group has acknowledged, and applies backpressure
    /// (DESIGN §2.8): while the workers leave more than `jobs_stream_max` jobs
    /// unacknowledged, the tick is skipped — nothing is read, claimed or enqueued, so
    /// nothing is lost; the next tick after the workers catch up dispatches every change.
    async fn hold_back(&mut self) -> Result<bool, StoreError> {
        let report = self.store.trim_streams().await?;
        let m = &self.metrics;
        Metrics::add(&m.stream_entries_trimmed, report.trimmed);
        m.set_streams(&report);
        self.results_pending = report.results_pending;
        let over = report.jobs_backlog > self.config.jobs_stream_max;
        if over {
            Metrics::add(&m.backpressure_steps, 1);
            if !self.backpressure {
                tracing::warn!(
                    backlog = report.jobs_backlog,
                    jobs_stream_max = self.config.jobs_stream_max,
                    "workers lag: dispatch paused (backpressure), not ready"
                );
            }
        } else if self.backpressure {
            tracing::info!(
                backlog = report.jobs_backlog,
                "workers caught up: dispatch resumes"
            );
        }
        self.backpressure = over;
        Ok(over)
    }

    /// The timeframes of the active strategies (cleanup's effective retention needs them).
    pub fn active_timeframes(&self) -> Vec<Timeframe> {
        let tfs: BTreeSet<Timeframe> = self
            .planner
            .strategy_ids()
            .filter_map(|id| self.planner.strategy(id)?.timeframe.as_ref().ok().copied())
            .collect();
        tfs.into_iter().collect()
    }

    /// Runs the retention cleanup if it is due: first `cleanup_initial_delay_ms` after the
    /// first step, then every `cleanup_interval_ms`, never before the catalog has loaded.
    /// A failure is retried at the next run.
    async fn cleanup_if_due(&mut self, now_ms: i64) -> Option<CleanupReport> {
        let due = *self
            .next_cleanup_ms
            .get_or_insert(now_ms + self.config.cleanup_initial_delay_ms);
        // Until the catalog is loaded the active timeframes are unknown, so the effective
        // retention is too: the raw one could remove what a quarterly strategy still needs.
        if now_ms < due || self.loaded_at_ms.is_none() {
            return None;
        }
        self.next_cleanup_ms = Some(now_ms + self.config.cleanup_interval_ms);
        let active = self.active_timeframes();
        match self
            .store
            .cleanup(now_ms, self.config.retention_ms, &active)
            .await
        {
            Ok(report) => {
                Metrics::add(&self.metrics.cleanup_operations, 1);
                Metrics::add(&self.metrics.cleanup_removed, report.removed);
                tracing::info!(
                    removed = report.removed,
                    calls = report.calls,
                    "cleanup done"
                );
                Some(report)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cleanup failed; next run retries");
                None
            }
        }
    }

    /// Refreshes the tracked-tickers gauge (one `ZCARD`) and logs the seed's metric lines,
    /// at the first step (so `/metrics` holds them from the start) and then every
    /// `metrics_log_interval_ms`.
    async fn log_metrics_if_due(&mut self, now_ms: i64) {
        let every = self.config.metrics_log_interval_ms;
        let due = *self.next_metrics_log_ms.get_or_insert(now_ms);
        if now_ms < due {
            return;
        }
        self.next_metrics_log_ms = Some(due + every);
        if let Ok(n) = self.store.tracked_tickers().await {
            self.metrics.tracked_tickers.store(n, Ordering::Relaxed);
        }
        self.metrics.log();
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
