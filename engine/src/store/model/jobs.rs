//! The model's streams: dispatch (claims and jobs), settlement and the worker side.

use std::collections::BTreeSet;

use super::{ModelState, ModelStore, ReplacedTriggers, TriggerState};
use crate::core::calendar::Bucket;
use crate::core::jobs::{Job, JobMode, JobRef, job_json};
use crate::core::ledger::WriteBack;
use crate::core::ticker::{StrategyId, Ticker, check_timestamp};
use crate::limits::DEFAULT_TRIGGER_GRACE_MS;
use crate::store::{
    Ack, Dispatch, DispatchOutcome, Dispatched, JobStatus, PendingJob, PendingResult, Reaped,
    RunOutcome, SettleOutcome, Settled, Settlement, StoreError, StrategyDispatch, StreamEntry,
    StreamsReport, TakenResults, TickerDispatch, Verdict, WorkerSide, check_bucket,
};

impl Dispatch for ModelStore {
    async fn dispatch_tickers(
        &self,
        _now_ms: i64,
        requests: &[TickerDispatch],
    ) -> Result<Vec<DispatchOutcome>, StoreError> {
        for r in requests {
            check_bucket(r.bucket)?;
        }
        let mut state = self.lock();
        let mut out = Vec::with_capacity(requests.len());
        for r in requests {
            let claimed = claim(&mut state, r.strategy, r.bucket, &r.tickers).unwrap_or_default();
            if claimed.is_empty() {
                out.push(Ok(None));
                continue;
            }
            let trigger = state
                .triggers
                .get_mut(&r.strategy)
                .expect("claim created it");
            trigger.jobs_issued += 1;
            let seq = trigger.jobs_issued;
            trigger
                .open_jobs
                .insert((r.bucket.start_ms, seq), claimed.clone());
            let job = JobRef {
                strategy: r.strategy,
                bucket_start_ms: r.bucket.start_ms,
                seq: Some(seq),
            };
            state
                .jobs
                .push(job_json(&job, r.user_id, JobMode::PerTicker, &claimed));
            // The model's keys are typed: none can be damaged.
            out.push(Ok(Some(Dispatched {
                job,
                tickers: claimed,
            })));
        }
        Ok(out)
    }

    async fn dispatch_strategies(
        &self,
        _now_ms: i64,
        requests: &[StrategyDispatch],
    ) -> Result<Vec<RunOutcome>, StoreError> {
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
                out.push(Ok(None));
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
            // The model's keys are typed: none can be damaged.
            out.push(Ok(Some(job)));
        }
        Ok(out)
    }

    async fn restore_claims(&self, now_ms: i64, back: &WriteBack) -> Result<u64, StoreError> {
        check_timestamp(now_ms)?;
        for c in &back.tickers {
            check_bucket(c.bucket)?;
        }
        let mut state = self.lock();
        let mut written = 0;
        for c in &back.tickers {
            let Some(claimed) = claim(&mut state, c.strategy, c.bucket, &c.tickers) else {
                continue; // stale
            };
            written += claimed.len() as u64;
            if let Some(trigger) = state.triggers.get_mut(&c.strategy) {
                trigger.jobs_issued = trigger.jobs_issued.max(c.jobs_issued);
                for (n, tickers) in &c.open_jobs {
                    let record = (c.bucket.start_ms, *n);
                    trigger
                        .open_jobs
                        .entry(record)
                        .or_insert_with(|| tickers.clone());
                }
            }
        }
        for (strategy, bucket) in &back.runs {
            if !state.strategy_runs.contains_key(strategy) {
                state.strategy_runs.insert(*strategy, bucket.start_ms);
                written += 1;
            }
        }
        Ok(written)
    }
}

impl Settlement for ModelStore {
    async fn ensure_groups(&self) -> Result<(), StoreError> {
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
            let mut ids = Vec::new();
            for (id, (owner, deliveries)) in &mut state.delivery.results_pending {
                if owner == consumer && ids.len() < max {
                    // Redis counts a re-read of a pending entry as a delivery.
                    *deliveries += 1;
                    ids.push(id.clone());
                }
            }
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
                .insert(e.id.clone(), (consumer.to_owned(), 1));
        }
        Ok(entries)
    }

    async fn complete_jobs(
        &self,
        jobs: &[(JobRef, Verdict)],
    ) -> Result<Vec<SettleOutcome>, StoreError> {
        let mut state = self.lock();
        // The model's keys are typed: none can be damaged.
        Ok(jobs
            .iter()
            .map(|(job, verdict)| Ok(complete(&mut state, job, *verdict)))
            .collect())
    }

    async fn ack_results(&self, acks: &[Ack]) -> Result<(), StoreError> {
        let mut state = self.lock();
        for Ack { entry, dead_reason } in acks {
            if let Some(reason) = dead_reason {
                state
                    .dead
                    .push((entry.id.clone(), reason.clone(), entry.payload.clone()));
            }
            state.delivery.results_pending.remove(&entry.id);
        }
        Ok(())
    }

    /// The model keeps every entry (its entry ids are positions), so it trims nothing; the
    /// backlog is what Redis reports: pending plus not yet delivered.
    async fn trim_streams(&self) -> Result<StreamsReport, StoreError> {
        let state = self.lock();
        let d = &state.delivery;
        let undelivered = state.jobs.len() - d.jobs_next;
        let results_undelivered = state.results.len() - d.results_next;
        Ok(StreamsReport {
            jobs_backlog: (undelivered + d.jobs_pending.len()) as u64,
            jobs_pending: d.jobs_pending.len() as u64,
            results_backlog: (results_undelivered + d.results_pending.len()) as u64,
            results_pending: d.results_pending.len() as u64,
            trimmed: 0,
        })
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

    async fn pending_results(
        &self,
        consumer: &str,
        max: usize,
    ) -> Result<Vec<PendingResult>, StoreError> {
        let state = self.lock();
        Ok(state
            .delivery
            .results_pending
            .iter()
            .take(max)
            .filter(|(_, (owner, _))| owner != consumer)
            .map(|(id, (owner, deliveries))| PendingResult {
                id: id.clone(),
                consumer: owner.clone(),
                deliveries: *deliveries,
            })
            .collect())
    }

    /// As `take_results.lua`; the model keeps no consumer list, so there is nothing to
    /// forget beyond counting the consumers left with nothing pending.
    async fn take_results(
        &self,
        consumer: &str,
        orphans: &[PendingResult],
        forget: &[&str],
    ) -> Result<TakenResults, StoreError> {
        let mut state = self.lock();
        let mut taken = TakenResults::default();
        for orphan in orphans {
            let seen = (orphan.consumer.clone(), orphan.deliveries);
            if state.delivery.results_pending.get(&orphan.id) != Some(&seen) {
                continue;
            }
            let entry = state.results.iter().find(|e| e.id == orphan.id).cloned();
            if let Some(entry) = entry {
                let claimed = (consumer.to_owned(), orphan.deliveries + 1);
                state
                    .delivery
                    .results_pending
                    .insert(orphan.id.clone(), claimed);
                taken.entries.push(entry);
            }
        }
        let owners: BTreeSet<&str> = orphans
            .iter()
            .map(|o| o.consumer.as_str())
            .chain(forget.iter().copied())
            .collect();
        let pending = &state.delivery.results_pending;
        taken.forgotten = owners
            .into_iter()
            .filter(|owner| pending.values().all(|(o, _)| o != owner))
            .count() as u64;
        Ok(taken)
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
            state
                .dead
                .push((job.id.clone(), reason, Some(json.clone())));
            // Settled as failed, as `reap_job.lua` does: its claims are released.
            let job = serde_json::from_str::<Job>(&json)
                .ok()
                .and_then(|j| JobRef::parse(&j.job_id));
            let released = job.map_or(0, |j| complete(&mut state, &j, Verdict::Failed).released);
            return Ok(Reaped::Dead { job, released });
        }
        state.jobs.push(json);
        let again = state.jobs.len() - 1;
        state.delivery.attempts.insert(again, job.deliveries + 1);
        Ok(Reaped::Redelivered)
    }
}

impl WorkerSide for ModelStore {
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

    async fn finish_jobs(&self, jobs: &[(String, String)]) -> Result<(), StoreError> {
        let mut state = self.lock();
        for (job_entry_id, result_json) in jobs {
            if let Some(i) = entry_index(job_entry_id) {
                state.delivery.jobs_pending.remove(&i);
            }
            let id = format!("{}-0", state.results.len() + 1);
            state.results.push(StreamEntry {
                id,
                payload: Some(result_json.to_owned()),
            });
        }
        Ok(())
    }
}

/// Settles one job on the model (`lua/lib/settle.lua`).
fn complete(state: &mut ModelState, job: &JobRef, verdict: Verdict) -> Settled {
    let settled = |status, released| Settled { status, released };
    let start = job.bucket_start_ms;
    let Some(seq) = job.seq else {
        return match state.strategy_runs.get(&job.strategy) {
            Some(&last) if last == start => {
                if verdict == Verdict::Failed {
                    state.strategy_runs.remove(&job.strategy);
                    return settled(JobStatus::Open, 1);
                }
                settled(JobStatus::Open, 0)
            }
            Some(&last) if start > last => settled(JobStatus::NeverIssued, 0),
            _ => settled(JobStatus::Gone, 0),
        };
    };
    let Some(trigger) = state.triggers.get_mut(&job.strategy) else {
        return settled(JobStatus::Gone, 0);
    };
    let Some(tickers) = trigger.open_jobs.remove(&(start, seq)) else {
        let newest = trigger.newest_bucket_ms;
        let never = start > newest || (start == newest && seq > trigger.jobs_issued);
        return settled(
            if never {
                JobStatus::NeverIssued
            } else {
                JobStatus::Gone
            },
            0,
        );
    };
    if verdict == Verdict::Succeeded {
        return settled(JobStatus::Open, 0);
    }
    let mut released = 0;
    for t in tickers {
        if trigger.claims.get(&t) == Some(&start) {
            trigger.claims.remove(&t);
            released += 1;
        }
    }
    settled(JobStatus::Open, released)
}

/// Index into the model's `jobs` of an entry id `"<n>-0"` (n counts from 1).
fn entry_index(id: &str) -> Option<usize> {
    id.strip_suffix("-0")?.parse::<usize>().ok()?.checked_sub(1)
}

/// The claim rule of `lua/lib/claim.lua`, on the model. `None` when the bucket is stale
/// (it ended at or before the newest bucket claimed, and is not the one replaced by it).
fn claim(
    state: &mut ModelState,
    id: StrategyId,
    bucket: Bucket,
    tickers: &[Ticker],
) -> Option<Vec<Ticker>> {
    let fresh = || TriggerState {
        newest_bucket_ms: bucket.start_ms,
        ..TriggerState::default()
    };
    let trigger = state.triggers.entry(id).or_insert_with(fresh);
    let claims = if bucket.end_ms <= trigger.newest_bucket_ms {
        // Older than the live hash: only the bucket it replaced can still be claimed.
        match &mut trigger.replaced {
            Some(r) if r.bucket_ms == bucket.start_ms => &mut r.claims,
            _ => return None,
        }
    } else {
        if bucket.start_ms > trigger.newest_bucket_ms {
            replace(trigger, bucket.start_ms);
        }
        &mut trigger.claims
    };
    let mut claimed = Vec::new();
    for ticker in tickers {
        if claims.get(ticker) != Some(&bucket.start_ms) {
            claims.insert(ticker.clone(), bucket.start_ms);
            claimed.push(ticker.clone());
        }
    }
    Some(claimed)
}

/// A newer bucket's first claim: the hash's claims move to `replaced`, the job counter
/// lives on (job numbers never repeat) and so do the records of open jobs of the bucket
/// replaced or of one that started within the grace, emptied: a late result still finds
/// its job, and releases nothing (a claim with its start may belong to a later job).
fn replace(trigger: &mut TriggerState, start_ms: i64) {
    let keep_from = trigger
        .newest_bucket_ms
        .min(start_ms - DEFAULT_TRIGGER_GRACE_MS);
    let open_jobs = std::mem::take(&mut trigger.open_jobs)
        .into_keys()
        .filter(|(start, _)| *start >= keep_from)
        .map(|job| (job, Vec::new()))
        .collect();
    let replaced = ReplacedTriggers {
        bucket_ms: trigger.newest_bucket_ms,
        claims: std::mem::take(&mut trigger.claims),
    };
    *trigger = TriggerState {
        newest_bucket_ms: start_ms,
        jobs_issued: trigger.jobs_issued,
        open_jobs,
        replaced: Some(replaced),
        ..TriggerState::default()
    };
}
