//! The decision core (DESIGN §2.3–2.4): pure and synchronous — no I/O, no clock. Given a
//! strategy, the time, its universe, the update times and the trigger state, it says whether
//! the strategy runs, on which tickers, or why not.
//!
//! [`decide`] is the full evaluation: the oracle. The engine's incremental planner
//! (`planner.rs`) must reach the same decisions while doing work proportional to what
//! changed; tests and the simulator compare the two.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::domain::{InputError, StrategyId, Ticker, excerpt};
use crate::jobs::JobMode;
use crate::timeframe::{Bucket, Timeframe, TimeframeError};

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

/// What the engine knows of a strategy's universe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Universe {
    /// `all`, or empty: the whole market, which cannot be filtered per ticker.
    Global,
    /// An explicit, non-empty set.
    Tickers(BTreeSet<Ticker>),
    /// Declared explicit, but none can be had (no valid ticker): strategy-level fallback,
    /// because a lost cache must never silence alerts.
    Missing,
}

/// A strategy as the engine uses it, parsed from its catalog entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strategy {
    pub id: StrategyId,
    pub user_id: u64,
    pub name: String,
    /// Kept unparsed on error: the strategy is skipped with `invalid_timeframe`, not dropped.
    pub timeframe: Result<Timeframe, TimeframeError>,
    pub universe: Universe,
    pub active: bool,
}

/// The catalog entry JSON (DESIGN §2.8): `{"id": 123, "user_id": 7, "name": "gap up",
/// "timeframe": "5m", "universe": ["AAPL", "MSFT"] | "all", "active": true}`.
#[derive(Debug, Deserialize)]
struct CatalogEntry {
    id: StrategyId,
    #[serde(default)]
    user_id: u64,
    #[serde(default)]
    name: String,
    timeframe: String,
    #[serde(default)]
    universe: Option<UniverseField>,
    #[serde(default = "active_by_default")]
    active: bool,
}

fn active_by_default() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum UniverseField {
    List(Vec<String>),
    Word(String),
}

/// Why a catalog entry could not be used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog entry {key} is not a strategy JSON object: {reason}")]
    Json { key: String, reason: String },
    #[error("catalog entry {key} holds strategy id {id}")]
    IdMismatch { key: String, id: StrategyId },
    #[error("catalog entry {key}: universe {value:?} is neither a list nor \"all\"")]
    Universe { key: String, value: String },
}

impl Strategy {
    /// Parses a catalog entry stored under `key`. Invalid universe tickers are dropped
    /// (and returned, to be counted); a universe with none left is [`Universe::Missing`].
    pub fn from_catalog(
        key: StrategyId,
        json: &str,
    ) -> Result<(Strategy, Vec<InputError>), CatalogError> {
        let entry: CatalogEntry = serde_json::from_str(json).map_err(|e| CatalogError::Json {
            key: key.to_string(),
            reason: e.to_string(),
        })?;
        if entry.id != key {
            return Err(CatalogError::IdMismatch {
                key: key.to_string(),
                id: entry.id,
            });
        }
        let mut rejected = Vec::new();
        let universe = match entry.universe {
            None => Universe::Global,
            Some(UniverseField::Word(w)) if w.eq_ignore_ascii_case("all") || w.is_empty() => {
                Universe::Global
            }
            Some(UniverseField::Word(w)) => {
                return Err(CatalogError::Universe {
                    key: key.to_string(),
                    value: excerpt(&w),
                });
            }
            Some(UniverseField::List(list)) if list.is_empty() => Universe::Global,
            Some(UniverseField::List(list)) => {
                let mut set = BTreeSet::new();
                for raw in &list {
                    match Ticker::parse(raw) {
                        Ok(t) => {
                            set.insert(t);
                        }
                        Err(e) => rejected.push(e),
                    }
                }
                if set.is_empty() {
                    Universe::Missing
                } else {
                    Universe::Tickers(set)
                }
            }
        };
        let strategy = Strategy {
            id: entry.id,
            user_id: entry.user_id,
            name: entry.name,
            timeframe: entry.timeframe.parse(),
            universe,
            active: entry.active,
        };
        Ok((strategy, rejected))
    }
}

/// Full evaluation of one strategy at `now_ms` (DESIGN §2.3 steps 1–5, §2.4).
///
/// - `per_ticker`: the `per_ticker_throttle` flag (false = strategy-level for everyone);
/// - `last_update(t)`: ticker `t`'s last update time, if known;
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
    let whole = |mode, symbols| {
        if ran(bucket.start_ms) {
            Decision::Skip(SkipReason::BucketDup)
        } else {
            Decision::Run {
                bucket,
                mode,
                symbols,
            }
        }
    };
    match &strategy.universe {
        Universe::Global => whole(JobMode::Global, Vec::new()),
        Universe::Missing => whole(JobMode::Strategy, Vec::new()),
        Universe::Tickers(u) if !per_ticker => {
            whole(JobMode::Strategy, u.iter().cloned().collect())
        }
        Universe::Tickers(u) => {
            let changed: Vec<&Ticker> = u
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
    fn catalog_entries_parse_as_documented() {
        let s = strategy(
            r#"{"id":1,"user_id":7,"name":"gap up","timeframe":"5m","universe":["AAPL","MSFT"],"active":true}"#,
        );
        assert_eq!(s.universe, Universe::Tickers([t("AAPL"), t("MSFT")].into()));
        assert_eq!(
            strategy(r#"{"id":1,"timeframe":"1d","universe":"all"}"#).universe,
            Universe::Global
        );
        assert_eq!(
            strategy(r#"{"id":1,"timeframe":"1d","universe":[]}"#).universe,
            Universe::Global
        );
        let (s, rejected) =
            Strategy::from_catalog(1, r#"{"id":1,"timeframe":"0m","universe":["A B",""]}"#)
                .unwrap();
        assert_eq!((s.universe, rejected.len()), (Universe::Missing, 2));
        assert!(s.timeframe.is_err());
        assert!(matches!(
            Strategy::from_catalog(2, r#"{"id":1,"timeframe":"1m"}"#),
            Err(CatalogError::IdMismatch { .. })
        ));
        assert!(matches!(
            Strategy::from_catalog(1, r#"{"id":1,"timeframe":"1m","universe":"some"}"#),
            Err(CatalogError::Universe { .. })
        ));
        assert!(matches!(
            Strategy::from_catalog(1, "[]"),
            Err(CatalogError::Json { .. })
        ));
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
