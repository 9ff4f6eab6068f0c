//! Bulk writes that set a bench or a simulation up before anything reads: universes,
//! catalog entries and updates, and the trigger-state reset between bench iterations. Each
//! pipelines bounded round trips; none is the engine's own write path (the engine replaces
//! universes atomically and writes through its store).

use std::collections::BTreeMap;

use redis::aio::ConnectionLike;
use tickgate::core::catalog::{Strategy, Universe};
use tickgate::limits::WRITE_CHUNK_MEMBERS as WRITE_CHUNK;
use tickgate::store::{KeySpace, RECORD_SCRIPT};
use tickgate::{StrategyId, Ticker};

/// Universe members sent per pipelined round trip by [`populate`]: about 1 MB of request,
/// so one round trip blocks Redis for a few milliseconds at most and the client's buffer
/// stays small, while W-100k's ≈11 million members need only ≈220 round trips.
pub const POPULATE_BATCH_MEMBERS: usize = 50_000;

/// Catalog entries per pipelined `HSET` of [`write_catalog`]: large universes make entries
/// big, so a thousand keeps each round trip to a few megabytes.
pub const CATALOG_BATCH: usize = 1_000;

/// Keys deleted per `DEL` by [`clear_trigger_state`], and `DEL`s per pipelined round trip
/// of it: 1,000 × 20 = 20,000 keys per round trip keeps each one short.
pub const CLEAR_KEYS_PER_DEL: usize = 1_000;
/// Trigger-state keys per strategy: its trigger hash, the one that hash replaced, its run key.
const KEYS_PER_STRATEGY: usize = 3;
const CLEAR_DELS_PER_ROUND_TRIP: usize = 20;

/// Redis failed during a bulk write.
#[derive(Debug, thiserror::Error)]
#[error("Redis failed during {op}: {reason}")]
pub struct LoadError {
    pub op: &'static str,
    pub reason: String,
}

fn redis_error(op: &'static str) -> impl FnOnce(redis::RedisError) -> LoadError {
    move |e| LoadError {
        op,
        reason: e.to_string(),
    }
}

/// What [`populate`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PopulateReport {
    pub universes: u64,
    pub members: u64,
    pub round_trips: u64,
}

/// Writes every explicit universe to `STRAT:<id>:UNIV` (replacing what was there): `DEL`
/// then `SADD`s of at most [`WRITE_CHUNK`] members, pipelined in round trips of about
/// [`POPULATE_BATCH_MEMBERS`] members. Not atomic per key: it sets up a bench or a
/// simulation before anything reads, it is not the engine's universe replacement.
pub async fn populate(
    con: &mut impl ConnectionLike,
    keys: &KeySpace,
    strategies: &[Strategy],
) -> Result<PopulateReport, LoadError> {
    let mut report = PopulateReport::default();
    let mut pipe = redis::pipe();
    let mut pending = 0usize;
    for s in strategies {
        let Universe::Tickers(universe) = &s.universe else {
            continue;
        };
        let key = keys.universe(s.id);
        let members: Vec<&str> = universe.iter().map(Ticker::as_str).collect();
        pipe.del(&key).ignore();
        for chunk in members.chunks(WRITE_CHUNK) {
            pipe.sadd(&key, chunk).ignore();
            pending += chunk.len();
            if pending >= POPULATE_BATCH_MEMBERS {
                pipe.query_async::<()>(con)
                    .await
                    .map_err(redis_error("populate"))?;
                pipe.clear();
                report.round_trips += 1;
                pending = 0;
            }
        }
        report.universes += 1;
        report.members += universe.len() as u64;
    }
    if !pipe.is_empty() {
        pipe.query_async::<()>(con)
            .await
            .map_err(redis_error("populate"))?;
        report.round_trips += 1;
    }
    Ok(report)
}

/// Records `updates` with tickgate's record script ([`RECORD_SCRIPT`]: `ZADD … GT` plus
/// the change sequence engines read deltas from, and the earlier-minute times of
/// `TICK:PRE`; its four keys as `Scripts::record` passes them), one call per [`WRITE_CHUNK`] updates,
/// pipelined in round trips of about [`POPULATE_BATCH_MEMBERS`]. Returns the round trips.
pub async fn write_updates(
    con: &mut impl ConnectionLike,
    keys: &KeySpace,
    updates: &[(String, i64)],
) -> Result<u64, LoadError> {
    let script = redis::Script::new(RECORD_SCRIPT);
    let mut round_trips = 0;
    for batch in updates.chunks(POPULATE_BATCH_MEMBERS) {
        let mut pipe = redis::pipe();
        // Loaded first in the same round trip, so a `SCRIPT FLUSH` cannot fail the calls.
        pipe.cmd("SCRIPT").arg("LOAD").arg(RECORD_SCRIPT).ignore();
        for chunk in batch.chunks(WRITE_CHUNK) {
            let mut call = script.key(keys.updates());
            call.key(keys.update_sequence())
                .key(keys.update_feed())
                .key(keys.updates_before());
            for (ticker, ts) in chunk {
                call.arg(*ts).arg(ticker);
            }
            pipe.invoke_script(&call).ignore();
        }
        pipe.query_async::<()>(con)
            .await
            .map_err(redis_error("write_updates"))?;
        round_trips += 1;
    }
    Ok(round_trips)
}

/// Deletes the trigger state (`STRAT:<id>:LAST` and `STRAT:<id>:RUN`) of strategies `ids`,
/// so the next tick sees the same state as the first: benches call it between iterations.
/// Returns the round trips made.
pub async fn clear_trigger_state(
    con: &mut impl ConnectionLike,
    keys: &KeySpace,
    ids: &[StrategyId],
) -> Result<u64, LoadError> {
    let mut round_trips = 0;
    for batch in ids.chunks(CLEAR_KEYS_PER_DEL / KEYS_PER_STRATEGY * CLEAR_DELS_PER_ROUND_TRIP) {
        let mut pipe = redis::pipe();
        for chunk in batch.chunks(CLEAR_KEYS_PER_DEL / KEYS_PER_STRATEGY) {
            let mut del = redis::cmd("DEL");
            for id in chunk {
                del.arg(keys.triggers(*id))
                    .arg(keys.triggers_replaced(*id))
                    .arg(keys.strategy_run(*id));
            }
            pipe.add_command(del).ignore();
        }
        pipe.query_async::<()>(con)
            .await
            .map_err(redis_error("clear_trigger_state"))?;
        round_trips += 1;
    }
    Ok(round_trips)
}

/// Writes catalog entries (strategy id → DESIGN §2.8 JSON) into the catalog hash, in
/// pipelined `HSET`s of [`CATALOG_BATCH`] entries, for an engine to load.
pub async fn write_catalog(
    con: &mut impl ConnectionLike,
    keys: &KeySpace,
    catalog: &BTreeMap<StrategyId, String>,
) -> Result<u64, LoadError> {
    let entries: Vec<(&StrategyId, &String)> = catalog.iter().collect();
    let mut round_trips = 0;
    for chunk in entries.chunks(CATALOG_BATCH) {
        let mut pipe = redis::pipe();
        for (id, json) in chunk {
            pipe.hset(keys.catalog(), **id, json.as_str()).ignore();
        }
        pipe.query_async::<()>(con)
            .await
            .map_err(redis_error("write_catalog"))?;
        round_trips += 1;
    }
    Ok(round_trips)
}
