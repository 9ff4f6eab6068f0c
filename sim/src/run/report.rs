//! The run report: markdown with the command that regenerates it and the machine it ran
//! on first, then the measured figures, and SVG line charts beside it.
//!
//! The charts are in `chart`; the markdown is written section by section below.

mod chart;

use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;
use tickgate::core::time::DAY_MS;

pub use self::chart::{Series, line_chart};
use super::RunStats;
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
    /// The violation that failed the run, if one did.
    pub verdict: Option<&'a str>,
}

/// Writes `path` (markdown) and its charts next to it (`<stem>-*.svg`).
pub fn write(path: &Path, ctx: &ReportContext<'_>, stats: &RunStats) -> std::io::Result<()> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("sim")
        .to_owned();
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let day = |ms: i64| (ms - ctx.scenario.start_ms) as f64 / DAY_MS as f64;
    let mut charts = Vec::new();
    let mut chart =
        |suffix: &str, caption: &'static str, title: &str, y_label: &str, series: Series<'_>| {
            let name = format!("{stem}-{suffix}.svg");
            let svg = line_chart(title, y_label, &[series]).map_err(std::io::Error::other)?;
            std::fs::write(dir.join(&name), svg)?;
            charts.push((caption, name));
            std::io::Result::Ok(())
        };
    if !stats.memory.is_empty() {
        let points = stats.memory.iter().map(|(t, b)| (day(*t), *b as f64 / 1e6));
        let series = ("used_memory (MB)", "#1f77b4", points.collect());
        chart(
            "memory",
            "Redis memory",
            "Redis memory over simulated time",
            "MB",
            series,
        )?;
    }
    if !stats.tracked.is_empty() {
        let points = stats.tracked.iter().map(|(t, n)| (day(*t), *n as f64));
        let series = (
            "tracked tickers (ZCARD TICK:UPD)",
            "#d62728",
            points.collect(),
        );
        chart(
            "tracked",
            "Tracked tickers",
            "Tickers tracked in TICK:UPD",
            "tickers",
            series,
        )?;
    }
    std::fs::write(path, markdown(ctx, stats, &charts))
}

fn markdown(ctx: &ReportContext<'_>, s: &RunStats, charts: &[(&str, String)]) -> String {
    let mut md = header(ctx, s);
    let _ = writeln!(md, "## Results\n\n| measure | value |\n|---|---|");
    executions(&mut md, s);
    latency(&mut md, ctx.scenario, s);
    memory(&mut md, ctx.scenario, s);
    let _ = writeln!(md, "| decision-log digest (SHA-256) | `{}` |\n", s.digest);
    if !s.faults_applied.is_empty() {
        let _ = writeln!(md, "Faults applied: {}.\n", s.faults_applied.join("; "));
    }
    let _ = writeln!(md, "The {}.\n", s.guarantee.line());
    for finding in &s.guarantee.examples {
        let _ = writeln!(md, "- {finding}");
    }
    if !s.guarantee.examples.is_empty() {
        md.push('\n');
    }
    for (title, file) in charts {
        let _ = writeln!(md, "## {title}\n\n![{title}]({file})\n");
    }
    md
}

/// The title, the command that regenerates the report, the machine and the scenario.
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
        let _ = writeln!(md, "**The run failed its checks**: {verdict}\n");
    }
    let days = sc.duration_ms as f64 / DAY_MS as f64;
    let _ = writeln!(
        md,
        "Scenario: {days:.1} simulated days, {} ticks of {} s, {} strategies, {} engine instance(s), per-ticker throttle {}.\n",
        s.ticks,
        sc.tick_interval_ms / 1000,
        sc.strategies.count,
        sc.engine.instances,
        sc.engine.per_ticker_throttle
    );
    md
}

/// Rows: what ran, against the run-everything baseline, and the Redis round trips.
fn executions(md: &mut String, s: &RunStats) {
    let saved = if s.run_everything > 0 {
        100.0 * (1.0 - s.jobs as f64 / s.run_everything as f64)
    } else {
        0.0
    };
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
    let _ = writeln!(md, "| executions saved vs run-everything | {saved:.1}% |");
    let _ = writeln!(md, "| tickers dispatched | {} |", s.dispatched_tickers);
    let _ = writeln!(md, "| largest job (tickers) | {} |", s.largest_job_tickers);
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
/// wall time.
fn latency(md: &mut String, sc: &Scenario, s: &RunStats) {
    let _ = writeln!(
        md,
        "| tickgate tick latency p50 / p99 / max (ms, wall, per instance step) | {:.2} / {:.2} / {:.2} |",
        ms_at(&s.tick_us, 0.5),
        ms_at(&s.tick_us, 0.99),
        s.tick_us.max() as f64 / 1000.0
    );
    if !s.seed_tick_us.is_empty() {
        seed_faithful(md, s);
    }
    let sim_s = s.ticks as f64 * sc.tick_interval_ms as f64 / 1000.0;
    let _ = writeln!(
        md,
        "| simulated-to-wall time | {:.0}× ({:.1} s wall) |",
        sim_s / s.wall.as_secs_f64().max(1e-9),
        s.wall.as_secs_f64()
    );
    let _ = writeln!(
        md,
        "| dead letters (malformed results) | {} |",
        s.dead_letters
    );
    let phases: Vec<String> = s
        .phase_ms
        .iter()
        .map(|(k, v)| format!("{k} {:.1} s", *v as f64 / 1000.0))
        .collect();
    let _ = writeln!(
        md,
        "| simulator wall time by phase | {} |",
        phases.join(", ")
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
