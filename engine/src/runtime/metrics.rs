//! Every counter of DESIGN §2.9 in one struct, shared by the engine and its driver and read by
//! the operating surface (Prometheus export) and the 5-minute log lines.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::core::rule::SkipReason;
use crate::store::StreamsReport;

/// Upper bounds (ms) of the tick-duration histogram buckets: a tick should take
/// milliseconds; the top buckets catch a stalled Redis.
pub const TICK_MS_BUCKETS: [u64; 10] = [1, 2, 5, 10, 25, 50, 100, 250, 1_000, 10_000];

/// Counters and gauges. All relaxed atomics: each is independent and only ever read for
/// reporting.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Update writes by every writer through the record script (the sequence number of the
    /// update set as last read; from 0 again when Redis loses its state).
    pub ticker_updates: AtomicU64,
    pub universe_updates: AtomicU64,
    pub strategy_runs: AtomicU64,
    pub skipped_no_update: AtomicU64,
    pub skipped_bucket_dup: AtomicU64,
    pub skipped_invalid_timeframe: AtomicU64,
    /// Strategies skipped because their catalog universe is above `max_universe`.
    pub skipped_oversized_universe: AtomicU64,
    /// Strategies skipped because one of their keys holds the wrong type.
    pub skipped_damaged_key: AtomicU64,
    /// Strategies run strategy-level because no universe could be had.
    pub missing_universe_fallbacks: AtomicU64,
    /// Update times read from Redis more than `max_future_ms` ahead of the clock (a direct
    /// writer's bogus stamp): ignored until the clock comes within the bound (DESIGN §2.3).
    /// Counted once per time read.
    pub future_stamps: AtomicU64,
    pub cleanup_operations: AtomicU64,
    pub cleanup_removed: AtomicU64,
    pub lua_intersections: AtomicU64,
    pub lua_fallbacks: AtomicU64,
    pub universe_discoveries: AtomicU64,
    /// `used_symbols` entries dropped as invalid tickers.
    pub discovery_invalid_symbols: AtomicU64,
    /// `used_symbols` lists rejected whole (none valid, or above `max_universe`).
    pub discovery_rejected: AtomicU64,
    /// Discovered universes not persisted to the catalog after every retry.
    pub discovery_persist_failures: AtomicU64,
    pub deprecated_calls: AtomicU64,
    pub jobs_enqueued: AtomicU64,
    pub results_ok: AtomicU64,
    pub results_failed: AtomicU64,
    /// Claims released by failed results.
    pub claims_released: AtomicU64,
    /// Claims this instance wrote back after Redis lost its state (DESIGN §9).
    pub claims_written_back: AtomicU64,
    /// Malformed results, results of jobs never issued and undeliverable jobs moved to the
    /// dead-letter stream.
    pub dead_letters: AtomicU64,
    /// Results that found no open job to settle (a duplicate, or later than their bucket's
    /// records): acknowledged, they change nothing.
    pub results_late: AtomicU64,
    /// Dead letters that could not be written: their results stay pending and are retried.
    pub dead_letter_failures: AtomicU64,
    /// Steps that dispatched nothing because the workers left more than `jobs_stream_max`
    /// jobs unacknowledged (backpressure).
    pub backpressure_steps: AtomicU64,
    /// Acknowledged entries trimmed from the jobs and results streams.
    pub stream_entries_trimmed: AtomicU64,
    /// Jobs re-delivered after a worker held them past the visibility timeout.
    pub jobs_redelivered: AtomicU64,
    /// Results another instance read and never acknowledged (it crashed, or was renamed),
    /// taken over and settled by this one after `result_takeover_ms`.
    pub results_taken_over: AtomicU64,
    /// Strategies the catalog sweep re-applied: entry rewritten, universe written, or key
    /// repaired without the change log (a writer bypassing it).
    pub catalog_sweep_reapplied: AtomicU64,
    /// Catalog entries that could not be parsed (the strategy is left as it was).
    /// (`skipped{reason=invalid_entry}`)
    pub catalog_errors: AtomicU64,
    /// Ticks that failed (Redis unreachable); the next tick retries.
    pub tick_errors: AtomicU64,
    /// Gauge: the engine's clock minus Redis's (`TIME`) at the last check, in ms (signed);
    /// the service checks before every step when `max_clock_skew_ms` is set.
    pub clock_skew_ms: AtomicI64,
    /// Steps not taken because the clock was further from Redis's than `max_clock_skew_ms`
    /// (the instance is not ready meanwhile).
    pub clock_skew_skips: AtomicU64,
    /// Gauge: `ZCARD TICK:UPD` at the last metrics refresh.
    pub tracked_tickers: AtomicU64,
    /// Gauges: universes of size ≤10, ≤100, ≤1000, >1000, and the total size.
    pub universe_size_buckets: [AtomicU64; 4],
    pub universe_size_total: AtomicU64,
    pub active_strategies: AtomicU64,
    /// Gauges, as the last step that reached Redis found the streams (the step reads them
    /// anyway to trim them, so a scrape costs Redis nothing): jobs delivered to a worker
    /// and not acknowledged, jobs not yet delivered to any worker (the workers' lag), and
    /// the same two for results and the engines.
    pub jobs_pending: AtomicU64,
    pub jobs_lag: AtomicU64,
    pub results_pending: AtomicU64,
    pub results_lag: AtomicU64,
    /// Tick durations, counted per [`TICK_MS_BUCKETS`] bound (last slot: above all).
    pub tick_ms_histogram: [AtomicU64; 11],
    pub tick_ms_sum: AtomicU64,
    pub ticks: AtomicU64,
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Counts a skipped strategy.
    pub fn skipped(&self, reason: SkipReason, n: u64) {
        let counter = match reason {
            SkipReason::NoUpdate => &self.skipped_no_update,
            SkipReason::BucketDup => &self.skipped_bucket_dup,
            SkipReason::InvalidTimeframe => &self.skipped_invalid_timeframe,
        };
        Metrics::add(counter, n);
    }

    /// Records one tick's duration.
    pub fn observe_tick_ms(&self, ms: u64) {
        let slot = TICK_MS_BUCKETS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(TICK_MS_BUCKETS.len());
        Metrics::add(&self.tick_ms_histogram[slot], 1);
        Metrics::add(&self.tick_ms_sum, ms);
        Metrics::add(&self.ticks, 1);
    }

    /// Replaces the stream gauges with what a step found.
    pub fn set_streams(&self, report: &StreamsReport) {
        let set = |gauge: &AtomicU64, value: u64| gauge.store(value, Ordering::Relaxed);
        set(&self.jobs_pending, report.jobs_pending);
        set(
            &self.jobs_lag,
            report.jobs_backlog.saturating_sub(report.jobs_pending),
        );
        set(&self.results_pending, report.results_pending);
        let results_lag = report
            .results_backlog
            .saturating_sub(report.results_pending);
        set(&self.results_lag, results_lag);
    }

    /// Strategies with an explicit universe (the size classes summed).
    pub fn with_universe(&self) -> u64 {
        self.universe_size_buckets.iter().map(Metrics::get).sum()
    }

    /// Replaces the strategy gauges: `active` strategies, and the sizes of the explicit
    /// universes among them (global and missing ones have none).
    pub fn set_universe_sizes(&self, active: u64, sizes: impl Iterator<Item = usize>) {
        let mut buckets = [0u64; 4];
        let mut total = 0u64;
        for size in sizes {
            let slot = match size {
                0..=10 => 0,
                11..=100 => 1,
                101..=1000 => 2,
                _ => 3,
            };
            buckets[slot] += 1;
            total += size as u64;
        }
        for (gauge, value) in self.universe_size_buckets.iter().zip(buckets) {
            gauge.store(value, Ordering::Relaxed);
        }
        self.universe_size_total.store(total, Ordering::Relaxed);
        self.active_strategies.store(active, Ordering::Relaxed);
    }

    /// The seed's five log lines (every 5 minutes), through `tracing`.
    pub fn log(&self) {
        let g = Metrics::get;
        tracing::info!(
            "Enhanced Redis metrics - Ticker updates: {}, Universe updates: {}, Total tracked: {}",
            g(&self.ticker_updates),
            g(&self.universe_updates),
            g(&self.tracked_tickers)
        );
        tracing::info!(
            "Per-ticker throttling - Strategy runs: {}, Skipped (no update): {}, Skipped (bucket dup): {}, Skipped (invalid timeframe): {}",
            g(&self.strategy_runs),
            g(&self.skipped_no_update),
            g(&self.skipped_bucket_dup),
            g(&self.skipped_invalid_timeframe)
        );
        tracing::info!(
            "Isolation - Skipped (invalid entry): {}, Skipped (oversized universe): {}, Skipped (damaged key): {}, Ignored (future stamp): {}",
            g(&self.catalog_errors),
            g(&self.skipped_oversized_universe),
            g(&self.skipped_damaged_key),
            g(&self.future_stamps)
        );
        tracing::info!(
            "Advanced operations - Cleanup ops: {}, Lua intersections: {}, Universe discoveries: {}",
            g(&self.cleanup_operations),
            g(&self.lua_intersections),
            g(&self.universe_discoveries)
        );
        let b = &self.universe_size_buckets;
        tracing::info!(
            "Universe distribution - Small (≤10): {}, Medium (≤100): {}, Large (≤1000): {}, XLarge (>1000): {}",
            g(&b[0]),
            g(&b[1]),
            g(&b[2]),
            g(&b[3])
        );
        let with_universe = self.with_universe();
        tracing::info!(
            "Average universe size: {} tickers across {} strategies with a universe ({} active)",
            g(&self.universe_size_total) / with_universe.max(1),
            with_universe,
            g(&self.active_strategies)
        );
    }
}
