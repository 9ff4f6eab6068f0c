//! Wrappers of the dispatch and settlement scripts: claims and jobs, their write-back after a
//! Redis loss, results, re-delivery, dead letters and stream trimming (DESIGN §2.3, §2.8).

use redis::{ScriptInvocation, Value};

use super::{Lua, Scripts, damaged_type};
use crate::core::jobs::{JobRef, symbols_json};
use crate::core::ledger::ClaimBack;
use crate::limits::DEAD_STREAM_MAXLEN;
use crate::store::keys::KeySpace;
use crate::store::{
    Ack, ENGINE_GROUP, JobStatus, PendingResult, Reaped, Settled, StoreError, StrategyDispatch,
    StreamEntry, TakenResults, TickerDispatch, Verdict, WORKER_GROUP,
};

/// The consumer name under which engine instances take over stale jobs, briefly.
const REAPER_CONSUMER: &str = "tickgate-reaper";

/// One strategy's answer in a `dispatch.lua` reply: the job issued and the tickers it
/// claimed (raw members; `None` when it claimed every ticker asked), `None` when nothing was
/// newly claimed, or the Redis type found where its trigger key is not a hash.
pub type DispatchAnswer = Result<Option<(JobRef, Option<Vec<String>>)>, String>;

/// The status `lib/settle.lua` answers when the job's key holds another type.
const DAMAGED_STATUS: u64 = 3;

/// The [`JobStatus`] of a `complete_job.lua` status code.
fn job_status(lua: &Lua, code: u64) -> Result<JobStatus, StoreError> {
    match code {
        0 => Ok(JobStatus::Gone),
        1 => Ok(JobStatus::Open),
        2 => Ok(JobStatus::NeverIssued),
        other => Err(lua.error(format!("unknown job status {other}"))),
    }
}

impl Scripts {
    /// `dispatch.lua` — KEYS: the jobs stream, then each strategy's trigger hash and the one
    /// it replaced. ARGV: the trigger grace, then per strategy: bucket start, bucket end,
    /// ttl, strategy id, user id, ticker count n, n sorted distinct tickers, their JSON
    /// array. Reply: per strategy, `{}` (nothing newly claimed), `{DAMAGED_MARKER, type}`,
    /// `{job_id}` (every ticker newly claimed) or `{job_id, ticker…}` (only those); see
    /// [`Scripts::decode_dispatch`].
    pub fn dispatch(
        &self,
        keys: &KeySpace,
        group: &[TickerDispatch],
        grace_ms: i64,
        ttl_ms: impl Fn(&TickerDispatch) -> i64,
    ) -> ScriptInvocation<'_> {
        let mut call = self.dispatch.call();
        call.key(keys.jobs()).arg(grace_ms);
        for r in group {
            call.key(keys.triggers(r.strategy))
                .key(keys.triggers_replaced(r.strategy))
                .arg(r.bucket.start_ms)
                .arg(r.bucket.end_ms)
                .arg(ttl_ms(r))
                .arg(r.strategy)
                .arg(r.user_id)
                .arg(r.tickers.len());
            for t in &r.tickers {
                call.arg(t.as_str());
            }
            call.arg(symbols_json(&r.tickers));
        }
        call
    }

    /// Decodes one [`Scripts::dispatch`] reply for `group`: per strategy, the job issued
    /// and the tickers it claimed (raw members; `None` when it claimed every ticker asked),
    /// nothing, or the type of a damaged trigger key.
    pub fn decode_dispatch(
        &self,
        reply: Value,
        group: &[TickerDispatch],
    ) -> Result<Vec<DispatchAnswer>, StoreError> {
        let lua = &self.dispatch;
        let per_strategy: Vec<Vec<String>> = lua.decode(reply)?;
        if per_strategy.len() != group.len() {
            return Err(lua.error(format!(
                "{} answers for {} strategies",
                per_strategy.len(),
                group.len()
            )));
        }
        let mut out = Vec::with_capacity(group.len());
        for (r, mut fields) in group.iter().zip(per_strategy) {
            if fields.is_empty() {
                out.push(Ok(None));
                continue;
            }
            if let Some(found) = damaged_type(&fields) {
                out.push(Err(found.to_owned()));
                continue;
            }
            let job_id = fields.remove(0);
            let job = JobRef::parse(&job_id)
                .filter(|j| j.strategy == r.strategy)
                .ok_or_else(|| lua.error(format!("unexpected job id {job_id:?}")))?;
            let some = (!fields.is_empty()).then_some(fields);
            out.push(Ok(Some((job, some))));
        }
        Ok(out)
    }

    /// `restore_claims.lua` for one strategy's claims in one bucket — KEYS: its trigger hash
    /// and the one it replaced.
    /// ARGV: trigger grace, bucket start, bucket end, ttl, highest job number issued, ticker
    /// count n, n tickers, record count m, m × (job number, ticker count c, c tickers).
    /// Reply: the number of claims written.
    pub fn restore_claims(
        &self,
        keys: &KeySpace,
        back: &ClaimBack,
        grace_ms: i64,
        ttl_ms: i64,
    ) -> ScriptInvocation<'_> {
        let mut call = self.restore_claims.call();
        call.key(keys.triggers(back.strategy))
            .key(keys.triggers_replaced(back.strategy))
            .arg(grace_ms)
            .arg(back.bucket.start_ms)
            .arg(back.bucket.end_ms)
            .arg(ttl_ms)
            .arg(back.jobs_issued)
            .arg(back.tickers.len());
        for t in &back.tickers {
            call.arg(t.as_str());
        }
        call.arg(back.open_jobs.len());
        for (n, tickers) in &back.open_jobs {
            call.arg(*n).arg(tickers.len());
            for t in tickers {
                call.arg(t.as_str());
            }
        }
        call
    }

    /// `dispatch_strategy.lua` — KEYS: the run key, the jobs stream. ARGV: bucket start,
    /// bucket end, ttl, strategy id, user id, mode, then the sorted symbols (none: no
    /// symbol filter). Reply: `{job_id}`, `{}` when the bucket already ran or is stale, or
    /// `{DAMAGED_MARKER, type}` when the run key is not a string.
    pub fn dispatch_strategy(
        &self,
        keys: &KeySpace,
        r: &StrategyDispatch,
        ttl_ms: i64,
    ) -> ScriptInvocation<'_> {
        let mut call = self.dispatch_strategy.call();
        call.key(keys.strategy_run(r.strategy))
            .key(keys.jobs())
            .arg(r.bucket.start_ms)
            .arg(r.bucket.end_ms)
            .arg(ttl_ms)
            .arg(r.strategy)
            .arg(r.user_id)
            .arg(r.mode.as_str());
        for t in &r.symbols {
            call.arg(t.as_str());
        }
        call
    }

    /// Decodes a [`Scripts::dispatch_strategy`] reply: the job issued, `None`, or (`Err`)
    /// the type of a damaged run key.
    pub fn decode_dispatch_strategy(
        &self,
        reply: Value,
    ) -> Result<Result<Option<JobRef>, String>, StoreError> {
        let lua = &self.dispatch_strategy;
        let fields: Vec<String> = lua.decode(reply)?;
        if let Some(found) = damaged_type(&fields) {
            return Ok(Err(found.to_owned()));
        }
        match fields.as_slice() {
            [] => Ok(Ok(None)),
            [id] => JobRef::parse(id)
                .map(|job| Ok(Some(job)))
                .ok_or_else(|| lua.error(format!("unexpected job id {id:?}"))),
            other => Err(lua.error(format!("unexpected reply {other:?}"))),
        }
    }

    /// `complete_job.lua` — KEYS: trigger hash, run key. ARGV: bucket start, the job number
    /// or `run` (whole-strategy job), `succeeded` or `failed`. Reply: `{status, released}`,
    /// or `{3, 0, type}` when the job's key holds another type; see
    /// [`Scripts::decode_complete_job`].
    pub fn complete_job(
        &self,
        keys: &KeySpace,
        job: &JobRef,
        verdict: Verdict,
    ) -> ScriptInvocation<'_> {
        let mut call = self.complete_job.call();
        call.key(keys.triggers(job.strategy))
            .key(keys.strategy_run(job.strategy))
            .arg(job.bucket_start_ms);
        match job.seq {
            Some(n) => call.arg(n),
            None => call.arg("run"),
        };
        call.arg(match verdict {
            Verdict::Succeeded => "succeeded",
            Verdict::Failed => "failed",
        });
        call
    }

    /// Decodes a [`Scripts::complete_job`] reply: what settling did, or (`Err`) the type
    /// found where the job's key (trigger hash, or run key for a run) holds another type.
    pub fn decode_complete_job(&self, reply: Value) -> Result<Result<Settled, String>, StoreError> {
        let lua = &self.complete_job;
        let mut fields: Vec<Value> = lua.decode(reply)?;
        if fields.len() == 3 && lua.decode::<u64>(fields[0].clone())? == DAMAGED_STATUS {
            return Ok(Err(lua.decode(fields.remove(2))?));
        }
        let (status, released): (u64, u64) = lua.decode(Value::Array(fields))?;
        Ok(Ok(Settled {
            status: job_status(lua, status)?,
            released,
        }))
    }

    /// `ack_results.lua` — KEYS: results stream, dead-letter stream. ARGV: group, dead-letter
    /// MAXLEN, then per entry: id, `1` to dead-letter it (else `0`), reason, payload. Reply:
    /// the entries left pending with their errors; see [`Scripts::decode_ack_results`].
    pub fn ack_results(&self, keys: &KeySpace, group: &str, acks: &[Ack]) -> ScriptInvocation<'_> {
        let mut call = self.ack_results.call();
        call.key(keys.results())
            .key(keys.dead())
            .arg(group)
            .arg(DEAD_STREAM_MAXLEN);
        for Ack { entry, dead_reason } in acks {
            call.arg(&entry.id)
                .arg(if dead_reason.is_some() { "1" } else { "0" })
                .arg(dead_reason.as_deref().unwrap_or(""))
                .arg(entry.payload.as_deref().unwrap_or(""));
        }
        call
    }

    /// Decodes a [`Scripts::ack_results`] reply: `Ok` when every entry was acknowledged,
    /// else [`StoreError::DeadLetters`] naming the first entry left pending.
    pub fn decode_ack_results(&self, reply: Value) -> Result<(), StoreError> {
        let failed: Vec<String> = self.ack_results.decode(reply)?;
        match failed.as_slice() {
            [] => Ok(()),
            [result_id, reason, ..] => Err(StoreError::DeadLetters {
                count: failed.len() / 2,
                result_id: result_id.clone(),
                reason: reason.clone(),
            }),
            [odd] => Err(self.ack_results.error(format!("odd reply {odd:?}"))),
        }
    }

    /// `reap_job.lua` — KEYS: jobs stream, dead-letter stream, and, when `job` is known (read
    /// from the entry), its strategy's trigger hash and run key. ARGV: entry id, deliveries
    /// seen, max deliveries, dead-letter MAXLEN, group, reaper consumer, then for `job` its
    /// id, bucket start and number (or `run`). Reply: `{outcome, released}`; see
    /// [`Scripts::decode_reap_job`].
    pub fn reap_job(
        &self,
        keys: &KeySpace,
        entry_id: &str,
        deliveries: u64,
        max_deliveries: u64,
        job: Option<&JobRef>,
    ) -> ScriptInvocation<'_> {
        let mut call = self.reap_job.call();
        call.key(keys.jobs())
            .key(keys.dead())
            .arg(entry_id)
            .arg(deliveries)
            .arg(max_deliveries)
            .arg(DEAD_STREAM_MAXLEN)
            .arg(WORKER_GROUP)
            .arg(REAPER_CONSUMER);
        if let Some(job) = job {
            call.key(keys.triggers(job.strategy))
                .key(keys.strategy_run(job.strategy))
                .arg(job.id())
                .arg(job.bucket_start_ms);
            match job.seq {
                Some(n) => call.arg(n),
                None => call.arg("run"),
            };
        }
        call
    }

    /// Decodes a [`Scripts::reap_job`] reply for `job` (as passed to it).
    pub fn decode_reap_job(&self, reply: Value, job: Option<JobRef>) -> Result<Reaped, StoreError> {
        let (outcome, released): (u64, u64) = self.reap_job.decode(reply)?;
        match outcome {
            0 => Ok(Reaped::Nothing),
            1 => Ok(Reaped::Redelivered),
            2 => Ok(Reaped::Dead { job, released }),
            other => Err(self.reap_job.error(format!("unknown outcome {other}"))),
        }
    }

    /// `take_results.lua` — KEYS: results stream. ARGV: group, this consumer, the number of
    /// orphaned entries, then each entry's id, consumer and deliveries as seen, then the
    /// consumers to forget if nothing is pending with them. Reply: see
    /// [`Scripts::decode_take_results`].
    pub fn take_results(
        &self,
        keys: &KeySpace,
        consumer: &str,
        orphans: &[PendingResult],
        forget: &[&str],
    ) -> ScriptInvocation<'_> {
        let mut call = self.take_results.call();
        call.key(keys.results())
            .arg(ENGINE_GROUP)
            .arg(consumer)
            .arg(orphans.len());
        for orphan in orphans {
            call.arg(&orphan.id)
                .arg(&orphan.consumer)
                .arg(orphan.deliveries);
        }
        for name in forget {
            call.arg(*name);
        }
        call
    }

    /// Decodes a [`Scripts::take_results`] reply: the entries now this consumer's (a payload
    /// `None` when the entry has no `result` field) and how many consumers were forgotten.
    pub fn decode_take_results(&self, reply: Value) -> Result<TakenResults, StoreError> {
        let (flat, forgotten): (Vec<Value>, u64) = self.take_results.decode(reply)?;
        let mut entries = Vec::with_capacity(flat.len() / 2);
        let mut values = flat.into_iter();
        while let (Some(id), Some(payload)) = (values.next(), values.next()) {
            let id: String = self.take_results.decode(id)?;
            let payload: Option<String> = match payload {
                Value::Nil | Value::Boolean(false) | Value::Int(0) => None,
                other => Some(self.take_results.decode(other)?),
            };
            entries.push(StreamEntry { id, payload });
        }
        Ok(TakenResults { entries, forgotten })
    }

    /// `trim_stream.lua` — KEYS: a stream. ARGV: the group whose backlog is reported.
    /// Reply: `{entries trimmed, backlog, pending}`.
    pub fn trim_stream(&self, stream: String, group: &str) -> ScriptInvocation<'_> {
        let mut call = self.trim_stream.call();
        call.key(stream).arg(group);
        call
    }
}
