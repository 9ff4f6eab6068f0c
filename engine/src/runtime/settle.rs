//! Step 2: the workers' results — verdicts settle their jobs (a failure releases its
//! claims), `used_symbols` replace universes (DESIGN §2.7), malformed results go to the
//! dead-letter stream — then stale jobs are re-delivered or dead-lettered.

use std::collections::BTreeMap;

use super::metrics::Metrics;
use super::step::Engine;
use crate::core::catalog::Universe;
use crate::core::discovery::{Discovery, judge};
use crate::core::jobs::{JobRef, parse_result};
use crate::core::ticker::{StrategyId, Ticker};
use crate::store::{Ack, Reaped, Store, StoreError, Verdict};

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

    /// Settles one batch in three round trips whatever its size: the verdicts (one
    /// pipeline of scripts), then discoveries (rare, one by one), then acknowledgements.
    async fn settle_batch(
        &mut self,
        entries: Vec<crate::store::StreamEntry>,
    ) -> Result<(), StoreError> {
        let mut verdicts: Vec<(JobRef, Verdict)> = Vec::new();
        let mut discoveries = Vec::new();
        let mut acks = Vec::with_capacity(entries.len());
        for entry in entries {
            match parse_result(entry.payload.as_deref()) {
                Err(e) => {
                    Metrics::add(&self.metrics.dead_letters, 1);
                    tracing::warn!(result_id = %entry.id, error = %e, "malformed result moved to the dead-letter stream");
                    acks.push(Ack {
                        entry,
                        dead_reason: Some(e.to_string()),
                    });
                }
                Ok((job, result)) => {
                    verdicts.push((job, Verdict::from_success(result.success)));
                    if let Some(symbols) = result.used_symbols.filter(|s| !s.is_empty()) {
                        discoveries.push((job.strategy, symbols));
                    }
                    acks.push(Ack {
                        entry,
                        dead_reason: None,
                    });
                }
            }
        }
        let released = self.store.complete_jobs(&verdicts).await?;
        let m = &self.metrics;
        for ((job, verdict), released) in verdicts.iter().zip(released) {
            let counter = match verdict {
                Verdict::Succeeded => &m.results_ok,
                Verdict::Failed => &m.results_failed,
            };
            Metrics::add(counter, 1);
            if released > 0 {
                Metrics::add(&m.claims_released, released);
                self.planner.invalidate(job.strategy);
            }
        }
        for (strategy, symbols) in discoveries {
            self.discover(strategy, &symbols).await?;
        }
        self.store.ack_results(&acks).await
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
                Reaped::Dead => {
                    Metrics::add(&self.metrics.dead_letters, 1);
                    tracing::warn!(job_entry = %job.id, deliveries = job.deliveries, "job moved to the dead-letter stream");
                }
                Reaped::Nothing => {}
            }
        }
        self.pending_seen = seen;
        Ok(())
    }
}
