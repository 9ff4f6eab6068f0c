//! The seed's algorithm and its cost, in one place: what the original Go backend (stage 3,
//! per ticker) does for one strategy at one tick, and the Redis round trips that costs.
//!
//! Two users, one table:
//! - the seed-faithful replay (`redis::baseline`) issues the commands against Redis,
//!   classifies each strategy as a [`SeedStep`] and asserts that it made exactly
//!   [`SeedStep::round_trips`] round trips for it;
//! - [`SeedModel`] runs the same algorithm on the oracle's world, with the seed's own
//!   trigger state, every tick, and counts [`SeedStep::round_trips`]: the simulator's
//!   "seed-faithful round trips (counted on the same world)".
//!
//! The seed's per-ticker rule is DESIGN §2.3 steps 3–5 with its own marks, so the model
//! evaluates it with [`decide_in`] of `tickgate::core`, except where the seed differs:
//! - it marks (`HMSET STRAT:<id>:LAST`) what it dispatches and never releases a mark, so a
//!   failed run is never retried in its bucket;
//! - a universe it cannot read (an empty `SMEMBERS`) runs in full at every tick, not once
//!   per bucket;
//! - it is always per ticker (there is no rollback switch), global strategies once per
//!   bucket through a run marker;
//! - it has no closing pass.

use std::collections::{BTreeMap, BTreeSet};

use tickgate::core::catalog::{Strategy, Universe};
use tickgate::core::rule::{Decision, SkipReason, decide_in};
use tickgate::{Bucket, StrategyId, Ticker};

use super::FastMap;

/// What the seed did for one strategy at one tick; each outcome costs a fixed number of
/// awaited round trips (module docs of `redis::baseline` for the commands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SeedStep {
    /// The timeframe does not parse: skipped before any command.
    InvalidTimeframe,
    /// Global: `GET` of the run marker showed this bucket.
    GlobalDup,
    /// Global: `GET`, then `SET` of the marker; runs unfiltered.
    GlobalRun,
    /// `ZRANGEBYSCORE`, `SMEMBERS` empty: runs in full ("missing universe data falls back
    /// to full execution").
    MissingUniverse,
    /// `ZRANGEBYSCORE`, `SMEMBERS`: no member updated in the bucket.
    NoUpdate,
    /// ... then `HMGET`: every updated member already marked for the bucket.
    BucketDup,
    /// ... then `HMSET` of the `tickers` fresh ones: runs on them.
    Run { tickers: u64 },
}

impl SeedStep {
    /// Awaited round trips of this outcome: the one cost model of the seed.
    pub const fn round_trips(self) -> u64 {
        match self {
            SeedStep::InvalidTimeframe => 0,
            SeedStep::GlobalDup => 1,
            SeedStep::GlobalRun | SeedStep::MissingUniverse | SeedStep::NoUpdate => 2,
            SeedStep::BucketDup => 3,
            SeedStep::Run { .. } => 4,
        }
    }

    /// Whether the strategy runs.
    pub const fn runs(self) -> bool {
        matches!(
            self,
            SeedStep::GlobalRun | SeedStep::MissingUniverse | SeedStep::Run { .. }
        )
    }
}

/// The seed's trigger state on the oracle's world: per strategy, the bucket of its marks
/// and the tickers marked in it (a mark of an older bucket never matches again, so only the
/// latest bucket's are kept), and the run markers of global strategies.
#[derive(Debug, Clone, Default)]
pub struct SeedModel {
    marks: FastMap<StrategyId, (i64, BTreeSet<Ticker>)>,
    runs: BTreeMap<StrategyId, i64>,
}

impl SeedModel {
    /// Redis lost everything (restart empty): the seed's marks with it.
    pub fn forget(&mut self) {
        self.marks.clear();
        self.runs.clear();
    }

    /// The seed's step for `s` in `bucket` (`None`: invalid timeframe), marking what it
    /// dispatches. `unchanged` says the oracle already found no universe member updated in
    /// the bucket (the same set the seed reads), which spares evaluating it again.
    pub fn step(
        &mut self,
        s: &Strategy,
        bucket: Option<Bucket>,
        unchanged: bool,
        last_update: impl Fn(&Ticker) -> Option<i64>,
    ) -> SeedStep {
        let Some(bucket) = bucket else {
            return SeedStep::InvalidTimeframe;
        };
        match &s.universe {
            Universe::Missing => return SeedStep::MissingUniverse,
            Universe::Tickers(_) if unchanged => return SeedStep::NoUpdate,
            Universe::Tickers(_) | Universe::Global => {}
        }
        let marks = self.marks.get(&s.id);
        let claimed = |t: &Ticker, start: i64| {
            marks.is_some_and(|(marked, tickers)| *marked == start && tickers.contains(t))
        };
        let ran = |start: i64| self.runs.get(&s.id) == Some(&start);
        let global = s.universe == Universe::Global;
        match decide_in(s, true, Some(bucket), last_update, claimed, ran) {
            Decision::Skip(SkipReason::InvalidTimeframe) => SeedStep::InvalidTimeframe,
            Decision::Skip(SkipReason::NoUpdate) => SeedStep::NoUpdate,
            Decision::Skip(SkipReason::BucketDup) if global => SeedStep::GlobalDup,
            Decision::Skip(SkipReason::BucketDup) => SeedStep::BucketDup,
            Decision::Run { .. } if global => {
                self.runs.insert(s.id, bucket.start_ms);
                SeedStep::GlobalRun
            }
            Decision::Run { symbols, .. } => {
                let tickers = symbols.len() as u64;
                let entry = self.marks.entry(s.id).or_default();
                if entry.0 != bucket.start_ms {
                    *entry = (bucket.start_ms, BTreeSet::new());
                }
                entry.1.extend(symbols);
                SeedStep::Run { tickers }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_717_421_400_000; // 2024-06-03T13:30Z

    fn strategy(json: &str) -> Strategy {
        Strategy::from_catalog(1, json).expect("valid").0
    }

    #[test]
    fn the_seed_marks_once_per_bucket_and_never_releases() {
        let s = strategy(r#"{"id":1,"timeframe":"1h","universe":["A","B"]}"#);
        let bucket = s.timeframe.as_ref().unwrap().bucket(NOW).ok();
        let start = bucket.unwrap().start_ms;
        let mut seed = SeedModel::default();
        let a_only = |t: &Ticker| (t.as_str() == "A").then_some(start);
        assert_eq!(
            seed.step(&s, bucket, false, a_only),
            SeedStep::Run { tickers: 1 }
        );
        // No release: the same update is a bucket_dup, whatever became of the run.
        assert_eq!(seed.step(&s, bucket, false, a_only), SeedStep::BucketDup);
        let both = |_: &Ticker| Some(start);
        assert_eq!(
            seed.step(&s, bucket, false, both),
            SeedStep::Run { tickers: 1 }
        );
        assert_eq!(
            seed.step(&s, bucket, true, both),
            SeedStep::NoUpdate,
            "the oracle's no_update is the seed's"
        );
        seed.forget();
        assert_eq!(
            seed.step(&s, bucket, false, both),
            SeedStep::Run { tickers: 2 }
        );
        let costs: Vec<u64> = [
            SeedStep::Run { tickers: 2 },
            SeedStep::BucketDup,
            SeedStep::NoUpdate,
        ]
        .map(SeedStep::round_trips)
        .into();
        assert_eq!(costs, [4, 3, 2]);
    }

    #[test]
    fn globals_use_a_marker_and_missing_universes_run_every_tick() {
        let global = strategy(r#"{"id":1,"timeframe":"1h","universe":"all"}"#);
        let bucket = global.timeframe.as_ref().unwrap().bucket(NOW).ok();
        let mut seed = SeedModel::default();
        let never = |_: &Ticker| None;
        assert_eq!(
            seed.step(&global, bucket, false, never),
            SeedStep::GlobalRun
        );
        assert_eq!(
            seed.step(&global, bucket, false, never),
            SeedStep::GlobalDup
        );
        let missing = strategy(r#"{"id":1,"timeframe":"1h","universe":["not valid"]}"#);
        for _ in 0..2 {
            let step = seed.step(&missing, bucket, false, never);
            assert_eq!((step, step.round_trips()), (SeedStep::MissingUniverse, 2));
        }
        assert_eq!(
            seed.step(&global, None, false, never).round_trips(),
            0,
            "an invalid timeframe costs nothing"
        );
    }
}
