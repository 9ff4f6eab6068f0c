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
use tickgate::redact::redact_url;
use tickgate::store::KeySpace;
use tickgate::{Bucket, Timeframe};
use tokio::task::JoinSet;

use crate::workload::StrategyDef;

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
#[derive(Debug, Clone)]
struct Prepared {
    id: u64,
    /// `None` when the timeframe does not parse.
    timeframe: Option<Timeframe>,
    global: bool,
}

/// The seed-faithful evaluator: a go-redis-sized pool and the active strategies.
pub struct Baseline {
    pool: Vec<MultiplexedConnection>,
    /// Where the update set and the universes are read.
    keys: KeySpace,
    /// Where the baseline's own trigger state (`LAST`, `RUN`) lives: `keys` by default; the
    /// simulator points it elsewhere so the baseline never touches the engine's claims.
    state_keys: KeySpace,
    strategies: Arc<[Prepared]>,
}

impl Baseline {
    /// Opens `pool_size` independent connections to `url` (see [`default_pool_size`]).
    pub async fn connect(
        url: &str,
        keys: KeySpace,
        pool_size: usize,
        strategies: &[StrategyDef],
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
        let strategies = strategies
            .iter()
            .map(|s| Prepared {
                id: s.id,
                timeframe: s.timeframe.parse().ok(),
                global: s.universe.is_none(),
            })
            .collect();
        Ok(Baseline {
            pool,
            state_keys: keys.clone(),
            keys,
            strategies,
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
    strategies: Arc<[Prepared]>,
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
            tally.skipped_invalid_timeframe += 1;
            continue;
        };
        let outcome = if s.global {
            global_strategy(&mut con, &shared.state_keys, s.id, *bucket, &mut tally).await
        } else {
            per_ticker(&mut con, &shared, s.id, *bucket, &mut tally).await
        };
        if let Err(e) = outcome {
            shared.failed.store(true, Ordering::Relaxed);
            return Err(e);
        }
    }
    Ok(tally)
}

/// Sends one command, awaits its answer, counts the round trip.
async fn round_trip<T: redis::FromRedisValue>(
    con: &mut MultiplexedConnection,
    cmd: &redis::Cmd,
    op: &'static str,
    id: u64,
    tally: &mut BaselineTick,
) -> Result<T, BaselineError> {
    tally.round_trips += 1;
    cmd.query_async(con)
        .await
        .map_err(|e| BaselineError::Redis {
            op,
            id,
            reason: e.to_string(),
        })
}

/// Steps 1–4 of the module docs for one strategy with an explicit universe.
async fn per_ticker(
    con: &mut MultiplexedConnection,
    shared: &Shared,
    id: u64,
    bucket: Bucket,
    tally: &mut BaselineTick,
) -> Result<(), BaselineError> {
    let keys = &shared.keys;
    let mut zrange = redis::cmd("ZRANGEBYSCORE");
    zrange.arg(keys.updates()).arg(bucket.start_ms).arg("+inf");
    let updated: Vec<String> = round_trip(con, &zrange, "ZRANGEBYSCORE", id, tally).await?;

    let mut smembers = redis::cmd("SMEMBERS");
    smembers.arg(keys.universe(id));
    let universe: Vec<String> = round_trip(con, &smembers, "SMEMBERS", id, tally).await?;
    if universe.is_empty() {
        tally.missing_universe += 1;
        tally.runs += 1;
        return Ok(());
    }

    // The original's intersectClientSide: a set of the updated tickers, probed per member.
    let updated: HashSet<&str> = updated.iter().map(String::as_str).collect();
    let changed: Vec<&str> = universe
        .iter()
        .map(String::as_str)
        .filter(|t| updated.contains(t))
        .collect();
    if changed.is_empty() {
        tally.skipped_no_update += 1;
        return Ok(());
    }

    let last_key = shared.state_keys.triggers(id);
    let mut hmget = redis::cmd("HMGET");
    hmget.arg(&last_key).arg(&changed);
    let last: Vec<Option<String>> = round_trip(con, &hmget, "HMGET", id, tally).await?;
    let start = bucket.start_ms.to_string();
    let fire: Vec<&str> = changed
        .iter()
        .zip(&last)
        .filter(|(_, seen)| seen.as_deref() != Some(start.as_str()))
        .map(|(t, _)| *t)
        .collect();
    if fire.is_empty() {
        tally.skipped_bucket_dup += 1;
        return Ok(());
    }

    let mut hmset = redis::cmd("HMSET");
    hmset.arg(&last_key);
    for t in &fire {
        hmset.arg(*t).arg(&start);
    }
    round_trip::<()>(con, &hmset, "HMSET", id, tally).await?;
    tally.runs += 1;
    tally.dispatched_tickers += fire.len() as u64;
    Ok(())
}

/// The strategy-level rule for a global strategy: run once per bucket, via a run marker.
async fn global_strategy(
    con: &mut MultiplexedConnection,
    keys: &KeySpace,
    id: u64,
    bucket: Bucket,
    tally: &mut BaselineTick,
) -> Result<(), BaselineError> {
    let marker = keys.strategy_run(id);
    let start = bucket.start_ms.to_string();
    let mut get = redis::cmd("GET");
    get.arg(&marker);
    let seen: Option<String> = round_trip(con, &get, "GET", id, tally).await?;
    if seen.as_deref() == Some(start.as_str()) {
        tally.skipped_bucket_dup += 1;
        return Ok(());
    }
    let mut set = redis::cmd("SET");
    set.arg(&marker).arg(&start);
    round_trip::<()>(con, &set, "SET", id, tally).await?;
    tally.runs += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::RedisServer;
    use crate::workload::{
        Workload, WorkloadSpec, clear_trigger_state, populate, seeded_rng, write_updates,
    };

    const NOW_MS: i64 = 1_721_053_820_000;

    /// The counts of a first tick, straight from the definition in the module docs.
    fn expected_first_tick(strategies: &[StrategyDef], updates: &[(String, i64)]) -> BaselineTick {
        let mut last: BTreeMap<&str, i64> = BTreeMap::new();
        for (t, ts) in updates {
            let slot = last.entry(t.as_str()).or_insert(*ts);
            *slot = (*slot).max(*ts);
        }
        let mut want = BaselineTick::default();
        for s in strategies {
            let Ok(tf) = s.timeframe.parse::<Timeframe>() else {
                want.skipped_invalid_timeframe += 1;
                continue;
            };
            let start = tf.bucket(NOW_MS).expect("a bucket").start_ms;
            want.round_trips += 2;
            let Some(universe) = &s.universe else {
                want.runs += 1;
                continue;
            };
            if s.id >= 10_000 {
                // Not populated: Redis has no universe for it.
                want.missing_universe += 1;
                want.runs += 1;
                continue;
            }
            let changed = universe
                .iter()
                .filter(|t| last.get(t.as_str()).is_some_and(|ts| *ts >= start))
                .count() as u64;
            if changed == 0 {
                want.skipped_no_update += 1;
            } else {
                want.round_trips += 2;
                want.runs += 1;
                want.dispatched_tickers += changed;
            }
        }
        want
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ticks_count_exactly_what_the_definition_says() {
        let server = RedisServer::from_env().await.expect("a Redis");
        let keys = KeySpace::new(server.key_prefix(), false);
        let spec = WorkloadSpec {
            tickers: 200,
            strategies: 300,
            max_universe: 400,
            updates_per_minute: 60,
            global_share: 0.02,
            ..WorkloadSpec::w100k()
        };
        let w = Workload::generate(&spec, 5).expect("valid spec");
        let mut con = redis::Client::open(server.url())
            .expect("a URL")
            .get_multiplexed_async_connection()
            .await
            .expect("a connection");
        populate(&mut con, &keys, &w).await.expect("populated");
        let updates = w
            .updates(NOW_MS - 60_000, NOW_MS, &mut seeded_rng(1))
            .expect("a window");
        write_updates(&mut con, &keys, &updates)
            .await
            .expect("written");
        let mut strategies = w.strategies.clone();
        let extra = |id: u64, timeframe: &str| StrategyDef {
            id,
            user_id: 1,
            name: "extra".to_owned(),
            timeframe: timeframe.to_owned(),
            universe: Some(vec!["AAPL".to_owned()]),
        };
        strategies.push(extra(10_000, "5m"));
        strategies.push(extra(10_001, "0m"));

        let want = expected_first_tick(&strategies, &updates);
        assert!(
            want.runs > 0 && want.skipped_no_update > 0,
            "a mixed tick: {want:?}"
        );
        let baseline = Baseline::connect(server.url(), keys.clone(), 4, &strategies)
            .await
            .expect("a pool");
        let first = baseline.tick(NOW_MS).await.expect("a tick");
        assert_eq!(first, want);

        // Same bucket again: everything that ran is a bucket_dup now, and each such
        // strategy saves exactly its write (HMSET or SET). Missing universes run again.
        let second = baseline.tick(NOW_MS).await.expect("a tick");
        let reran = first.missing_universe;
        assert_eq!(second.runs, reran);
        assert_eq!(second.skipped_bucket_dup, first.runs - reran);
        assert_eq!(second.skipped_no_update, first.skipped_no_update);
        assert_eq!(second.dispatched_tickers, 0);
        assert_eq!(second.round_trips, first.round_trips - (first.runs - reran));

        clear_trigger_state(&mut con, &keys, &strategies)
            .await
            .expect("cleared");
        assert_eq!(baseline.tick(NOW_MS).await.expect("a tick"), first);
    }

    #[tokio::test]
    async fn a_pool_size_outside_the_bounds_is_rejected() {
        for size in [0, MAX_POOL_SIZE + 1] {
            let result = Baseline::connect("redis://127.0.0.1:1", KeySpace::default(), size, &[]);
            assert!(matches!(result.await, Err(BaselineError::PoolSize(s)) if s == size));
        }
    }
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
