//! What a run measured over simulated time, for the report's charts: per interval (a
//! "bin") the jobs, the run-everything runs, the round trips of tickgate and of the
//! seed-faithful model, and the slowest step; the seed-faithful samples; the faults.

use std::fmt;

use tickgate::core::time::{DAY_MS, HOUR_MS, MINUTE_MS};

use crate::human::{duration, when};
use crate::world::scenario::FaultKind;

/// Bins a chart has at most: enough to show a fault's spike, few enough that a 180-day
/// run's SVG stays small (a polyline point is ~15 bytes).
pub const MAX_BINS: i64 = 1_000;

/// Bin widths to choose from, the finest first.
const WIDTHS: [i64; 6] = [
    5 * MINUTE_MS,
    15 * MINUTE_MS,
    HOUR_MS,
    6 * HOUR_MS,
    DAY_MS,
    7 * DAY_MS,
];

/// Measures of one interval of simulated time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bin {
    pub ticks: u64,
    pub jobs: u64,
    pub run_everything: u64,
    /// Measured, all instances.
    pub round_trips: u64,
    /// Counted by the oracle's model of the seed.
    pub seed_round_trips: u64,
    /// The slowest instance step (wall µs).
    pub max_step_us: u64,
}

/// One seed-faithful sample: when, its wall time and tickgate's steps at the same tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub at_ms: i64,
    pub seed_us: u64,
    pub tickgate_us: u64,
}

/// A scenario fault as the run met it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedFault {
    /// The simulated time of the tick that met it.
    pub at_ms: i64,
    /// Its offset from the start, as the scenario gives it.
    pub offset_ms: i64,
    pub kind: FaultKind,
    /// Why it was not applied, if it was not.
    pub skipped: Option<&'static str>,
}

impl fmt::Display for AppliedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {} (+{})",
            self.kind,
            when(self.at_ms),
            duration(self.offset_ms)
        )?;
        match self.skipped {
            Some(why) => write!(f, ": skipped, {why}"),
            None => Ok(()),
        }
    }
}

/// The run's measures in bins of [`Timeline::bin_ms`] from the scenario's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    pub start_ms: i64,
    pub bin_ms: i64,
    pub bins: Vec<Bin>,
    pub samples: Vec<Sample>,
    pub faults: Vec<AppliedFault>,
    /// The slowest instance step of the run: (simulated ms, wall µs, instance).
    pub slowest_step: Option<(i64, u64, usize)>,
}

impl Timeline {
    /// Empty bins for a run of `duration_ms`: the finest width that keeps them at most
    /// [`MAX_BINS`], and not finer than a tick.
    pub fn new(start_ms: i64, duration_ms: i64, tick_ms: i64) -> Timeline {
        let bin_ms = WIDTHS
            .iter()
            .copied()
            .find(|w| *w >= tick_ms && duration_ms / w < MAX_BINS)
            .unwrap_or(WIDTHS[WIDTHS.len() - 1])
            .max(tick_ms);
        Timeline {
            start_ms,
            bin_ms,
            bins: Vec::new(),
            samples: Vec::new(),
            faults: Vec::new(),
            slowest_step: None,
        }
    }

    /// The bin of simulated time `now`.
    pub fn at(&mut self, now: i64) -> &mut Bin {
        let i = ((now - self.start_ms).max(0) / self.bin_ms.max(1)) as usize;
        if self.bins.len() <= i {
            self.bins.resize(i + 1, Bin::default());
        }
        &mut self.bins[i]
    }

    /// Records one instance step.
    pub fn step(&mut self, now: i64, instance: usize, us: u64) {
        let bin = self.at(now);
        bin.max_step_us = bin.max_step_us.max(us);
        if self.slowest_step.is_none_or(|(_, max, _)| us > max) {
            self.slowest_step = Some((now, us, instance));
        }
    }

    /// The applied faults (skipped ones left out) whose effect may reach `at_ms`: those at
    /// or before it, a pause while it lasts plus `grace_ms`, others within `grace_ms`.
    pub fn faults_near(&self, at_ms: i64, grace_ms: i64) -> Vec<&AppliedFault> {
        self.faults
            .iter()
            .filter(|f| f.skipped.is_none() && f.at_ms <= at_ms)
            .filter(|f| {
                let lasts = match f.kind {
                    FaultKind::RedisPause { duration_ms } => duration_ms,
                    _ => 0,
                };
                at_ms <= f.at_ms + lasts + grace_ms
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_the_finest_width_that_keeps_a_chart_small() {
        let t = |duration_ms, tick_ms| Timeline::new(0, duration_ms, tick_ms).bin_ms;
        assert_eq!(t(27_000_000, 10_000), 5 * MINUTE_MS); // ci.toml, 7.5 h: 90 bins
        assert_eq!(t(30 * DAY_MS, 300_000), HOUR_MS); // default.toml: 720 bins
        assert_eq!(t(180 * DAY_MS, 300_000), 6 * HOUR_MS); // churn.toml: 720 bins
        assert_eq!(t(HOUR_MS, 20 * MINUTE_MS), HOUR_MS); // never finer than a tick
    }

    #[test]
    fn the_slowest_step_and_the_faults_near_it_are_found() {
        let mut t = Timeline::new(0, DAY_MS, 10_000);
        t.step(10_000, 0, 5_000);
        t.step(7_200_000, 1, 2_000_000);
        t.step(7_210_000, 0, 9_000);
        assert_eq!(t.slowest_step, Some((7_200_000, 2_000_000, 1)));
        assert_eq!(t.bins[0].max_step_us, 5_000);
        assert_eq!(t.at(7_200_000).max_step_us, 2_000_000);
        let fault = |at_ms, kind| AppliedFault {
            at_ms,
            offset_ms: at_ms,
            kind,
            skipped: None,
        };
        t.faults = vec![
            fault(
                7_000_000,
                FaultKind::RedisPause {
                    duration_ms: 60_000,
                },
            ),
            fault(7_190_000, FaultKind::ScriptFlush),
            fault(7_300_000, FaultKind::RedisRestartEmpty),
        ];
        let near: Vec<&str> = t
            .faults_near(7_200_000, 30_000)
            .iter()
            .map(|f| f.kind.label())
            .collect();
        assert_eq!(near, ["script flush"]);
        assert!(t.faults_near(6_999_999, 0).is_empty());
        assert!(t.faults_near(7_060_001, 0).is_empty());
        assert_eq!(t.faults_near(7_060_000, 0).len(), 1);
    }
}
