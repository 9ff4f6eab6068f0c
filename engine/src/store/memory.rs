//! The in-memory model of the store: plain ordered maps behind one mutex, each operation a
//! few lines that read like DESIGN.md. It is the oracle for the Redis store and for the
//! simulator; it models everything observable except key expiry (which runs on Redis's
//! own clock and is tested separately).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use super::{
    CLEANUP_CHUNK, CleanupReport, Intersection, MAX_CLEANUP_CALLS_PER_RUN, Store, StoreCounters,
    StoreError, check_bucket, effective_retention_ms, validate_universe, validate_updates,
};
use crate::domain::{StrategyId, Ticker, check_timestamp};
use crate::timeframe::{Bucket, Timeframe};

/// Everything the model stores; public so tests can compare it with Redis's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryState {
    /// `TICK:UPD`: ticker → last update ms.
    pub updates: BTreeMap<Ticker, i64>,
    /// `STRAT:<id>:UNIV`: never empty (an empty universe is never stored).
    pub universes: BTreeMap<StrategyId, BTreeSet<Ticker>>,
    /// `STRAT:<id>:LAST`.
    pub triggers: BTreeMap<StrategyId, TriggerState>,
    /// `STRAT:<id>:RUN`: bucket start of the last whole-strategy run.
    pub strategy_runs: BTreeMap<StrategyId, i64>,
}

/// One strategy's per-ticker trigger hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriggerState {
    /// Newest bucket start claimed into the hash (`# bucket`).
    pub newest_bucket_ms: i64,
    /// Ticker → bucket start of its last claim.
    pub claims: BTreeMap<Ticker, i64>,
}

/// The model store.
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
    max_universe: usize,
    counters: StoreCounters,
}

impl MemoryStore {
    /// An empty model that rejects universes above `max_universe`.
    pub fn new(max_universe: usize) -> MemoryStore {
        MemoryStore {
            state: Mutex::new(MemoryState::default()),
            max_universe,
            counters: StoreCounters::default(),
        }
    }

    /// A copy of the whole state.
    pub fn snapshot(&self) -> MemoryState {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, MemoryState> {
        // A panic while holding the lock cannot leave a half-applied operation: every
        // operation computes first and mutates last. So a poisoned lock is still sound.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemoryStore {
    async fn record_updates<S: AsRef<str> + Sync>(
        &self,
        updates: &[(S, i64)],
    ) -> Result<(), StoreError> {
        let latest = validate_updates(updates)?;
        let mut state = self.lock();
        for (ticker, ts_ms) in latest {
            let slot = state.updates.entry(ticker).or_insert(ts_ms);
            *slot = (*slot).max(ts_ms);
        }
        Ok(())
    }

    async fn updated_since(&self, since_ms: i64) -> Result<BTreeMap<Ticker, i64>, StoreError> {
        check_timestamp(since_ms)?;
        let state = self.lock();
        Ok(state
            .updates
            .iter()
            .filter(|(_, ts)| **ts >= since_ms)
            .map(|(t, ts)| (t.clone(), *ts))
            .collect())
    }

    async fn tracked_tickers(&self) -> Result<u64, StoreError> {
        Ok(self.lock().updates.len() as u64)
    }

    async fn universe(&self, id: StrategyId) -> Result<Option<BTreeSet<Ticker>>, StoreError> {
        Ok(self.lock().universes.get(&id).cloned())
    }

    async fn universe_size(&self, id: StrategyId) -> Result<u64, StoreError> {
        Ok(self.lock().universes.get(&id).map_or(0, |u| u.len() as u64))
    }

    async fn replace_universe<S: AsRef<str> + Sync>(
        &self,
        id: StrategyId,
        tickers: &[S],
    ) -> Result<usize, StoreError> {
        let set = validate_universe(id, tickers, self.max_universe)?;
        let size = set.len();
        self.lock().universes.insert(id, set);
        Ok(size)
    }

    async fn claim(
        &self,
        id: StrategyId,
        bucket: Bucket,
        _now_ms: i64,
        tickers: &[Ticker],
    ) -> Result<Vec<Ticker>, StoreError> {
        let bucket = check_bucket(bucket)?;
        let mut state = self.lock();
        let trigger = state.triggers.entry(id).or_insert_with(|| TriggerState {
            newest_bucket_ms: bucket.start_ms,
            claims: BTreeMap::new(),
        });
        if bucket.end_ms <= trigger.newest_bucket_ms {
            return Ok(Vec::new()); // stale: a newer bucket was claimed already
        }
        if bucket.start_ms > trigger.newest_bucket_ms {
            *trigger = TriggerState {
                newest_bucket_ms: bucket.start_ms,
                claims: BTreeMap::new(),
            };
        }
        let mut claimed = Vec::new();
        for ticker in tickers {
            if trigger.claims.get(ticker) != Some(&bucket.start_ms) {
                trigger.claims.insert(ticker.clone(), bucket.start_ms);
                claimed.push(ticker.clone());
            }
        }
        Ok(claimed)
    }

    async fn release(
        &self,
        id: StrategyId,
        bucket: Bucket,
        tickers: &[Ticker],
    ) -> Result<u64, StoreError> {
        let bucket = check_bucket(bucket)?;
        let mut state = self.lock();
        let Some(trigger) = state.triggers.get_mut(&id) else {
            return Ok(0);
        };
        let mut released = 0;
        for ticker in tickers {
            if trigger.claims.get(ticker) == Some(&bucket.start_ms) {
                trigger.claims.remove(ticker);
                released += 1;
            }
        }
        Ok(released)
    }

    async fn claim_strategy(
        &self,
        id: StrategyId,
        bucket: Bucket,
        _now_ms: i64,
    ) -> Result<bool, StoreError> {
        let bucket = check_bucket(bucket)?;
        let mut state = self.lock();
        if let Some(&last) = state.strategy_runs.get(&id)
            && (last == bucket.start_ms || bucket.end_ms <= last)
        {
            return Ok(false);
        }
        state.strategy_runs.insert(id, bucket.start_ms);
        Ok(true)
    }

    async fn release_strategy(&self, id: StrategyId, bucket: Bucket) -> Result<bool, StoreError> {
        let bucket = check_bucket(bucket)?;
        let mut state = self.lock();
        if state.strategy_runs.get(&id) == Some(&bucket.start_ms) {
            state.strategy_runs.remove(&id);
            return Ok(true);
        }
        Ok(false)
    }

    async fn intersect(
        &self,
        id: StrategyId,
        since_ms: i64,
        _method: Intersection,
    ) -> Result<Vec<Ticker>, StoreError> {
        check_timestamp(since_ms)?;
        let state = self.lock();
        let Some(universe) = state.universes.get(&id) else {
            return Ok(Vec::new());
        };
        Ok(universe
            .iter()
            .filter(|t| state.updates.get(*t).is_some_and(|ts| *ts >= since_ms))
            .cloned()
            .collect())
    }

    async fn cleanup(
        &self,
        now_ms: i64,
        configured_retention_ms: i64,
        active: &[Timeframe],
    ) -> Result<CleanupReport, StoreError> {
        check_timestamp(now_ms)?;
        let effective = effective_retention_ms(configured_retention_ms, active);
        let cutoff_ms = now_ms.saturating_sub(effective);
        let mut state = self.lock();
        let before = state.updates.len();
        state.updates.retain(|_, ts| *ts >= cutoff_ms);
        let removed = (before - state.updates.len()) as u64;
        // The same call count as the chunked Redis loop: one per full chunk, plus the call
        // that finds fewer than a chunk (possibly none) left.
        let calls = (removed / CLEANUP_CHUNK as u64 + 1).min(MAX_CLEANUP_CALLS_PER_RUN as u64);
        Ok(CleanupReport {
            removed,
            effective_retention_ms: effective,
            cutoff_ms,
            calls,
            complete: true,
        })
    }

    fn counters(&self) -> &StoreCounters {
        &self.counters
    }
}
