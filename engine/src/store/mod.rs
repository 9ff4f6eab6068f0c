//! The data layer (DESIGN §2.3–2.8, §3), split by role. Each role is a trait; [`Store`] is
//! all of them, which is what the engine needs. Workers need only [`WorkerSide`].
//!
//! | role | trait | what |
//! |---|---|---|
//! | updates | [`Updates`] | record ticker updates, read what changed since a cursor |
//! | universes | [`Universes`] | read, replace and intersect strategy universes |
//! | dispatch | [`Dispatch`] | claim + job, atomically, batched |
//! | settlement | [`Settlement`] | results in, releases, re-delivery, dead letters, stream trimming |
//! | catalog | [`Catalog`] | strategy entries and the change log |
//! | maintenance | [`Maintenance`] | retention cleanup |
//! | worker side | [`WorkerSide`] | take jobs, post results (test and simulated workers) |
//!
//! Two implementations: [`RedisStore`] (production, one file per role under `redis/`, each
//! script behind a typed wrapper in [`scripts`]) and [`ModelStore`] (the in-memory model,
//! written to be obviously correct: the oracle the Redis path is tested against, never a
//! stand-in for it). Time is always the caller's logical time, passed in (and into Lua as an
//! argument); the store never reads a clock, and no script calls Redis `TIME`.

mod input;
mod keys;
mod model;
mod redis;
pub mod scripts;
mod streams;
mod universe_writes;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

pub use self::input::intersect_or_fall_back;
pub(crate) use self::input::{check_bucket, trigger_ttl_ms, validate_universe, validate_updates};
pub use self::keys::{CLUSTER_HASH_TAG, KeySpace, TRIGGER_BUCKET_FIELD};
pub use self::model::{Delivery, ModelState, ModelStore, ReplacedTriggers, TriggerState};
pub use self::redis::{RedisStore, RedisStoreConfig};
pub use self::scripts::{CATALOG_WRITE_SCRIPT, RECORD_SCRIPT};
pub use self::streams::{
    Ack, JobStatus, PendingJob, PendingResult, Reaped, SettleOutcome, Settled, StreamEntry,
    StreamsReport, TakenResults, Verdict,
};
pub use self::universe_writes::{CatalogUniverse, PersistWrite, Persisted, Restore, UniverseWrite};
use crate::core::calendar::{Bucket, Timeframe};
use crate::core::jobs::{JobMode, JobRef};
use crate::core::ledger::WriteBack;
use crate::core::ticker::{InputError, StrategyId, Ticker};

/// Consumer group of the workers on the jobs stream.
pub const WORKER_GROUP: &str = "workers";
/// Consumer group of the engine instances on the results stream.
pub const ENGINE_GROUP: &str = "tickgate";

/// A strategy's universe as Redis holds it: `None` when missing.
pub type StoredUniverse = Result<Option<BTreeSet<Ticker>>, DamagedKey>;

/// A per-ticker dispatch: claim `tickers` (sorted) for `(strategy, bucket)` and enqueue one
/// job for those newly claimed, atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickerDispatch {
    pub strategy: StrategyId,
    /// Copied into the job, for the workers.
    pub user_id: u64,
    pub bucket: Bucket,
    pub tickers: Vec<Ticker>,
}

/// What a per-ticker dispatch claimed, and the job it enqueued for that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatched {
    pub job: JobRef,
    /// The tickers newly claimed (in request order): the job's symbols.
    pub tickers: Vec<Ticker>,
}

/// What one per-ticker dispatch did: the job and the tickers it claimed, `None` when nothing
/// was newly claimed, or the damaged key that made the strategy skip.
pub type DispatchOutcome = Result<Option<Dispatched>, DamagedKey>;

/// A key of one strategy that holds the wrong type (someone else wrote it): that strategy is
/// skipped and everyone else goes on (DESIGN §2.3, Isolation). Nothing is written to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key {key} of strategy {strategy} holds a {found}, not a {expected}")]
pub struct DamagedKey {
    pub strategy: StrategyId,
    pub key: String,
    /// The Redis type the key must have.
    pub expected: &'static str,
    /// The Redis type it has (`TYPE`).
    pub found: String,
}

/// A whole-strategy dispatch (strategy-level mode, global strategies, missing universe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrategyDispatch {
    pub strategy: StrategyId,
    /// Copied into the job, for the workers.
    pub user_id: u64,
    pub bucket: Bucket,
    pub mode: JobMode,
    /// Sorted; empty means no symbol filter.
    pub symbols: Vec<Ticker>,
}

/// What one whole-strategy dispatch did: the job, `None` when the bucket already ran (or is
/// stale), or the damaged run key that made the strategy skip.
pub type RunOutcome = Result<Option<JobRef>, DamagedKey>;

/// Strategies changed since a version (catalog entries or universes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// The version to ask from next time.
    pub version: u64,
    /// Strategies to reload, each with the version of its latest change (a writer skips
    /// its own).
    pub strategies: BTreeMap<StrategyId, u64>,
    /// True when the change log cannot answer (Redis lost its state, or the caller fell
    /// more than [`crate::limits::CHANGE_RECORDS_MAX`] behind): reload everything.
    pub reload_all: bool,
    /// True when the version went backwards: Redis lost its state (restart, flush), so what
    /// the caller wrote must be restored.
    pub state_lost: bool,
    /// Fields in the catalog hash (`HLEN`), read with the change log: a change of it that
    /// the change log does not explain is a writer bypassing it (a direct `HSET` of a new
    /// entry, a direct `HDEL`).
    pub catalog_fields: u64,
    /// The epoch of the update set (see [`FeedCursor`]), read with the change log: another
    /// one than the caller last read means Redis lost its state, even if writers have
    /// pushed the new version past the caller's.
    pub feed_epoch: Option<String>,
}

/// One page of a catalog scan (see [`Catalog::catalog_page`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogPage {
    /// Where the scan goes on; 0 when it is complete.
    pub next: u64,
    /// Entries of the page: strategy id and JSON (fields that are not ids are left out).
    pub entries: Vec<(StrategyId, String)>,
}

/// Where a reader of the update set stands (see [`Updates::read_updates`]).
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
    /// Ticker → its last update ms (`TICK:UPD`).
    pub updates: BTreeMap<Ticker, i64>,
    /// Ticker → its latest update ms in an earlier minute than its last (`TICK:PRE`), for
    /// the tickers of `updates` that have one: what a closing pass needs (DESIGN §2.3).
    pub before: BTreeMap<Ticker, i64>,
}

/// Every failure of a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid input: {0}")]
    Input(#[from] InputError),
    #[error("cannot connect to Redis at {url}: {reason}")]
    Connection { url: String, reason: String },
    /// The password is never part of the message (nor of `url`, which is redacted).
    #[error(
        "Redis at {url} refused the credentials of user {user:?} (wrong password, or the ACL user is disabled or missing)"
    )]
    Auth { url: String, user: String },
    #[error("TLS file {}: {reason}", path.display())]
    TlsFile {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("Redis did not answer {op} within the response timeout")]
    Timeout { op: &'static str },
    #[error("Redis connection lost during {op}: {reason}")]
    Disconnected { op: &'static str, reason: String },
    #[error("script {script} failed: {reason}")]
    Script {
        script: &'static str,
        reason: String,
    },
    #[error(transparent)]
    Damaged(#[from] DamagedKey),
    #[error("Redis rejected {op}: {reason}")]
    Redis { op: &'static str, reason: String },
    #[error(
        "{count} dead letter(s) not written (first: result {result_id}: {reason}); those results stay pending"
    )]
    DeadLetters {
        count: usize,
        result_id: String,
        reason: String,
    },
}

/// How step 3 of a tick (DESIGN §2.3) is computed for one strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Intersection {
    /// Universe and updated set fetched (one round trip), intersected in process.
    ClientSide,
    /// Lua iterating the smaller side in chunks (`intersect_adaptive.lua`).
    AdaptiveLua,
}

/// What one cleanup run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupReport {
    /// Entries removed from the update set.
    pub removed: u64,
    /// Retention actually applied: the configured one, or longer (see
    /// [`crate::core::retention::effective_retention_ms`]).
    pub effective_retention_ms: i64,
    /// Entries with a score below this were removed.
    pub cutoff_ms: i64,
    /// Redis calls made (each bounded by [`crate::limits::CLEANUP_CHUNK_MEMBERS`]).
    pub calls: u64,
    /// False when the run stopped at [`crate::limits::CLEANUP_CALLS_PER_RUN_MAX`] with work
    /// left.
    pub complete: bool,
}

/// Counters a store keeps about itself; the engine exports them (DESIGN §2.9).
#[derive(Debug, Default)]
pub struct StoreCounters {
    /// Intersections answered by a Lua script.
    pub lua_intersections: AtomicU64,
    /// Script failures answered client-side instead.
    pub lua_fallbacks: AtomicU64,
    /// Members read from Redis that are not valid tickers (written by someone else); skipped.
    pub invalid_stored_members: AtomicU64,
    /// Update times read from Redis that are not whole milliseconds of a supported instant
    /// (a direct writer's fractional or huge score): that ticker is skipped, the others
    /// are read (DESIGN §2.3, isolation).
    pub invalid_scores: AtomicU64,
    /// Round trips to Redis (a pipeline is one).
    pub round_trips: AtomicU64,
}

impl StoreCounters {
    pub(crate) fn bump(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The update set (`TICK:UPD` and its write sequence).
pub trait Updates: Send + Sync {
    /// Records `(ticker, ts_ms)` updates at the caller's time `now_ms`; a ticker's time
    /// never moves backwards (`ZADD GT`). All inputs are validated first: one bad ticker or
    /// timestamp — or one more than the store's `max_future_ms` ahead of `now_ms`
    /// ([`InputError::FutureTimestamp`], DESIGN §2.3) — rejects the whole batch and nothing
    /// is written.
    fn record_updates<S: AsRef<str> + Sync>(
        &self,
        now_ms: i64,
        updates: &[(S, i64)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Reads the update set from `cursor`: the tickers written since, plus every ticker
    /// whose time is at or after `recent_ms` (a delta: the second part is how a direct
    /// `ZADD` writer, which takes no sequence number, is seen), or, when the cursor has no
    /// epoch, belongs to another incarnation of the update set (Redis lost it), or is more
    /// than [`crate::limits::FEED_DELTA_MAX`] changes behind, every ticker updated at or
    /// after `since_ms` (a full read). `new_epoch` names the update set if it has no epoch
    /// yet; it must be unique to this reader and read. Cost: proportional to the change.
    fn read_updates(
        &self,
        cursor: &FeedCursor,
        since_ms: i64,
        recent_ms: i64,
        new_epoch: &str,
    ) -> impl Future<Output = Result<FeedRead, StoreError>> + Send;

    /// Number of tickers in the update set (`ZCARD`).
    fn tracked_tickers(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// Strategy universes (`STRAT:<id>:UNIV`).
pub trait Universes: Send + Sync {
    /// Universes of `ids` (None where missing, [`DamagedKey`] where the key is not a set),
    /// in one round trip per bounded batch.
    fn universes(
        &self,
        ids: &[StrategyId],
    ) -> impl Future<Output = Result<Vec<StoredUniverse>, StoreError>> + Send;

    /// Sizes of the universes of `ids` (0 where missing, `None` where the key is not a
    /// set), one round trip per bounded batch: a cheap check of a universe against what
    /// the engine holds.
    fn universe_sizes(
        &self,
        ids: &[StrategyId],
    ) -> impl Future<Output = Result<Vec<Option<u64>>, StoreError>> + Send;

    /// Replaces the universe atomically: readers see the old set or the new one, never an
    /// empty or partial one. Rejects (writing nothing) an invalid ticker, an empty list or
    /// one above `max_universe`. Returns the size written (duplicates collapse).
    fn replace_universe<S: AsRef<str> + Sync>(
        &self,
        id: StrategyId,
        tickers: &[S],
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Replaces the universe with its catalog entry's (a catalog write wins over an older
    /// discovery, DESIGN §2.3 step 2) and records `base` (the digest of that catalog
    /// universe) as what the Redis universe reflects, atomically. Validates like
    /// [`Universes::replace_universe`]; writes nothing to a key of another type
    /// ([`StoreError::Damaged`]).
    fn replace_universe_from_catalog<S: AsRef<str> + Sync>(
        &self,
        id: StrategyId,
        tickers: &[S],
        base: &str,
    ) -> impl Future<Output = Result<UniverseWrite, StoreError>> + Send;

    /// A catalog write whose universe has no valid ticker (a missing universe): removes the
    /// Redis universe and records `base` (the digest of the empty set), atomically, so that
    /// only a discovery made after it counts as newer (DESIGN §2.3 step 2: the newest write
    /// wins). `Unchanged` when there was no universe; writes nothing to a key of another
    /// type ([`StoreError::Damaged`]).
    fn clear_universe_from_catalog(
        &self,
        id: StrategyId,
        base: &str,
    ) -> impl Future<Output = Result<UniverseWrite, StoreError>> + Send;

    /// [`Universes::replace_universe_from_catalog`] (or, for an empty list,
    /// [`Universes::clear_universe_from_catalog`]) for many strategies, pipelined: a start
    /// takes in every universe of the catalog, and one round trip each would make it last
    /// minutes at W-100k. One answer per write, in order.
    fn replace_universes_from_catalog(
        &self,
        writes: &[CatalogUniverse<'_>],
    ) -> impl Future<Output = Result<Vec<Result<UniverseWrite, StoreError>>, StoreError>> + Send;

    /// The digests recorded by [`Universes::replace_universe_from_catalog`] (and by
    /// persisted discoveries) for `ids`, `None` where there is none.
    fn universe_bases(
        &self,
        ids: &[StrategyId],
    ) -> impl Future<Output = Result<Vec<Option<String>>, StoreError>> + Send;

    /// Step 3 of a tick: the strategy's universe tickers updated at or after `since_ms`,
    /// sorted. Script methods report script failures as [`StoreError::Script`]; see
    /// [`intersect_or_fall_back`]. A universe key of the wrong type is
    /// [`StoreError::Damaged`].
    fn intersect(
        &self,
        id: StrategyId,
        since_ms: i64,
        method: Intersection,
    ) -> impl Future<Output = Result<Vec<Ticker>, StoreError>> + Send;
}

/// Step 5 of a tick: claims and jobs, atomically together.
pub trait Dispatch: Send + Sync {
    /// Per request, atomically claim its tickers and enqueue one job for those newly
    /// claimed (batched). `None` where nothing was newly claimed (no job); a
    /// [`DamagedKey`] where the strategy's trigger key is not a hash (that strategy claims
    /// nothing, the others go on). A claim for a bucket that ended before the newest bucket
    /// claimed for the strategy claims nothing. Trigger state expires the grace after
    /// `bucket.end_ms`, counted from `now_ms`.
    fn dispatch_tickers(
        &self,
        now_ms: i64,
        requests: &[TickerDispatch],
    ) -> impl Future<Output = Result<Vec<DispatchOutcome>, StoreError>> + Send;

    /// Whole-strategy dispatches, batched; `None` where the bucket already ran (or is stale),
    /// a [`DamagedKey`] where the run key is not a string (that strategy runs nothing).
    fn dispatch_strategies(
        &self,
        now_ms: i64,
        requests: &[StrategyDispatch],
    ) -> impl Future<Output = Result<Vec<RunOutcome>, StoreError>> + Send;

    /// Writes back the claims one instance made in open buckets, after Redis lost them
    /// (DESIGN §9), without jobs: per-ticker claims by the claim rule (what is claimed
    /// already stays), whole runs where none is recorded. Returns the claims written.
    fn restore_claims(
        &self,
        now_ms: i64,
        back: &WriteBack,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// The engine's side of the jobs and results streams.
pub trait Settlement: Send + Sync {
    /// Creates the consumer groups (workers on jobs, engines on results) if missing.
    fn ensure_groups(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Up to `max` results for `consumer`; with `pending`, those delivered to it before and
    /// not acknowledged (after a crash), else new ones.
    fn read_results(
        &self,
        consumer: &str,
        max: usize,
        pending: bool,
    ) -> impl Future<Output = Result<Vec<StreamEntry>, StoreError>> + Send;

    /// Settles jobs with their workers' verdicts, in order: each open job is forgotten and,
    /// on failure, exactly its claims still held for its bucket are released. A job settles
    /// only itself, however late its result (its record names its bucket). Idempotent.
    /// Returns, per job, whether it was open, gone or never issued, and the claims released;
    /// a [`DamagedKey`] where the key the job lives in holds another type (nothing written).
    fn complete_jobs(
        &self,
        jobs: &[(JobRef, Verdict)],
    ) -> impl Future<Output = Result<Vec<SettleOutcome>, StoreError>> + Send;

    /// Acknowledges result entries, in order, each dead-lettered first if so asked. An entry
    /// whose dead letter cannot be written stays pending (the others are acknowledged), and
    /// the call answers [`StoreError::DeadLetters`].
    fn ack_results(&self, acks: &[Ack]) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Trims the jobs and results streams, only below the oldest entry any consumer group
    /// still needs (pending, or not yet delivered): streams never lose unread work (DESIGN
    /// §2.8). Bounded work per call. Reports the workers' backlog, for backpressure.
    fn trim_streams(&self) -> impl Future<Output = Result<StreamsReport, StoreError>> + Send;

    /// Up to `max` jobs that workers took and have not acknowledged, with how many times
    /// each was delivered.
    fn pending_jobs(
        &self,
        max: usize,
    ) -> impl Future<Output = Result<Vec<PendingJob>, StoreError>> + Send;

    /// Up to `max` results delivered to engine instances other than `consumer` and not
    /// acknowledged, oldest first: candidates for [`Settlement::take_results`].
    fn pending_results(
        &self,
        consumer: &str,
        max: usize,
    ) -> impl Future<Output = Result<Vec<PendingResult>, StoreError>> + Send;

    /// Makes orphaned results `consumer`'s — each only if it is still pending as seen (with
    /// the same consumer and delivery count), so of two instances taking over at once only
    /// one gets it — and returns them to settle; then deletes from the group every consumer
    /// they came from, and every consumer in `forget`, that has nothing pending any more.
    fn take_results(
        &self,
        consumer: &str,
        orphans: &[PendingResult],
        forget: &[&str],
    ) -> impl Future<Output = Result<TakenResults, StoreError>> + Send;

    /// Re-delivers a stale job as a new entry, or dead-letters it after `max_deliveries`
    /// and settles it as failed (its claims are released, DESIGN §2.8); only if it is still
    /// pending with `job.deliveries` (so concurrent engine instances reap each stale
    /// delivery once).
    fn reap_job(
        &self,
        job: &PendingJob,
        max_deliveries: u64,
    ) -> impl Future<Output = Result<Reaped, StoreError>> + Send;
}

/// The strategy catalog (`STRAT:CATALOG`) and its change log.
pub trait Catalog: Send + Sync {
    /// Writes (or with `None` removes) a catalog entry and records the change. With
    /// `expected`, only if the entry is currently exactly that (compare and swap); returns
    /// whether it wrote.
    fn catalog_write(
        &self,
        id: StrategyId,
        json: Option<&str>,
        expected: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// One page of a scan of the catalog from `cursor` (0 starts a scan): about `count`
    /// entries, and the cursor to continue from — 0 once the scan has visited every entry
    /// present throughout it (an entry may come twice, one written meanwhile may not come).
    fn catalog_page(
        &self,
        cursor: u64,
        count: usize,
    ) -> impl Future<Output = Result<CatalogPage, StoreError>> + Send;

    /// The ids of every catalog entry: what a writer bypassing the change log added or
    /// removed. One reply of the whole id list (`HKEYS`): only for that rare case.
    fn catalog_ids(&self) -> impl Future<Output = Result<BTreeSet<StrategyId>, StoreError>> + Send;

    /// The whole catalog (id → JSON), read in bounded pages.
    fn catalog_all(
        &self,
    ) -> impl Future<Output = Result<BTreeMap<StrategyId, String>, StoreError>> + Send;

    /// Catalog entries of `ids` (None where absent).
    fn catalog_get(
        &self,
        ids: &[StrategyId],
    ) -> impl Future<Output = Result<Vec<Option<String>>, StoreError>> + Send;

    /// Writes a discovered universe into its catalog entry, with its base, unless a newer
    /// write has superseded it; the entry must still be `write.expected`.
    fn persist_universe(
        &self,
        id: StrategyId,
        write: &PersistWrite<'_>,
    ) -> impl Future<Output = Result<Persisted, StoreError>> + Send;

    /// After Redis lost its state: writes back a strategy's entry and, if its universe key
    /// is missing, its universe and base — only if the catalog has no entry for `id` and
    /// the change log does not name it (nothing written or removed since the loss).
    /// Returns whether the entry was written.
    fn restore_strategy(
        &self,
        id: StrategyId,
        restore: &Restore<'_>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Strategies whose catalog entry or universe changed after `version`.
    fn changes_since(
        &self,
        version: u64,
    ) -> impl Future<Output = Result<Changes, StoreError>> + Send;
}

/// Retention cleanup (DESIGN §2.6).
pub trait Maintenance: Send + Sync {
    /// Removes update entries older than `now_ms - effective retention`, in bounded chunks.
    fn cleanup(
        &self,
        now_ms: i64,
        configured_retention_ms: i64,
        active: &[Timeframe],
    ) -> impl Future<Output = Result<CleanupReport, StoreError>> + Send;

    /// The store's own clock (Redis `TIME`), in ms, or `None` for a store without one (the
    /// model). Only ever compared with the engine's clock (the skew check of
    /// [`crate::runtime::AlertService`]), never used for a decision: expiries run on this
    /// clock, and trigger hashes expire early when an instance's clock is ahead of it.
    fn server_time_ms(&self) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;
}

/// Everything the engine needs.
pub trait Store: Updates + Universes + Dispatch + Settlement + Catalog + Maintenance {
    /// The store's own counters.
    fn counters(&self) -> &StoreCounters;
}

/// A worker's side of the streams (DESIGN §2.8): what the test and simulated workers use;
/// the engine never does.
pub trait WorkerSide: Send + Sync {
    /// Up to `max` new jobs for `consumer`.
    fn take_jobs(
        &self,
        consumer: &str,
        max: usize,
    ) -> impl Future<Output = Result<Vec<StreamEntry>, StoreError>> + Send;

    /// Acknowledges jobs and publishes their results, in order (job entry id, result JSON);
    /// each acknowledgement is atomic with its result.
    fn finish_jobs(
        &self,
        jobs: &[(String, String)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
