//! The production store over Redis (`redis-rs`, `ConnectionManager`).
//!
//! Every read-then-write is a Lua script (claims, releases, cleanup steps), so concurrent
//! engine instances cannot interleave inside one; scripts are loaded once and called by
//! SHA, reloaded transparently on `NOSCRIPT` (`Script::invoke_async`). Writes of many
//! members are chunked ([`super::WRITE_CHUNK`]), universe replacement is one `MULTI/EXEC`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};

use super::{
    CLEANUP_CHUNK, Changes, CleanupReport, DEFAULT_MAX_UNIVERSE, DEFAULT_TRIGGER_GRACE_MS,
    Dispatched, FeedCursor, FeedRead, Intersection, KeySpace, MAX_CLEANUP_CALLS_PER_RUN,
    PendingJob, Reaped, Store, StoreCounters, StoreError, StrategyDispatch, StreamEntry,
    TickerDispatch, check_bucket, effective_retention_ms, trigger_ttl_ms, validate_universe,
};
use crate::domain::{StrategyId, Ticker, check_timestamp};
use crate::jobs::JobRef;
use crate::redact::redact_url;
use crate::timeframe::{Bucket, Timeframe};

/// Connection and behaviour settings of [`RedisStore`].
#[derive(Clone)]
pub struct RedisStoreConfig {
    /// `redis://[user:password@]host:port[/db]` or `rediss://` for TLS. Never logged raw.
    pub url: String,
    /// Key names (prefix, cluster hash tag).
    pub keys: KeySpace,
    /// Bound on establishing a connection.
    pub connect_timeout: Duration,
    /// Bound on every command's answer. redis-rs defaults to 500 ms when unset; a cleanup
    /// chunk or a 50,000-member universe write can take longer on a busy server, so it is
    /// always set explicitly from config.
    pub response_timeout: Duration,
    /// Reconnection attempts per failed request before the error reaches the caller; the
    /// service retries on its next tick, so a few attempts are enough.
    pub reconnect_retries: usize,
    /// Largest universe accepted (DESIGN §2.7).
    pub max_universe: usize,
    /// How long trigger state outlives its bucket.
    pub trigger_grace_ms: i64,
}

impl std::fmt::Debug for RedisStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStoreConfig")
            .field("url", &redact_url(&self.url))
            .field("keys", &self.keys)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("reconnect_retries", &self.reconnect_retries)
            .field("max_universe", &self.max_universe)
            .field("trigger_grace_ms", &self.trigger_grace_ms)
            .finish()
    }
}

impl RedisStoreConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> RedisStoreConfig {
        RedisStoreConfig {
            url: url.into(),
            keys: KeySpace::default(),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            reconnect_retries: 3,
            max_universe: DEFAULT_MAX_UNIVERSE,
            trigger_grace_ms: DEFAULT_TRIGGER_GRACE_MS,
        }
    }
}

/// Scripts, hashed once at start-up.
pub(super) struct Scripts {
    claim: Script,
    pub(super) dispatch: Script,
    /// Source of `dispatch`, for the `SCRIPT LOAD` that opens each dispatch pipeline.
    pub(super) dispatch_source: String,
    pub(super) dispatch_strategy: Script,
    pub(super) dispatch_strategy_source: String,
    pub(super) complete_job: Script,
    /// Source of `complete_job`, for the `SCRIPT LOAD` that opens each settlement pipeline.
    pub(super) complete_job_source: String,
    pub(super) catalog_write: Script,
    pub(super) reap_job: Script,
    replace_universe: Script,
    release: Script,
    claim_strategy: Script,
    release_strategy: Script,
    intersect_seed: Script,
    intersect_adaptive: Script,
    cleanup_chunk: Script,
    pub(super) record: Script,
    pub(super) read_updates: Script,
}

impl Scripts {
    fn new() -> Scripts {
        const CLAIM_FN: &str = include_str!("lua/claim_fn.lua");
        const CHANGE_FN: &str = include_str!("lua/change_fn.lua");
        let with = |prefix: &str, body: &str| Script::new(&format!("{prefix}\n{body}"));
        let dispatch_source = format!("{CLAIM_FN}\n{}", include_str!("lua/dispatch.lua"));
        let dispatch_strategy_source = include_str!("lua/dispatch_strategy.lua").to_owned();
        Scripts {
            dispatch_source: dispatch_source.clone(),
            dispatch_strategy_source: dispatch_strategy_source.clone(),
            claim: with(CLAIM_FN, include_str!("lua/claim.lua")),
            dispatch: Script::new(&dispatch_source),
            dispatch_strategy: Script::new(&dispatch_strategy_source),
            complete_job: Script::new(include_str!("lua/complete_job.lua")),
            complete_job_source: include_str!("lua/complete_job.lua").to_owned(),
            reap_job: Script::new(include_str!("lua/reap_job.lua")),
            catalog_write: with(CHANGE_FN, include_str!("lua/catalog_write.lua")),
            replace_universe: with(CHANGE_FN, include_str!("lua/replace_universe.lua")),
            release: Script::new(include_str!("lua/release.lua")),
            claim_strategy: Script::new(include_str!("lua/claim_strategy.lua")),
            release_strategy: Script::new(include_str!("lua/release_strategy.lua")),
            intersect_seed: Script::new(include_str!("lua/intersect_seed.lua")),
            intersect_adaptive: Script::new(include_str!("lua/intersect_adaptive.lua")),
            cleanup_chunk: Script::new(include_str!("lua/cleanup_chunk.lua")),
            record: Script::new(super::RECORD_SCRIPT),
            read_updates: Script::new(include_str!("lua/read_updates.lua")),
        }
    }
}

/// The Redis store: one multiplexed, self-reconnecting connection shared by all calls.
pub struct RedisStore {
    con: ConnectionManager,
    keys: KeySpace,
    max_universe: usize,
    trigger_grace_ms: i64,
    scripts: Scripts,
    counters: StoreCounters,
}

impl RedisStore {
    /// Connects (bounded by `connect_timeout`) and returns a ready store.
    pub async fn connect(config: &RedisStoreConfig) -> Result<RedisStore, StoreError> {
        let fail = |e: RedisError| StoreError::Connection {
            url: redact_url(&config.url),
            reason: redact_url(&e.to_string()),
        };
        let client = redis::Client::open(config.url.as_str()).map_err(fail)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(config.reconnect_retries);
        let con = tokio::time::timeout(
            config.connect_timeout,
            ConnectionManager::new_with_config(client, manager_config),
        )
        .await
        .map_err(|_| StoreError::Connection {
            url: redact_url(&config.url),
            reason: format!("no connection within {:?}", config.connect_timeout),
        })?
        .map_err(fail)?;
        Ok(RedisStore {
            con,
            keys: config.keys.clone(),
            max_universe: config.max_universe,
            trigger_grace_ms: config.trigger_grace_ms,
            scripts: Scripts::new(),
            counters: StoreCounters::default(),
        })
    }

    /// The key names this store uses.
    pub fn keys(&self) -> &KeySpace {
        &self.keys
    }

    /// A handle on the shared connection. Every store operation takes one per round trip,
    /// which is what `round_trips` counts (a script reload after `NOSCRIPT` is not counted).
    pub fn connection(&self) -> ConnectionManager {
        StoreCounters::bump(&self.counters.round_trips, 1);
        self.con.clone()
    }

    pub(super) fn scripts(&self) -> &Scripts {
        &self.scripts
    }

    pub(super) fn trigger_grace_ms(&self) -> i64 {
        self.trigger_grace_ms
    }

    /// Parses members read from Redis, skipping (and counting) any that are not valid
    /// tickers: someone else wrote them, and one bad member must not hide the rest.
    pub(super) fn parse_members(&self, members: Vec<String>) -> Vec<Ticker> {
        self.tickers(members).collect()
    }

    fn tickers(&self, members: Vec<String>) -> impl Iterator<Item = Ticker> + '_ {
        members.into_iter().filter_map(|m| match Ticker::parse(&m) {
            Ok(t) if t.as_str() == m => Some(t),
            _ => {
                StoreCounters::bump(&self.counters.invalid_stored_members, 1);
                None
            }
        })
    }
}

pub(super) fn command_error(op: &'static str, e: RedisError) -> StoreError {
    if e.is_timeout() {
        StoreError::Timeout { op }
    } else if e.is_connection_dropped() || e.is_io_error() || e.is_connection_refusal() {
        StoreError::Disconnected {
            op,
            reason: e.to_string(),
        }
    } else {
        StoreError::Redis {
            op,
            reason: e.to_string(),
        }
    }
}

/// Errors of a script call: transport failures keep their kind (the caller must not
/// "fall back" when Redis is down); everything the server reports is a script failure.
pub(super) fn script_error(script: &'static str, e: RedisError) -> StoreError {
    match command_error(script, e) {
        StoreError::Redis { reason, .. } => StoreError::Script { script, reason },
        other => other,
    }
}

pub(super) fn decode_scores(
    op: &'static str,
    pairs: Vec<(String, f64)>,
) -> Result<Vec<(String, i64)>, StoreError> {
    pairs
        .into_iter()
        .map(|(m, score)| {
            // Scores are integral milliseconds below 2^53, so f64 holds them exactly.
            if score.fract() == 0.0 && score.abs() < 9.0e15 {
                Ok((m, score as i64))
            } else {
                Err(StoreError::Redis {
                    op,
                    reason: format!("member {m:?} has a non-millisecond score {score}"),
                })
            }
        })
        .collect()
}

impl Store for RedisStore {
    async fn record_updates<S: AsRef<str> + Sync>(
        &self,
        updates: &[(S, i64)],
    ) -> Result<(), StoreError> {
        self.record_updates_impl(updates).await
    }

    async fn read_updates(
        &self,
        cursor: &FeedCursor,
        since_ms: i64,
        new_epoch: &str,
    ) -> Result<FeedRead, StoreError> {
        self.read_updates_impl(cursor, since_ms, new_epoch).await
    }

    async fn updated_since(&self, since_ms: i64) -> Result<BTreeMap<Ticker, i64>, StoreError> {
        check_timestamp(since_ms)?;
        let pairs: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(self.keys.updates())
            .arg(since_ms)
            .arg("+inf")
            .arg("BYSCORE")
            .arg("WITHSCORES")
            .query_async(&mut self.connection())
            .await
            .map_err(|e| command_error("ZRANGE BYSCORE", e))?;
        let mut out = BTreeMap::new();
        for (member, ts_ms) in decode_scores("ZRANGE BYSCORE", pairs)? {
            if let Some(t) = self.tickers(vec![member]).next() {
                out.insert(t, ts_ms);
            }
        }
        Ok(out)
    }

    async fn tracked_tickers(&self) -> Result<u64, StoreError> {
        redis::cmd("ZCARD")
            .arg(self.keys.updates())
            .query_async(&mut self.connection())
            .await
            .map_err(|e| command_error("ZCARD", e))
    }

    async fn universe(&self, id: StrategyId) -> Result<Option<BTreeSet<Ticker>>, StoreError> {
        let members: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.universe(id))
            .query_async(&mut self.connection())
            .await
            .map_err(|e| command_error("SMEMBERS", e))?;
        // An empty universe is never written, so no members means no universe.
        let set: BTreeSet<Ticker> = self.tickers(members).collect();
        Ok((!set.is_empty()).then_some(set))
    }

    async fn universe_size(&self, id: StrategyId) -> Result<u64, StoreError> {
        redis::cmd("SCARD")
            .arg(self.keys.universe(id))
            .query_async(&mut self.connection())
            .await
            .map_err(|e| command_error("SCARD", e))
    }

    async fn replace_universe<S: AsRef<str> + Sync>(
        &self,
        id: StrategyId,
        tickers: &[S],
    ) -> Result<usize, StoreError> {
        let set: Vec<Ticker> = validate_universe(id, tickers, self.max_universe)?
            .into_iter()
            .collect();
        let keys = &self.keys;
        // One script: no reader sees the key deleted or half-filled (the original's
        // DEL + SADD pipeline let readers see an empty universe), and the change is
        // recorded for other instances in the same step.
        let mut call = self.scripts.replace_universe.key(keys.universe(id));
        call.key(keys.version())
            .key(keys.changes())
            .key(keys.changes_floor())
            .arg(id)
            .arg(super::MAX_CHANGE_RECORDS);
        for t in &set {
            call.arg(t.as_str());
        }
        call.invoke_async::<u64>(&mut self.connection())
            .await
            .map_err(|e| script_error("replace_universe.lua", e))?;
        Ok(set.len())
    }

    async fn claim(
        &self,
        id: StrategyId,
        bucket: Bucket,
        now_ms: i64,
        tickers: &[Ticker],
    ) -> Result<Vec<Ticker>, StoreError> {
        let bucket = check_bucket(bucket)?;
        check_timestamp(now_ms)?;
        let mut call = self.scripts.claim.key(self.keys.triggers(id));
        call.arg(bucket.start_ms)
            .arg(bucket.end_ms)
            .arg(trigger_ttl_ms(bucket, now_ms, self.trigger_grace_ms));
        for t in tickers {
            call.arg(t.as_str());
        }
        let claimed: Vec<String> = call
            .invoke_async(&mut self.connection())
            .await
            .map_err(|e| script_error("claim.lua", e))?;
        Ok(self.tickers(claimed).collect())
    }

    async fn release(
        &self,
        id: StrategyId,
        bucket: Bucket,
        tickers: &[Ticker],
    ) -> Result<u64, StoreError> {
        let bucket = check_bucket(bucket)?;
        let mut call = self.scripts.release.key(self.keys.triggers(id));
        call.arg(bucket.start_ms);
        for t in tickers {
            call.arg(t.as_str());
        }
        call.invoke_async(&mut self.connection())
            .await
            .map_err(|e| script_error("release.lua", e))
    }

    async fn claim_strategy(
        &self,
        id: StrategyId,
        bucket: Bucket,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let bucket = check_bucket(bucket)?;
        check_timestamp(now_ms)?;
        self.scripts
            .claim_strategy
            .key(self.keys.strategy_run(id))
            .arg(bucket.start_ms)
            .arg(bucket.end_ms)
            .arg(trigger_ttl_ms(bucket, now_ms, self.trigger_grace_ms))
            .invoke_async(&mut self.connection())
            .await
            .map_err(|e| script_error("claim_strategy.lua", e))
    }

    async fn release_strategy(&self, id: StrategyId, bucket: Bucket) -> Result<bool, StoreError> {
        let bucket = check_bucket(bucket)?;
        self.scripts
            .release_strategy
            .key(self.keys.strategy_run(id))
            .arg(bucket.start_ms)
            .invoke_async(&mut self.connection())
            .await
            .map_err(|e| script_error("release_strategy.lua", e))
    }

    async fn intersect(
        &self,
        id: StrategyId,
        since_ms: i64,
        method: Intersection,
    ) -> Result<Vec<Ticker>, StoreError> {
        check_timestamp(since_ms)?;
        let (updates, universe) = (self.keys.updates(), self.keys.universe(id));
        let members: Vec<String> = match method {
            Intersection::ClientSide => {
                let (universe, updated): (Vec<String>, Vec<String>) = redis::pipe()
                    .cmd("SMEMBERS")
                    .arg(&universe)
                    .cmd("ZRANGE")
                    .arg(&updates)
                    .arg(since_ms)
                    .arg("+inf")
                    .arg("BYSCORE")
                    .query_async(&mut self.connection())
                    .await
                    .map_err(|e| command_error("SMEMBERS + ZRANGE BYSCORE", e))?;
                let universe: BTreeSet<String> = universe.into_iter().collect();
                updated
                    .into_iter()
                    .filter(|t| universe.contains(t))
                    .collect()
            }
            Intersection::SeedLua | Intersection::AdaptiveLua => {
                let (script, name) = if method == Intersection::SeedLua {
                    (&self.scripts.intersect_seed, "intersect_seed.lua")
                } else {
                    (&self.scripts.intersect_adaptive, "intersect_adaptive.lua")
                };
                script
                    .key(&updates)
                    .key(&universe)
                    .arg(since_ms)
                    .invoke_async(&mut self.connection())
                    .await
                    .map_err(|e| script_error(name, e))?
            }
        };
        let mut tickers: Vec<Ticker> = self.tickers(members).collect();
        tickers.sort_unstable();
        Ok(tickers)
    }

    async fn cleanup(
        &self,
        now_ms: i64,
        configured_retention_ms: i64,
        active: &[Timeframe],
    ) -> Result<CleanupReport, StoreError> {
        check_timestamp(now_ms)?;
        let effective = effective_retention_ms(configured_retention_ms, active);
        if effective > configured_retention_ms {
            tracing::warn!(
                configured_retention_ms,
                effective_retention_ms = effective,
                "retention raised to the longest bucket of an active timeframe, so cleanup cannot change a decision"
            );
        }
        let cutoff_ms = now_ms.saturating_sub(effective);
        let key = self.keys.updates();
        let mut report = CleanupReport {
            removed: 0,
            effective_retention_ms: effective,
            cutoff_ms,
            calls: 0,
            complete: false,
        };
        while report.calls < MAX_CLEANUP_CALLS_PER_RUN as u64 {
            let removed: u64 = self
                .scripts
                .cleanup_chunk
                .key(&key)
                .key(self.keys.update_sequence())
                .arg(cutoff_ms)
                .arg(CLEANUP_CHUNK)
                .invoke_async(&mut self.connection())
                .await
                .map_err(|e| script_error("cleanup_chunk.lua", e))?;
            report.calls += 1;
            report.removed += removed;
            if removed < CLEANUP_CHUNK as u64 {
                report.complete = true;
                break;
            }
        }
        Ok(report)
    }

    async fn dispatch_tickers(
        &self,
        now_ms: i64,
        requests: &[TickerDispatch],
    ) -> Result<Vec<Option<Dispatched>>, StoreError> {
        self.dispatch_tickers_impl(now_ms, requests).await
    }

    async fn dispatch_strategies(
        &self,
        now_ms: i64,
        requests: &[StrategyDispatch],
    ) -> Result<Vec<Option<JobRef>>, StoreError> {
        self.dispatch_strategies_impl(now_ms, requests).await
    }

    async fn complete_job(&self, job: JobRef, success: bool) -> Result<u64, StoreError> {
        self.complete_job_impl(job, success).await
    }

    async fn complete_jobs(&self, jobs: &[(JobRef, bool)]) -> Result<Vec<u64>, StoreError> {
        self.complete_jobs_impl(jobs).await
    }

    async fn ack_results(
        &self,
        entries: &[(StreamEntry, Option<String>)],
    ) -> Result<(), StoreError> {
        self.ack_results_impl(entries).await
    }

    async fn ensure_groups(&self) -> Result<(), StoreError> {
        self.ensure_groups_impl().await
    }

    async fn take_jobs(&self, consumer: &str, max: usize) -> Result<Vec<StreamEntry>, StoreError> {
        self.take_jobs_impl(consumer, max).await
    }

    async fn finish_job(&self, job_entry_id: &str, result_json: &str) -> Result<(), StoreError> {
        self.finish_job_impl(job_entry_id, result_json).await
    }

    async fn pending_jobs(&self, max: usize) -> Result<Vec<PendingJob>, StoreError> {
        self.pending_jobs_impl(max).await
    }

    async fn reap_job(&self, job: &PendingJob, max_deliveries: u64) -> Result<Reaped, StoreError> {
        self.reap_job_impl(job, max_deliveries).await
    }

    async fn finish_jobs(&self, jobs: &[(String, String)]) -> Result<(), StoreError> {
        self.finish_jobs_impl(jobs).await
    }

    async fn read_results(
        &self,
        consumer: &str,
        max: usize,
        pending: bool,
    ) -> Result<Vec<StreamEntry>, StoreError> {
        self.read_results_impl(consumer, max, pending).await
    }

    async fn ack_result(&self, entry: &StreamEntry, dead: Option<&str>) -> Result<(), StoreError> {
        self.ack_result_impl(entry, dead).await
    }

    async fn catalog_write(
        &self,
        id: StrategyId,
        json: Option<&str>,
        expected: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.catalog_write_impl(id, json, expected).await
    }

    async fn catalog_all(&self) -> Result<BTreeMap<StrategyId, String>, StoreError> {
        self.catalog_all_impl().await
    }

    async fn catalog_get(&self, ids: &[StrategyId]) -> Result<Vec<Option<String>>, StoreError> {
        self.catalog_get_impl(ids).await
    }

    async fn universes(
        &self,
        ids: &[StrategyId],
    ) -> Result<Vec<Option<BTreeSet<Ticker>>>, StoreError> {
        self.universes_impl(ids).await
    }

    async fn changes_since(&self, version: u64) -> Result<Changes, StoreError> {
        self.changes_since_impl(version).await
    }

    fn counters(&self) -> &StoreCounters {
        &self.counters
    }
}
