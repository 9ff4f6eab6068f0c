//! What a run measured, gathered by the loop's phases and read by the report.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::timeline::Timeline;
use crate::check::summary::Summary;

/// Everything a run measured.
#[derive(Debug, Clone)]
pub struct RunStats {
    pub ticks: u64,
    pub jobs: u64,
    /// Distinct (strategy, bucket) pairs dispatched: runs as run-everything counts them.
    pub strategy_buckets: u64,
    pub dispatched_tickers: u64,
    /// The most tickers one job claimed.
    pub largest_job_tickers: u64,
    /// The most tickers one strategy claimed for one bucket in one tick (the engine sends a
    /// large claim as several jobs).
    pub largest_claim_tickers: u64,
    pub failed_runs: u64,
    pub discoveries: u64,
    /// Runs the run-everything (legacy) mode would have made.
    pub run_everything: u64,
    /// Round trips: tickgate (all instances, measured) and seed-faithful (counted by the
    /// oracle's model of the seed, `crate::oracle::seed`).
    pub round_trips: u64,
    pub seed_round_trips: u64,
    /// Tick latency (wall µs per instance step).
    pub tick_us: Histogram<u64>,
    /// Wall time of the seed-faithful tick at the sampled instants (see
    /// [`super::SEED_FAITHFUL_SAMPLES`]), and of tickgate's steps at the same instants.
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
    /// Measures over simulated time (the charts), the faults met, the slowest step.
    pub timeline: Timeline,
    /// What the independent guarantee checker counted and found.
    pub guarantee: Summary,
    /// Whether the oracle's verdicts counted (not with `Checks::Independent`, nor with the
    /// instances' clocks skewed).
    pub oracle_judged: bool,
    pub digest: String,
    pub wall: Duration,
    /// Wall time by phase: market, feed writes and results, engine steps, workers, oracle.
    pub phase_ms: BTreeMap<&'static str, u64>,
}

/// Largest latency the histograms record: ten minutes, in µs.
const MAX_RECORDED_US: u64 = 600_000_000;

fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_RECORDED_US, 3).expect("valid bounds")
}

impl RunStats {
    /// Nothing measured yet.
    pub fn new() -> RunStats {
        RunStats {
            ticks: 0,
            jobs: 0,
            strategy_buckets: 0,
            dispatched_tickers: 0,
            largest_job_tickers: 0,
            largest_claim_tickers: 0,
            failed_runs: 0,
            discoveries: 0,
            run_everything: 0,
            round_trips: 0,
            seed_round_trips: 0,
            tick_us: latency_histogram(),
            seed_tick_us: latency_histogram(),
            sampled_tick_us: latency_histogram(),
            seed_sample_errors: 0,
            memory: Vec::new(),
            tracked: Vec::new(),
            skipped: BTreeMap::new(),
            dead_letters: 0,
            timeline: Timeline::new(0, 0, 1),
            guarantee: Summary::default(),
            oracle_judged: true,
            digest: String::new(),
            wall: Duration::ZERO,
            phase_ms: BTreeMap::new(),
        }
    }
}

impl Default for RunStats {
    fn default() -> RunStats {
        RunStats::new()
    }
}

/// Wall time by phase: each [`Laps::lap`] adds the time since the previous one to its
/// phase, in µs until [`Laps::finish`] turns the totals into ms.
#[derive(Debug)]
pub(super) struct Laps {
    since: Instant,
}

impl Laps {
    pub fn start() -> Laps {
        Laps {
            since: Instant::now(),
        }
    }

    pub fn lap(&mut self, stats: &mut RunStats, phase: &'static str) {
        *stats.phase_ms.entry(phase).or_default() += self.since.elapsed().as_micros() as u64;
        self.since = Instant::now();
    }

    pub fn finish(stats: &mut RunStats) {
        for v in stats.phase_ms.values_mut() {
            *v /= 1000;
        }
    }
}

/// How many buckets back a strategy's dispatches are remembered to count distinct
/// (strategy, bucket) pairs: dispatches reach back at most to the previous bucket (a
/// closing pass, a late result's retry), so four is ample and keeps memory per strategy.
const RECENT_BUCKETS: usize = 4;

/// Counts distinct (strategy, bucket) pairs among the dispatches, remembering only each
/// strategy's last [`RECENT_BUCKETS`] bucket starts.
#[derive(Debug, Default)]
pub(super) struct StrategyBuckets {
    recent: HashMap<u64, Vec<i64>>,
}

impl StrategyBuckets {
    /// Whether (strategy, bucket) is new.
    pub fn first(&mut self, strategy: u64, bucket_ms: i64) -> bool {
        let recent = self.recent.entry(strategy).or_default();
        if recent.contains(&bucket_ms) {
            return false;
        }
        if recent.len() == RECENT_BUCKETS {
            recent.remove(0);
        }
        recent.push(bucket_ms);
        true
    }
}
