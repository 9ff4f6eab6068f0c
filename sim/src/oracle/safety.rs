//! Safety (DESIGN §2.3): no ticker is dispatched twice for a strategy in one bucket without
//! a failed run between. Checked from the dispatches and the workers' verdicts alone: this
//! checker shares no decision code with the engine.

use std::collections::{BTreeMap, BTreeSet};

use tickgate::StrategyId;
use tickgate::core::catalog::Strategy;
use tickgate::core::jobs::{Job, JobMode};

use super::{Merged, Violation};

/// Every (strategy, bucket, ticker) dispatched per ticker in a bucket that may still
/// repeat, minus those a failed run released.
#[derive(Debug, Clone, Default)]
pub struct Safety {
    dispatched: BTreeSet<(StrategyId, i64, String)>,
}

impl Safety {
    /// The first per-ticker dispatch of `got` that repeats an earlier one.
    pub fn check(&self, now: i64, got: &Merged) -> Result<(), Violation> {
        let per_ticker = got
            .iter()
            .filter(|((_, _, mode), _)| *mode == JobMode::PerTicker);
        for ((id, bucket, _), symbols) in per_ticker {
            if let Some(t) = symbols
                .iter()
                .find(|t| self.dispatched.contains(&(*id, *bucket, (*t).clone())))
            {
                return Err(Violation::Safety {
                    tick_ms: now,
                    strategy: *id,
                    ticker: t.clone(),
                    bucket_ms: *bucket,
                });
            }
        }
        Ok(())
    }

    /// Remembers the per-ticker dispatches of a tick that passed.
    pub fn record(&mut self, got: &Merged) {
        for ((id, bucket, mode), symbols) in got {
            if *mode == JobMode::PerTicker {
                let dispatched = symbols.iter().map(|t| (*id, *bucket, t.clone()));
                self.dispatched.extend(dispatched);
            }
        }
    }

    /// A failed run releases its claims: dispatching its tickers again is allowed.
    pub fn release(&mut self, job: &Job) {
        for t in job.symbols.iter().flatten() {
            let key = (job.strategy_id, job.bucket_start_ms, t.clone());
            self.dispatched.remove(&key);
        }
    }

    /// Redis lost the claims (restart empty): what was dispatched before is forgotten with
    /// them.
    pub fn forget(&mut self) {
        self.dispatched.clear();
    }

    /// Forgets the dispatches of buckets that are over at `now` (they can never repeat), so
    /// the checker's memory stays bounded over long runs.
    pub fn retain_open(&mut self, now: i64, strategies: &BTreeMap<StrategyId, Strategy>) {
        self.dispatched.retain(|(id, bucket, _)| {
            let current = strategies
                .get(id)
                .and_then(|s| s.timeframe.as_ref().ok()?.bucket(now).ok());
            current.is_some_and(|b| b.start_ms <= *bucket)
        });
    }
}
