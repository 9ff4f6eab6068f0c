//! The in-memory model of the store: plain ordered maps behind one mutex, each operation a
//! few lines that read like DESIGN.md. It is the oracle for the Redis store and for the
//! simulator; it models everything observable except key expiry (which runs on Redis's
//! own clock and is tested separately).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use super::memory_state::{MemoryState, TriggerState};
use super::{
    CLEANUP_CHUNK, Changes, CleanupReport, Dispatched, FeedCursor, FeedRead, Intersection,
    MAX_CHANGE_RECORDS, MAX_CLEANUP_CALLS_PER_RUN, MAX_FEED_DELTA, PendingJob, Reaped, Store,
    StoreCounters, StoreError, StrategyDispatch, StreamEntry, TickerDispatch, WRITE_CHUNK,
    check_bucket, effective_retention_ms, validate_universe, validate_updates,
};
use crate::domain::{StrategyId, Ticker, check_timestamp};
use crate::jobs::{JobMode, JobRef, job_json};
use crate::timeframe::{Bucket, Timeframe};

/// The model store. Clones share one state (like several connections to one Redis).
#[derive(Debug, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<MemoryState>>,
    max_universe: usize,
    counters: Arc<StoreCounters>,
}

impl MemoryStore {
    /// An empty model that rejects universes above `max_universe`.
    pub fn new(max_universe: usize) -> MemoryStore {
        MemoryStore {
            state: Arc::new(Mutex::new(MemoryState::default())),
            max_universe,
            counters: Arc::new(StoreCounters::default()),
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
        let latest: Vec<(Ticker, i64)> = validate_updates(updates)?.into_iter().collect();
        let mut state = self.lock();
        // One write sequence number per chunk, as the Redis store takes one per script call.
        for chunk in latest.chunks(WRITE_CHUNK) {
            state.feed_seq += 1;
            let seq = state.feed_seq;
            for (ticker, ts_ms) in chunk {
                let slot = state.updates.entry(ticker.clone()).or_insert(*ts_ms);
                *slot = (*slot).max(*ts_ms);
                state.update_sequence.insert(ticker.clone(), seq);
            }
        }
        Ok(())
    }

    async fn read_updates(
        &self,
        cursor: &FeedCursor,
        since_ms: i64,
        new_epoch: &str,
    ) -> Result<FeedRead, StoreError> {
        check_timestamp(since_ms)?;
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
        let delta = cursor.epoch.as_deref() == Some(epoch.as_str())
            && cursor.seq <= state.feed_seq
            && changed.len() as u64 <= MAX_FEED_DELTA;
        let updates = if delta {
            changed
                .into_iter()
                .filter_map(|t| Some((t.clone(), *state.updates.get(t)?)))
                .collect()
        } else {
            state
                .updates
                .iter()
                .filter(|(_, ts)| **ts >= since_ms)
                .map(|(t, ts)| (t.clone(), *ts))
                .collect()
        };
        Ok(FeedRead {
            full: !delta,
            cursor: FeedCursor {
                epoch: Some(epoch),
                seq: state.feed_seq,
            },
            updates,
        })
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
        let mut state = self.lock();
        state.universes.insert(id, set);
        record_change(&mut state, id);
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
        Ok(claim(&mut self.lock(), id, bucket, tickers))
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
        let MemoryState {
            updates,
            update_sequence,
            ..
        } = &mut *state;
        update_sequence.retain(|t, _| updates.contains_key(t));
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

    async fn dispatch_tickers(
        &self,
        _now_ms: i64,
        requests: &[TickerDispatch],
    ) -> Result<Vec<Option<Dispatched>>, StoreError> {
        for r in requests {
            check_bucket(r.bucket)?;
        }
        let mut state = self.lock();
        let mut out = Vec::with_capacity(requests.len());
        for r in requests {
            let claimed = claim(&mut state, r.strategy, r.bucket, &r.tickers);
            if claimed.is_empty() {
                out.push(None);
                continue;
            }
            let trigger = state
                .triggers
                .get_mut(&r.strategy)
                .expect("claim created it");
            trigger.jobs_issued += 1;
            let seq = trigger.jobs_issued;
            trigger.open_jobs.insert(seq, claimed.clone());
            let job = JobRef {
                strategy: r.strategy,
                bucket_start_ms: r.bucket.start_ms,
                seq: Some(seq),
            };
            state
                .jobs
                .push(job_json(&job, r.user_id, JobMode::PerTicker, &claimed));
            out.push(Some(Dispatched {
                job,
                tickers: claimed,
            }));
        }
        Ok(out)
    }

    async fn dispatch_strategies(
        &self,
        _now_ms: i64,
        requests: &[StrategyDispatch],
    ) -> Result<Vec<Option<JobRef>>, StoreError> {
        for r in requests {
            check_bucket(r.bucket)?;
        }
        let mut state = self.lock();
        let mut out = Vec::with_capacity(requests.len());
        for r in requests {
            let start = r.bucket.start_ms;
            if let Some(&last) = state.strategy_runs.get(&r.strategy)
                && (last == start || r.bucket.end_ms <= last)
            {
                out.push(None);
                continue;
            }
            state.strategy_runs.insert(r.strategy, start);
            let job = JobRef {
                strategy: r.strategy,
                bucket_start_ms: start,
                seq: None,
            };
            state
                .jobs
                .push(job_json(&job, r.user_id, r.mode, &r.symbols));
            out.push(Some(job));
        }
        Ok(out)
    }

    async fn complete_job(&self, job: JobRef, success: bool) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let Some(seq) = job.seq else {
            if !success && state.strategy_runs.get(&job.strategy) == Some(&job.bucket_start_ms) {
                state.strategy_runs.remove(&job.strategy);
                return Ok(1);
            }
            return Ok(0);
        };
        let Some(trigger) = state.triggers.get_mut(&job.strategy) else {
            return Ok(0);
        };
        let Some(tickers) = trigger.open_jobs.remove(&seq) else {
            return Ok(0);
        };
        if success {
            return Ok(0);
        }
        let mut released = 0;
        for t in tickers {
            if trigger.claims.get(&t) == Some(&job.bucket_start_ms) {
                trigger.claims.remove(&t);
                released += 1;
            }
        }
        Ok(released)
    }

    async fn ensure_groups(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn take_jobs(&self, _consumer: &str, max: usize) -> Result<Vec<StreamEntry>, StoreError> {
        let mut state = self.lock();
        let from = state.delivery.jobs_next;
        let to = (from + max).min(state.jobs.len());
        state.delivery.jobs_next = to;
        for i in from..to {
            let attempt = state.delivery.attempts.get(&i).copied().unwrap_or(1);
            state.delivery.jobs_pending.insert(i, attempt);
        }
        Ok((from..to)
            .map(|i| StreamEntry {
                id: format!("{}-0", i + 1),
                payload: Some(state.jobs[i].clone()),
            })
            .collect())
    }

    async fn finish_job(&self, job_entry_id: &str, result_json: &str) -> Result<(), StoreError> {
        let mut state = self.lock();
        if let Some(i) = entry_index(job_entry_id) {
            state.delivery.jobs_pending.remove(&i);
        }
        let id = format!("{}-0", state.results.len() + 1);
        state.results.push(StreamEntry {
            id,
            payload: Some(result_json.to_owned()),
        });
        Ok(())
    }

    async fn pending_jobs(&self, max: usize) -> Result<Vec<PendingJob>, StoreError> {
        let state = self.lock();
        Ok(state
            .delivery
            .jobs_pending
            .iter()
            .take(max)
            .map(|(i, deliveries)| PendingJob {
                id: format!("{}-0", i + 1),
                deliveries: *deliveries,
            })
            .collect())
    }

    async fn reap_job(&self, job: &PendingJob, max_deliveries: u64) -> Result<Reaped, StoreError> {
        let mut state = self.lock();
        let Some(i) = entry_index(&job.id) else {
            return Ok(Reaped::Nothing);
        };
        if state.delivery.jobs_pending.get(&i) != Some(&job.deliveries) {
            return Ok(Reaped::Nothing);
        }
        state.delivery.jobs_pending.remove(&i);
        let json = state.jobs[i].clone();
        if job.deliveries >= max_deliveries {
            let reason = format!("not acknowledged after {} deliveries", job.deliveries);
            state.dead.push((job.id.clone(), reason, Some(json)));
            return Ok(Reaped::Dead);
        }
        state.jobs.push(json);
        let again = state.jobs.len() - 1;
        state.delivery.attempts.insert(again, job.deliveries + 1);
        Ok(Reaped::Redelivered)
    }

    async fn finish_jobs(&self, jobs: &[(String, String)]) -> Result<(), StoreError> {
        for (entry, result) in jobs {
            self.finish_job(entry, result).await?;
        }
        Ok(())
    }

    async fn read_results(
        &self,
        consumer: &str,
        max: usize,
        pending: bool,
    ) -> Result<Vec<StreamEntry>, StoreError> {
        let mut state = self.lock();
        if pending {
            let ids: Vec<String> = state
                .delivery
                .results_pending
                .iter()
                .filter(|(_, c)| c.as_str() == consumer)
                .map(|(id, _)| id.clone())
                .take(max)
                .collect();
            return Ok(state
                .results
                .iter()
                .filter(|e| ids.contains(&e.id))
                .cloned()
                .collect());
        }
        let from = state.delivery.results_next;
        let to = (from + max).min(state.results.len());
        state.delivery.results_next = to;
        let entries: Vec<StreamEntry> = state.results[from..to].to_vec();
        for e in &entries {
            state
                .delivery
                .results_pending
                .insert(e.id.clone(), consumer.to_owned());
        }
        Ok(entries)
    }

    async fn ack_result(&self, entry: &StreamEntry, dead: Option<&str>) -> Result<(), StoreError> {
        let mut state = self.lock();
        if let Some(reason) = dead {
            state
                .dead
                .push((entry.id.clone(), reason.to_owned(), entry.payload.clone()));
        }
        state.delivery.results_pending.remove(&entry.id);
        Ok(())
    }

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

    async fn universes(
        &self,
        ids: &[StrategyId],
    ) -> Result<Vec<Option<BTreeSet<Ticker>>>, StoreError> {
        let state = self.lock();
        Ok(ids
            .iter()
            .map(|id| state.universes.get(id).cloned())
            .collect())
    }

    async fn changes_since(&self, version: u64) -> Result<Changes, StoreError> {
        let state = self.lock();
        Ok(Changes {
            version: state.version,
            strategies: state
                .changes
                .iter()
                .filter(|(_, v)| **v > version)
                .map(|(id, _)| *id)
                .collect(),
            reload_all: version > state.version || state.delivery.changes_floor > version,
            state_lost: version > state.version,
        })
    }

    fn counters(&self) -> &StoreCounters {
        &self.counters
    }
}

/// Index into the model's `jobs` of an entry id `"<n>-0"` (n counts from 1).
fn entry_index(id: &str) -> Option<usize> {
    id.strip_suffix("-0")?.parse::<usize>().ok()?.checked_sub(1)
}

/// The claim rule of `claim_fn.lua`, on the model.
fn claim(
    state: &mut MemoryState,
    id: StrategyId,
    bucket: Bucket,
    tickers: &[Ticker],
) -> Vec<Ticker> {
    let fresh = || TriggerState {
        newest_bucket_ms: bucket.start_ms,
        ..TriggerState::default()
    };
    let trigger = state.triggers.entry(id).or_insert_with(fresh);
    if bucket.end_ms <= trigger.newest_bucket_ms {
        return Vec::new(); // stale: a newer bucket was claimed already
    }
    if bucket.start_ms > trigger.newest_bucket_ms {
        *trigger = fresh();
    }
    let mut claimed = Vec::new();
    for ticker in tickers {
        if trigger.claims.get(ticker) != Some(&bucket.start_ms) {
            trigger.claims.insert(ticker.clone(), bucket.start_ms);
            claimed.push(ticker.clone());
        }
    }
    claimed
}

/// Bumps the version and records that `id` changed at it, dropping the oldest records
/// beyond [`MAX_CHANGE_RECORDS`].
fn record_change(state: &mut MemoryState, id: StrategyId) {
    state.version += 1;
    state.changes.insert(id, state.version);
    while state.changes.len() as u64 > MAX_CHANGE_RECORDS {
        let Some((&oldest, &v)) = state.changes.iter().min_by_key(|(_, v)| **v) else {
            break;
        };
        state.changes.remove(&oldest);
        state.delivery.changes_floor = state.delivery.changes_floor.max(v);
    }
}
