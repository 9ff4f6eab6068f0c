//! The seed-faithful tick: the original Go backend's per-ticker algorithm *with the
//! original's concurrency*, replayed against the same Redis as tickgate, so that every
//! speed-up is a ratio measured in the same run (DESIGN §6). Making it slower than the
//! original (serial) or faster (pipelined, batched) would make the ratio meaningless.
//!
//! For each active strategy at logical time `now_ms`, with `b = bucket(now, timeframe)`,
//! four commands, each one awaited round trip, in this order:
//! 1. `ZRANGEBYSCORE TICK:UPD b.start +inf` — the updated tickers (the original fetched
//!    them per strategy, not once per tick);
//! 2. `SMEMBERS STRAT:<id>:UNIV`, intersected client-side with 1 → `C`; empty → skip
//!    `no_update`;
//! 3. `HMGET STRAT:<id>:LAST C…` → `F`, the tickers whose value is not `b.start`; empty →
//!    skip `bucket_dup`;
//! 4. `HMSET STRAT:<id>:LAST` every ticker of `F` → `b.start` (no expiry: the original
//!    never cleaned these hashes).
//!
//! Global strategies (no universe) use the strategy-level rule with a run marker: `GET
//! STRAT:<id>:RUN`, and `SET` it to `b.start` when it differs (two round trips at most).
//! The original's own marker is not specified by the seed; this one costs the same order.
//! A strategy whose universe is missing in Redis runs in full ("missing universe data falls
//! back to full execution"), after its two reads.
//!
//! Each strategy's outcome is a [`SeedStep`], and the round trips it made are asserted to
//! be [`SeedStep::round_trips`]: the one cost model, which the simulator's oracle also
//! counts on its own copy of the world (`crate::oracle::seed`).
//!
//! The seed's stage 3 answered steps 1–2 with a Lua script for universes above 1,000
//! members; this baseline follows DESIGN §6's four-command description for every strategy
//! (about 1% of W-100k's are affected), which keeps its round trips exactly countable.
//!
//! Concurrency: the original ran a goroutine per strategy over go-redis's connection pool,
//! whose default size is 10 per CPU ([`GO_REDIS_POOL_PER_CPU`]). Here the pool is that many
//! independent connections, each driven by one worker task that takes the next strategy
//! and awaits its commands one after another — so, as in Go, at most one command per pooled
//! connection is in flight, and at most `pool size` strategies are evaluated at once.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tickgate::core::catalog::{Strategy, Universe};
use tickgate::redact::redact_url;
use tickgate::store::KeySpace;
use tickgate::{Bucket, StrategyId, Timeframe};
use tokio::task::JoinSet;

use crate::oracle::seed::SeedStep;

/// go-redis's default `PoolSize` is 10 connections per `runtime.GOMAXPROCS` (= CPUs).
pub const GO_REDIS_POOL_PER_CPU: usize = 10;

/// Upper bound on the pool: on a very large host 10 per CPU would open thousands of
/// connections, far beyond what a single Redis serves usefully; 512 is 10 per CPU up to 51
/// CPUs, more than any machine these benches run on.
pub const MAX_POOL_SIZE: usize = 512;

/// Bound on establishing each pooled connection: loopback connects in microseconds.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Bound on every command's answer: go-redis's default `ReadTimeout` (3 s), so a command
/// that would have failed the original fails here too.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

/// The pool size go-redis would pick on this machine: 10 × CPUs, at most [`MAX_POOL_SIZE`].
pub fn default_pool_size() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus * GO_REDIS_POOL_PER_CPU).min(MAX_POOL_SIZE)
}

/// Why a baseline tick could not be run.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("pool size {0} is invalid: must be in 1..={MAX_POOL_SIZE}")]
    PoolSize(usize),
    #[error("cannot connect to Redis at {url}: {reason}")]
    Connection { url: String, reason: String },
    #[error("no {timeframe} bucket at {now_ms} ms: {reason}")]
    Bucket {
        timeframe: Timeframe,
        now_ms: i64,
        reason: String,
    },
    #[error("Redis failed during {op} for strategy {id}: {reason}")]
    Redis {
        op: &'static str,
        id: u64,
        reason: String,
    },
    #[error("a baseline worker task failed: {0}")]
    Worker(String),
}

/// What one baseline tick did. `round_trips` counts every awaited command exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BaselineTick {
    /// Strategies run (per-ticker runs, global runs, full runs for a missing universe).
    pub runs: u64,
    /// Tickers dispatched by per-ticker runs (the size of every `F`).
    pub dispatched_tickers: u64,
    pub skipped_no_update: u64,
    pub skipped_bucket_dup: u64,
    /// Strategies whose timeframe does not parse: skipped, as DESIGN §2.1 requires.
    pub skipped_invalid_timeframe: u64,
    /// Strategies run in full because Redis had no universe for them.
    pub missing_universe: u64,
    pub round_trips: u64,
}

impl BaselineTick {
    /// Counts one strategy's outcome.
    pub fn count(&mut self, step: SeedStep) {
        self.runs += u64::from(step.runs());
        match step {
            SeedStep::InvalidTimeframe => self.skipped_invalid_timeframe += 1,
            SeedStep::GlobalDup | SeedStep::BucketDup => self.skipped_bucket_dup += 1,
            SeedStep::NoUpdate => self.skipped_no_update += 1,
            SeedStep::MissingUniverse => self.missing_universe += 1,
            SeedStep::Run { tickers } => self.dispatched_tickers += tickers,
            SeedStep::GlobalRun => {}
        }
    }

    fn add(&mut self, o: &BaselineTick) {
        self.runs += o.runs;
        self.dispatched_tickers += o.dispatched_tickers;
        self.skipped_no_update += o.skipped_no_update;
        self.skipped_bucket_dup += o.skipped_bucket_dup;
        self.skipped_invalid_timeframe += o.skipped_invalid_timeframe;
        self.missing_universe += o.missing_universe;
        self.round_trips += o.round_trips;
    }
}

/// One strategy as the baseline sees it: the original read its universe from Redis every
/// tick, so only the id, the timeframe and the global flag are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedStrategy {
    pub id: StrategyId,
    /// `None` when the timeframe does not parse.
    pub timeframe: Option<Timeframe>,
    /// A global universe (`"all"`): the run marker instead of the per-ticker steps.
    pub global: bool,
}

impl SeedStrategy {
    /// The baseline's view of a strategy the engine knows (a missing universe is not
    /// global: the seed reads it, finds it empty and runs in full).
    pub fn of(s: &Strategy) -> SeedStrategy {
        SeedStrategy {
            id: s.id,
            timeframe: s.timeframe.as_ref().ok().copied(),
            global: s.universe == Universe::Global,
        }
    }
}

/// The seed-faithful evaluator: a go-redis-sized pool and the active strategies.
pub struct Baseline {
    pool: Vec<MultiplexedConnection>,
    /// Where the update set and the universes are read.
    keys: KeySpace,
    /// Where the baseline's own trigger state (`LAST`, `RUN`) lives: `keys` by default; the
    /// simulator points it elsewhere so the baseline never touches the engine's claims.
    state_keys: KeySpace,
    strategies: Arc<[SeedStrategy]>,
}

impl Baseline {
    /// Opens `pool_size` independent connections to `url` (see [`default_pool_size`]).
    pub async fn connect(
        url: &str,
        keys: KeySpace,
        pool_size: usize,
        strategies: &[SeedStrategy],
    ) -> Result<Baseline, BaselineError> {
        if !(1..=MAX_POOL_SIZE).contains(&pool_size) {
            return Err(BaselineError::PoolSize(pool_size));
        }
        let fail = |reason: String| BaselineError::Connection {
            url: redact_url(url),
            reason: redact_url(&reason),
        };
        let client = redis::Client::open(url).map_err(|e| fail(e.to_string()))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let mut pool = Vec::with_capacity(pool_size);
        for _ in 0..pool_size {
            let con = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .map_err(|e| fail(e.to_string()))?;
            pool.push(con);
        }
        Ok(Baseline {
            pool,
            state_keys: keys.clone(),
            keys,
            strategies: strategies.into(),
        })
    }

    /// Keeps the baseline's trigger state under `state_keys` instead (reads stay on the
    /// keys given to [`Baseline::connect`]).
    pub fn with_state_keys(mut self, state_keys: KeySpace) -> Baseline {
        self.state_keys = state_keys;
        self
    }

    /// Connections in the pool: the most strategies evaluated at once.
    pub fn pool_size(&self) -> usize {
        self.pool.len()
    }

    /// One tick at logical time `now_ms` over every strategy (module docs). On a Redis
    /// failure the remaining strategies are not started and the first error is returned.
    pub async fn tick(&self, now_ms: i64) -> Result<BaselineTick, BaselineError> {
        // One bucket per distinct timeframe: the same value the original computed per
        // strategy, without timing calendar arithmetic that is not Redis's cost.
        let mut buckets = BTreeMap::new();
        for tf in self.strategies.iter().filter_map(|s| s.timeframe) {
            if let std::collections::btree_map::Entry::Vacant(slot) = buckets.entry(tf) {
                let bucket = tf.bucket(now_ms).map_err(|e| BaselineError::Bucket {
                    timeframe: tf,
                    now_ms,
                    reason: e.to_string(),
                })?;
                slot.insert(bucket);
            }
        }
        let shared = Arc::new(Shared {
            keys: self.keys.clone(),
            state_keys: self.state_keys.clone(),
            strategies: Arc::clone(&self.strategies),
            buckets,
            next: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
        });
        let mut workers = JoinSet::new();
        for con in &self.pool {
            workers.spawn(worker(con.clone(), Arc::clone(&shared)));
        }
        let mut total = BaselineTick::default();
        let mut first_error = None;
        while let Some(joined) = workers.join_next().await {
            match joined {
                Ok(Ok(part)) => total.add(&part),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(BaselineError::Worker(e.to_string()));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }
}

/// State the workers of one tick share.
struct Shared {
    keys: KeySpace,
    state_keys: KeySpace,
    strategies: Arc<[SeedStrategy]>,
    buckets: BTreeMap<Timeframe, Bucket>,
    /// Index of the next strategy to evaluate.
    next: AtomicUsize,
    /// Set by the first worker that fails, so the others stop taking strategies.
    failed: AtomicBool,
}

/// Evaluates strategies one after another on one pooled connection until none is left.
async fn worker(
    mut con: MultiplexedConnection,
    shared: Arc<Shared>,
) -> Result<BaselineTick, BaselineError> {
    let mut tally = BaselineTick::default();
    // Each iteration claims a distinct index, so a worker never runs more than all of them.
    for _ in 0..shared.strategies.len() {
        if shared.failed.load(Ordering::Relaxed) {
            break;
        }
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        let Some(s) = shared.strategies.get(i) else {
            break;
        };
        let Some(bucket) = s.timeframe.and_then(|tf| shared.buckets.get(&tf)) else {
            tally.count(SeedStep::InvalidTimeframe);
            continue;
        };
        let mut trips = RoundTrips { id: s.id, made: 0 };
        let outcome = if s.global {
            global_strategy(&mut con, &shared.state_keys, *bucket, &mut trips).await
        } else {
            per_ticker(&mut con, &shared, *bucket, &mut trips).await
        };
        match outcome {
            Ok(step) => {
                // The replay is the cost model's ground truth: it must make exactly the
                // round trips the model charges for its outcome.
                assert_eq!(
                    trips.made,
                    step.round_trips(),
                    "{step:?} of strategy {}",
                    s.id
                );
                tally.count(step);
                tally.round_trips += trips.made;
            }
            Err(e) => {
                shared.failed.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
    }
    Ok(tally)
}

/// The round trips one strategy's evaluation made.
struct RoundTrips {
    id: StrategyId,
    made: u64,
}

impl RoundTrips {
    /// Sends one command, awaits its answer, counts the round trip.
    async fn query<T: redis::FromRedisValue>(
        &mut self,
        con: &mut MultiplexedConnection,
        cmd: &redis::Cmd,
        op: &'static str,
    ) -> Result<T, BaselineError> {
        self.made += 1;
        cmd.query_async(con)
            .await
            .map_err(|e| BaselineError::Redis {
                op,
                id: self.id,
                reason: e.to_string(),
            })
    }
}

/// Steps 1–4 of the module docs for one strategy with an explicit universe.
async fn per_ticker(
    con: &mut MultiplexedConnection,
    shared: &Shared,
    bucket: Bucket,
    trips: &mut RoundTrips,
) -> Result<SeedStep, BaselineError> {
    let (keys, id) = (&shared.keys, trips.id);
    let mut zrange = redis::cmd("ZRANGEBYSCORE");
    zrange.arg(keys.updates()).arg(bucket.start_ms).arg("+inf");
    let updated: Vec<String> = trips.query(con, &zrange, "ZRANGEBYSCORE").await?;

    let mut smembers = redis::cmd("SMEMBERS");
    smembers.arg(keys.universe(id));
    let universe: Vec<String> = trips.query(con, &smembers, "SMEMBERS").await?;
    if universe.is_empty() {
        return Ok(SeedStep::MissingUniverse);
    }

    // The original's intersectClientSide: a set of the updated tickers, probed per member.
    let updated: HashSet<&str> = updated.iter().map(String::as_str).collect();
    let changed: Vec<&str> = universe
        .iter()
        .map(String::as_str)
        .filter(|t| updated.contains(t))
        .collect();
    if changed.is_empty() {
        return Ok(SeedStep::NoUpdate);
    }

    let last_key = shared.state_keys.triggers(id);
    let mut hmget = redis::cmd("HMGET");
    hmget.arg(&last_key).arg(&changed);
    let last: Vec<Option<String>> = trips.query(con, &hmget, "HMGET").await?;
    let start = bucket.start_ms.to_string();
    let fire: Vec<&str> = changed
        .iter()
        .zip(&last)
        .filter(|(_, seen)| seen.as_deref() != Some(start.as_str()))
        .map(|(t, _)| *t)
        .collect();
    if fire.is_empty() {
        return Ok(SeedStep::BucketDup);
    }

    let mut hmset = redis::cmd("HMSET");
    hmset.arg(&last_key);
    for t in &fire {
        hmset.arg(*t).arg(&start);
    }
    trips.query::<()>(con, &hmset, "HMSET").await?;
    Ok(SeedStep::Run {
        tickers: fire.len() as u64,
    })
}

/// The strategy-level rule for a global strategy: run once per bucket, via a run marker.
async fn global_strategy(
    con: &mut MultiplexedConnection,
    keys: &KeySpace,
    bucket: Bucket,
    trips: &mut RoundTrips,
) -> Result<SeedStep, BaselineError> {
    let marker = keys.strategy_run(trips.id);
    let start = bucket.start_ms.to_string();
    let mut get = redis::cmd("GET");
    get.arg(&marker);
    let seen: Option<String> = trips.query(con, &get, "GET").await?;
    if seen.as_deref() == Some(start.as_str()) {
        return Ok(SeedStep::GlobalDup);
    }
    let mut set = redis::cmd("SET");
    set.arg(&marker).arg(&start);
    trips.query::<()>(con, &set, "SET").await?;
    Ok(SeedStep::GlobalRun)
}

/// The seed's server-side intersection (`intersect_seed.lua`, kept verbatim in behaviour):
/// the universe's members updated at or after `since_ms`, unsorted. Benches and tests
/// compare tickgate's adaptive script with it.
pub async fn intersect_seed(
    con: &mut MultiplexedConnection,
    keys: &KeySpace,
    id: tickgate::StrategyId,
    since_ms: i64,
) -> redis::RedisResult<Vec<String>> {
    redis::Script::new(include_str!("intersect_seed.lua"))
        .key(keys.updates())
        .key(keys.universe(id))
        .arg(since_ms)
        .invoke_async(con)
        .await
}

#[cfg(test)]
mod tests;
