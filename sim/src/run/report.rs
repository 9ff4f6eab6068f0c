//! The run report: markdown with the command that regenerates it and the machine it ran
//! on first, the verdict of a failed run explained, then the measured figures as tables
//! with a "what happened" line for each outlier, the faults, and SVG charts beside it.
//!
//! - `chart`: one SVG chart (lines, points, fault markers, linear or log axis);
//! - `charts`: the report's charts, built from the run's timeline;
//! - `explain`: the verdict and the outliers in words.

mod chart;
mod charts;
mod explain;

use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;
use tickgate::core::time::DAY_MS;

pub use self::chart::{Chart, Series, Style, render};
use super::RunStats;
use crate::human::{duration, when};
use crate::oracle::Violation;
use crate::world::scenario::Scenario;

/// What this machine is, for the report header.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb / 1024 / 1024);
    format!("{cpus} cores ({model}), {mem_gib} GiB")
}

/// Everything the report says besides the run's own statistics.
pub struct ReportContext<'a> {
    pub command: &'a str,
    pub scenario: &'a Scenario,
    pub seed: u64,
    pub redis: &'a str,
    /// The violation that failed the run, if one did, and what stopped it early.
    pub verdict: Option<&'a Violation>,
    pub stopped: Option<&'a Violation>,
    /// The commands Redis spent most time on: (name, calls, µs).
    pub commands: &'a [(String, u64, u64)],
}

/// Writes `path` (markdown) and its charts next to it (`<stem>-*.svg`); returns the chart
/// files written.
pub fn write(
    path: &Path,
    ctx: &ReportContext<'_>,
    stats: &RunStats,
) -> std::io::Result<Vec<String>> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("sim")
        .to_owned();
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    for named in charts::build(stats, ctx.scenario.duration_ms) {
        let name = format!("{stem}-{}.svg", named.suffix);
        let svg = render(&named.chart).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(&name), svg)?;
        files.push((named.caption, name));
    }
    std::fs::write(path, markdown(ctx, stats, &files))?;
    Ok(files.into_iter().map(|(_, name)| name).collect())
}

fn markdown(ctx: &ReportContext<'_>, s: &RunStats, charts: &[(&str, String)]) -> String {
    let mut md = header(ctx, s);
    let _ = writeln!(md, "## Results\n\n| measure | value |\n|---|---|");
    executions(&mut md, s);
    latency(&mut md, ctx.scenario, s);
    memory(&mut md, ctx.scenario, s);
    let _ = writeln!(md, "| decision-log digest (SHA-256) | `{}` |\n", s.digest);
    let outliers = [
        explain::slowest_step(s, ctx.scenario.tick_interval_ms),
        explain::executions(s),
    ];
    for line in outliers.iter().flatten() {
        let _ = writeln!(md, "- {line}");
    }
    md.push('\n');
    faults(&mut md, s);
    let _ = writeln!(
        md,
        "## Independent checker\n\nThe {}.\n",
        s.guarantee.line()
    );
    for finding in &s.guarantee.examples {
        let _ = writeln!(md, "- {finding}");
    }
    if !s.guarantee.examples.is_empty() {
        md.push('\n');
    }
    commands(&mut md, ctx.commands);
    phases(&mut md, s);
    for (title, file) in charts {
        let _ = writeln!(md, "## {title}\n\n![{title}]({file})\n");
    }
    md
}

/// The title, the command that regenerates the report, the machine, the verdict of a
/// failed run and the scenario.
fn header(ctx: &ReportContext<'_>, s: &RunStats) -> String {
    let sc = ctx.scenario;
    let mut md = String::new();
    let _ = writeln!(md, "# Simulation report: `{}`\n", sc.name);
    let _ = writeln!(
        md,
        "Regenerate with `{}` (seed {}).\n",
        ctx.command, ctx.seed
    );
    let _ = writeln!(md, "Machine: {}. Redis: {}.\n", machine(), ctx.redis);
    if let Some(verdict) = ctx.verdict {
        let _ = writeln!(md, "{}", explain::verdict(verdict, ctx.stopped));
    }
    let _ = writeln!(
        md,
        "Scenario: {}. {} of simulated time from {} to {}: {} ticks of {}, {} strategies, {} engine instance(s), per-ticker throttle {}.\n",
        sc.description,
        duration(sc.duration_ms),
        when(sc.start_ms),
        when(sc.end_ms()),
        s.ticks,
        duration(sc.tick_interval_ms),
        sc.strategies.count,
        sc.engine.instances,
        if sc.engine.per_ticker_throttle {
            "on"
        } else {
            "off"
        }
    );
    md
}

/// Rows: what ran, against the run-everything baseline, and the Redis round trips.
fn executions(md: &mut String, s: &RunStats) {
    let oracle = if s.oracle_judged {
        "every tick equal to the full-evaluation oracle"
    } else {
        "the full-evaluation oracle ran but did not judge (independent checks only, or the instances' clocks skewed)"
    };
    let _ = writeln!(
        md,
        "| checks | DESIGN §2.3's guarantee from the raw events (the independent checker); {oracle} |"
    );
    let _ = writeln!(md, "| executions (jobs) | {} |", s.jobs);
    let _ = writeln!(
        md,
        "| executions in run-everything mode (one per strategy per bucket) | {} |",
        s.run_everything
    );
    let _ = writeln!(
        md,
        "| executions saved vs run-everything | {:.1}% |",
        explain::saved(s.jobs, s.run_everything)
    );
    let _ = writeln!(
        md,
        "| (strategy, bucket) runs / saved vs run-everything | {} / {:.1}% |",
        s.strategy_buckets,
        explain::saved(s.strategy_buckets, s.run_everything)
    );
    let _ = writeln!(md, "| tickers dispatched | {} |", s.dispatched_tickers);
    let _ = writeln!(md, "| largest job (tickers) | {} |", s.largest_job_tickers);
    let _ = writeln!(
        md,
        "| largest claim of one strategy in one tick (tickers) | {} |",
        s.largest_claim_tickers
    );
    let _ = writeln!(
        md,
        "| failed runs (retried) / `used_symbols` reports | {} / {} |",
        s.failed_runs, s.discoveries
    );
    let per_tick = |n: u64| n as f64 / s.ticks.max(1) as f64;
    let _ = writeln!(
        md,
        "| Redis round trips per tick: tickgate (measured, all instances) | {:.1} |",
        per_tick(s.round_trips)
    );
    let _ = writeln!(
        md,
        "| Redis round trips per tick: seed-faithful (counted on the same world) | {:.1} |",
        per_tick(s.seed_round_trips)
    );
}

/// `h`'s value at quantile `q`, in ms.
fn ms_at(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Rows: tick latency, tickgate's and the seed-faithful samples', and the simulator's own
/// speed.
fn latency(md: &mut String, sc: &Scenario, s: &RunStats) {
    let _ = writeln!(
        md,
        "| tickgate tick latency p50 / p99 / max (ms, wall, per instance step) | {:.2} / {:.2} / {:.2} |",
        ms_at(&s.tick_us, 0.5),
        ms_at(&s.tick_us, 0.99),
        // Exact, where the histogram keeps three significant digits.
        s.timeline
            .slowest_step
            .map_or(s.tick_us.max(), |(_, us, _)| us) as f64
            / 1000.0
    );
    if !s.seed_tick_us.is_empty() {
        seed_faithful(md, s);
    }
    let simulated_s = s.ticks as f64 * sc.tick_interval_ms as f64 / 1000.0;
    let _ = writeln!(
        md,
        "| simulated-to-wall time | {:.0}× ({:.1} s wall) |",
        simulated_s / s.wall.as_secs_f64().max(1e-9),
        s.wall.as_secs_f64()
    );
    let _ = writeln!(
        md,
        "| dead letters (malformed results) | {} |",
        s.dead_letters
    );
    for (reason, n) in &s.skipped {
        let _ = writeln!(md, "| skipped `{reason}` (strategy-ticks, oracle) | {n} |");
    }
}

/// Rows: the seed-faithful samples beside tickgate's steps at the same ticks.
fn seed_faithful(md: &mut String, s: &RunStats) {
    let _ = writeln!(
        md,
        "| seed-faithful tick latency p50 / p99 (ms, wall, {} sampled ticks, same Redis and data) | {:.2} / {:.2} |",
        s.seed_tick_us.len(),
        ms_at(&s.seed_tick_us, 0.5),
        ms_at(&s.seed_tick_us, 0.99)
    );
    let _ = writeln!(
        md,
        "| tickgate tick latency p50 / p99 at those ticks (ms, all instances) | {:.2} / {:.2} |",
        ms_at(&s.sampled_tick_us, 0.5),
        ms_at(&s.sampled_tick_us, 0.99)
    );
    let _ = writeln!(
        md,
        "| seed-faithful / tickgate at p50 (same ticks) | {:.1}× |",
        ms_at(&s.seed_tick_us, 0.5) / ms_at(&s.sampled_tick_us, 0.5).max(1e-3)
    );
    if s.seed_sample_errors > 0 {
        let _ = writeln!(
            md,
            "| seed-faithful samples skipped (Redis unavailable) | {} |",
            s.seed_sample_errors
        );
    }
}

/// Rows: Redis memory, first and last sample and at 30, 90 and 180 days when the run
/// lasts that long.
fn memory(md: &mut String, sc: &Scenario, s: &RunStats) {
    let (Some(first), Some(last)) = (s.memory.first(), s.memory.last()) else {
        return;
    };
    let _ = writeln!(
        md,
        "| Redis used_memory first / last sample | {:.1} MB / {:.1} MB |",
        first.1 as f64 / 1e6,
        last.1 as f64 / 1e6
    );
    let days = sc.duration_ms as f64 / DAY_MS as f64;
    for d in [30.0, 90.0, 180.0] {
        let at = sc.start_ms + (d * DAY_MS as f64) as i64;
        if let Some((_, b)) = s
            .memory
            .iter()
            .rev()
            .find(|(t, _)| *t <= at)
            .filter(|_| days >= d)
        {
            let _ = writeln!(
                md,
                "| Redis used_memory at day {d:.0} | {:.1} MB |",
                *b as f64 / 1e6
            );
        }
    }
}

/// The faults the run met, as a table (marked on every chart).
fn faults(md: &mut String, s: &RunStats) {
    if s.timeline.faults.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Faults\n\nMarked on every chart at their time.\n\n| when | after the start | fault | applied |\n|---|---|---|---|"
    );
    for f in &s.timeline.faults {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            when(f.at_ms),
            duration(f.offset_ms),
            f.kind,
            f.skipped
                .map_or("yes".to_owned(), |why| format!("no: {why}"))
        );
    }
    md.push('\n');
}

/// The commands Redis spent most time on, as a table.
fn commands(md: &mut String, rows: &[(String, u64, u64)]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Redis time by command\n\n`INFO commandstats` at the end of the run, the most time first.\n\n| command | calls | total ms | µs per call |\n|---|---:|---:|---:|"
    );
    for (name, calls, us) in rows {
        // `script|load`: a pipe would split the table's cell.
        let name = name.replace('|', "\\|");
        let _ = writeln!(
            md,
            "| `{name}` | {calls} | {:.1} | {:.1} |",
            *us as f64 / 1000.0,
            *us as f64 / (*calls).max(1) as f64
        );
    }
    md.push('\n');
}

/// The simulator's own wall time by phase, as a table.
fn phases(md: &mut String, s: &RunStats) {
    let total: u64 = s.phase_ms.values().sum();
    let _ = writeln!(
        md,
        "## Simulator wall time by phase\n\n| phase | ms | share |\n|---|---:|---:|"
    );
    let mut rows: Vec<(&&str, &u64)> = s.phase_ms.iter().collect();
    rows.sort_by_key(|(_, ms)| std::cmp::Reverse(**ms));
    for (phase, ms) in rows {
        let _ = writeln!(
            md,
            "| {phase} | {ms} | {:.0}% |",
            100.0 * *ms as f64 / total.max(1) as f64
        );
    }
    md.push('\n');
}
