//! The data layer (DESIGN §2.3–2.7, §3): one [`Store`] trait, two implementations.
//!
//! - [`RedisStore`]: production, over `redis-rs` with a `ConnectionManager`; every
//!   read-then-write is one Lua script, so several engine instances never race.
//! - [`MemoryStore`]: the in-memory model, written to be obviously correct. It is the oracle
//!   the Redis path is tested against, never a stand-in for it.
//!
//! Time is always the caller's logical time, passed in (and into Lua as an argument); the
//! store never reads a clock, and no script calls Redis `TIME`.

mod keys;
mod memory;
mod redis;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

pub use self::keys::{CLUSTER_HASH_TAG, KeySpace, TRIGGER_BUCKET_FIELD};
pub use self::memory::{MemoryState, MemoryStore, TriggerState};
pub use self::redis::{RedisStore, RedisStoreConfig};
use crate::domain::{InputError, StrategyId, Ticker};
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
