//! The run report: markdown with the command that regenerates it and the machine it ran
//! on first, then the measured figures, and SVG line charts beside it.
//!
//! The charts are drawn by hand (a polyline per series, axes, a few labels): `plotters`
//! lays out text only with its `ttf` feature, which needs the host's system fonts — absent
//! on CI machines — so a 100-line SVG writer is the dependable choice here.

use std::fmt::Write as _;
use std::path::Path;

use crate::run::RunStats;
use crate::scenario::Scenario;

/// Chart size in SVG user units.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 300.0;
const MARGIN: f64 = 56.0;

/// One line of a chart: (legend, colour, points).
pub type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// A line chart of one or more series of (x, y) points; x in simulated days.
pub fn line_chart(title: &str, y_label: &str, series: &[Series<'_>]) -> String {
    let points = series.iter().flat_map(|(_, _, p)| p.iter());
    let (mut x_max, mut y_max) = (0.0f64, 0.0f64);
    for (x, y) in points {
        x_max = x_max.max(*x);
        y_max = y_max.max(*y);
    }
    let (x_max, y_max) = (x_max.max(1e-9), (y_max * 1.1).max(1e-9));
    let sx = |x: f64| MARGIN + x / x_max * (WIDTH - 2.0 * MARGIN);
    let sy = |y: f64| HEIGHT - MARGIN + -(y / y_max) * (HEIGHT - 2.0 * MARGIN);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="14">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    let (x0, y0, x1, y1) = (sx(0.0), sy(0.0), sx(x_max), sy(y_max));
    let _ = writeln!(
        svg,
        r#"<path d="M{x0},{y1} L{x0},{y0} L{x1},{y0}" stroke="black" fill="none"/>"#
    );
    for i in 0..=4 {
        let (fx, fy) = (x_max * i as f64 / 4.0, y_max * i as f64 / 4.0);
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            sx(fx),
            y0 + 16.0,
            short(fx)
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            x0 - 6.0,
            sy(fy) + 4.0,
            short(fy)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">simulated days</text>"#,
        WIDTH / 2.0,
        HEIGHT - 12.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">{}</text>"#,
        HEIGHT / 2.0,
        HEIGHT / 2.0,
        escape(y_label)
    );
    for (i, (name, color, points)) in series.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" stroke="{color}" stroke-width="1.5" fill="none"/>"#,
            path.join(" ")
        );
        let ly = 40.0 + 16.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{ly}" fill="{color}">{}</text>"#,
            x0 + 10.0,
            escape(name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn short(v: f64) -> String {
    match v.abs() {
        a if a >= 1e9 => format!("{:.1}G", v / 1e9),
        a if a >= 1e6 => format!("{:.1}M", v / 1e6),
        a if a >= 1e3 => format!("{:.1}k", v / 1e3),
        a if a >= 10.0 || a == 0.0 => format!("{v:.0}"),
        _ => format!("{v:.1}"),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

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
    let day = |ms: i64| (ms - ctx.scenario.start_ms) as f64 / 86_400_000.0;
    let mut charts = Vec::new();
    if !stats.memory.is_empty() {
        let series = vec![(
            "used_memory (MB)",
            "#1f77b4",
            stats
                .memory
                .iter()
                .map(|(t, b)| (day(*t), *b as f64 / 1e6))
                .collect(),
        )];
        let name = format!("{stem}-memory.svg");
        std::fs::write(
            dir.join(&name),
            line_chart("Redis memory over simulated time", "MB", &series),
        )?;
        charts.push(("Redis memory", name));
    }
    if !stats.tracked.is_empty() {
        let series = vec![(
            "tracked tickers (ZCARD TICK:UPD)",
            "#d62728",
            stats
                .tracked
                .iter()
                .map(|(t, n)| (day(*t), *n as f64))
                .collect(),
        )];
        let name = format!("{stem}-tracked.svg");
        std::fs::write(
            dir.join(&name),
            line_chart("Tickers tracked in TICK:UPD", "tickers", &series),
        )?;
        charts.push(("Tracked tickers", name));
    }
    std::fs::write(path, markdown(ctx, stats, &charts))
}

fn markdown(ctx: &ReportContext<'_>, s: &RunStats, charts: &[(&str, String)]) -> String {
    let sc = ctx.scenario;
    let mut md = String::new();
    let _ = writeln!(md, "# Simulation report: `{}`\n", sc.name);
    let _ = writeln!(
        md,
        "Regenerate with `{}` (seed {}).\n",
        ctx.command, ctx.seed
    );
    let _ = writeln!(md, "Machine: {}. Redis: {}.\n", machine(), ctx.redis);
    let days = sc.duration_ms as f64 / 86_400_000.0;
    let _ = writeln!(
        md,
        "Scenario: {days:.1} simulated days, {} ticks of {} s, {} strategies, {} engine instance(s), per-ticker throttle {}.\n",
        s.ticks,
        sc.tick_interval_ms / 1000,
        sc.strategies.count,
        sc.engine.instances,
        sc.engine.per_ticker_throttle
    );
    let saved = if s.run_everything > 0 {
        100.0 * (1.0 - s.jobs as f64 / s.run_everything as f64)
    } else {
        0.0
    };
    let pct = |q: f64| s.tick_us.value_at_quantile(q) as f64 / 1000.0;
    let _ = writeln!(md, "## Results\n\n| measure | value |\n|---|---|");
    let _ = writeln!(
        md,
        "| checks | every tick equal to the full-evaluation oracle; no duplicate, no miss |"
    );
    let _ = writeln!(md, "| executions (jobs) | {} |", s.jobs);
    let _ = writeln!(
        md,
        "| executions in run-everything mode (one per strategy per bucket) | {} |",
        s.run_everything
    );
    let _ = writeln!(md, "| executions saved vs run-everything | {saved:.1}% |");
    let _ = writeln!(md, "| tickers dispatched | {} |", s.dispatched_tickers);
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
    let _ = writeln!(
        md,
        "| tickgate tick latency p50 / p99 / max (ms, wall, per instance step) | {:.2} / {:.2} / {:.2} |",
        pct(0.5),
        pct(0.99),
        s.tick_us.max() as f64 / 1000.0
    );
    if !s.seed_tick_us.is_empty() {
        let q = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let _ = writeln!(
            md,
            "| seed-faithful tick latency p50 / p99 (ms, wall, {} sampled ticks, same Redis and data) | {:.2} / {:.2} |",
            s.seed_tick_us.len(),
            q(&s.seed_tick_us, 0.5),
            q(&s.seed_tick_us, 0.99)
        );
        let _ = writeln!(
            md,
            "| tickgate tick latency p50 / p99 at those ticks (ms, all instances) | {:.2} / {:.2} |",
            q(&s.sampled_tick_us, 0.5),
            q(&s.sampled_tick_us, 0.99)
        );
        let _ = writeln!(
            md,
            "| seed-faithful / tickgate at p50 (same ticks) | {:.1}× |",
            q(&s.seed_tick_us, 0.5) / q(&s.sampled_tick_us, 0.5).max(1e-3)
        );
        if s.seed_sample_errors > 0 {
            let _ = writeln!(
                md,
                "| seed-faithful samples skipped (Redis unavailable) | {} |",
                s.seed_sample_errors
            );
        }
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
    if let (Some(first), Some(last)) = (s.memory.first(), s.memory.last()) {
        let _ = writeln!(
            md,
            "| Redis used_memory first / last sample | {:.1} MB / {:.1} MB |",
            first.1 as f64 / 1e6,
            last.1 as f64 / 1e6
        );
        for d in [30.0, 90.0, 180.0] {
            let at = sc.start_ms + (d * 86_400_000.0) as i64;
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
    let _ = writeln!(md, "| decision-log digest (SHA-256) | `{}` |\n", s.digest);
    if !s.faults_applied.is_empty() {
        let _ = writeln!(md, "Faults applied: {}.\n", s.faults_applied.join("; "));
    }
    for (title, file) in charts {
        let _ = writeln!(md, "## {title}\n\n![{title}]({file})\n");
    }
    md
}
