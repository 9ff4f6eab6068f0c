//! `/metrics`: every field of [`Metrics`] (DESIGN §2.9), the readiness and the store's own
//! counters, read at scrape time into a `prometheus-client` collector.
//!
//! Names follow Prometheus's conventions: `tickgate_` first, the unit last (`_seconds`),
//! `_total` on counters (added by the encoder). `skipped` is one counter with a `reason`
//! label, as §2.9 names it. The tick-duration histogram is kept in milliseconds and exported
//! in seconds, Prometheus's base unit. The stream gauges (`jobs_pending`, `jobs_lag`,
//! `results_pending`, `results_lag`) are what the last step that reached Redis found:
//! the step reads the streams anyway (to trim them and for backpressure), so a scrape
//! costs Redis nothing and cannot hang on it; they are at most one tick old, fresher than
//! a scrape interval.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use crate::runtime::metrics::TICK_MS_BUCKETS;
use crate::runtime::{Health, Metrics};
use crate::store::{Store, StoreCounters};

/// Whatever holds [`StoreCounters`]: every [`Store`] (an `Arc<S>` coerces to
/// `Arc<dyn StoreCountersSource>`, so the server need not be generic over the store).
pub trait StoreCountersSource: Send + Sync + 'static {
    fn store_counters(&self) -> &StoreCounters;
}

impl<S: Store + 'static> StoreCountersSource for S {
    fn store_counters(&self) -> &StoreCounters {
        self.counters()
    }
}

/// The collector: reads the atomics at every scrape.
pub(super) struct Exposition {
    pub(super) metrics: Arc<Metrics>,
    pub(super) health: Arc<Health>,
    pub(super) store: Option<Arc<dyn StoreCountersSource>>,
}

impl fmt::Debug for Exposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Exposition")
    }
}

/// A counter or gauge: its name (without prefix and `_total`), help, and value.
type Row<'a> = (&'static str, &'static str, &'a AtomicU64);

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        encode_metrics(&self.metrics, &mut encoder)?;
        self.encode_health(&mut encoder)?;
        if let Some(store) = &self.store {
            let c = store.store_counters();
            let rows: [Row<'_>; 3] = [
                (
                    "redis_round_trips",
                    "Round trips to Redis (a pipeline is one)",
                    &c.round_trips,
                ),
                (
                    "invalid_stored_members",
                    "Members read from Redis that are not valid tickers (skipped)",
                    &c.invalid_stored_members,
                ),
                (
                    "invalid_scores",
                    "Update times in Redis that are not whole milliseconds (skipped)",
                    &c.invalid_scores,
                ),
            ];
            counters(&mut encoder, &rows)?;
        }
        Ok(())
    }
}

impl Exposition {
    /// Readiness as gauges (1 or 0), and when the last step reached Redis.
    fn encode_health(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let r = self.health.readiness();
        let flags = [
            ("ready", "1 when /readyz answers 200", r.is_ready()),
            ("running", "1 while the engine's tasks run", r.running),
            (
                "redis_reachable",
                "1 when the last step reached Redis",
                r.redis_reachable,
            ),
            (
                "catalog_loaded",
                "1 once the strategy catalog was read in full",
                r.catalog_loaded,
            ),
            (
                "backpressure",
                "1 while the workers lag beyond jobs_stream_max",
                r.backpressure,
            ),
            (
                "clock_skewed",
                "1 while the clock is further from Redis's than max_clock_skew_ms (no step)",
                r.clock_skewed,
            ),
        ];
        for (name, help, flag) in flags {
            gauge(encoder, name, help, None, i64::from(flag))?;
        }
        // Seconds since the epoch (engine clock); 0 before the first.
        let last = r.last_ok_step_ms.map_or(0.0, |ms| ms as f64 / 1000.0);
        let help = "Engine-clock time of the last step that reached Redis (0: none yet)";
        gauge(
            encoder,
            "last_ok_step_timestamp",
            help,
            Some(&Unit::Seconds),
            last,
        )
    }
}

/// Every field of [`Metrics`]. The pattern names every field (no `..`): a field added to
/// `Metrics` and not exported here does not compile.
#[allow(
    clippy::too_many_lines,
    reason = "a table: one row per exported series"
)]
fn encode_metrics(m: &Metrics, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let Metrics {
        ticker_updates,
        universe_updates,
        strategy_runs,
        skipped_no_update,
        skipped_bucket_dup,
        skipped_invalid_timeframe,
        skipped_oversized_universe,
        skipped_damaged_key,
        missing_universe_fallbacks,
        future_stamps,
        cleanup_operations,
        cleanup_removed,
        lua_intersections,
        lua_fallbacks,
        universe_discoveries,
        discovery_invalid_symbols,
        discovery_rejected,
        discovery_persist_failures,
        deprecated_calls,
        jobs_enqueued,
        results_ok,
        results_failed,
        claims_released,
        claims_written_back,
        dead_letters,
        results_late,
        dead_letter_failures,
        backpressure_steps,
        stream_entries_trimmed,
        jobs_redelivered,
        results_taken_over,
        catalog_sweep_reapplied,
        catalog_errors,
        tick_errors,
        clock_skew_ms,
        clock_skew_skips,
        tracked_tickers,
        universe_size_buckets,
        universe_size_total,
        active_strategies,
        jobs_pending,
        jobs_lag,
        results_pending,
        results_lag,
        tick_ms_histogram,
        tick_ms_sum,
        ticks,
    } = m;
    let rows: [Row<'_>; 29] = [
        (
            "ticker_updates",
            "Record-script calls by every writer (the update set's sequence number)",
            ticker_updates,
        ),
        (
            "universe_updates",
            "Universes written (catalog or discovery)",
            universe_updates,
        ),
        ("strategy_runs", "Strategy runs dispatched", strategy_runs),
        (
            "missing_universe_fallbacks",
            "Strategies run strategy-level because no universe could be had",
            missing_universe_fallbacks,
        ),
        (
            "future_stamps",
            "Update times read more than max_future_ms ahead of the clock (ignored)",
            future_stamps,
        ),
        (
            "cleanup_operations",
            "Retention cleanup runs",
            cleanup_operations,
        ),
        (
            "cleanup_removed",
            "Update times removed by cleanup",
            cleanup_removed,
        ),
        (
            "lua_intersections",
            "Intersections done server-side (Lua)",
            lua_intersections,
        ),
        (
            "lua_fallbacks",
            "Lua intersections that fell back to client-side",
            lua_fallbacks,
        ),
        (
            "universe_discoveries",
            "Universes discovered from results",
            universe_discoveries,
        ),
        (
            "discovery_invalid_symbols",
            "used_symbols entries dropped as invalid tickers",
            discovery_invalid_symbols,
        ),
        (
            "discovery_rejected",
            "used_symbols lists rejected whole",
            discovery_rejected,
        ),
        (
            "discovery_persist_failures",
            "Discovered universes not persisted after every retry",
            discovery_persist_failures,
        ),
        (
            "deprecated_calls",
            "Calls of the deprecated legacy functions",
            deprecated_calls,
        ),
        ("jobs_enqueued", "Jobs enqueued", jobs_enqueued),
        ("results_ok", "Results settled as successes", results_ok),
        (
            "results_failed",
            "Results settled as failures",
            results_failed,
        ),
        (
            "claims_released",
            "Claims released by failed results",
            claims_released,
        ),
        (
            "claims_written_back",
            "Claims written back after Redis lost its state",
            claims_written_back,
        ),
        (
            "dead_letters",
            "Entries moved to the dead-letter stream",
            dead_letters,
        ),
        (
            "results_late",
            "Results that found no open job (changed nothing)",
            results_late,
        ),
        (
            "dead_letter_failures",
            "Dead letters that could not be written (retried)",
            dead_letter_failures,
        ),
        (
            "backpressure_steps",
            "Steps that dispatched nothing because the workers lag",
            backpressure_steps,
        ),
        (
            "stream_entries_trimmed",
            "Acknowledged entries trimmed from the jobs and results streams",
            stream_entries_trimmed,
        ),
        (
            "jobs_redelivered",
            "Jobs re-delivered after the visibility timeout",
            jobs_redelivered,
        ),
        (
            "catalog_sweep_reapplied",
            "Strategies the catalog sweep re-applied (changed without the change log)",
            catalog_sweep_reapplied,
        ),
        (
            "results_taken_over",
            "Results a crashed or renamed instance left pending, settled by this one",
            results_taken_over,
        ),
        (
            "tick_errors",
            "Steps that failed (Redis unreachable); retried",
            tick_errors,
        ),
        (
            "clock_skew_skips",
            "Ticks not stepped: the clock was further from Redis's than max_clock_skew_ms",
            clock_skew_skips,
        ),
    ];
    counters(encoder, &rows)?;
    let reasons = [
        ("no_update", skipped_no_update),
        ("bucket_dup", skipped_bucket_dup),
        ("invalid_timeframe", skipped_invalid_timeframe),
        ("oversized_universe", skipped_oversized_universe),
        ("damaged_key", skipped_damaged_key),
        ("invalid_entry", catalog_errors),
    ];
    skipped(encoder, &reasons)?;
    let gauges: [Row<'_>; 6] = [
        (
            "tracked_tickers",
            "Tickers in the update set (ZCARD)",
            tracked_tickers,
        ),
        ("active_strategies", "Active strategies", active_strategies),
        (
            "jobs_pending",
            "Jobs delivered to a worker, not acknowledged",
            jobs_pending,
        ),
        ("jobs_lag", "Jobs not yet delivered to any worker", jobs_lag),
        (
            "results_pending",
            "Results delivered to an engine, not acknowledged",
            results_pending,
        ),
        (
            "results_lag",
            "Results not yet delivered to any engine",
            results_lag,
        ),
    ];
    for (name, help, value) in gauges {
        gauge(encoder, name, help, None, Metrics::get(value))?;
    }
    let skew_ms = clock_skew_ms.load(std::sync::atomic::Ordering::Relaxed);
    gauge(
        encoder,
        "clock_skew",
        "This instance's clock minus Redis's (TIME) at the last check",
        Some(&Unit::Seconds),
        skew_ms as f64 / 1_000.0,
    )?;
    universes(encoder, universe_size_buckets, universe_size_total)?;
    tick_duration(encoder, tick_ms_histogram, tick_ms_sum, ticks)
}

fn counters(encoder: &mut DescriptorEncoder, rows: &[Row<'_>]) -> fmt::Result {
    for (name, help, value) in rows {
        let counter = ConstCounter::new(Metrics::get(value));
        let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
        counter.encode(metric)?;
    }
    Ok(())
}

fn gauge<N: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: N,
) -> fmt::Result {
    let gauge = ConstGauge::new(value);
    let metric = encoder.encode_descriptor(name, help, unit, gauge.metric_type())?;
    gauge.encode(metric)
}

/// `skipped_total{reason=…}` (DESIGN §2.9).
fn skipped(encoder: &mut DescriptorEncoder, reasons: &[(&str, &AtomicU64)]) -> fmt::Result {
    let help = "Strategies skipped, by reason";
    let mut family = encoder.encode_descriptor("skipped", help, None, MetricType::Counter)?;
    for (reason, value) in reasons {
        let labels = [("reason", *reason)];
        let mut metric = family.encode_family(&labels)?;
        metric.encode_counter::<NoLabelSet, _, u64>(&Metrics::get(value), None)?;
    }
    Ok(())
}

/// The universe-size distribution (the seed's log line): strategies by size class, the
/// members summed and the average.
fn universes(
    encoder: &mut DescriptorEncoder,
    buckets: &[AtomicU64; 4],
    total: &AtomicU64,
) -> fmt::Result {
    let help = "Active strategies with an explicit universe, by its size: small <=10, \
                medium <=100, large <=1000, xlarge >1000 tickers";
    let mut family =
        encoder.encode_descriptor("strategies_by_universe_size", help, None, MetricType::Gauge)?;
    for (size, value) in ["small", "medium", "large", "xlarge"].iter().zip(buckets) {
        let labels = [("size", *size)];
        family
            .encode_family(&labels)?
            .encode_gauge(&Metrics::get(value))?;
    }
    let total = Metrics::get(total);
    let help = "Universe members summed over active strategies";
    gauge(encoder, "universe_members", help, None, total)?;
    let with_universe: u64 = buckets.iter().map(Metrics::get).sum();
    let average = total as f64 / with_universe.max(1) as f64;
    let help = "Average universe size over active strategies with an explicit universe";
    gauge(encoder, "universe_size_average", help, None, average)
}

/// `tick_duration_seconds`: the tick histogram, kept in ms, exported in seconds.
fn tick_duration(
    encoder: &mut DescriptorEncoder,
    histogram: &[AtomicU64; 11],
    sum_ms: &AtomicU64,
    ticks: &AtomicU64,
) -> fmt::Result {
    // Per-bucket counts; the encoder makes them cumulative. The last slot is `+Inf`.
    let bounds = TICK_MS_BUCKETS
        .iter()
        .map(|ms| *ms as f64 / 1000.0)
        .chain([f64::MAX]);
    let buckets: Vec<(f64, u64)> = bounds.zip(histogram.iter().map(Metrics::get)).collect();
    let help = "Duration of engine steps";
    let mut metric = encoder.encode_descriptor(
        "tick_duration",
        help,
        Some(&Unit::Seconds),
        MetricType::Histogram,
    )?;
    let sum = Metrics::get(sum_ms) as f64 / 1000.0;
    metric.encode_histogram::<NoLabelSet>(sum, Metrics::get(ticks), &buckets, None)
}
