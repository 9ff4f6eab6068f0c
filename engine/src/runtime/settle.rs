//! Step 2: the workers' results — verdicts settle their jobs (a failure releases its
//! claims), `used_symbols` of issued jobs replace universes (DESIGN §2.7), malformed
//! results and results of jobs never issued go to the dead-letter stream (see
//! `settle_batch` for the rule) — then stale jobs are re-delivered, or dead-lettered and
//! settled as failed.

use std::collections::BTreeMap;

use super::metrics::Metrics;
use super::step::Engine;
use crate::core::catalog::Universe;
use crate::core::discovery::{Discovery, judge};
use crate::core::jobs::{JobRef, NEWER_THAN_ISSUED, ResultError, WorkerResult, parse_result};
use crate::core::ticker::{StrategyId, Ticker, excerpt};
use crate::store::{Ack, DamagedKey, JobStatus, Reaped, Settled, Store, StoreError, Verdict};

impl<S: Store> Engine<S> {
    /// Settles up to `max_results_per_tick` results, in batches.
    pub(super) async fn settle_results(&mut self) -> Result<(), StoreError> {
        let batch = self.config.results_batch.max(1);
        let batches = self.config.max_results_per_tick.div_ceil(batch);
        for _ in 0..batches {
            // After a start, first what this consumer received and never acknowledged.
            let pending = !self.pending_checked;
            let entries = self
                .store
                .read_results(&self.config.consumer, batch, pending)
                .await?;
            if pending {
                self.pending_checked = true;
                if entries.is_empty() {
                    continue;
                }
            }
            if entries.is_empty() {
                break;
            }
            // A short batch drained the stream: no need for another read to find it empty.
            let drained = entries.len() < batch;
            self.settle_batch(entries).await?;
            if drained {
                break;
            }
        }
        Ok(())
    }

    /// Takes over and settles results another instance read and never acknowledged: it
    /// crashed between reading and acknowledging, or restarted under a new name (the default
    /// consumer name holds the pid), so nobody would ever settle them — a failure's tickers
    /// would not be retried in their bucket, and the results stream could not be trimmed
    /// below them. A result is taken once it stayed pending, unchanged, with the same other
    /// consumer for `result_takeover_ms` of logical time (deterministic, like `reap_jobs`;
    /// Redis's idle times are wall time). Looked for only when the last step ended with
    /// results pending in the group, which a healthy fleet never leaves.
    pub(super) async fn take_over_results(&mut self, now_ms: i64) -> Result<(), StoreError> {
        if self.results_pending == 0 {
            self.orphans_seen.clear();
            return Ok(());
        }
        let consumer = self.config.consumer.clone();
        let pending = self
            .store
            .pending_results(&consumer, self.config.max_pending_checked)
            .await?;
        let mut seen = BTreeMap::new();
        let mut orphans = Vec::new();
        for result in pending {
            let first = self.orphans_seen.get(&result).copied().unwrap_or(now_ms);
            if now_ms - first < self.config.result_takeover_ms {
                seen.insert(result, first);
            } else {
                orphans.push(result);
            }
        }
        self.orphans_seen = seen;
        for batch in orphans.chunks(self.config.results_batch.max(1)) {
            let taken = self.store.take_results(&consumer, batch, &[]).await?;
            let n = taken.entries.len();
            Metrics::add(&self.metrics.results_taken_over, n as u64);
            let owners: std::collections::BTreeSet<&str> =
                batch.iter().map(|o| o.consumer.as_str()).collect();
            let from = owners.into_iter().collect::<Vec<_>>().join(", ");
            tracing::warn!(
                results = n,
                %from,
                consumers_forgotten = taken.forgotten,
                "took over results another instance left unacknowledged"
            );
            if !taken.entries.is_empty() {
                self.settle_batch(taken.entries).await?;
            }
        }
        Ok(())
    }

    /// Settles one batch in three round trips whatever its size: the verdicts (one
    /// pipeline of scripts), then discoveries (rare, one by one), then acknowledgements.
    ///
    /// Which results change state (DESIGN §2.8): a malformed result, or one whose job id
    /// cannot be one tickgate issued (another strategy's, a bucket start off the minute), or
    /// that the strategy's trigger state proves never issued (`JobStatus::NeverIssued`: a
    /// bucket newer than any it claimed, or a number above every job issued in it) is
    /// counted, logged with its ids and dead-lettered, and changes nothing. A result that
    /// finds its job open settles it (a failure releases its claims still held) and only
    /// then may its `used_symbols` replace the universe; job records outlive a newer
    /// bucket's claim for the trigger grace, so a late result still counts. A result that
    /// finds nothing open (a duplicate, or later than its record) may be of an issued job:
    /// it is acknowledged, counted as late, and changes nothing — so a result never touches
    /// another job's claims or records, however late it arrives.
    async fn settle_batch(
        &mut self,
        entries: Vec<crate::store::StreamEntry>,
    ) -> Result<(), StoreError> {
        let mut acks = Vec::with_capacity(entries.len());
        // (position in `acks`, job, result) of the well-formed results.
        let mut valid: Vec<(usize, JobRef, WorkerResult)> = Vec::new();
        for entry in entries {
            let parsed = parse_result(entry.payload.as_deref());
            let dead_reason = parsed
                .as_ref()
                .err()
                .map(|e| self.dead_letter(&entry.id, e));
            if let Ok((job, result)) = parsed {
                valid.push((acks.len(), job, result));
            }
            acks.push(Ack { entry, dead_reason });
        }
        let verdicts: Vec<(JobRef, Verdict)> = valid
            .iter()
            .map(|(_, job, r)| (*job, Verdict::from_success(r.success)))
            .collect();
        let settled = self.store.complete_jobs(&verdicts).await?;
        let mut discoveries = Vec::new();
        for ((at, job, result), settled) in valid.into_iter().zip(settled) {
            let settled = match settled {
                Ok(settled) => settled,
                Err(damaged) => {
                    self.set_aside(&mut acks[at], &job, &result, damaged);
                    continue;
                }
            };
            if settled.status == JobStatus::NeverIssued {
                let e = ResultError::NeverIssued {
                    job_id: excerpt(&result.job_id),
                    why: NEWER_THAN_ISSUED,
                };
                acks[at].dead_reason = Some(self.dead_letter(&acks[at].entry.id, &e));
                continue;
            }
            self.count_settled(job, Verdict::from_success(result.success), settled);
            self.ledger.settled(&job, !result.success);
            if settled.status == JobStatus::Open
                && let Some(symbols) = result.used_symbols.filter(|s| !s.is_empty())
            {
                discoveries.push((job.strategy, symbols));
            }
        }
        for (strategy, symbols) in discoveries {
            self.discover(strategy, &symbols).await?;
        }
        self.acknowledge(&acks).await
    }

    /// A result whose job lives in a damaged key: only it is set aside (DESIGN §2.3,
    /// Isolation), the rest of its batch settles. It goes to the dead-letter stream with the
    /// key named rather than staying pending: a retry would fail the same way until someone
    /// repairs the key, and a pending entry would hold back the trimming of the results
    /// stream (DESIGN §2.8); the dead letter keeps the result for replay. Nothing is lost:
    /// a key of another type holds none of the job's claims to release, and its strategy is
    /// skipped (counted, logged once) while the key stays damaged.
    fn set_aside(
        &mut self,
        ack: &mut Ack,
        job: &JobRef,
        result: &WorkerResult,
        damaged: DamagedKey,
    ) {
        let e = ResultError::Unsettled {
            job_id: excerpt(&result.job_id),
            why: damaged.to_string(),
        };
        ack.dead_reason = Some(self.dead_letter(&ack.entry.id, &e));
        // This instance's job is over either way: a failure's claims are not written back.
        self.ledger.settled(job, !result.success);
        self.isolate_damaged(damaged);
    }

    /// Counts and logs a result that goes to the dead-letter stream; returns the reason.
    fn dead_letter(&self, result_id: &str, e: &ResultError) -> String {
        Metrics::add(&self.metrics.dead_letters, 1);
        tracing::warn!(%result_id, error = %e, "result moved to the dead-letter stream");
        e.to_string()
    }

    /// Counts a settled result; a failure that released claims makes the planner look at
    /// its strategy again.
    fn count_settled(&mut self, job: JobRef, verdict: Verdict, settled: Settled) {
        let m = &self.metrics;
        let counter = match verdict {
            Verdict::Succeeded => &m.results_ok,
            Verdict::Failed => &m.results_failed,
        };
        Metrics::add(counter, 1);
        if settled.status == JobStatus::Gone {
            Metrics::add(&m.results_late, 1);
        }
        if settled.released > 0 {
            Metrics::add(&m.claims_released, settled.released);
            self.planner.invalidate(job.strategy);
        }
    }

    /// Acknowledges a settled batch. A dead letter that cannot be written leaves its result
    /// pending (never acknowledged unrecorded): that is counted and logged, and this
    /// consumer's pending results are read again next step; everything else goes on.
    async fn acknowledge(&mut self, acks: &[Ack]) -> Result<(), StoreError> {
        match self.store.ack_results(acks).await {
            Err(e @ StoreError::DeadLetters { .. }) => {
                Metrics::add(&self.metrics.dead_letter_failures, 1);
                tracing::error!(error = %e, "dead letters not written; retried next step");
                self.pending_checked = false;
                Ok(())
            }
            other => other,
        }
    }

    /// Applies a worker's `used_symbols` for strategy `id`: the universe is replaced at
    /// once (Redis and planner) and queued for the catalog.
    async fn discover(
        &mut self,
        id: StrategyId,
        used_symbols: &[String],
    ) -> Result<(), StoreError> {
        let Some(strategy) = self.planner.strategy(id).cloned() else {
            return Ok(()); // removed or inactive meanwhile: nothing to update
        };
        let m = &self.metrics;
        let (verdict, invalid) = judge(&strategy.universe, used_symbols, self.config.max_universe);
        for e in &invalid {
            tracing::debug!(strategy = id, error = %e, "used_symbols entry dropped");
        }
        Metrics::add(&m.discovery_invalid_symbols, invalid.len() as u64);
        let valid = match verdict {
            Discovery::Unchanged => return Ok(()),
            Discovery::Rejected(reason) => {
                Metrics::add(&m.discovery_rejected, 1);
                tracing::warn!(strategy = id, %reason, "used_symbols rejected; the universe stays");
                return Ok(());
            }
            Discovery::Replace(valid) => valid,
        };
        let list: Vec<&str> = valid.iter().map(Ticker::as_str).collect();
        self.store.replace_universe(id, &list).await?;
        Metrics::add(&m.universe_discoveries, 1);
        Metrics::add(&m.universe_updates, 1);
        let universe: Vec<Ticker> = valid.iter().cloned().collect();
        let mut updated = strategy;
        updated.universe = Universe::Tickers(valid);
        self.planner.upsert(id, Some(updated));
        if !self.persister.push(id, universe) {
            Metrics::add(&m.discovery_persist_failures, 1);
        }
        Ok(())
    }

    /// Re-delivers jobs that stayed unacknowledged for `job_visibility_ms` (logical time,
    /// so the simulator controls it), dead-lettering those delivered `max_deliveries` times.
    pub(super) async fn reap_jobs(&mut self, now_ms: i64) -> Result<(), StoreError> {
        let pending = self
            .store
            .pending_jobs(self.config.max_pending_checked)
            .await?;
        let mut seen = BTreeMap::new();
        for job in pending {
            let first = self.pending_seen.get(&job).copied().unwrap_or(now_ms);
            if now_ms - first < self.config.job_visibility_ms {
                seen.insert(job, first);
                continue;
            }
            match self
                .store
                .reap_job(&job, self.config.max_deliveries)
                .await?
            {
                Reaped::Redelivered => Metrics::add(&self.metrics.jobs_redelivered, 1),
                Reaped::Dead {
                    job: job_ref,
                    released,
                } => {
                    Metrics::add(&self.metrics.dead_letters, 1);
                    let job_id = job_ref.map(|j| j.id()).unwrap_or_default();
                    tracing::warn!(job_entry = %job.id, %job_id, deliveries = job.deliveries, released, "job moved to the dead-letter stream; its claims are released");
                    if let Some(j) = job_ref.filter(|_| released > 0) {
                        Metrics::add(&self.metrics.claims_released, released);
                        self.planner.invalidate(j.strategy);
                    }
                }
                Reaped::Nothing => {}
            }
        }
        self.pending_seen = seen;
        Ok(())
    }
}
