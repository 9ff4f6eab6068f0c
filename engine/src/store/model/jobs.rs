//! The model's streams: dispatch (claims and jobs), settlement and the worker side.

use super::{ModelState, ModelStore, TriggerState};
use crate::core::calendar::Bucket;
use crate::core::jobs::{JobMode, JobRef, job_json};
use crate::core::ticker::{StrategyId, Ticker};
use crate::store::{
    Ack, Dispatch, DispatchOutcome, Dispatched, PendingJob, Reaped, Settlement, StoreError,
    StrategyDispatch, StreamEntry, TickerDispatch, Verdict, WorkerSide, check_bucket,
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
            let claimed = claim(&mut state, r.strategy, r.bucket, &r.tickers);
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
            trigger.open_jobs.insert(seq, claimed.clone());
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

    async fn complete_jobs(&self, jobs: &[(JobRef, Verdict)]) -> Result<Vec<u64>, StoreError> {
        let mut state = self.lock();
        Ok(jobs
            .iter()
            .map(|(job, verdict)| complete(&mut state, job, *verdict))
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

/// Settles one job on the model (`complete_job.lua`).
fn complete(state: &mut ModelState, job: &JobRef, verdict: Verdict) -> u64 {
    let Some(seq) = job.seq else {
        if verdict == Verdict::Failed
            && state.strategy_runs.get(&job.strategy) == Some(&job.bucket_start_ms)
        {
            state.strategy_runs.remove(&job.strategy);
            return 1;
        }
        return 0;
    };
    let Some(trigger) = state.triggers.get_mut(&job.strategy) else {
        return 0;
    };
    let Some(tickers) = trigger.open_jobs.remove(&seq) else {
        return 0;
    };
    if verdict == Verdict::Succeeded {
        return 0;
    }
    let mut released = 0;
    for t in tickers {
        if trigger.claims.get(&t) == Some(&job.bucket_start_ms) {
            trigger.claims.remove(&t);
            released += 1;
        }
    }
    released
}

/// Index into the model's `jobs` of an entry id `"<n>-0"` (n counts from 1).
fn entry_index(id: &str) -> Option<usize> {
    id.strip_suffix("-0")?.parse::<usize>().ok()?.checked_sub(1)
}

/// The claim rule of `lua/lib/claim.lua`, on the model.
fn claim(
    state: &mut ModelState,
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
