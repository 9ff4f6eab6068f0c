//! One typed wrapper per production Lua script (mini-redis's one-command-per-file, here one
//! function pair per script): the `KEYS`/`ARGV` contract is written once, beside the code
//! that builds the call from typed values, and replies are decoded into Rust types. The
//! Redis role files (`redis/*.rs`) never build script arguments themselves.
//!
//! Scripts are hashed once, called by SHA and reloaded on `NOSCRIPT`. Library functions
//! (`lua/lib/`) are prepended at load time.

use redis::{Script, ScriptInvocation, Value};

use super::WORKER_GROUP;
use super::keys::KeySpace;
use super::{
    Ack, FeedCursor, JobStatus, PersistWrite, Persisted, Reaped, Restore, Settled, StoreError,
    StrategyDispatch, TickerDispatch, UniverseWrite, Verdict,
};
use crate::core::catalog::universe_digest;
use crate::core::jobs::JobRef;
use crate::core::ledger::ClaimBack;
use crate::core::ticker::{StrategyId, Ticker};
use crate::limits::{CHANGE_RECORDS_MAX, DEAD_STREAM_MAXLEN, FEED_DELTA_MAX};

/// The script that records ticker updates (`KEYS`: [`KeySpace::updates`],
/// [`KeySpace::update_sequence`], [`KeySpace::update_feed`]; `ARGV`: ts, ticker, ts,
/// ticker, …). A market-data writer that does not use this library should record updates
/// with it: a bare `ZADD GT` raises the time, but no reader's delta would see it.
pub const RECORD_SCRIPT: &str = include_str!("lua/record.lua");

const CLAIM_LIB: &str = include_str!("lua/lib/claim.lua");
const CHANGE_LOG_LIB: &str = include_str!("lua/lib/change_log.lua");
const SETTLE_LIB: &str = include_str!("lua/lib/settle.lua");

/// The consumer name under which engine instances take over stale jobs, briefly.
const REAPER_CONSUMER: &str = "tickgate-reaper";

/// A loaded script: its name (for errors), source (for `SCRIPT LOAD` in pipelines) and hash.
pub struct Lua {
    pub name: &'static str,
    pub source: String,
    script: Script,
}

impl Lua {
    fn new(name: &'static str, libs: &[&str], body: &str) -> Lua {
        let mut source = libs.join("\n");
        source.push('\n');
        source.push_str(body);
        Lua {
            name,
            script: Script::new(&source),
            source,
        }
    }

    /// A call of this script, to which keys and arguments are added.
    fn call(&self) -> ScriptInvocation<'_> {
        self.script.prepare_invoke()
    }

    /// Decodes a reply of this script.
    pub fn decode<T: redis::FromRedisValue>(&self, v: Value) -> Result<T, StoreError> {
        redis::from_redis_value(v).map_err(|e| self.error(e.to_string()))
    }

    /// A script failure with `reason`.
    pub fn error(&self, reason: String) -> StoreError {
        StoreError::Script {
            script: self.name,
            reason,
        }
    }
}

/// Every production script.
pub struct Scripts {
    pub record: Lua,
    pub read_updates: Lua,
    pub dispatch: Lua,
    pub dispatch_strategy: Lua,
    pub restore_claims: Lua,
    pub complete_job: Lua,
    pub ack_results: Lua,
    pub reap_job: Lua,
    pub trim_stream: Lua,
    pub catalog_write: Lua,
    pub replace_universe: Lua,
    pub persist_universe: Lua,
    pub restore_strategy: Lua,
    pub cleanup_chunk: Lua,
    pub intersect: Lua,
}

impl Default for Scripts {
    fn default() -> Scripts {
        Scripts {
            record: Lua::new("record.lua", &[], RECORD_SCRIPT),
            read_updates: Lua::new(
                "read_updates.lua",
                &[],
                include_str!("lua/read_updates.lua"),
            ),
            dispatch: Lua::new(
                "dispatch.lua",
                &[CLAIM_LIB],
                include_str!("lua/dispatch.lua"),
            ),
            restore_claims: Lua::new(
                "restore_claims.lua",
                &[CLAIM_LIB],
                include_str!("lua/restore_claims.lua"),
            ),
            dispatch_strategy: Lua::new(
                "dispatch_strategy.lua",
                &[],
                include_str!("lua/dispatch_strategy.lua"),
            ),
            complete_job: Lua::new(
                "complete_job.lua",
                &[SETTLE_LIB],
                include_str!("lua/complete_job.lua"),
            ),
            ack_results: Lua::new("ack_results.lua", &[], include_str!("lua/ack_results.lua")),
            reap_job: Lua::new(
                "reap_job.lua",
                &[SETTLE_LIB],
                include_str!("lua/reap_job.lua"),
            ),
            trim_stream: Lua::new("trim_stream.lua", &[], include_str!("lua/trim_stream.lua")),
            catalog_write: Lua::new(
                "catalog_write.lua",
                &[CHANGE_LOG_LIB],
                include_str!("lua/catalog_write.lua"),
            ),
            replace_universe: Lua::new(
                "replace_universe.lua",
                &[CHANGE_LOG_LIB],
                include_str!("lua/replace_universe.lua"),
            ),
            persist_universe: Lua::new(
                "persist_universe.lua",
                &[CHANGE_LOG_LIB],
                include_str!("lua/persist_universe.lua"),
            ),
            restore_strategy: Lua::new(
                "restore_strategy.lua",
                &[CHANGE_LOG_LIB],
                include_str!("lua/restore_strategy.lua"),
            ),
            cleanup_chunk: Lua::new(
                "cleanup_chunk.lua",
                &[],
                include_str!("lua/cleanup_chunk.lua"),
            ),
            intersect: Lua::new(
                "intersect_adaptive.lua",
                &[],
                include_str!("lua/intersect_adaptive.lua"),
            ),
        }
    }
}

/// The [`JobStatus`] of a `complete_job.lua` status code.
fn job_status(lua: &Lua, code: u64) -> Result<JobStatus, StoreError> {
    match code {
        0 => Ok(JobStatus::Gone),
        1 => Ok(JobStatus::Open),
        2 => Ok(JobStatus::NeverIssued),
        other => Err(lua.error(format!("unknown job status {other}"))),
    }
}

/// What `read_updates.lua` answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    /// The tickers written after the cursor.
    Delta,
    /// Every ticker updated at or after `since_ms`.
    Full,
}

/// A decoded `read_updates.lua` reply.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedReply {
    pub kind: FeedKind,
    /// Where the reader stands after this read.
    pub cursor: FeedCursor,
    /// (member, score, earlier-minute score) triples, still raw.
    pub triples: Vec<(String, f64, Option<f64>)>,
}

/// One strategy's answer in a `dispatch.lua` reply: the job issued and the tickers it
/// claimed (raw members), `None` when nothing was newly claimed, or the Redis type found
/// where its trigger key is not a hash.
pub type DispatchAnswer = Result<Option<(JobRef, Vec<String>)>, String>;

/// First element of a script's array reply that reports a key of the wrong type (second
/// element: the type found). It contains a space, so no job id or ticker equals it.
pub const DAMAGED_MARKER: &str = "# damaged";

/// The type named by a reply `{DAMAGED_MARKER, type}`, if that is what `fields` is.
pub fn damaged_type(fields: &[String]) -> Option<&str> {
    match fields {
        [marker, found] if marker == DAMAGED_MARKER => Some(found),
        _ => None,
    }
}

impl Scripts {
    /// `record.lua` — KEYS: updates, sequence, feed meta, earlier-minute times. ARGV: ts1, ticker1, ts2, … (one
    /// write chunk). Reply: the write sequence number taken.
    pub fn record(&self, keys: &KeySpace, chunk: &[(Ticker, i64)]) -> ScriptInvocation<'_> {
        let mut call = self.record.call();
        call.key(keys.updates())
            .key(keys.update_sequence())
            .key(keys.update_feed())
            .key(keys.updates_before());
        for (ticker, ts_ms) in chunk {
            call.arg(*ts_ms).arg(ticker.as_str());
        }
        call
    }

    /// `read_updates.lua` — KEYS: updates, sequence, feed meta, earlier-minute times. ARGV:
    /// cursor epoch ('' for none), cursor seq, since ms (full read), the epoch to set if
    /// none, the most changes answered as a delta. Reply: `{kind, epoch, seq, ticker1, ms1,
    /// before1, …}`; see
    /// [`Scripts::decode_read_updates`].
    pub fn read_updates(
        &self,
        keys: &KeySpace,
        cursor: &FeedCursor,
        since_ms: i64,
        new_epoch: &str,
    ) -> ScriptInvocation<'_> {
        let mut call = self.read_updates.call();
        call.key(keys.updates())
            .key(keys.update_sequence())
            .key(keys.update_feed())
            .key(keys.updates_before())
            .arg(cursor.epoch.as_deref().unwrap_or(""))
            .arg(cursor.seq)
            .arg(since_ms)
            .arg(new_epoch)
            .arg(FEED_DELTA_MAX);
        call
    }

    /// Decodes the reply of [`Scripts::read_updates`].
    pub fn decode_read_updates(&self, reply: Vec<Value>) -> Result<FeedReply, StoreError> {
        let lua = &self.read_updates;
        if reply.len() < 3 || !reply.len().is_multiple_of(3) {
            return Err(lua.error(format!("{} values in the reply", reply.len())));
        }
        let mut values = reply.into_iter();
        let mut next = || values.next().unwrap_or(Value::Nil);
        let kind = match lua.decode::<i64>(next())? {
            0 => FeedKind::Delta,
            1 => FeedKind::Full,
            other => return Err(lua.error(format!("unknown reply kind {other}"))),
        };
        let epoch: String = lua.decode(next())?;
        let seq: u64 = lua.decode(next())?;
        let rest: Vec<Value> = values.collect();
        let mut triples = Vec::with_capacity(rest.len() / 3);
        for t in rest.chunks_exact(3) {
            let before: Option<f64> = lua.decode(t[2].clone())?;
            triples.push((lua.decode(t[0].clone())?, lua.decode(t[1].clone())?, before));
        }
        let cursor = FeedCursor {
            epoch: Some(epoch),
            seq,
        };
        Ok(FeedReply {
            kind,
            cursor,
            triples,
        })
    }

    /// `dispatch.lua` — KEYS: the jobs stream, then each strategy's trigger hash. ARGV: the
    /// trigger grace, then per strategy: bucket start, bucket end, ttl, strategy id, user
    /// id, ticker count n, n sorted tickers. Reply: per strategy, `{}` (nothing newly
    /// claimed), `{DAMAGED_MARKER, type}` or `{job_id, ticker…}`; see
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
                .arg(r.bucket.start_ms)
                .arg(r.bucket.end_ms)
                .arg(ttl_ms(r))
                .arg(r.strategy)
                .arg(r.user_id)
                .arg(r.tickers.len());
            for t in &r.tickers {
                call.arg(t.as_str());
            }
        }
        call
    }

    /// `restore_claims.lua` for one strategy's claims in one bucket — KEYS: its trigger hash.
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

    /// Decodes one [`Scripts::dispatch`] reply for `group`: per strategy, the job issued
    /// and the tickers it claimed (still raw members), `None`, or the type of a damaged
    /// trigger key.
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
            out.push(Ok(Some((job, fields))));
        }
        Ok(out)
    }

    /// `dispatch_strategy.lua` — KEYS: the run key, the jobs stream. ARGV: bucket start,
    /// bucket end, ttl, strategy id, user id, mode, then the sorted symbols (none: no
    /// symbol filter). Reply: the job id, or nil when the bucket already ran or is stale.
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

    /// Decodes a [`Scripts::dispatch_strategy`] reply.
    pub fn decode_dispatch_strategy(&self, reply: Value) -> Result<Option<JobRef>, StoreError> {
        let job_id: Option<String> = self.dispatch_strategy.decode(reply)?;
        job_id
            .map(|id| {
                JobRef::parse(&id).ok_or_else(|| {
                    self.dispatch_strategy
                        .error(format!("unexpected job id {id:?}"))
                })
            })
            .transpose()
    }

    /// `complete_job.lua` — KEYS: trigger hash, run key. ARGV: bucket start, the job number
    /// or `run` (whole-strategy job), `succeeded` or `failed`. Reply: `{status, released}`;
    /// see [`Scripts::decode_complete_job`].
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

    /// Decodes a [`Scripts::complete_job`] reply.
    pub fn decode_complete_job(&self, reply: Value) -> Result<Settled, StoreError> {
        let lua = &self.complete_job;
        let (status, released): (u64, u64) = lua.decode(reply)?;
        Ok(Settled {
            status: job_status(lua, status)?,
            released,
        })
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

    /// `trim_stream.lua` — KEYS: a stream. ARGV: the group whose backlog is reported.
    /// Reply: `{entries trimmed, backlog}`.
    pub fn trim_stream(&self, stream: String, group: &str) -> ScriptInvocation<'_> {
        let mut call = self.trim_stream.call();
        call.key(stream).arg(group);
        call
    }

    /// `catalog_write.lua` — KEYS: catalog, version, change log, floor. ARGV: strategy id,
    /// max change records, the entry ('' removes it), and the expected current entry for a
    /// compare and swap. Reply: 1 written, 0 not (the entry was not as expected).
    pub fn catalog_write(
        &self,
        keys: &KeySpace,
        id: StrategyId,
        json: Option<&str>,
        expected: Option<&str>,
    ) -> ScriptInvocation<'_> {
        let mut call = self.catalog_write.call();
        call.key(keys.catalog())
            .key(keys.version())
            .key(keys.changes())
            .key(keys.changes_floor())
            .arg(id)
            .arg(CHANGE_RECORDS_MAX)
            .arg(json.unwrap_or(""));
        if let Some(expected) = expected {
            call.arg(expected);
        }
        call
    }

    /// Decodes a [`Scripts::catalog_write`] reply: whether it wrote.
    pub fn decode_catalog_write(&self, reply: Value) -> Result<bool, StoreError> {
        match self.catalog_write.decode::<u64>(reply)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(self.catalog_write.error(format!("unknown reply {other}"))),
        }
    }

    /// `replace_universe.lua` — KEYS: universe, version, change log, floor, universe
    /// bases. ARGV: strategy id, max change records, the digest of the catalog universe
    /// written (`None`: a discovery, which leaves the base), the tickers (validated, never
    /// empty). Reply: see [`Scripts::decode_replace_universe`].
    pub fn replace_universe(
        &self,
        keys: &KeySpace,
        id: StrategyId,
        tickers: &[Ticker],
        base: Option<&str>,
    ) -> ScriptInvocation<'_> {
        let mut call = self.replace_universe.call();
        call.key(keys.universe(id))
            .key(keys.version())
            .key(keys.changes())
            .key(keys.changes_floor())
            .key(keys.universe_base())
            .arg(id)
            .arg(CHANGE_RECORDS_MAX)
            .arg(base.unwrap_or(""));
        for t in tickers {
            call.arg(t.as_str());
        }
        call
    }

    /// Decodes a [`Scripts::replace_universe`] reply; `None` when the universe key holds
    /// another type.
    pub fn decode_replace_universe(
        &self,
        reply: Value,
    ) -> Result<Option<UniverseWrite>, StoreError> {
        match self.replace_universe.decode::<i64>(reply)? {
            -1 => Ok(None),
            0 => Ok(Some(UniverseWrite::Unchanged)),
            v if v > 0 => Ok(Some(UniverseWrite::Replaced)),
            other => Err(self
                .replace_universe
                .error(format!("unknown reply {other}"))),
        }
    }

    /// `persist_universe.lua` — KEYS: catalog, version, change log, floor, universe bases,
    /// universe. ARGV: strategy id, max change records, the new entry, the entry it was made
    /// from, that entry's universe digest, the discovered universe's digest, its tickers.
    /// Reply: see [`Scripts::decode_persist_universe`].
    pub fn persist_universe<'a>(
        &'a self,
        keys: &KeySpace,
        id: StrategyId,
        write: &PersistWrite<'_>,
    ) -> ScriptInvocation<'a> {
        let mut call = self.persist_universe.call();
        call.key(keys.catalog())
            .key(keys.version())
            .key(keys.changes())
            .key(keys.changes_floor())
            .key(keys.universe_base())
            .key(keys.universe(id))
            .arg(id)
            .arg(CHANGE_RECORDS_MAX)
            .arg(write.json)
            .arg(write.expected)
            .arg(write.expected_base)
            .arg(universe_digest(&write.universe.iter().cloned().collect()));
        for t in write.universe {
            call.arg(t.as_str());
        }
        call
    }

    /// Decodes a [`Scripts::persist_universe`] reply.
    pub fn decode_persist_universe(&self, reply: Value) -> Result<Persisted, StoreError> {
        match self.persist_universe.decode::<u64>(reply)? {
            0 => Ok(Persisted::EntryChanged),
            1 => Ok(Persisted::Written),
            2 => Ok(Persisted::Superseded),
            other => Err(self
                .persist_universe
                .error(format!("unknown reply {other}"))),
        }
    }

    /// `restore_strategy.lua` — KEYS: catalog, version, change log, floor, universe bases,
    /// universe. ARGV: strategy id, max change records, the entry, its universe digest (''
    /// for none), the universe (none for a global strategy). Reply: 1 if the entry was
    /// written back, else 0.
    pub fn restore_strategy<'a>(
        &'a self,
        keys: &KeySpace,
        id: StrategyId,
        restore: &Restore<'_>,
    ) -> ScriptInvocation<'a> {
        let mut call = self.restore_strategy.call();
        call.key(keys.catalog())
            .key(keys.version())
            .key(keys.changes())
            .key(keys.changes_floor())
            .key(keys.universe_base())
            .key(keys.universe(id))
            .arg(id)
            .arg(CHANGE_RECORDS_MAX)
            .arg(restore.json)
            .arg(restore.base.unwrap_or(""));
        for t in restore.universe {
            call.arg(t.as_str());
        }
        call
    }

    /// `cleanup_chunk.lua` — KEYS: updates, sequence, earlier-minute times. ARGV: cutoff
    /// ms, most members to
    /// remove. Reply: the number removed.
    pub fn cleanup_chunk(
        &self,
        keys: &KeySpace,
        cutoff_ms: i64,
        chunk_members: usize,
    ) -> ScriptInvocation<'_> {
        let mut call = self.cleanup_chunk.call();
        call.key(keys.updates())
            .key(keys.update_sequence())
            .key(keys.updates_before())
            .arg(cutoff_ms)
            .arg(chunk_members);
        call
    }

    /// `intersect_adaptive.lua` — KEYS: updates, universe. ARGV: since ms. Reply: the
    /// universe's members updated at or after it, or `{DAMAGED_MARKER, type}` when the
    /// universe key is not a set.
    pub fn intersect(
        &self,
        keys: &KeySpace,
        id: StrategyId,
        since_ms: i64,
    ) -> ScriptInvocation<'_> {
        let mut call = self.intersect.call();
        call.key(keys.updates())
            .key(keys.universe(id))
            .arg(since_ms);
        call
    }
}
