//! [`Settlement`] on Redis: the engine's side of the streams — results read through the
//! `tickgate` group, jobs settled by `complete_job.lua`, results acknowledged by
//! `ack_results.lua` (each dead letter written before its acknowledgement), stale jobs
//! re-delivered or dead-lettered (and settled as failed) by `reap_job.lua`.

use redis::streams::StreamReadReply;
use redis::{RedisResult, Value};

use super::{RedisStore, command_error, pipelined};
use crate::core::jobs::{Job, JobRef};
use crate::limits::PIPELINE_CALLS_MAX;
use crate::store::{
    Ack, DamagedKey, ENGINE_GROUP, PendingJob, PendingResult, Reaped, SettleOutcome, Settlement,
    StoreError, StreamEntry, StreamsReport, TakenResults, Verdict, WORKER_GROUP,
};

/// The entries of an `XREADGROUP` reply, with the payload `field` of each.
fn entries(reply: Option<StreamReadReply>, field: &str) -> Vec<StreamEntry> {
    reply
        .into_iter()
        .flat_map(|r| r.keys)
        .flat_map(|k| k.ids)
        .map(|e| StreamEntry {
            payload: e
                .map
                .get(field)
                .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok()),
            id: e.id,
        })
        .collect()
}

impl RedisStore {
    /// `XREADGROUP` that recreates the groups once when Redis has lost them (restart).
    pub(super) async fn read_group(
        &self,
        stream: String,
        group: &str,
        consumer: &str,
        max: usize,
        from: &str,
        field: &str,
    ) -> Result<Vec<StreamEntry>, StoreError> {
        let read = || {
            redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(group)
                .arg(consumer)
                .arg("COUNT")
                .arg(max)
                .arg("STREAMS")
                .arg(&stream)
                .arg(from)
                .to_owned()
        };
        match read().query_async(&mut self.connection()).await {
            Ok(reply) => Ok(entries(reply, field)),
            Err(e) if e.code() == Some("NOGROUP") => {
                self.ensure_groups().await?;
                let reply = read()
                    .query_async(&mut self.connection())
                    .await
                    .map_err(|e| command_error("XREADGROUP", e))?;
                Ok(entries(reply, field))
            }
            Err(e) => Err(command_error("XREADGROUP", e)),
        }
    }
}

impl Settlement for RedisStore {
    /// `XGROUP CREATE <stream> <group> 0 MKSTREAM` for both streams, `BUSYGROUP` (another
    /// instance or a worker came first) tolerated: workers create their group with the very
    /// same command (README, "Writing a worker"), so whichever side starts first, the group
    /// is the same. From `0`, not `$`: an entry written before its group exists (a job
    /// dispatched by another instance right after Redis lost its state) is still delivered;
    /// the streams are trimmed below what the groups acknowledged, so `0` re-reads nothing.
    async fn ensure_groups(&self) -> Result<(), StoreError> {
        for (stream, group) in [
            (self.keys().jobs(), WORKER_GROUP),
            (self.keys().results(), ENGINE_GROUP),
        ] {
            let created: RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&stream)
                .arg(group)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut self.connection())
                .await;
            match created {
                Ok(()) => {}
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(command_error("XGROUP CREATE", e)),
            }
        }
        Ok(())
    }

    async fn read_results(
        &self,
        consumer: &str,
        max: usize,
        pending: bool,
    ) -> Result<Vec<StreamEntry>, StoreError> {
        let from = if pending { "0" } else { ">" };
        let stream = self.keys().results();
        self.read_group(stream, ENGINE_GROUP, consumer, max, from, "result")
            .await
    }

    async fn complete_jobs(
        &self,
        jobs: &[(JobRef, Verdict)],
    ) -> Result<Vec<SettleOutcome>, StoreError> {
        let scripts = self.scripts();
        let mut out = Vec::with_capacity(jobs.len());
        for batch in jobs.chunks(PIPELINE_CALLS_MAX) {
            let calls: Vec<_> = batch
                .iter()
                .map(|(job, verdict)| scripts.complete_job(self.keys(), job, *verdict))
                .collect();
            let replies = pipelined(self, &scripts.complete_job, &calls).await?;
            for ((job, _), reply) in batch.iter().zip(replies) {
                out.push(scripts.decode_complete_job(reply)?.map_err(|found| {
                    // A run lives in the run key, a per-ticker job in the trigger hash.
                    let (key, expected) = match job.seq {
                        Some(_) => (self.keys().triggers(job.strategy), "hash"),
                        None => (self.keys().strategy_run(job.strategy), "string"),
                    };
                    DamagedKey {
                        strategy: job.strategy,
                        key,
                        expected,
                        found,
                    }
                }));
            }
        }
        Ok(out)
    }

    /// One `ack_results.lua` call per [`PIPELINE_CALLS_MAX`] entries: a dead letter and its
    /// acknowledgement are one script, so a result is acknowledged only once its dead
    /// letter is written.
    async fn ack_results(&self, acks: &[Ack]) -> Result<(), StoreError> {
        let scripts = self.scripts();
        let mut left_pending = None;
        for batch in acks.chunks(PIPELINE_CALLS_MAX) {
            let call = scripts.ack_results(self.keys(), ENGINE_GROUP, batch);
            let reply: Value = super::invoke(self, &scripts.ack_results, &call).await?;
            if let Err(e) = scripts.decode_ack_results(reply) {
                // Later batches are still acknowledged; the first failure is reported.
                left_pending.get_or_insert(e);
            }
        }
        left_pending.map_or(Ok(()), Err)
    }

    /// One round trip: `trim_stream.lua` on the jobs stream (reporting the workers'
    /// backlog) and on the results stream (reporting the engines').
    async fn trim_streams(&self) -> Result<StreamsReport, StoreError> {
        let scripts = self.scripts();
        let calls = [
            scripts.trim_stream(self.keys().jobs(), WORKER_GROUP),
            scripts.trim_stream(self.keys().results(), ENGINE_GROUP),
        ];
        let mut report = StreamsReport::default();
        for (i, reply) in pipelined(self, &scripts.trim_stream, &calls)
            .await?
            .into_iter()
            .enumerate()
        {
            let (trimmed, backlog, pending): (u64, u64, u64) = scripts.trim_stream.decode(reply)?;
            report.trimmed += trimmed;
            if i == 0 {
                (report.jobs_backlog, report.jobs_pending) = (backlog, pending);
            } else {
                (report.results_backlog, report.results_pending) = (backlog, pending);
            }
        }
        Ok(report)
    }

    async fn pending_jobs(&self, max: usize) -> Result<Vec<PendingJob>, StoreError> {
        let pending = self.pending(self.keys().jobs(), WORKER_GROUP, max).await?;
        Ok(pending
            .into_iter()
            .map(|p| PendingJob {
                id: p.id,
                deliveries: p.deliveries,
            })
            .collect())
    }

    async fn pending_results(
        &self,
        consumer: &str,
        max: usize,
    ) -> Result<Vec<PendingResult>, StoreError> {
        let pending = self
            .pending(self.keys().results(), ENGINE_GROUP, max)
            .await?;
        Ok(pending
            .into_iter()
            .filter(|p| p.consumer != consumer)
            .collect())
    }

    async fn take_results(
        &self,
        consumer: &str,
        orphans: &[PendingResult],
        forget: &[&str],
    ) -> Result<TakenResults, StoreError> {
        let scripts = self.scripts();
        let call = scripts.take_results(self.keys(), consumer, orphans, forget);
        let reply = super::invoke(self, &scripts.take_results, &call).await?;
        scripts.decode_take_results(reply)
    }

    async fn reap_job(&self, job: &PendingJob, max_deliveries: u64) -> Result<Reaped, StoreError> {
        let scripts = self.scripts();
        let job_ref = self.job_of_entry(&job.id).await?;
        let call = scripts.reap_job(
            self.keys(),
            &job.id,
            job.deliveries,
            max_deliveries,
            job_ref.as_ref(),
        );
        let reply = super::invoke(self, &scripts.reap_job, &call).await?;
        scripts.decode_reap_job(reply, job_ref)
    }
}

impl RedisStore {
    /// Up to `max` entries of `stream` delivered to `group` and not acknowledged, oldest
    /// first, with their consumer and delivery count (`XPENDING`); none when the stream or
    /// the group does not exist yet.
    async fn pending(
        &self,
        stream: String,
        group: &str,
        max: usize,
    ) -> Result<Vec<PendingResult>, StoreError> {
        let reply: RedisResult<Vec<(String, String, u64, u64)>> = redis::cmd("XPENDING")
            .arg(stream)
            .arg(group)
            .arg("-")
            .arg("+")
            .arg(max)
            .query_async(&mut self.connection())
            .await;
        match reply {
            Ok(entries) => Ok(entries
                .into_iter()
                .map(|(id, consumer, _idle_ms, deliveries)| PendingResult {
                    id,
                    consumer,
                    deliveries,
                })
                .collect()),
            Err(e) if e.code() == Some("NOGROUP") => Ok(Vec::new()),
            Err(e) => Err(command_error("XPENDING", e)),
        }
    }

    /// The job an entry of the jobs stream holds, from its `job` field's `job_id`; `None`
    /// when the entry is gone or holds no job id tickgate issues.
    async fn job_of_entry(&self, entry_id: &str) -> Result<Option<JobRef>, StoreError> {
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(self.keys().jobs())
            .arg(entry_id)
            .arg(entry_id)
            .query_async(&mut self.connection())
            .await
            .map_err(|e| command_error("XRANGE job entry", e))?;
        let job = entries
            .into_iter()
            .flat_map(|(_, fields)| fields)
            .find(|(name, _)| name == "job")
            .and_then(|(_, json)| serde_json::from_str::<Job>(&json).ok())
            .and_then(|job| JobRef::parse(&job.job_id));
        Ok(job)
    }
}
