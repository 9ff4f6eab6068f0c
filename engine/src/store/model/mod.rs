//! The in-memory model of the store: plain ordered maps behind one mutex, each operation a
//! few lines that read like DESIGN.md. It is the oracle for the Redis store and for the
//! simulator; it models everything observable except key expiry (which runs on Redis's
//! own clock and is tested separately). It uses the default trigger grace
//! ([`crate::limits::DEFAULT_TRIGGER_GRACE_MS`]) where the Redis store uses its configured
//! one: how long job records outlive a newer bucket's claim.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

mod jobs;
mod state;

pub use self::state::{Delivery, ModelState, ReplacedTriggers, TriggerState};
use super::{
    Catalog, CatalogPage, CatalogUniverse, Changes, CleanupReport, FeedCursor, FeedRead,
    Intersection, Maintenance, PersistWrite, Persisted, Restore, Store, StoreCounters, StoreError,
    StoredUniverse, UniverseWrite, Universes, Updates, validate_universe, validate_updates,
};
use crate::core::calendar::Timeframe;
use crate::core::catalog::universe_digest;
use crate::core::retention::effective_retention_ms;
use crate::core::ticker::{StrategyId, Ticker, check_timestamp};
use crate::limits::{
    CHANGE_RECORDS_MAX, CLEANUP_CALLS_PER_RUN_MAX, CLEANUP_CHUNK_MEMBERS, DEFAULT_MAX_FUTURE_MS,
    FEED_DELTA_MAX, WRITE_CHUNK_MEMBERS,
};

/// The model store. Clones share one state (like several connections to one Redis).
#[derive(Debug, Clone)]
pub struct ModelStore {
    state: Arc<Mutex<ModelState>>,
    max_universe: usize,
    /// Update times further ahead of the recording caller's clock are rejected.
    max_future_ms: i64,
    counters: Arc<StoreCounters>,
}

impl ModelStore {
    /// An empty model that rejects universes above `max_universe`, and update times more
    /// than [`DEFAULT_MAX_FUTURE_MS`] ahead (see [`ModelStore::with_max_future_ms`]).
    pub fn new(max_universe: usize) -> ModelStore {
        ModelStore {
            state: Arc::new(Mutex::new(ModelState::default())),
            max_universe,
            max_future_ms: DEFAULT_MAX_FUTURE_MS,
            counters: Arc::new(StoreCounters::default()),
        }
    }

    /// This model, rejecting update times more than `max_future_ms` ahead of the recording
    /// caller's clock (the Redis store's `RedisStoreConfig::max_future_ms`).
    pub fn with_max_future_ms(mut self, max_future_ms: i64) -> ModelStore {
        self.max_future_ms = max_future_ms;
        self
    }

    /// Loses everything, as Redis does on `FLUSHALL` or a restart without persistence.
    pub fn flush(&self) {
        *self.lock() = ModelState::default();
    }

    /// A copy of the whole state.
    pub fn snapshot(&self) -> ModelState {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, ModelState> {
        // A panic while holding the lock cannot leave a half-applied operation: every
        // operation computes first and mutates last. So a poisoned lock is still sound.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Updates for ModelStore {
    async fn record_updates<S: AsRef<str> + Sync>(
        &self,
        now_ms: i64,
        updates: &[(S, i64)],
    ) -> Result<(), StoreError> {
        let batch = validate_updates(now_ms, self.max_future_ms, updates)?;
        let mut state = self.lock();
        // As the Redis store: earlier-minute times first, then the latest; one write
        // sequence number per chunk, as it takes one per script call.
        for times in [batch.earlier, batch.latest] {
            let times: Vec<(Ticker, i64)> = times.into_iter().collect();
            for chunk in times.chunks(WRITE_CHUNK_MEMBERS) {
                state.feed_seq += 1;
                let seq = state.feed_seq;
                for (ticker, ts_ms) in chunk {
                    record_one(&mut state, ticker, *ts_ms);
                    state.update_sequence.insert(ticker.clone(), seq);
                }
            }
        }
        Ok(())
    }

    async fn read_updates(
        &self,
        cursor: &FeedCursor,
        since_ms: i64,
        recent_ms: i64,
        new_epoch: &str,
    ) -> Result<FeedRead, StoreError> {
        check_timestamp(since_ms)?;
        check_timestamp(recent_ms)?;
        let mut state = self.lock();
        let epoch = state
            .feed_epoch
            .get_or_insert_with(|| new_epoch.to_owned())
            .clone();
        let changed: Vec<&Ticker> = state
            .update_sequence
            .iter()
            .filter(|(_, s)| **s > cursor.seq)
            .map(|(t, _)| t)
            .collect();
        // Written by a direct writer (no sequence number) or not: the same recent window.
        let recent = state.updates.iter().filter(|(_, ts)| **ts >= recent_ms);
        let delta = cursor.epoch.as_deref() == Some(epoch.as_str())
            && cursor.seq <= state.feed_seq
            && (changed.len() + recent.clone().count()) as u64 <= FEED_DELTA_MAX;
        let updates: BTreeMap<Ticker, i64> = if delta {
            changed
                .into_iter()
                .filter_map(|t| Some((t.clone(), *state.updates.get(t)?)))
                .chain(recent.map(|(t, ts)| (t.clone(), *ts)))
                .collect()
        } else {
            state
                .updates
                .iter()
                .filter(|(_, ts)| **ts >= since_ms)
                .map(|(t, ts)| (t.clone(), *ts))
                .collect()
        };
        let before = updates
            .keys()
            .filter_map(|t| Some((t.clone(), *state.updates_before.get(t)?)))
            .collect();
        Ok(FeedRead {
            full: !delta,
            cursor: FeedCursor {
                epoch: Some(epoch),
                seq: state.feed_seq,
            },
            updates,
            before,
        })
    }

    async fn tracked_tickers(&self) -> Result<u64, StoreError> {
        Ok(self.lock().updates.len() as u64)
    }
}

impl Universes for ModelStore {
    async fn universes(&self, ids: &[StrategyId]) -> Result<Vec<StoredUniverse>, StoreError> {
        // The model's keys are typed: none can be damaged.
        let state = self.lock();
        Ok(ids
            .iter()
            .map(|id| Ok(state.universes.get(id).cloned()))
            .collect())
    }

    async fn universe_sizes(&self, ids: &[StrategyId]) -> Result<Vec<Option<u64>>, StoreError> {
        let state = self.lock();
        Ok(ids
            .iter()
            .map(|id| Some(state.universes.get(id).map_or(0, |u| u.len() as u64)))
            .collect())
    }

    async fn replace_universe<S: AsRef<str> + Sync>(
        &self,
        id: StrategyId,
        tickers: &[S],
    ) -> Result<usize, StoreError> {
        let set = validate_universe(id, tickers, self.max_universe)?;
        let size = set.len();
        let mut state = self.lock();
        state.universes.insert(id, set);
        record_change(&mut state, id);
        Ok(size)
    }

    async fn replace_universe_from_catalog<S: AsRef<str> + Sync>(
        &self,
        id: StrategyId,
        tickers: &[S],
        base: &str,
    ) -> Result<UniverseWrite, StoreError> {
        let set = validate_universe(id, tickers, self.max_universe)?;
        let mut state = self.lock();
        state.universe_bases.insert(id, base.to_owned());
        if state.universes.get(&id) == Some(&set) {
            return Ok(UniverseWrite::Unchanged);
        }
        state.universes.insert(id, set);
        let version = record_change(&mut state, id);
        Ok(UniverseWrite::Replaced { version })
    }

    async fn replace_universes_from_catalog(
        &self,
        writes: &[CatalogUniverse<'_>],
    ) -> Result<Vec<Result<UniverseWrite, StoreError>>, StoreError> {
        let mut out = Vec::with_capacity(writes.len());
        for w in writes {
            out.push(match w.tickers {
                [] => self.clear_universe_from_catalog(w.id, w.base).await,
                tickers => {
                    self.replace_universe_from_catalog(w.id, tickers, w.base)
                        .await
                }
            });
        }
        Ok(out)
    }

    async fn clear_universe_from_catalog(
        &self,
        id: StrategyId,
        base: &str,
    ) -> Result<UniverseWrite, StoreError> {
        let mut state = self.lock();
        state.universe_bases.insert(id, base.to_owned());
        if state.universes.remove(&id).is_none() {
            return Ok(UniverseWrite::Unchanged);
        }
        let version = record_change(&mut state, id);
        Ok(UniverseWrite::Replaced { version })
    }

    async fn universe_bases(&self, ids: &[StrategyId]) -> Result<Vec<Option<String>>, StoreError> {
        let state = self.lock();
        Ok(ids
            .iter()
            .map(|id| state.universe_bases.get(id).cloned())
            .collect())
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
}

impl Catalog for ModelStore {
    async fn catalog_write(
        &self,
        id: StrategyId,
        json: Option<&str>,
        expected: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if let Some(expected) = expected
            && state.catalog.get(&id).map(String::as_str) != Some(expected)
        {
            return Ok(false);
        }
        match json.filter(|j| !j.is_empty()) {
            Some(json) => state.catalog.insert(id, json.to_owned()),
            None => state.catalog.remove(&id),
        };
        record_change(&mut state, id);
        Ok(true)
    }

    /// The cursor is the id after the page's last entry, plus one (0 ends the scan).
    async fn catalog_page(&self, cursor: u64, count: usize) -> Result<CatalogPage, StoreError> {
        let state = self.lock();
        let from = cursor.saturating_sub(1);
        let mut rest = state.catalog.range(from..);
        let entries: Vec<(StrategyId, String)> = rest
            .by_ref()
            .take(count.max(1))
            .map(|(id, json)| (*id, json.clone()))
            .collect();
        let next = match (rest.next(), entries.last()) {
            (Some(_), Some((last, _))) => last + 2,
            _ => 0,
        };
        Ok(CatalogPage { next, entries })
    }

    async fn catalog_ids(&self) -> Result<BTreeSet<StrategyId>, StoreError> {
        Ok(self.lock().catalog.keys().copied().collect())
    }

    async fn catalog_all(&self) -> Result<BTreeMap<StrategyId, String>, StoreError> {
        Ok(self.lock().catalog.clone())
    }

    async fn catalog_get(&self, ids: &[StrategyId]) -> Result<Vec<Option<String>>, StoreError> {
        let state = self.lock();
        Ok(ids
            .iter()
            .map(|id| state.catalog.get(id).cloned())
            .collect())
    }

    async fn persist_universe(
        &self,
        id: StrategyId,
        write: &PersistWrite<'_>,
    ) -> Result<Persisted, StoreError> {
        let mut state = self.lock();
        if state.catalog.get(&id).map(String::as_str) != Some(write.expected) {
            return Ok(Persisted::EntryChanged);
        }
        let universe: BTreeSet<Ticker> = write.universe.iter().cloned().collect();
        if state.universe_bases.get(&id).map(String::as_str) != Some(write.expected_base)
            || state.universes.get(&id) != Some(&universe)
        {
            return Ok(Persisted::Superseded);
        }
        state.catalog.insert(id, write.json.to_owned());
        state.universe_bases.insert(id, universe_digest(&universe));
        record_change(&mut state, id);
        Ok(Persisted::Written)
    }

    async fn restore_strategy(
        &self,
        id: StrategyId,
        restore: &Restore<'_>,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if state.changes.contains_key(&id) || state.catalog.contains_key(&id) {
            return Ok(false);
        }
        state.catalog.insert(id, restore.json.to_owned());
        if !restore.universe.is_empty() && !state.universes.contains_key(&id) {
            let universe = restore.universe.iter().cloned().collect();
            state.universes.insert(id, universe);
            if let Some(base) = restore.base {
                state.universe_bases.insert(id, base.to_owned());
            }
        }
        record_change(&mut state, id);
        Ok(true)
    }

    async fn changes_since(&self, version: u64) -> Result<Changes, StoreError> {
        let state = self.lock();
        Ok(Changes {
            version: state.version,
            strategies: state
                .changes
                .iter()
                .filter(|(_, v)| **v > version)
                .map(|(id, v)| (*id, *v))
                .collect(),
            reload_all: version > state.version || state.delivery.changes_floor > version,
            state_lost: version > state.version,
            catalog_fields: state.catalog.len() as u64,
            feed_epoch: state.feed_epoch.clone(),
        })
    }
}

impl Maintenance for ModelStore {
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
        let ModelState {
            updates,
            update_sequence,
            updates_before,
            ..
        } = &mut *state;
        update_sequence.retain(|t, _| updates.contains_key(t));
        updates_before.retain(|t, _| updates.contains_key(t));
        let removed = (before - state.updates.len()) as u64;
        // The same call count as the chunked Redis loop: one per full chunk, plus the call
        // that finds fewer than a chunk (possibly none) left.
        let calls =
            (removed / CLEANUP_CHUNK_MEMBERS as u64 + 1).min(CLEANUP_CALLS_PER_RUN_MAX as u64);
        Ok(CleanupReport {
            removed,
            effective_retention_ms: effective,
            cutoff_ms,
            calls,
            complete: true,
        })
    }

    async fn server_time_ms(&self) -> Result<Option<i64>, StoreError> {
        // The model has no clock of its own, and nothing in it expires.
        Ok(None)
    }
}

impl Store for ModelStore {
    fn counters(&self) -> &StoreCounters {
        &self.counters
    }
}

/// Records one update as `record.lua` does: the time only rises (`ZADD GT`), and
/// `updates_before` keeps the latest time in an earlier minute than the ticker's time.
fn record_one(state: &mut ModelState, ticker: &Ticker, ts_ms: i64) {
    let minute = |ms: i64| ms.div_euclid(60_000);
    let before = match state.updates.get(ticker) {
        Some(&cur) if minute(ts_ms) > minute(cur) => Some(cur),
        Some(&cur) if minute(ts_ms) < minute(cur) => Some(ts_ms),
        _ => None,
    };
    if let Some(b) = before {
        let slot = state.updates_before.entry(ticker.clone()).or_insert(b);
        *slot = (*slot).max(b);
    }
    let slot = state.updates.entry(ticker.clone()).or_insert(ts_ms);
    *slot = (*slot).max(ts_ms);
}

/// Bumps the version and records that `id` changed at it, dropping the oldest records
/// beyond [`CHANGE_RECORDS_MAX`].
fn record_change(state: &mut ModelState, id: StrategyId) -> u64 {
    state.version += 1;
    state.changes.insert(id, state.version);
    while state.changes.len() as u64 > CHANGE_RECORDS_MAX {
        let Some((&oldest, &v)) = state.changes.iter().min_by_key(|(_, v)| **v) else {
            break;
        };
        state.changes.remove(&oldest);
        state.delivery.changes_floor = state.delivery.changes_floor.max(v);
    }
    state.version
}
