//! The decision core (DESIGN §2.3–2.4): pure and synchronous — no I/O, no clock. Given a
//! strategy, the time, its universe, the update times and the trigger state, it says whether
//! the strategy runs, on which tickers, or why not.
//!
//! [`decide`] is the full evaluation: the oracle. The engine's incremental planner
//! ([`super::planner`]) must reach the same decisions while doing work proportional to what
//! changed; tests and the simulator compare the two.

use std::collections::BTreeSet;

use super::calendar::Bucket;
use super::catalog::{Strategy, Universe};
use super::jobs::JobMode;
use super::ticker::Ticker;

/// Why a strategy was not run this tick (the `skipped{reason=…}` counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// No ticker of the universe changed in the current bucket.
    NoUpdate,
    /// Everything that changed was already dispatched in this bucket.
    BucketDup,
    /// The timeframe does not parse; the strategy never runs until it is fixed.
    InvalidTimeframe,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NoUpdate => "no_update",
            SkipReason::BucketDup => "bucket_dup",
            SkipReason::InvalidTimeframe => "invalid_timeframe",
        }
    }
}

/// The outcome for one strategy at one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run in `bucket` on `symbols` (sorted; empty for runs without a symbol filter).
    Run {
        bucket: Bucket,
        mode: JobMode,
        symbols: Vec<Ticker>,
    },
    Skip(SkipReason),
}

/// Full evaluation of one strategy at `now_ms` (DESIGN §2.3 steps 1–5, §2.4).
///
/// - `per_ticker`: the `per_ticker_throttle` flag (false = strategy-level for everyone);
/// - `last_update(t)`: ticker `t`'s last update time, if known and [`admitted`];
/// - `claimed(t, start)`: whether `t` was dispatched for this strategy in the bucket
///   starting at `start`;
/// - `ran(start)`: whether a whole-strategy run happened in that bucket.
pub fn decide(
    strategy: &Strategy,
    per_ticker: bool,
    now_ms: i64,
    last_update: impl Fn(&Ticker) -> Option<i64>,
    claimed: impl Fn(&Ticker, i64) -> bool,
    ran: impl Fn(i64) -> bool,
) -> Decision {
    let bucket = strategy
        .timeframe
        .as_ref()
        .ok()
        .and_then(|tf| tf.bucket(now_ms).ok());
    decide_in(strategy, per_ticker, bucket, last_update, claimed, ran)
}

/// [`decide`] with the strategy's current bucket already computed (`None`: the timeframe is
/// invalid or the instant out of range). Callers evaluating many strategies compute one
/// bucket per distinct timeframe.
pub fn decide_in(
    strategy: &Strategy,
    per_ticker: bool,
    bucket: Option<Bucket>,
    last_update: impl Fn(&Ticker) -> Option<i64>,
    claimed: impl Fn(&Ticker, i64) -> bool,
    ran: impl Fn(i64) -> bool,
) -> Decision {
    let Some(bucket) = bucket else {
        return Decision::Skip(SkipReason::InvalidTimeframe);
    };
    let universe = match run_shape(&strategy.universe, per_ticker) {
        RunShape::Whole { mode, symbols } => {
            return if ran(bucket.start_ms) {
                Decision::Skip(SkipReason::BucketDup)
            } else {
                Decision::Run {
                    bucket,
                    mode,
                    symbols,
                }
            };
        }
        RunShape::PerTicker(universe) => universe,
    };
    let changed: Vec<&Ticker> = universe
        .iter()
        .filter(|t| last_update(t).is_some_and(|ts| ts >= bucket.start_ms))
        .collect();
    if changed.is_empty() {
        return Decision::Skip(SkipReason::NoUpdate);
    }
    let fresh: Vec<Ticker> = changed
        .into_iter()
        .filter(|t| !claimed(t, bucket.start_ms))
        .cloned()
        .collect();
    if fresh.is_empty() {
        return Decision::Skip(SkipReason::BucketDup);
    }
    Decision::Run {
        bucket,
        mode: JobMode::PerTicker,
        symbols: fresh,
    }
}

/// Whether an update time `ts_ms` counts at `now_ms` (DESIGN §2.3): at most `max_future_ms`
/// ahead of the clock. A time further ahead is ignored until the clock comes within the
/// bound: `ZADD GT` never lowers it, so trusting it would pin the ticker. [`decide`] takes
/// update times as they are; its callers hide those this rejects, as the planner does.
pub fn admitted(ts_ms: i64, now_ms: i64, max_future_ms: i64) -> bool {
    ts_ms <= now_ms.saturating_add(max_future_ms)
}

/// How a strategy runs (DESIGN §2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunShape<'a> {
    /// At most once per bucket, on `symbols` (sorted; empty: no symbol filter).
    Whole { mode: JobMode, symbols: Vec<Ticker> },
    /// Per ticker, on those of this universe that changed in the bucket.
    PerTicker(&'a BTreeSet<Ticker>),
}

/// Global strategies cannot be filtered per ticker; a missing universe falls back to a
/// whole run (a lost cache must never silence alerts); without `per_ticker` (the rollback
/// switch) every strategy runs whole.
pub fn run_shape(universe: &Universe, per_ticker: bool) -> RunShape<'_> {
    let whole = |mode, symbols| RunShape::Whole { mode, symbols };
    match universe {
        Universe::Global => whole(JobMode::Global, Vec::new()),
        Universe::Missing => whole(JobMode::Strategy, Vec::new()),
        Universe::Tickers(u) if !per_ticker => {
            whole(JobMode::Strategy, u.iter().cloned().collect())
        }
        Universe::Tickers(u) => RunShape::PerTicker(u),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_717_421_400_000; // 2024-06-03T13:30Z

    fn strategy(json: &str) -> Strategy {
        Strategy::from_catalog(1, json).expect("valid").0
    }

    fn t(s: &str) -> Ticker {
        Ticker::parse(s).expect("valid")
    }

    #[test]
    fn per_ticker_mode_runs_exactly_the_fresh_changed_tickers() {
        let s = strategy(r#"{"id":1,"timeframe":"1h","universe":["A","B","C"]}"#);
        let start = s.timeframe.as_ref().unwrap().bucket(NOW).unwrap().start_ms;
        let upd = |x: &Ticker| match x.as_str() {
            "A" => Some(start),
            "B" => Some(start - 1),
            _ => Some(start + 5),
        };
        let d = decide(&s, true, NOW, upd, |x, _| x.as_str() == "C", |_| false);
        assert!(
            matches!(d, Decision::Run { mode: JobMode::PerTicker, ref symbols, .. } if symbols == &[t("A")])
        );
        let d = decide(&s, true, NOW, upd, |x, _| x.as_str() != "B", |_| false);
        assert_eq!(d, Decision::Skip(SkipReason::BucketDup));
        let d = decide(&s, true, NOW, |_| Some(start - 1), |_, _| false, |_| false);
        assert_eq!(d, Decision::Skip(SkipReason::NoUpdate));
    }

    #[test]
    fn a_time_counts_up_to_max_future_ms_ahead() {
        assert!(admitted(NOW + 1_000, NOW, 1_000));
        assert!(!admitted(NOW + 1_001, NOW, 1_000));
        assert!(admitted(NOW - 1, NOW, 0));
        assert!(admitted(i64::MAX, i64::MAX - 1, 1_000), "no overflow");
    }

    #[test]
    fn whole_strategy_rules() {
        let explicit = strategy(r#"{"id":1,"timeframe":"1h","universe":["B","A"]}"#);
        let never = |_: &Ticker| None;
        let d = decide(&explicit, false, NOW, never, |_, _| false, |_| false);
        assert!(
            matches!(d, Decision::Run { mode: JobMode::Strategy, ref symbols, .. } if symbols == &[t("A"), t("B")])
        );
        assert_eq!(
            decide(&explicit, false, NOW, never, |_, _| false, |_| true),
            Decision::Skip(SkipReason::BucketDup)
        );
        let global = strategy(r#"{"id":1,"timeframe":"1h","universe":"all"}"#);
        let d = decide(&global, true, NOW, never, |_, _| false, |_| false);
        assert!(
            matches!(d, Decision::Run { mode: JobMode::Global, ref symbols, .. } if symbols.is_empty())
        );
        let missing = strategy(r#"{"id":1,"timeframe":"1h","universe":["not valid"]}"#);
        let d = decide(&missing, true, NOW, never, |_, _| false, |_| false);
        assert!(
            matches!(d, Decision::Run { mode: JobMode::Strategy, ref symbols, .. } if symbols.is_empty())
        );
        let bad = strategy(r#"{"id":1,"timeframe":"5x","universe":["A"]}"#);
        assert_eq!(
            decide(&bad, true, NOW, never, |_, _| false, |_| false),
            Decision::Skip(SkipReason::InvalidTimeframe)
        );
    }
}
