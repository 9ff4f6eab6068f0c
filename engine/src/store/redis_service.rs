//! The service half of [`RedisStore`]: batched dispatch (claim + job in one script), job
//! settlement, streams with consumer groups, the catalog and its change log. The
//! [`super::Store`] impl in `redis.rs` forwards to these methods.

use std::collections::{BTreeMap, BTreeSet};

use redis::streams::StreamReadReply;
use redis::{RedisError, RedisResult, ServerErrorKind, Value};

use super::groups::script_groups;
use super::redis::{RedisStore, command_error, script_error};
use super::{
    Changes, DISPATCH_BATCH, Dispatched, ENGINE_GROUP, MAX_CHANGE_RECORDS, PendingJob, Reaped,
    STREAM_MAXLEN, StoreError, StrategyDispatch, StreamEntry, TickerDispatch, WORKER_GROUP,
    WRITE_CHUNK, check_bucket, trigger_ttl_ms,
};
use crate::domain::{StrategyId, Ticker, check_timestamp};
use crate::jobs::JobRef;

/// Catalog entries per `HSCAN` page, and the bound on pages per full read (10 million
/// entries): each page is one short Redis call, and no catalog is anywhere near the bound.
const CATALOG_PAGE: usize = 1_000;
const MAX_CATALOG_PAGES: usize = 10_000;

/// The consumer name under which engine instances take over stale jobs, briefly.
const REAPER_CONSUMER: &str = "tickgate-reaper";

/// Whether a script call failed only because Redis had not loaded the script (it did not
/// run, so retrying it is safe).
fn is_noscript(e: &RedisError) -> bool {
    e.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript)
}

/// Runs `calls` (script invocations of `script`) in one pipeline that starts with `SCRIPT
/// LOAD`, so the calls find the script even right after a `SCRIPT FLUSH`. Calls that still
/// hit `NOSCRIPT` did not run and are retried one by one (which reloads).
async fn pipelined<'a>(
    store: &RedisStore,
    source: &str,
    name: &'static str,
    calls: &[redis::ScriptInvocation<'a>],
) -> Result<Vec<Value>, StoreError> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    pipe.cmd("SCRIPT").arg("LOAD").arg(source);
    for call in calls {
        pipe.invoke_script(call);
    }
    let mut replies: Vec<RedisResult<Value>> = pipe
        .query_async(&mut store.connection())
        .await
        .map_err(|e| script_error(name, e))?;
    if replies.len() != calls.len() + 1 {
        return Err(StoreError::Script {
            script: name,
            reason: format!("{} replies for {} calls", replies.len(), calls.len() + 1),
        });
    }
    // The SCRIPT LOAD reply: if loading failed (e.g. an ACL without scripting), no call ran.
    replies.remove(0).map_err(|e| script_error(name, e))?;
    let mut out = Vec::with_capacity(calls.len());
    for (call, reply) in calls.iter().zip(replies) {
        let value = match reply {
            Ok(v) => v,
            Err(e) if is_noscript(&e) => call
                .invoke_async(&mut store.connection())
                .await
                .map_err(|e| script_error(name, e))?,
            Err(e) => return Err(script_error(name, e)),
        };
        out.push(value);
    }
    Ok(out)
}

fn decode<T: redis::FromRedisValue>(name: &'static str, v: Value) -> Result<T, StoreError> {
    redis::from_redis_value(v).map_err(|e| StoreError::Script {
        script: name,
        reason: e.to_string(),
    })
}

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
    pub(super) async fn dispatch_tickers_impl(
        &self,
        now_ms: i64,
        requests: &[TickerDispatch],
    ) -> Result<Vec<Option<Dispatched>>, StoreError> {
        check_timestamp(now_ms)?;
        for r in requests {
            check_bucket(r.bucket)?;
        }
        let keys = self.keys();
        let jobs_key = keys.jobs();
        let mut out = Vec::with_capacity(requests.len());
        for batch in requests.chunks(DISPATCH_BATCH) {
            let groups = script_groups(batch);
            let calls: Vec<_> = groups
                .iter()
                .map(|group| {
                    let mut call = self.scripts().dispatch.key(&jobs_key);
                    call.arg(STREAM_MAXLEN);
                    for r in *group {
                        call.key(keys.triggers(r.strategy))
                            .arg(r.bucket.start_ms)
                            .arg(r.bucket.end_ms)
                            .arg(trigger_ttl_ms(r.bucket, now_ms, self.trigger_grace_ms()))
                            .arg(r.strategy)
                            .arg(r.user_id)
                            .arg(r.tickers.len());
                        for t in &r.tickers {
                            call.arg(t.as_str());
                        }
                    }
                    call
                })
                .collect();
            let replies = pipelined(
                self,
                &self.scripts().dispatch_source,
                "dispatch.lua",
                &calls,
            )
            .await?;
            for (group, reply) in groups.iter().zip(replies) {
                let per_strategy: Vec<Vec<String>> = decode("dispatch.lua", reply)?;
                if per_strategy.len() != group.len() {
                    return Err(StoreError::Script {
                        script: "dispatch.lua",
                        reason: format!(
                            "{} answers for {} strategies",
                            per_strategy.len(),
                            group.len()
                        ),
                    });
                }
                for (r, mut fields) in group.iter().zip(per_strategy) {
                    if fields.is_empty() {
                        out.push(None);
                        continue;
                    }
                    let job_id = fields.remove(0);
                    let job = JobRef::parse(&job_id).ok_or_else(|| StoreError::Script {
                        script: "dispatch.lua",
                        reason: format!("unexpected job id {job_id:?}"),
                    })?;
                    debug_assert_eq!(job.strategy, r.strategy);
                    out.push(Some(Dispatched {
                        job,
                        tickers: self.parse_members(fields),
                    }));
                }
            }
        }
        Ok(out)
    }

    pub(super) async fn dispatch_strategies_impl(
        &self,
        now_ms: i64,
        requests: &[StrategyDispatch],
    ) -> Result<Vec<Option<JobRef>>, StoreError> {
        check_timestamp(now_ms)?;
        for r in requests {
            check_bucket(r.bucket)?;
        }
        let keys = self.keys();
        let jobs_key = keys.jobs();
        let mut out = Vec::with_capacity(requests.len());
        for batch in requests.chunks(DISPATCH_BATCH) {
            let calls: Vec<_> = batch
                .iter()
                .map(|r| {
                    let mut call = self
                        .scripts()
                        .dispatch_strategy
                        .key(keys.strategy_run(r.strategy));
                    call.key(&jobs_key)
                        .arg(r.bucket.start_ms)
                        .arg(r.bucket.end_ms)
                        .arg(trigger_ttl_ms(r.bucket, now_ms, self.trigger_grace_ms()))
                        .arg(r.strategy)
                        .arg(r.user_id)
                        .arg(STREAM_MAXLEN)
                        .arg(r.mode.as_str());
                    for t in &r.symbols {
                        call.arg(t.as_str());
                    }
                    call
                })
                .collect();
            let replies = pipelined(
                self,
                &self.scripts().dispatch_strategy_source,
                "dispatch_strategy.lua",
                &calls,
            )
            .await?;
            for reply in replies {
                let job_id: Option<String> = decode("dispatch_strategy.lua", reply)?;
                out.push(job_id.as_deref().and_then(JobRef::parse));
            }
        }
        Ok(out)
    }

    pub(super) async fn complete_job_impl(
        &self,
        job: JobRef,
        success: bool,
    ) -> Result<u64, StoreError> {
        let seq = job.seq.map_or_else(|| "run".to_owned(), |n| n.to_string());
        self.scripts()
            .complete_job
            .key(self.keys().triggers(job.strategy))
            .key(self.keys().strategy_run(job.strategy))
            .arg(job.bucket_start_ms)
            .arg(seq)
            .arg(if success { "1" } else { "0" })
            .invoke_async(&mut self.connection())
            .await
            .map_err(|e| script_error("complete_job.lua", e))
    }

    pub(super) async fn complete_jobs_impl(
        &self,
        jobs: &[(JobRef, bool)],
    ) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::with_capacity(jobs.len());
        for batch in jobs.chunks(DISPATCH_BATCH) {
            let calls: Vec<_> = batch
                .iter()
                .map(|(job, success)| {
                    let seq = job.seq.map_or_else(|| "run".to_owned(), |n| n.to_string());
                    let mut call = self
                        .scripts()
                        .complete_job
                        .key(self.keys().triggers(job.strategy));
                    call.key(self.keys().strategy_run(job.strategy))
                        .arg(job.bucket_start_ms)
                        .arg(seq)
                        .arg(if *success { "1" } else { "0" });
                    call
                })
                .collect();
            let replies = pipelined(
                self,
                &self.scripts().complete_job_source,
                "complete_job.lua",
                &calls,
            )
            .await?;
            for reply in replies {
                out.push(decode("complete_job.lua", reply)?);
            }
        }
        Ok(out)
    }

    pub(super) async fn ack_results_impl(
        &self,
        entries: &[(StreamEntry, Option<String>)],
    ) -> Result<(), StoreError> {
        for batch in entries.chunks(DISPATCH_BATCH) {
            let mut pipe = redis::pipe();
            for (entry, dead) in batch {
                pipe.cmd("MULTI").ignore();
                if let Some(reason) = dead {
                    pipe.cmd("XADD")
                        .arg(self.keys().dead())
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(STREAM_MAXLEN)
                        .arg("*")
                        .arg("result_id")
                        .arg(&entry.id)
                        .arg("reason")
                        .arg(reason)
                        .arg("result")
                        .arg(entry.payload.as_deref().unwrap_or(""))
                        .ignore();
                }
                pipe.cmd("XACK")
                    .arg(self.keys().results())
                    .arg(ENGINE_GROUP)
                    .arg(&entry.id)
                    .ignore()
                    .cmd("EXEC")
                    .ignore();
            }
            pipe.query_async::<()>(&mut self.connection())
                .await
                .map_err(|e| command_error("XACK results", e))?;
        }
        Ok(())
    }

    pub(super) async fn ensure_groups_impl(&self) -> Result<(), StoreError> {
        for (stream, group, from) in [
            (self.keys().jobs(), WORKER_GROUP, "$"),
            (self.keys().results(), ENGINE_GROUP, "0"),
        ] {
            let created: RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&stream)
                .arg(group)
                .arg(from)
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

    /// XREADGROUP that recreates the groups once when Redis has lost them (restart).
    async fn read_group(
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
                self.ensure_groups_impl().await?;
                let reply = read()
                    .query_async(&mut self.connection())
                    .await
                    .map_err(|e| command_error("XREADGROUP", e))?;
                Ok(entries(reply, field))
            }
            Err(e) => Err(command_error("XREADGROUP", e)),
        }
    }

    pub(super) async fn take_jobs_impl(
        &self,
        consumer: &str,
        max: usize,
    ) -> Result<Vec<StreamEntry>, StoreError> {
        self.read_group(self.keys().jobs(), WORKER_GROUP, consumer, max, ">", "job")
            .await
    }

    pub(super) async fn pending_jobs_impl(
        &self,
        max: usize,
    ) -> Result<Vec<PendingJob>, StoreError> {
        let reply: RedisResult<Vec<(String, String, u64, u64)>> = redis::cmd("XPENDING")
            .arg(self.keys().jobs())
            .arg(WORKER_GROUP)
            .arg("-")
            .arg("+")
            .arg(max)
            .query_async(&mut self.connection())
            .await;
        match reply {
            Ok(entries) => Ok(entries
                .into_iter()
                .map(|(id, _consumer, _idle_ms, deliveries)| PendingJob { id, deliveries })
                .collect()),
            // No stream or no group yet: nothing can be pending.
            Err(e) if e.code() == Some("NOGROUP") => Ok(Vec::new()),
            Err(e) => Err(command_error("XPENDING", e)),
        }
    }

    pub(super) async fn reap_job_impl(
        &self,
        job: &PendingJob,
        max_deliveries: u64,
    ) -> Result<Reaped, StoreError> {
        let outcome: u64 = self
            .scripts()
            .reap_job
            .key(self.keys().jobs())
            .key(self.keys().dead())
            .arg(&job.id)
            .arg(job.deliveries)
            .arg(max_deliveries)
            .arg(STREAM_MAXLEN)
            .arg(WORKER_GROUP)
            .arg(REAPER_CONSUMER)
            .invoke_async(&mut self.connection())
            .await
            .map_err(|e| script_error("reap_job.lua", e))?;
        Ok(match outcome {
            1 => Reaped::Redelivered,
            2 => Reaped::Dead,
            _ => Reaped::Nothing,
        })
    }

    pub(super) async fn finish_job_impl(
        &self,
        job_entry_id: &str,
        result_json: &str,
    ) -> Result<(), StoreError> {
        self.finish_jobs_impl(&[(job_entry_id.to_owned(), result_json.to_owned())])
            .await
    }

    /// One round trip per [`DISPATCH_BATCH`] results; each acknowledgement is atomic with its
    /// result (`MULTI`/`EXEC` per job inside the pipeline).
    pub(super) async fn finish_jobs_impl(
        &self,
        jobs: &[(String, String)],
    ) -> Result<(), StoreError> {
        for batch in jobs.chunks(DISPATCH_BATCH) {
            let mut pipe = redis::pipe();
            for (job_entry_id, result_json) in batch {
                pipe.cmd("MULTI")
                    .ignore()
                    .cmd("XACK")
                    .arg(self.keys().jobs())
                    .arg(WORKER_GROUP)
                    .arg(job_entry_id)
                    .ignore()
                    .cmd("XADD")
                    .arg(self.keys().results())
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(STREAM_MAXLEN)
                    .arg("*")
                    .arg("result")
                    .arg(result_json)
                    .ignore()
                    .cmd("EXEC")
                    .ignore();
            }
            pipe.query_async::<()>(&mut self.connection())
                .await
                .map_err(|e| command_error("XACK + XADD result", e))?;
        }
        Ok(())
    }

    pub(super) async fn read_results_impl(
        &self,
        consumer: &str,
        max: usize,
        pending: bool,
    ) -> Result<Vec<StreamEntry>, StoreError> {
        let from = if pending { "0" } else { ">" };
        self.read_group(
            self.keys().results(),
            ENGINE_GROUP,
            consumer,
            max,
            from,
            "result",
        )
        .await
    }

    pub(super) async fn ack_result_impl(
        &self,
        entry: &StreamEntry,
        dead: Option<&str>,
    ) -> Result<(), StoreError> {
        self.ack_results_impl(&[(entry.clone(), dead.map(str::to_owned))])
            .await
    }

    pub(super) async fn catalog_write_impl(
        &self,
        id: StrategyId,
        json: Option<&str>,
        expected: Option<&str>,
    ) -> Result<bool, StoreError> {
        let keys = self.keys();
        let mut call = self.scripts().catalog_write.key(keys.catalog());
        call.key(keys.version())
            .key(keys.changes())
            .key(keys.changes_floor())
            .arg(id)
            .arg(MAX_CHANGE_RECORDS);
        call.arg(json.unwrap_or(""));
        if let Some(expected) = expected {
            call.arg(expected);
        }
        let written: u64 = call
            .invoke_async(&mut self.connection())
            .await
            .map_err(|e| script_error("catalog_write.lua", e))?;
        Ok(written == 1)
    }

    pub(super) async fn catalog_all_impl(
        &self,
    ) -> Result<BTreeMap<StrategyId, String>, StoreError> {
        let mut out = BTreeMap::new();
        let mut cursor: u64 = 0;
        for _ in 0..MAX_CATALOG_PAGES {
            let (next, page): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
                .arg(self.keys().catalog())
                .arg(cursor)
                .arg("COUNT")
                .arg(CATALOG_PAGE)
                .query_async(&mut self.connection())
                .await
                .map_err(|e| command_error("HSCAN", e))?;
            for (id, json) in page {
                // A field that is not a strategy id is someone else's; the service reports
                // catalog entries it cannot use when it parses them.
                if let Ok(id) = id.parse() {
                    out.insert(id, json);
                }
            }
            if next == 0 {
                return Ok(out);
            }
            cursor = next;
        }
        Err(StoreError::Redis {
            op: "HSCAN",
            reason: format!("catalog larger than {MAX_CATALOG_PAGES} pages"),
        })
    }

    pub(super) async fn catalog_get_impl(
        &self,
        ids: &[StrategyId],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(WRITE_CHUNK) {
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(self.keys().catalog()).arg(chunk);
            let values: Vec<Option<String>> = cmd
                .query_async(&mut self.connection())
                .await
                .map_err(|e| command_error("HMGET", e))?;
            out.extend(values);
        }
        Ok(out)
    }

    pub(super) async fn universes_impl(
        &self,
        ids: &[StrategyId],
    ) -> Result<Vec<Option<BTreeSet<Ticker>>>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(WRITE_CHUNK) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.cmd("SMEMBERS").arg(self.keys().universe(*id));
            }
            let sets: Vec<Vec<String>> = pipe
                .query_async(&mut self.connection())
                .await
                .map_err(|e| command_error("SMEMBERS", e))?;
            for members in sets {
                let set: BTreeSet<Ticker> = self.parse_members(members).into_iter().collect();
                out.push((!set.is_empty()).then_some(set));
            }
        }
        Ok(out)
    }

    pub(super) async fn changes_since_impl(&self, version: u64) -> Result<Changes, StoreError> {
        let keys = self.keys();
        let (current, floor, changed): (Option<u64>, Option<u64>, Vec<String>) = redis::pipe()
            .cmd("GET")
            .arg(keys.version())
            .cmd("GET")
            .arg(keys.changes_floor())
            .cmd("ZRANGE")
            .arg(keys.changes())
            .arg(format!("({version}"))
            .arg("+inf")
            .arg("BYSCORE")
            .query_async(&mut self.connection())
            .await
            .map_err(|e| command_error("GET + ZRANGE changes", e))?;
        let current = current.unwrap_or(0);
        Ok(Changes {
            version: current,
            strategies: changed.iter().filter_map(|id| id.parse().ok()).collect(),
            // A version behind ours means Redis lost its state (restart, flush).
            reload_all: version > current || floor.unwrap_or(0) > version,
            state_lost: version > current,
        })
    }
}
