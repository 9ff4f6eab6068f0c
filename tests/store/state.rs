//! A direct read of everything the store keeps in Redis, shaped like the model's state
//! ([`ModelState`]) so the two compare field by field. Stream entry ids are Redis's own
//! (`<ms>-<n>`) where the model numbers entries `<n>-0`; every id read here is renamed to the
//! model's spelling by its position in its stream.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use redis::aio::ConnectionLike;
use tickgate::store::{
    ENGINE_GROUP, KeySpace, ModelState, ReplacedTriggers, StreamEntry, TRIGGER_BUCKET_FIELD,
    TriggerState, WORKER_GROUP,
};
use tickgate::{StrategyId, Ticker};

type Entries = Vec<(String, Vec<(String, String)>)>;

/// Everything under `keys` for strategies `ids`, read with plain commands.
pub async fn redis_state<C: ConnectionLike + Send>(
    con: &mut C,
    keys: &KeySpace,
    ids: impl IntoIterator<Item = StrategyId>,
) -> ModelState {
    let ids: Vec<StrategyId> = ids.into_iter().collect();
    let mut state = shared_keys(con, keys).await;
    streams(con, keys, &mut state).await;
    for id in ids {
        strategy_keys(con, keys, id, &mut state).await;
    }
    state
}

/// The model's state without what Redis does not keep in a comparable form: re-delivery
/// attempts exist only in the model's bookkeeping (Redis counts them per pending entry).
pub fn comparable(mut state: ModelState) -> ModelState {
    state.delivery.attempts.clear();
    state
}

fn parse(s: &str) -> Ticker {
    Ticker::parse(s).expect("only valid tickers are stored")
}

/// The update set, its feed, the catalog, its change log and the universe bases.
async fn shared_keys<C: ConnectionLike + Send>(con: &mut C, keys: &KeySpace) -> ModelState {
    let mut pipe = redis::pipe();
    pipe.cmd("HGETALL").arg(keys.catalog());
    pipe.cmd("GET").arg(keys.version());
    pipe.cmd("ZRANGE")
        .arg(keys.changes())
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES");
    pipe.cmd("GET").arg(keys.changes_floor());
    pipe.cmd("ZRANGE")
        .arg(keys.update_sequence())
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES");
    pipe.cmd("HGETALL").arg(keys.update_feed());
    pipe.cmd("HGETALL").arg(keys.universe_base());
    pipe.cmd("ZRANGE")
        .arg(keys.updates())
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES");
    pipe.cmd("ZRANGE")
        .arg(keys.updates_before())
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES");
    #[allow(
        clippy::type_complexity,
        reason = "one tuple element per pipelined command"
    )]
    let (catalog, version, changes, floor, sequence, mut feed, universe_bases, updates, before): (
        BTreeMap<StrategyId, String>,
        Option<u64>,
        Vec<(StrategyId, u64)>,
        Option<u64>,
        Vec<(String, u64)>,
        BTreeMap<String, String>,
        BTreeMap<StrategyId, String>,
        Vec<(String, i64)>,
        Vec<(String, i64)>,
    ) = pipe.query_async(con).await.expect("state pipeline");
    let mut state = ModelState {
        updates: updates.iter().map(|(t, ts)| (parse(t), *ts)).collect(),
        updates_before: before.iter().map(|(t, ts)| (parse(t), *ts)).collect(),
        catalog,
        version: version.unwrap_or(0),
        changes: changes.into_iter().collect(),
        update_sequence: sequence.iter().map(|(t, n)| (parse(t), *n)).collect(),
        feed_seq: feed
            .remove("seq")
            .map_or(0, |n| n.parse().expect("a sequence number")),
        feed_epoch: feed.remove("epoch"),
        universe_bases,
        ..ModelState::default()
    };
    state.delivery.changes_floor = floor.unwrap_or(0);
    state
}

/// The model's name of the entry at `index` of its stream.
fn model_id(index: usize) -> String {
    format!("{}-0", index + 1)
}

/// The jobs, results and dead-letter streams, and both consumer groups' delivery state.
async fn streams<C: ConnectionLike + Send>(con: &mut C, keys: &KeySpace, state: &mut ModelState) {
    let range = |key: String| redis::cmd("XRANGE").arg(key).arg("-").arg("+").to_owned();
    let jobs: Entries = range(keys.jobs()).query_async(con).await.expect("XRANGE");
    let results: Entries = range(keys.results())
        .query_async(con)
        .await
        .expect("XRANGE");
    let dead: Entries = range(keys.dead()).query_async(con).await.expect("XRANGE");
    let position = |entries: &Entries| -> HashMap<String, usize> {
        entries
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (id.clone(), i))
            .collect()
    };
    let (job_at, result_at) = (position(&jobs), position(&results));
    let rename = |at: &HashMap<String, usize>, id: &str| model_id(at[id]);
    state.jobs = jobs
        .iter()
        .map(|(_, fields)| {
            assert_eq!(fields.len(), 1, "a job entry has exactly the field `job`");
            fields[0].1.clone()
        })
        .collect();
    state.results = results
        .iter()
        .enumerate()
        .map(|(i, (_, fields))| StreamEntry {
            id: model_id(i),
            payload: field(fields, "result"),
        })
        .collect();
    state.dead = dead
        .iter()
        .map(|(_, fields)| {
            let result_id = field(fields, "result_id").expect("a result dead letter");
            let reason = field(fields, "reason").expect("a reason");
            (
                rename(&result_at, &result_id),
                reason,
                field(fields, "result"),
            )
        })
        .collect();
    let d = &mut state.delivery;
    d.jobs_next = delivered(con, &keys.jobs(), WORKER_GROUP, &job_at).await;
    d.results_next = delivered(con, &keys.results(), ENGINE_GROUP, &result_at).await;
    for (id, _consumer, deliveries) in pending(con, &keys.jobs(), WORKER_GROUP).await {
        d.jobs_pending.insert(job_at[&id], deliveries);
    }
    for (id, consumer, deliveries) in pending(con, &keys.results(), ENGINE_GROUP).await {
        d.results_pending
            .insert(rename(&result_at, &id), (consumer, deliveries));
    }
}

fn field(fields: &[(String, String)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// How many entries of `stream` `group` has delivered (the position after its
/// last-delivered id); 0 without the stream or the group.
async fn delivered<C: ConnectionLike + Send>(
    con: &mut C,
    stream: &str,
    group: &str,
    at: &HashMap<String, usize>,
) -> usize {
    let info: redis::RedisResult<Vec<HashMap<String, redis::Value>>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(con)
        .await;
    let Some(group) = info.unwrap_or_default().into_iter().find(|g| {
        g.get("name")
            .and_then(|n| redis::from_redis_value::<String>(n.clone()).ok())
            .as_deref()
            == Some(group)
    }) else {
        return 0;
    };
    let last: String =
        redis::from_redis_value(group["last-delivered-id"].clone()).expect("an entry id");
    if last == "0-0" { 0 } else { at[&last] + 1 }
}

/// Entries of `stream` delivered to `group` and not acknowledged: (id, consumer,
/// deliveries); none without the stream or the group.
async fn pending<C: ConnectionLike + Send>(
    con: &mut C,
    stream: &str,
    group: &str,
) -> Vec<(String, String, u64)> {
    let reply: redis::RedisResult<Vec<(String, String, u64, u64)>> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .arg("-")
        .arg("+")
        .arg(100_000)
        .query_async(con)
        .await;
    reply
        .unwrap_or_default()
        .into_iter()
        .map(|(id, consumer, _idle, deliveries)| (id, consumer, deliveries))
        .collect()
}

/// One strategy's universe, trigger hash and whole-run marker.
async fn strategy_keys<C: ConnectionLike + Send>(
    con: &mut C,
    keys: &KeySpace,
    id: StrategyId,
    state: &mut ModelState,
) {
    let mut pipe = redis::pipe();
    pipe.cmd("SMEMBERS").arg(keys.universe(id));
    pipe.cmd("HGETALL").arg(keys.triggers(id));
    pipe.cmd("GET").arg(keys.strategy_run(id));
    pipe.cmd("HGETALL").arg(keys.triggers_replaced(id));
    type Keys = (
        BTreeSet<String>,
        BTreeMap<String, String>,
        Option<i64>,
        BTreeMap<String, String>,
    );
    let (universe, mut hash, run, replaced): Keys =
        pipe.query_async(con).await.expect("strategy pipeline");
    if !universe.is_empty() {
        state
            .universes
            .insert(id, universe.iter().map(|t| parse(t)).collect());
    }
    if let Some(run) = run {
        state.strategy_runs.insert(id, run);
    }
    let Some(newest) = hash.remove(TRIGGER_BUCKET_FIELD) else {
        assert!(
            hash.is_empty(),
            "trigger hash without its bucket field: {hash:?}"
        );
        return;
    };
    let num = |s: &str| s.parse::<i64>().expect("a number");
    // The expiry's bookkeeping: the model keeps no expiry.
    hash.remove("# end");
    let mut trigger = TriggerState {
        newest_bucket_ms: num(&newest),
        jobs_issued: hash.remove("# jobs").map_or(0, |n| num(&n) as u64),
        replaced: replaced_claims(replaced),
        ..TriggerState::default()
    };
    for (name, value) in hash {
        match name.strip_prefix("# job ") {
            Some(job) => {
                let (start, n) = job.split_once('-').expect("'# job <start>-<n>'");
                // Emptied when the job's claims were dropped (a newer bucket).
                let tickers = value
                    .split(' ')
                    .filter(|t| !t.is_empty())
                    .map(parse)
                    .collect();
                trigger
                    .open_jobs
                    .insert((num(start), num(n) as u64), tickers);
            }
            None => {
                trigger.claims.insert(parse(&name), num(&value));
            }
        }
    }
    state.triggers.insert(id, trigger);
}

/// `STRAT:<id>:LAST:PREV` as the model keeps it: its bucket and claims (its job records and
/// counter are never read again).
fn replaced_claims(mut hash: BTreeMap<String, String>) -> Option<ReplacedTriggers> {
    let bucket = hash.remove(TRIGGER_BUCKET_FIELD)?;
    let num = |s: &str| s.parse::<i64>().expect("a number");
    let claims = hash
        .into_iter()
        .filter(|(name, _)| !name.starts_with("# "))
        .map(|(name, value)| (parse(&name), num(&value)))
        .collect();
    Some(ReplacedTriggers {
        bucket_ms: num(&bucket),
        claims,
    })
}
