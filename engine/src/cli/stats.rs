//! `tickgate stats`: what Redis holds, for an operator (the seed's detailed metrics). The
//! engine's own counters live in each process and are served on `/metrics`; what is read
//! here is what every instance shares: lifetime counters Redis keeps (write sequence,
//! change log version, entries ever added to each stream), tracked tickers, universe sizes
//! (distribution and average, the seed's buckets), stream lengths, pending entries and
//! consumer lag per group, and the instances holding a consumer name.

use std::collections::HashMap;

use redis::Value;
use serde::Serialize;

use super::error::CliError;
use super::human;
use crate::config::Config;
use crate::core::catalog::{Strategy, Universe};
use crate::limits::{CATALOG_PAGE_ENTRIES, CATALOG_PAGES_MAX, WRITE_CHUNK_MEMBERS};
use crate::runtime::{Clock, Metrics, SystemClock};
use crate::store::{Catalog, RedisStore, StoreError};

#[derive(Debug, Serialize)]
struct Stats {
    now_ms: i64,
    /// Lifetime counters Redis keeps.
    update_writes: u64,
    catalog_changes: u64,
    tracked_tickers: u64,
    oldest_update_ms: Option<i64>,
    newest_update_ms: Option<i64>,
    strategies: StrategyCounts,
    /// Universes of size ≤10, ≤100, ≤1000, >1000 (active strategies with a Redis universe).
    universe_sizes: [u64; 4],
    universe_average: u64,
    streams: Vec<StreamStats>,
    instances: Vec<Instance>,
}

#[derive(Debug, Default, Serialize)]
struct StrategyCounts {
    total: u64,
    active: u64,
    global: u64,
    inactive: u64,
    unusable: u64,
}

#[derive(Debug, Serialize)]
struct StreamStats {
    key: String,
    length: u64,
    entries_added: Option<u64>,
    groups: Vec<GroupStats>,
}

#[derive(Debug, Serialize)]
struct GroupStats {
    name: String,
    consumers: u64,
    pending: u64,
    /// Entries not yet delivered to the group (`None` when Redis cannot tell).
    lag: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Instance {
    consumer: String,
    holder: String,
    ttl_ms: i64,
}

fn redis_error(op: &'static str) -> impl FnOnce(redis::RedisError) -> CliError {
    move |e| {
        CliError::Store(StoreError::Redis {
            op,
            reason: e.to_string(),
        })
    }
}

pub async fn run(config: &Config, json: bool) -> Result<String, CliError> {
    let store = RedisStore::connect(&config.redis).await?;
    let stats = gather(&store).await?;
    if json {
        return serde_json::to_string_pretty(&stats).map_err(|e| CliError::System {
            what: "formatting the statistics as JSON",
            reason: e.to_string(),
        });
    }
    Ok(render(&stats, &config.redis.keys.updates()))
}

async fn gather(store: &RedisStore) -> Result<Stats, CliError> {
    let keys = store.keys();
    let mut con = store.connection();
    #[allow(clippy::type_complexity, reason = "one element per pipelined command")]
    let (seq, version, tracked, oldest, newest): (
        Option<u64>,
        Option<u64>,
        u64,
        Vec<(String, f64)>,
        Vec<(String, f64)>,
    ) = redis::pipe()
        .cmd("HGET")
        .arg(keys.update_feed())
        .arg("seq")
        .cmd("GET")
        .arg(keys.version())
        .cmd("ZCARD")
        .arg(keys.updates())
        .cmd("ZRANGE")
        .arg(keys.updates())
        .arg(0)
        .arg(0)
        .arg("WITHSCORES")
        .cmd("ZRANGE")
        .arg(keys.updates())
        .arg(-1)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut con)
        .await
        .map_err(redis_error("HGET + GET + ZCARD + ZRANGE"))?;
    let (strategies, sizes) = universes(store).await?;
    let distribution = Metrics::default();
    distribution.set_universe_sizes(0, sizes.into_iter());
    let with_universe = distribution.with_universe();
    let mut streams = Vec::new();
    for key in [keys.jobs(), keys.results(), keys.dead()] {
        streams.push(stream(store, key).await?);
    }
    Ok(Stats {
        now_ms: SystemClock.now_ms(),
        update_writes: seq.unwrap_or(0),
        catalog_changes: version.unwrap_or(0),
        tracked_tickers: tracked,
        oldest_update_ms: oldest.first().map(|(_, s)| *s as i64),
        newest_update_ms: newest.first().map(|(_, s)| *s as i64),
        strategies,
        universe_sizes: distribution
            .universe_size_buckets
            .each_ref()
            .map(Metrics::get),
        universe_average: Metrics::get(&distribution.universe_size_total) / with_universe.max(1),
        streams,
        instances: instances(store).await?,
    })
}

/// The catalog's strategies by kind, and the Redis universe size (`SCARD`) of each active
/// one with an explicit universe.
async fn universes(store: &RedisStore) -> Result<(StrategyCounts, Vec<usize>), CliError> {
    let catalog = store.catalog_all().await?;
    let mut counts = StrategyCounts {
        total: catalog.len() as u64,
        ..StrategyCounts::default()
    };
    let mut explicit = Vec::new();
    for (id, raw) in &catalog {
        match Strategy::from_catalog(*id, raw) {
            Err(_) => counts.unusable += 1,
            Ok((s, _)) if !s.active => counts.inactive += 1,
            Ok((s, _)) => {
                counts.active += 1;
                match s.universe {
                    Universe::Global => counts.global += 1,
                    Universe::Tickers(_) | Universe::Missing => explicit.push(*id),
                }
            }
        }
    }
    let mut sizes = Vec::with_capacity(explicit.len());
    for chunk in explicit.chunks(WRITE_CHUNK_MEMBERS) {
        let mut pipe = redis::pipe();
        for id in chunk {
            pipe.cmd("SCARD").arg(store.keys().universe(*id));
        }
        // A key of another type answers an error for its strategy alone: counted as none.
        pipe.ignore_errors();
        let replies: Vec<redis::RedisResult<u64>> = pipe
            .query_async(&mut store.connection())
            .await
            .map_err(redis_error("SCARD"))?;
        sizes.extend(
            replies
                .into_iter()
                .filter_map(Result::ok)
                .filter(|n| *n > 0)
                .map(|n| n as usize),
        );
    }
    Ok((counts, sizes))
}

fn int(map: &HashMap<String, Value>, field: &str) -> Option<u64> {
    match map.get(field)? {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

fn text(map: &HashMap<String, Value>, field: &str) -> String {
    match map.get(field) {
        Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(Value::SimpleString(s)) => s.clone(),
        _ => String::new(),
    }
}

async fn stream(store: &RedisStore, key: String) -> Result<StreamStats, CliError> {
    let mut con = store.connection();
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut con)
        .await
        .map_err(redis_error("EXISTS"))?;
    if !exists {
        return Ok(StreamStats {
            key,
            length: 0,
            entries_added: None,
            groups: Vec::new(),
        });
    }
    let info: HashMap<String, Value> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(&key)
        .query_async(&mut con)
        .await
        .map_err(redis_error("XINFO STREAM"))?;
    let groups: Vec<HashMap<String, Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(&key)
        .query_async(&mut con)
        .await
        .map_err(redis_error("XINFO GROUPS"))?;
    Ok(StreamStats {
        length: int(&info, "length").unwrap_or(0),
        entries_added: int(&info, "entries-added"),
        groups: groups
            .iter()
            .map(|g| GroupStats {
                name: text(g, "name"),
                consumers: int(g, "consumers").unwrap_or(0),
                pending: int(g, "pending").unwrap_or(0),
                lag: int(g, "lag"),
            })
            .collect(),
        key,
    })
}

/// The instances holding a consumer name (`tickgate run`), found by a bounded `SCAN`.
async fn instances(store: &RedisStore) -> Result<Vec<Instance>, CliError> {
    let keys = store.keys();
    let prefix_len = keys.consumer_lease("").len();
    let mut con = store.connection();
    let mut found = Vec::new();
    let mut cursor: u64 = 0;
    for _ in 0..CATALOG_PAGES_MAX {
        let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(keys.consumer_lease_pattern())
            .arg("COUNT")
            .arg(CATALOG_PAGE_ENTRIES)
            .query_async(&mut con)
            .await
            .map_err(redis_error("SCAN"))?;
        found.extend(page);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let mut out = Vec::new();
    for key in found {
        let (holder, ttl_ms): (Option<String>, i64) = redis::pipe()
            .cmd("GET")
            .arg(&key)
            .cmd("PTTL")
            .arg(&key)
            .query_async(&mut con)
            .await
            .map_err(redis_error("GET + PTTL"))?;
        if let Some(holder) = holder {
            let consumer = key.get(prefix_len..).unwrap_or_default().to_owned();
            out.push(Instance {
                consumer,
                holder,
                ttl_ms,
            });
        }
    }
    out.sort_by(|a, b| a.consumer.cmp(&b.consumer));
    Ok(out)
}

fn render(s: &Stats, updates_key: &str) -> String {
    let c = |n: u64| human::count(n);
    let when = |ms: Option<i64>| ms.map_or("none".to_owned(), human::instant);
    let st = &s.strategies;
    let b = &s.universe_sizes;
    let mut out = format!(
        "tickgate stats at {}\n\
         Counters kept by Redis (lifetime):\n  \
         ticker update writes:      {}\n  \
         catalog/universe changes:  {}\n\
         Tracked tickers ({updates_key}): {}; oldest update {}, newest {}\n\
         Strategies: {} in the catalog: {} active ({} global), {} inactive, {} unusable\n\
         Universe distribution - Small (≤10): {}, Medium (≤100): {}, Large (≤1000): {}, XLarge (>1000): {}\n\
         Average universe size: {} tickers across {} strategies with a universe\n\
         Streams:",
        human::instant(s.now_ms),
        c(s.update_writes),
        c(s.catalog_changes),
        c(s.tracked_tickers),
        when(s.oldest_update_ms),
        when(s.newest_update_ms),
        c(st.total),
        c(st.active),
        c(st.global),
        c(st.inactive),
        c(st.unusable),
        c(b[0]),
        c(b[1]),
        c(b[2]),
        c(b[3]),
        c(s.universe_average),
        c(b.iter().sum()),
    );
    for stream in &s.streams {
        let added = stream
            .entries_added
            .map_or(String::new(), |n| format!(", {} ever added", c(n)));
        out.push_str(&format!(
            "\n  {}: length {}{added}",
            stream.key,
            c(stream.length)
        ));
        for g in &stream.groups {
            let lag = g.lag.map_or("unknown".to_owned(), c);
            out.push_str(&format!(
                "\n    group {}: {} consumer(s), {} pending, lag {lag}",
                g.name,
                c(g.consumers),
                c(g.pending)
            ));
        }
    }
    out.push_str(&format!(
        "\nEngine instances running: {}",
        s.instances.len()
    ));
    for i in &s.instances {
        out.push_str(&format!(
            "\n  {} ({}; hold renewed, lapses in {} ms)",
            i.consumer, i.holder, i.ttl_ms
        ));
    }
    out
}
