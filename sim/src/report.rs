//! The run report: markdown with the command that regenerates it and the machine it ran
//! on first, then the measured figures, and SVG line charts beside it.
//!
//! The charts are `plotters` line charts rendered to SVG (no `ttf` feature: SVG text is
//! set by the viewer, so plotters' own estimate of text extents is enough for layout).

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::run::RunStats;
use crate::scenario::Scenario;

/// Chart size in SVG pixels.
const WIDTH: u32 = 720;
const HEIGHT: u32 = 300;

/// One line of a chart: (legend, colour as `#rrggbb`, points).
pub type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// A line chart of one or more series of (x, y) points; x in simulated days.
pub fn line_chart(title: &str, y_label: &str, series: &[Series<'_>]) -> Result<String, String> {
    let points = series.iter().flat_map(|(_, _, p)| p.iter());
    let (mut x_max, mut y_max) = (0.0f64, 0.0f64);
    for (x, y) in points {
        x_max = x_max.max(*x);
        y_max = y_max.max(*y);
    }
    let (x_max, y_max) = (x_max.max(1e-9), (y_max * 1.1).max(1e-9));
    let err = |e: &dyn std::fmt::Display| format!("drawing {title:?}: {e}");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("simulated days")
            .y_desc(y_label)
            .x_label_formatter(&|v| short(*v))
            .y_label_formatter(&|v| short(*v))
            .draw()
            .map_err(|e| err(&e))?;
        for (name, color, points) in series {
            let rgb = hex(color);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), rgb.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], rgb));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

/// `#rrggbb` → colour (black when malformed: the colours are our own constants).
fn hex(color: &str) -> RGBColor {
    let part = |i: usize| {
        color
            .get(1 + 2 * i..3 + 2 * i)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0)
    };
    RGBColor(part(0), part(1), part(2))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_its_title_axes_legend_and_one_line_per_series() {
        let series = vec![
            (
                "used_memory (MB)",
                "#1f77b4",
                vec![(0.0, 3.0), (1.0, 20.0), (2.0, 25.0)],
            ),
            ("other", "#d62728", vec![(0.0, 1.0), (2.0, 2.0)]),
        ];
        let svg = line_chart("Redis memory over simulated time", "MB", &series).expect("drawn");
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        for text in [
            "Redis memory over simulated time",
            "simulated days",
            "MB",
            "used_memory (MB)",
            "other",
        ] {
            assert!(svg.contains(text), "missing {text:?}");
        }
        // Each series: its line (as many points as it has) and its legend mark.
        for (colour, points) in [("#1F77B4", 3), ("#D62728", 2)] {
            let lines: Vec<&str> = svg
                .lines()
                .filter(|l| l.contains("<polyline") && l.contains(colour))
                .collect();
            assert_eq!(lines.len(), 2, "{colour}: {lines:?}");
            assert!(
                lines.iter().any(|l| l.matches(',').count() == points),
                "{colour}: {lines:?}"
            );
        }
    }
}
