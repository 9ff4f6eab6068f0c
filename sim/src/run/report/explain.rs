//! "What happened" lines: the first violation of a failed run in words, and an
//! explanation for every outlier the report shows (the slowest step, executions above the
//! run-everything count).

use std::fmt::Write as _;

use crate::human::{duration, when};
use crate::oracle::Violation;
use crate::run::timeline::Timeline;
use crate::run::{RunStats, SIM_REDIS_TIMEOUT};
use crate::world::scenario::FaultKind;

/// How long after a fault a slow step is still put down to it: a reconnect and a script
/// reload take a step or two; beyond two ticks the fault is over.
const FAULT_GRACE_TICKS: i64 = 2;

/// What the exit code of `violation` means and where to look, for a failed run's report.
pub fn verdict(violation: &Violation, stopped: Option<&Violation>) -> String {
    let code = violation.exit_code();
    let (kind, meaning) = match code {
        3 => (
            "safety",
            "a (strategy, ticker, bucket) was dispatched twice without a failed run between, \
             or a job named a bucket its timeframe does not have",
        ),
        4 => (
            "liveness",
            "an update inside a bucket that has closed was never dispatched for it",
        ),
        5 => (
            "divergence",
            "the engine's jobs differ from the full evaluation in another way, or the two \
             Redis clients read different jobs-stream entries",
        ),
        _ => (
            "memory",
            "Redis used more memory than the scenario's cleanup.max_redis_memory_mb at an \
             hourly sample",
        ),
    };
    let mut md = format!(
        "**The run failed its checks (exit {code}, {kind})**: {meaning}.\n\nFirst violation: {violation}\n"
    );
    match stopped {
        Some(s) if s != violation => {
            let _ = write!(
                md,
                "\nThe run stopped early at the oracle's first violation: {s}\n"
            );
        }
        Some(_) => md.push_str("\nThe run stopped there (the oracle's verdict).\n"),
        None => {}
    }
    md
}

/// Why the slowest step took as long as it did: the faults around it, or none.
pub fn slowest_step(stats: &RunStats, tick_ms: i64) -> Option<String> {
    let t: &Timeline = &stats.timeline;
    let (at, us, instance) = t.slowest_step?;
    let ms = us as f64 / 1000.0;
    let near = t.faults_near(at, FAULT_GRACE_TICKS * tick_ms);
    let why = if near.is_empty() {
        format!(
            "no fault within {} before it: the step itself was slow (the machine busy, or a \
             large dispatch: {} jobs in that {})",
            duration(FAULT_GRACE_TICKS * tick_ms),
            t.bins
                .get(((at - t.start_ms) / t.bin_ms.max(1)) as usize)
                .map_or(0, |b| b.jobs),
            duration(t.bin_ms)
        )
    } else {
        let causes: Vec<String> = near
            .iter()
            .map(|f| {
                let effect = match f.kind {
                    FaultKind::RedisPause { .. } => format!(
                        ": a paused Redis answers nothing, so the step waited out its \
                         response timeouts ({} each in the simulator, two per step) and \
                         gave up",
                        duration(SIM_REDIS_TIMEOUT.as_millis() as i64)
                    ),
                    FaultKind::RedisRestartEmpty => {
                        ": the step reconnected and wrote its claims back".to_owned()
                    }
                    FaultKind::ScriptFlush => {
                        ": the step met NOSCRIPT and loaded its scripts again".to_owned()
                    }
                    FaultKind::MarketBurst => {
                        ": every listed ticker changed at once, a large dispatch".to_owned()
                    }
                    _ => String::new(),
                };
                format!("{f}{effect}")
            })
            .collect();
        causes.join("; ")
    };
    Some(format!(
        "Slowest step: {ms:.2} ms, instance {instance} at {}. What happened: {why}.",
        when(at)
    ))
}

/// Why tickgate made more jobs than run-everything, when it did.
pub fn executions(stats: &RunStats) -> Option<String> {
    if stats.jobs <= stats.run_everything {
        return None;
    }
    Some(format!(
        "More jobs than run-everything: with the per-ticker throttle a strategy gets one job \
         per batch of newly changed tickers, so several in one bucket when its tickers change \
         at different ticks, and {} failed runs were retried; run-everything runs each \
         strategy once per bucket. Counted in (strategy, bucket) runs, tickgate ran {} of \
         {} ({:.1}% saved).",
        stats.failed_runs,
        stats.strategy_buckets,
        stats.run_everything,
        saved(stats.strategy_buckets, stats.run_everything)
    ))
}

/// The share of `baseline` not run, in percent (negative when more ran).
pub fn saved(ran: u64, baseline: u64) -> f64 {
    if baseline == 0 {
        return 0.0;
    }
    100.0 * (1.0 - ran as f64 / baseline as f64)
}
