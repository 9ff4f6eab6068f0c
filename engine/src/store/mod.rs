//! The data layer (DESIGN §2.3–2.7, §3): one [`Store`] trait, two implementations.
//!
//! - [`RedisStore`]: production, over `redis-rs` with a `ConnectionManager`; every
//!   read-then-write is one Lua script, so several engine instances never race.
//! - [`MemoryStore`]: the in-memory model, written to be obviously correct. It is the oracle
//!   the Redis path is tested against, never a stand-in for it.
//!
//! Time is always the caller's logical time, passed in (and into Lua as an argument); the
//! store never reads a clock, and no script calls Redis `TIME`.

mod groups;
mod keys;
mod memory;
mod memory_state;
mod redis;
mod redis_feed;
mod redis_service;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

pub use self::keys::{CLUSTER_HASH_TAG, KeySpace, TRIGGER_BUCKET_FIELD};
pub use self::memory::MemoryStore;
pub use self::memory_state::{MemoryState, TriggerState};
pub use self::redis::{RedisStore, RedisStoreConfig};
use crate::domain::{InputError, StrategyId, Ticker};
use crate::jobs::{JobMode, JobRef};
use crate::timeframe::{Bucket, Timeframe};

/// Default cap on a universe's size (DESIGN §2.7): larger lists are rejected whole.
pub const DEFAULT_MAX_UNIVERSE: usize = 50_000;

/// Default retention of ticker update times (the seed's 90 days); raised automatically to
/// the longest bucket of any active timeframe (see [`effective_retention_ms`]).
pub const DEFAULT_RETENTION_MS: i64 = 90 * 24 * 3_600_000;

/// Default time a trigger key outlives its bucket. It covers clock skew between engine
/// instances and a slow last tick of the bucket; an hour is generous for both.
pub const DEFAULT_TRIGGER_GRACE_MS: i64 = 3_600_000;

/// Members removed per cleanup call: a 1,000-member `ZREM` on a million-entry set takes
/// about a millisecond of Redis time, so no single call blocks other clients noticeably.
pub const CLEANUP_CHUNK: usize = 1_000;

/// Bound on the calls of one cleanup run: 10,000 × 1,000 = 10 million entries. A larger
/// backlog is left for the next run, which continues where this one stopped.
pub const MAX_CLEANUP_CALLS_PER_RUN: usize = 10_000;

/// Members per `ZADD` / `SADD` command when recording updates or writing a universe:
/// keeps each command's Redis time and argument buffer small.
pub const WRITE_CHUNK: usize = 1_000;

/// Dispatch scripts per pipeline: one round trip carries this many strategies' claims, and
/// the reply buffer stays a few hundred kilobytes.
pub const DISPATCH_BATCH: usize = 500;

/// Strategies per `dispatch.lua` call: a script call costs several times the few commands
/// it runs per strategy, so grouping cuts Redis time per job; 50 keeps one call's Redis time
/// around a millisecond, short enough not to delay other clients.
pub const DISPATCH_GROUP_STRATEGIES: usize = 50;

/// Tickers per `dispatch.lua` call beyond its first strategy: bounds one call's Redis time
/// when the strategies are large (a single larger strategy still gets a call of its own).
pub const DISPATCH_GROUP_TICKERS: usize = 5_000;

/// Approximate cap on the jobs, results and dead-letter streams (`MAXLEN ~`): about an hour
/// of jobs at the W-100k rate, far more than workers ever lag, and a few hundred MB at most.
pub const STREAM_MAXLEN: u64 = 1_000_000;

/// Change records kept for other instances (`TICKGATE:CHANGES`); an instance that falls
/// further behind than this reloads the whole catalog instead.
pub const MAX_CHANGE_RECORDS: u64 = 100_000;

/// Most changed tickers an incremental update read answers as a delta; beyond it (after a
/// long pause, say) the full read of the update set is no dearer, and is done instead.
pub const MAX_FEED_DELTA: u64 = 10_000;

/// The script that records ticker updates (`KEYS`: [`KeySpace::updates`],
/// [`KeySpace::update_sequence`], [`KeySpace::update_feed`]; `ARGV`: ts, ticker, ts,
/// ticker, …). A market-data writer that does not use this library must record updates
/// with it: a bare `ZADD GT` raises the time, but no reader's delta would see it.
pub const RECORD_SCRIPT: &str = include_str!("lua/record.lua");

/// Consumer group of the workers on the jobs stream.
pub const WORKER_GROUP: &str = "workers";
/// Consumer group of the engine instances on the results stream.
pub const ENGINE_GROUP: &str = "tickgate";

/// A per-ticker dispatch: claim `tickers` (sorted) for `(strategy, bucket)` and enqueue one
/// job for those newly claimed, atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickerDispatch {
    pub strategy: StrategyId,
    pub user_id: u64,
    pub bucket: Bucket,
    pub tickers: Vec<Ticker>,
}

/// What a per-ticker dispatch claimed, and the job it enqueued for that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatched {
    pub job: JobRef,
    pub tickers: Vec<Ticker>,
}

/// A whole-strategy dispatch (strategy-level mode, global strategies, missing universe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrategyDispatch {
    pub strategy: StrategyId,
    pub user_id: u64,
    pub bucket: Bucket,
    pub mode: JobMode,
    /// Sorted; empty means no symbol filter.
    pub symbols: Vec<Ticker>,
}

/// One stream entry: its id and its payload field (`None` if the field is missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    pub id: String,
    pub payload: Option<String>,
}

/// A job delivered to a worker and not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PendingJob {
    pub id: String,
    pub deliveries: u64,
}

/// What reaping a stale job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaped {
    /// It was no longer pending as seen (acknowledged, or reaped by another instance).
    Nothing,
    /// Re-enqueued as a new entry, for any worker to take.
    Redelivered,
    /// Moved to the dead-letter stream.
    Dead,
}

/// Strategies changed since a version (catalog entries or universes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// The version to ask from next time.
    pub version: u64,
    /// Strategies to reload.
    pub strategies: BTreeSet<StrategyId>,
    /// True when the change log cannot answer (Redis lost its state, or the caller fell
    /// more than [`MAX_CHANGE_RECORDS`] behind): reload everything.
    pub reload_all: bool,
    /// True when the version went backwards: Redis lost its state (restart, flush), so what
    /// the caller wrote must be restored.
    pub state_lost: bool,
}

/// Where a reader of the update set stands (see [`Store::read_updates`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedCursor {
    /// The epoch of the update set last read; `None` asks for a full read.
    pub epoch: Option<String>,
    /// Write sequence number of the last read: a delta holds the tickers written after it.
    pub seq: u64,
}

/// One read of the update set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRead {
    /// True: `updates` is every ticker updated at or after the requested `since_ms`.
    /// False: `updates` is every ticker written after the cursor, with its current time.
    pub full: bool,
    /// The cursor to read from next time.
    pub cursor: FeedCursor,
    pub updates: BTreeMap<Ticker, i64>,
}

/// Every failure of a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid input: {0}")]
    Input(#[from] InputError),
    #[error("cannot connect to Redis at {url}: {reason}")]
    Connection { url: String, reason: String },
    #[error("Redis did not answer {op} within the response timeout")]
    Timeout { op: &'static str },
    #[error("Redis connection lost during {op}: {reason}")]
    Disconnected { op: &'static str, reason: String },
    #[error("script {script} failed: {reason}")]
    Script {
        script: &'static str,
        reason: String,
    },
    #[error("Redis rejected {op}: {reason}")]
    Redis { op: &'static str, reason: String },
}

/// How step 3 of a tick (DESIGN §2.3) is computed for one strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Intersection {
    /// Universe and updated set fetched (one round trip), intersected in process.
    ClientSide,
    /// The original Go backend's Lua script: the baseline.
    SeedLua,
    /// Lua iterating the smaller side in chunks.
    AdaptiveLua,
}

/// What one cleanup run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupReport {
    /// Entries removed from the update set.
    pub removed: u64,
    /// Retention actually applied: the configured one, or longer (see [`effective_retention_ms`]).
    pub effective_retention_ms: i64,
    /// Entries with a score below this were removed.
    pub cutoff_ms: i64,
    /// Redis calls made (each bounded by [`CLEANUP_CHUNK`]).
    pub calls: u64,
    /// False when the run stopped at [`MAX_CLEANUP_CALLS_PER_RUN`] with work left.
    pub complete: bool,
}

/// Counters a store keeps about itself; the service exports them (DESIGN §2.9).
#[derive(Debug, Default)]
pub struct StoreCounters {
    /// Intersections answered by a Lua script.
    pub lua_intersections: AtomicU64,
    /// Script failures answered client-side instead.
    pub lua_fallbacks: AtomicU64,
    /// Members read from Redis that are not valid tickers (written by someone else); skipped.
    pub invalid_stored_members: AtomicU64,
    /// Round trips to Redis (a pipeline is one).
    pub round_trips: AtomicU64,
}

impl StoreCounters {
    pub(crate) fn bump(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The retention cleanup must apply: `max(configured, longest bucket of any active
/// timeframe)`. With it, cleanup can never change a decision (DESIGN §2.6): every entry it
/// removes is older than the start of every current and future bucket.
pub fn effective_retention_ms(configured_ms: i64, active: &[Timeframe]) -> i64 {
    active
        .iter()
        .map(Timeframe::max_bucket_ms)
        .fold(configured_ms, i64::max)
}

/// The data operations of DESIGN §2.3–2.7. Both implementations have identical observable
/// behaviour; `tests/store_model.rs` checks that after every step of random sequences.
pub trait Store: Send + Sync {
    /// Records `(ticker, ts_ms)` updates; a ticker's time never moves backwards (`ZADD GT`).
    /// All inputs are validated first: one bad ticker or timestamp rejects the whole batch
    /// and nothing is written.
    fn record_updates<S: AsRef<str> + Sync>(
        &self,
        updates: &[(S, i64)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Tickers whose last update is at or after `since_ms`, with their update times.
    fn updated_since(
        &self,
        since_ms: i64,
    ) -> impl Future<Output = Result<BTreeMap<Ticker, i64>, StoreError>> + Send;

    /// Reads the update set from `cursor`: the tickers written since (a delta), or, when the
    /// cursor has no epoch, belongs to another incarnation of the update set (Redis lost
    /// it), or is more than [`MAX_FEED_DELTA`] changes behind, every ticker updated at or
    /// after `since_ms` (a full read). `new_epoch` names the update set if it has no epoch
    /// yet; it must be unique to this reader and read. Cost: proportional to the change.
    fn read_updates(
        &self,
        cursor: &FeedCursor,
        since_ms: i64,
        new_epoch: &str,
    ) -> impl Future<Output = Result<FeedRead, StoreError>> + Send;

    /// Number of tickers in the update set (`ZCARD`).
    fn tracked_tickers(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The strategy's universe, or `None` when Redis has none (never written, or lost).
    fn universe(
        &self,
        id: StrategyId,
    ) -> impl Future<Output = Result<Option<BTreeSet<Ticker>>, StoreError>> + Send;

    /// Size of the strategy's universe (0 when missing).
    fn universe_size(&self, id: StrategyId)
    -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Replaces the universe atomically: readers see the old set or the new one, never an
    /// empty or partial one. Rejects (writing nothing) an invalid ticker, an empty list or
    /// one above `max_universe`. Returns the size written (duplicates collapse).
    fn replace_universe<S: AsRef<str> + Sync>(
        &self,
        id: StrategyId,
        tickers: &[S],
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Atomically claims `tickers` for `(id, bucket)`; returns those newly claimed (in input
    /// order, each once). A claim for a bucket that ended before the newest bucket claimed
    /// for `id` claims nothing. The trigger state expires `grace` after `bucket.end_ms`,
    /// counted from the logical `now_ms`.
    fn claim(
        &self,
        id: StrategyId,
        bucket: Bucket,
        now_ms: i64,
        tickers: &[Ticker],
    ) -> impl Future<Output = Result<Vec<Ticker>, StoreError>> + Send;

    /// Releases the claims of a failed run (only those made for `bucket`); returns how many.
    fn release(
        &self,
        id: StrategyId,
        bucket: Bucket,
        tickers: &[Ticker],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Claims a whole-strategy run for `bucket` (strategy-level and global mode): true at
    /// most once per bucket, same staleness and expiry rules as [`Store::claim`].
    fn claim_strategy(
        &self,
        id: StrategyId,
        bucket: Bucket,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Releases a whole-strategy claim of `bucket`; true if there was one.
    fn release_strategy(
        &self,
        id: StrategyId,
        bucket: Bucket,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Step 3 of a tick: the strategy's universe tickers updated at or after `since_ms`,
    /// sorted. Script methods report script failures as [`StoreError::Script`]; see
    /// [`intersect_or_fall_back`].
    fn intersect(
        &self,
        id: StrategyId,
        since_ms: i64,
        method: Intersection,
    ) -> impl Future<Output = Result<Vec<Ticker>, StoreError>> + Send;

    /// Removes update entries older than `now_ms - effective retention`, in bounded chunks.
    fn cleanup(
        &self,
        now_ms: i64,
        configured_retention_ms: i64,
        active: &[Timeframe],
    ) -> impl Future<Output = Result<CleanupReport, StoreError>> + Send;

    /// Step 5 of a tick for many strategies at once (batched): per request, atomically
    /// claim its tickers and enqueue one job for those newly claimed. `None` where nothing
    /// was newly claimed (no job).
    fn dispatch_tickers(
        &self,
        now_ms: i64,
        requests: &[TickerDispatch],
    ) -> impl Future<Output = Result<Vec<Option<Dispatched>>, StoreError>> + Send;

    /// Whole-strategy dispatches, batched; `None` where the bucket already ran (or is stale).
    fn dispatch_strategies(
        &self,
        now_ms: i64,
        requests: &[StrategyDispatch],
    ) -> impl Future<Output = Result<Vec<Option<JobRef>>, StoreError>> + Send;

    /// Settles a job with its worker's verdict: forgets it, and on failure releases exactly
    /// its claims still held for its bucket. Idempotent. Returns the claims released.
    fn complete_job(
        &self,
        job: JobRef,
        success: bool,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// [`Store::complete_job`] for many jobs, in order (batched where the store can).
    fn complete_jobs(
        &self,
        jobs: &[(JobRef, bool)],
    ) -> impl Future<Output = Result<Vec<u64>, StoreError>> + Send {
        async move {
            let mut released = Vec::with_capacity(jobs.len());
            for (job, success) in jobs {
                released.push(self.complete_job(*job, *success).await?);
            }
            Ok(released)
        }
    }

    /// Creates the consumer groups (workers on jobs, engines on results) if missing.
    fn ensure_groups(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Worker side: up to `max` new jobs for `consumer` (used by test and simulated workers).
    fn take_jobs(
        &self,
        consumer: &str,
        max: usize,
    ) -> impl Future<Output = Result<Vec<StreamEntry>, StoreError>> + Send;

    /// Worker side: acknowledges a job and publishes its result in one step.
    fn finish_job(
        &self,
        job_entry_id: &str,
        result_json: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Worker side: [`Store::finish_job`] for many jobs, in order, batched.
    fn finish_jobs(
        &self,
        jobs: &[(String, String)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Engine side: up to `max` jobs that workers took and have not acknowledged, with how
    /// many times each was delivered.
    fn pending_jobs(
        &self,
        max: usize,
    ) -> impl Future<Output = Result<Vec<PendingJob>, StoreError>> + Send;

    /// Engine side: re-delivers a stale job as a new entry, or dead-letters it after
    /// `max_deliveries`; only if it is still pending with `job.deliveries` (so concurrent
    /// engine instances reap each stale delivery once).
    fn reap_job(
        &self,
        job: &PendingJob,
        max_deliveries: u64,
    ) -> impl Future<Output = Result<Reaped, StoreError>> + Send;

    /// Engine side: up to `max` results for `consumer`; with `pending`, those delivered to
    /// it before and not acknowledged (after a crash), else new ones.
    fn read_results(
        &self,
        consumer: &str,
        max: usize,
        pending: bool,
    ) -> impl Future<Output = Result<Vec<StreamEntry>, StoreError>> + Send;

    /// Acknowledges a result; with `dead` = `Some(reason)` it is first copied to the
    /// dead-letter stream with the reason.
    fn ack_result(
        &self,
        entry: &StreamEntry,
        dead: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// [`Store::ack_result`] for many entries, in order (batched where the store can).
    fn ack_results(
        &self,
        entries: &[(StreamEntry, Option<String>)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            for (entry, dead) in entries {
                self.ack_result(entry, dead.as_deref()).await?;
            }
            Ok(())
        }
    }

    /// Writes (or with `None` removes) a catalog entry and records the change. With
    /// `expected`, only if the entry is currently exactly that (compare and swap); returns
    /// whether it wrote.
    fn catalog_write(
        &self,
        id: StrategyId,
        json: Option<&str>,
        expected: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The whole catalog (id → JSON), read in bounded pages.
    fn catalog_all(
        &self,
    ) -> impl Future<Output = Result<BTreeMap<StrategyId, String>, StoreError>> + Send;

    /// Catalog entries of `ids` (None where absent).
    fn catalog_get(
        &self,
        ids: &[StrategyId],
    ) -> impl Future<Output = Result<Vec<Option<String>>, StoreError>> + Send;

    /// Universes of `ids` (None where missing), in one round trip per bounded batch.
    fn universes(
        &self,
        ids: &[StrategyId],
    ) -> impl Future<Output = Result<Vec<Option<BTreeSet<Ticker>>>, StoreError>> + Send;

    /// Strategies whose catalog entry or universe changed after `version`.
    fn changes_since(
        &self,
        version: u64,
    ) -> impl Future<Output = Result<Changes, StoreError>> + Send;

    /// The store's own counters.
    fn counters(&self) -> &StoreCounters;
}

/// Intersects with `method`; a failing script is answered client-side instead and counted
/// in `lua_fallbacks` (DESIGN §2.5). Non-script errors (Redis down) are returned as is.
pub async fn intersect_or_fall_back<S: Store>(
    store: &S,
    id: StrategyId,
    since_ms: i64,
    method: Intersection,
) -> Result<Vec<Ticker>, StoreError> {
    match store.intersect(id, since_ms, method).await {
        Err(StoreError::Script { script, reason }) => {
            tracing::warn!(strategy = id, script, %reason, "Lua intersection failed; falling back to client-side");
            StoreCounters::bump(&store.counters().lua_fallbacks, 1);
            store
                .intersect(id, since_ms, Intersection::ClientSide)
                .await
        }
        Ok(tickers) => {
            if method != Intersection::ClientSide {
                StoreCounters::bump(&store.counters().lua_intersections, 1);
            }
            Ok(tickers)
        }
        other => other,
    }
}

/// Validates a batch of updates and de-duplicates it, keeping each ticker's latest time
/// (what `ZADD GT` would keep). Shared by both stores so they reject identically.
pub(crate) fn validate_updates<S: AsRef<str>>(
    updates: &[(S, i64)],
) -> Result<BTreeMap<Ticker, i64>, InputError> {
    let mut latest = BTreeMap::new();
    for (raw, ts_ms) in updates {
        let ticker = Ticker::parse(raw.as_ref())?;
        let ts_ms = crate::domain::check_timestamp(*ts_ms)?;
        let slot = latest.entry(ticker).or_insert(ts_ms);
        *slot = (*slot).max(ts_ms);
    }
    Ok(latest)
}

/// Validates a universe: every ticker valid, not empty, at most `max` distinct tickers.
pub(crate) fn validate_universe<S: AsRef<str>>(
    id: StrategyId,
    tickers: &[S],
    max: usize,
) -> Result<BTreeSet<Ticker>, InputError> {
    let set: BTreeSet<Ticker> = crate::domain::parse_tickers(tickers)?.into_iter().collect();
    if set.is_empty() {
        return Err(InputError::EmptyUniverse { strategy: id });
    }
    if set.len() > max {
        return Err(InputError::UniverseTooLarge {
            strategy: id,
            size: set.len(),
            max,
        });
    }
    Ok(set)
}

/// Checks a bucket handed to claim/release: both ends valid instants, start before end.
pub(crate) fn check_bucket(bucket: Bucket) -> Result<Bucket, InputError> {
    crate::domain::check_timestamp(bucket.start_ms)?;
    crate::domain::check_timestamp(bucket.end_ms)?;
    if bucket.start_ms >= bucket.end_ms {
        return Err(InputError::Setting {
            name: "bucket",
            value: format!("[{}, {})", bucket.start_ms, bucket.end_ms),
            rule: "start must be before end",
        });
    }
    Ok(bucket)
}

/// Milliseconds a trigger key must live, counted from logical `now_ms`.
pub(crate) fn trigger_ttl_ms(bucket: Bucket, now_ms: i64, grace_ms: i64) -> i64 {
    (bucket.end_ms - now_ms).max(0) + grace_ms
}
