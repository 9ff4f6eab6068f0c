//! Shared fixtures: ticker pools with awkward characters, and a direct read of everything
//! the store keeps in Redis, shaped like the model's state for comparison.

use std::collections::{BTreeMap, BTreeSet};

use redis::aio::ConnectionManager;
use tickgate::store::{KeySpace, MemoryState, TRIGGER_BUCKET_FIELD, TriggerState};
use tickgate::{StrategyId, Ticker};

/// 2024-06-03T13:30:00Z, a Monday market open: the origin of generated times.
pub const T0_MS: i64 = 1_717_421_400_000;
pub const MINUTE_MS: i64 = 60_000;
pub const DAY_MS: i64 = 86_400_000;

/// `n` distinct valid tickers, cycling through the shapes of real symbols, including the
/// separators `:` `.` `/` that must survive Redis and Lua untouched.
pub fn ticker_pool(n: usize) -> Vec<Ticker> {
    (0..n)
        .map(|i| {
            let raw = match i % 5 {
                0 => format!("T{i}"),
                1 => format!("X:C{i}USD"),
                2 => format!("BRK{i}.B"),
                3 => format!("O:AAPL{i:06}C00200000"),
                _ => format!("FX/{i}"),
            };
            Ticker::parse(&raw).expect("pool tickers are valid")
        })
        .collect()
}

/// Everything under `keys` for strategies `ids`, read with plain commands in one pipeline.
/// Stream delivery state (consumer groups, results, dead letters) is not included: compare
/// with [`comparable`] of the model's state.
pub async fn redis_state(
    con: &mut ConnectionManager,
    keys: &KeySpace,
    ids: impl IntoIterator<Item = StrategyId>,
) -> MemoryState {
    let ids: Vec<StrategyId> = ids.into_iter().collect();
    let mut pipe = redis::pipe();
    pipe.cmd("XRANGE").arg(keys.jobs()).arg("-").arg("+");
    pipe.cmd("HGETALL").arg(keys.catalog());
    pipe.cmd("GET").arg(keys.version());
    pipe.cmd("ZRANGE")
        .arg(keys.changes())
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES");
    pipe.cmd("ZRANGE")
        .arg(keys.update_sequence())
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES");
    pipe.cmd("HGETALL").arg(keys.update_feed());
    pipe.cmd("ZRANGE")
        .arg(keys.updates())
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES");
    for &id in &ids {
        pipe.cmd("SMEMBERS").arg(keys.universe(id));
        pipe.cmd("HGETALL").arg(keys.triggers(id));
        pipe.cmd("GET").arg(keys.strategy_run(id));
    }
    let mut replies: Vec<redis::Value> = pipe.query_async(con).await.expect("state pipeline");
    let jobs: Vec<(String, Vec<(String, String)>)> =
        redis::from_redis_value(replies.remove(0)).expect("XRANGE");
    let catalog: BTreeMap<StrategyId, String> =
        redis::from_redis_value(replies.remove(0)).expect("HGETALL");
    let version: Option<u64> = redis::from_redis_value(replies.remove(0)).expect("GET");
    let changes: Vec<(StrategyId, u64)> =
        redis::from_redis_value(replies.remove(0)).expect("ZRANGE");
    let sequence: Vec<(String, u64)> = redis::from_redis_value(replies.remove(0)).expect("ZRANGE");
    let mut feed: BTreeMap<String, String> =
        redis::from_redis_value(replies.remove(0)).expect("HGETALL");
    let parse = |s: &str| Ticker::parse(s).expect("only valid tickers are stored");
    let decode = |v: &redis::Value| v.clone();
    let updates: Vec<(String, i64)> = redis::from_redis_value(decode(&replies[0])).expect("ZRANGE");
    let mut state = MemoryState {
        updates: updates.iter().map(|(t, ts)| (parse(t), *ts)).collect(),
        jobs: jobs
            .into_iter()
            .map(|(_, fields)| {
                assert_eq!(fields.len(), 1, "a job entry has exactly the field `job`");
                fields[0].1.clone()
            })
            .collect(),
        catalog,
        version: version.unwrap_or(0),
        changes: changes.into_iter().collect(),
        update_sequence: sequence.iter().map(|(t, n)| (parse(t), *n)).collect(),
        feed_seq: feed
            .remove("seq")
            .map_or(0, |n| n.parse().expect("a sequence number")),
        feed_epoch: feed.remove("epoch"),
        ..MemoryState::default()
    };
    for (i, &id) in ids.iter().enumerate() {
        let universe: BTreeSet<String> =
            redis::from_redis_value(decode(&replies[1 + 3 * i])).expect("SMEMBERS");
        if !universe.is_empty() {
            state
                .universes
                .insert(id, universe.iter().map(|t| parse(t)).collect());
        }
        let mut hash: BTreeMap<String, String> =
            redis::from_redis_value(decode(&replies[2 + 3 * i])).expect("HGETALL");
        if let Some(newest) = hash.remove(TRIGGER_BUCKET_FIELD) {
            let num = |s: &str| s.parse::<i64>().expect("a number");
            let jobs_issued = hash.remove("# jobs").map_or(0, |n| num(&n) as u64);
            let mut open_jobs = BTreeMap::new();
            let mut claims = BTreeMap::new();
            for (field, value) in hash {
                match field.strip_prefix("# job ") {
                    Some(n) => {
                        open_jobs.insert(num(n) as u64, value.split(' ').map(parse).collect());
                    }
                    None => {
                        claims.insert(parse(&field), num(&value));
                    }
                }
            }
            let newest_bucket_ms = num(&newest);
            let trigger = TriggerState {
                newest_bucket_ms,
                claims,
                jobs_issued,
                open_jobs,
            };
            state.triggers.insert(id, trigger);
        } else {
            assert!(
                hash.is_empty(),
                "trigger hash without its bucket field: {hash:?}"
            );
        }
        let run: Option<i64> = redis::from_redis_value(decode(&replies[3 + 3 * i])).expect("GET");
        if let Some(run) = run {
            state.strategy_runs.insert(id, run);
        }
    }
    state
}

/// The model's state without what [`redis_state`] does not read.
pub fn comparable(mut state: MemoryState) -> MemoryState {
    state.results.clear();
    state.dead.clear();
    state.delivery = Default::default();
    state
}
