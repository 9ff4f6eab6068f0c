//! The report's charts, built from what the run measured: executions against the
//! run-everything mode, tick latency against the seed-faithful samples, round trips per
//! tick, Redis memory and tracked tickers — each over simulated time with the faults
//! marked where they happened.

use tickgate::core::time::{DAY_MS, HOUR_MS, MINUTE_MS};

use crate::human::duration;

use super::chart::{Chart, Series, Style};
use crate::run::RunStats;
use crate::run::timeline::{Bin, Timeline};

/// Runs at least this long are charted in days (and their executions counted per day);
/// runs of at least [`HOURS_FROM_MS`] in hours, shorter ones in minutes: at least three
/// units, so the executions chart has a line.
const DAYS_FROM_MS: i64 = 3 * DAY_MS;
const HOURS_FROM_MS: i64 = 3 * HOUR_MS;

const BLUE: &str = "#1f77b4";
const ORANGE: &str = "#ff7f0e";
const GREEN: &str = "#2ca02c";
const RED: &str = "#d62728";

/// One chart of the report: file suffix, caption, and the chart.
pub struct Named {
    pub suffix: &'static str,
    pub caption: &'static str,
    pub chart: Chart,
}

/// The time axis: simulated days or hours since the start.
struct Axis {
    start_ms: i64,
    unit_ms: i64,
    name: &'static str,
}

impl Axis {
    fn of(duration_ms: i64, start_ms: i64) -> Axis {
        let (unit_ms, name) = if duration_ms >= DAYS_FROM_MS {
            (DAY_MS, "day")
        } else if duration_ms >= HOURS_FROM_MS {
            (HOUR_MS, "hour")
        } else {
            (MINUTE_MS, "minute")
        };
        Axis {
            start_ms,
            unit_ms,
            name,
        }
    }

    fn x(&self, ms: i64) -> f64 {
        (ms - self.start_ms) as f64 / self.unit_ms as f64
    }

    fn label(&self) -> String {
        format!("simulated {}s since the start", self.name)
    }
}

/// Every chart the run has data for.
pub fn build(stats: &RunStats, duration_ms: i64) -> Vec<Named> {
    let t = &stats.timeline;
    let axis = Axis::of(duration_ms, t.start_ms);
    let markers: Vec<(f64, String)> = t
        .faults
        .iter()
        .filter(|f| f.skipped.is_none())
        .map(|f| (axis.x(f.at_ms), f.kind.label().to_owned()))
        .collect();
    let chart = |title: String, y_label: &str, log_y, series| Chart {
        title,
        x_label: axis.label(),
        y_label: y_label.to_owned(),
        log_y,
        series,
        markers: markers.clone(),
    };
    let mut charts = timed(t, &axis, &chart);
    let line = |legend: &str, color, points| Series {
        legend: legend.to_owned(),
        color,
        style: Style::Line,
        points,
    };
    let sampled = |samples: &[(i64, u64)], scale: f64| {
        let points = samples
            .iter()
            .map(|(at, v)| (axis.x(*at), *v as f64 / scale));
        points.collect::<Vec<_>>()
    };
    if !stats.memory.is_empty() {
        charts.push(Named {
            suffix: "memory",
            caption: "Redis memory",
            chart: chart(
                "Redis used_memory, sampled hourly".to_owned(),
                "MB",
                false,
                vec![line("used_memory (MB)", BLUE, sampled(&stats.memory, 1e6))],
            ),
        });
    }
    if !stats.tracked.is_empty() {
        charts.push(Named {
            suffix: "tracked",
            caption: "Tracked tickers",
            chart: chart(
                "Tickers tracked in TICK:UPD, sampled hourly".to_owned(),
                "tickers",
                false,
                vec![line("ZCARD TICK:UPD", RED, sampled(&stats.tracked, 1.0))],
            ),
        });
    }
    charts
}

/// The charts of the timeline's bins: executions, latency, round trips.
fn timed(
    t: &Timeline,
    axis: &Axis,
    chart: &impl Fn(String, &str, bool, Vec<Series>) -> Chart,
) -> Vec<Named> {
    vec![
        Named {
            suffix: "executions",
            caption: "Executions: tickgate against run-everything",
            chart: chart(
                format!("Strategy executions per {}", per_name(t, axis)),
                "executions",
                false,
                executions(t, axis),
            ),
        },
        Named {
            suffix: "latency",
            caption: "Tick latency: tickgate against the seed-faithful tick",
            chart: chart(
                "Tick latency (wall ms, log scale)".to_owned(),
                "ms",
                true,
                latency(t, axis),
            ),
        },
        Named {
            suffix: "round-trips",
            caption: "Redis round trips per tick",
            chart: chart(
                "Redis round trips per tick (log scale)".to_owned(),
                "round trips",
                true,
                round_trips(t, axis),
            ),
        },
    ]
}

/// What [`per_unit`] sums over: `simulated day`, `simulated hour`, or the bin's width.
fn per_name(t: &Timeline, axis: &Axis) -> String {
    if t.bin_ms <= axis.unit_ms {
        format!("simulated {}", axis.name)
    } else {
        format!("{} of simulated time", duration(t.bin_ms))
    }
}

/// The bins summed per axis unit (a day or an hour): (x at the unit's start, its sum).
fn per_unit(t: &Timeline, axis: &Axis, value: impl Fn(&Bin) -> u64) -> Vec<(f64, f64)> {
    let per = (axis.unit_ms / t.bin_ms).max(1) as usize;
    // A last unit the run did not fill would read as a drop: left out, unless alone.
    let full = if t.bins.len() > per {
        t.bins.len() / per * per
    } else {
        t.bins.len()
    };
    t.bins[..full]
        .chunks(per)
        .enumerate()
        .map(|(i, chunk)| {
            let at = t.start_ms + (i * per) as i64 * t.bin_ms;
            (axis.x(at), chunk.iter().map(&value).sum::<u64>() as f64)
        })
        .collect()
}

/// Each bin's middle on the axis.
fn bin_x(t: &Timeline, axis: &Axis, i: usize) -> f64 {
    axis.x(t.start_ms + i as i64 * t.bin_ms + t.bin_ms / 2)
}

fn executions(t: &Timeline, axis: &Axis) -> Vec<Series> {
    vec![
        Series {
            legend: "tickgate (jobs)".into(),
            color: BLUE,
            style: Style::Line,
            points: per_unit(t, axis, |b| b.jobs),
        },
        Series {
            legend: "run-everything (one per strategy per bucket)".into(),
            color: ORANGE,
            style: Style::Line,
            points: per_unit(t, axis, |b| b.run_everything),
        },
    ]
}

fn latency(t: &Timeline, axis: &Axis) -> Vec<Series> {
    let slowest = t
        .bins
        .iter()
        .enumerate()
        .filter(|(_, b)| b.ticks > 0)
        .map(|(i, b)| (bin_x(t, axis, i), b.max_step_us.max(1) as f64 / 1000.0))
        .collect();
    let sampled = |us: fn(&crate::run::timeline::Sample) -> u64| {
        t.samples
            .iter()
            .map(|s| (axis.x(s.at_ms), us(s) as f64 / 1000.0))
            .collect()
    };
    vec![
        Series {
            legend: format!("tickgate, slowest instance step per {}", duration(t.bin_ms)),
            color: BLUE,
            style: Style::Line,
            points: slowest,
        },
        Series {
            legend: "seed-faithful tick (samples)".into(),
            color: RED,
            style: Style::Points,
            points: sampled(|s| s.seed_us),
        },
        Series {
            legend: "tickgate at those ticks (all instances)".into(),
            color: GREEN,
            style: Style::Points,
            points: sampled(|s| s.tickgate_us),
        },
    ]
}

fn round_trips(t: &Timeline, axis: &Axis) -> Vec<Series> {
    let per_tick = |value: fn(&Bin) -> u64| {
        t.bins
            .iter()
            .enumerate()
            .filter(|(_, b)| b.ticks > 0)
            .map(|(i, b)| (bin_x(t, axis, i), value(b) as f64 / b.ticks as f64))
            .filter(|(_, v)| *v > 0.0)
            .collect()
    };
    vec![
        Series {
            legend: format!(
                "tickgate (measured, all instances), mean per {}",
                duration(t.bin_ms)
            ),
            color: BLUE,
            style: Style::Line,
            points: per_tick(|b| b.round_trips),
        },
        Series {
            legend: "seed-faithful (counted on the same world)".into(),
            color: ORANGE,
            style: Style::Line,
            points: per_tick(|b| b.seed_round_trips),
        },
    ]
}
