//! The replay counts exactly what the module docs define, and the oracle's model of the
//! seed ([`SeedModel`]) predicts it on the same world.

use std::collections::BTreeMap;

use tickgate::Ticker;
use tickgate::core::catalog::{Strategy, Universe};
use tickgate::core::time::MINUTE_MS;

use super::*;
use crate::RedisServer;
use crate::oracle::seed::SeedModel;
use crate::redis::load::{clear_trigger_state, populate, write_updates};
use crate::world::market::Market;
use crate::world::scenario::Scenario;

/// 2024-07-15 10:30:20 New York: in the session, twenty seconds into its minute.
const NOW_MS: i64 = 1_721_053_820_000;

/// A small market whose largest universe (400) exceeds its population, so dormant
/// contracts fill it; it starts one minute before [`NOW_MS`].
const SCENARIO: &str = r#"
    start = "2024-07-15T10:29:20-04:00"
    [tickers]
    stocks = 180
    crypto = 20
    [activity]
    updates_per_minute_open = 60
    [strategies]
    count = 300
    universe_median = 45
    universe_max = 400
    global_share = 0.02
    invalid_timeframe_share = 0.0
"#;

/// Not written to Redis: the seed finds no universe for it.
const UNPOPULATED: StrategyId = 10_000;

/// The counts of a first tick, straight from the definition in the module docs.
fn expected_first_tick(strategies: &[Strategy], updates: &[(String, i64)]) -> BaselineTick {
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    for (t, ts) in updates {
        let slot = last.entry(t.as_str()).or_insert(*ts);
        *slot = (*slot).max(*ts);
    }
    let mut want = BaselineTick::default();
    for s in strategies {
        let Ok(tf) = &s.timeframe else {
            want.skipped_invalid_timeframe += 1;
            continue;
        };
        let start = tf.bucket(NOW_MS).expect("a bucket").start_ms;
        want.round_trips += 2;
        let Universe::Tickers(universe) = &s.universe else {
            want.runs += 1;
            continue;
        };
        if s.id == UNPOPULATED {
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

/// The seed model's prediction of the same tick, on the oracle's view of the world.
fn modelled_tick(
    model: &mut SeedModel,
    strategies: &[Strategy],
    updates: &[(String, i64)],
) -> BaselineTick {
    let mut last: BTreeMap<Ticker, i64> = BTreeMap::new();
    for (t, ts) in updates {
        let slot = last.entry(Ticker::parse(t).expect("valid")).or_insert(*ts);
        *slot = (*slot).max(*ts);
    }
    let mut tally = BaselineTick::default();
    for s in strategies {
        let mut s = s.clone();
        if s.id == UNPOPULATED {
            s.universe = Universe::Missing;
        }
        let bucket = s
            .timeframe
            .as_ref()
            .ok()
            .and_then(|tf| tf.bucket(NOW_MS).ok());
        let step = model.step(&s, bucket, false, |t| last.get(t).copied());
        tally.count(step);
        tally.round_trips += step.round_trips();
    }
    tally
}

fn strategy(id: StrategyId, timeframe: &str) -> Strategy {
    let json = format!(r#"{{"id":{id},"timeframe":"{timeframe}","universe":["AAPL"]}}"#);
    Strategy::from_catalog(id, &json).expect("valid").0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_count_exactly_what_the_definition_says() {
    let server = RedisServer::from_env().await.expect("a Redis");
    let keys = KeySpace::new(server.key_prefix(), false);
    let scenario = Scenario::parse(SCENARIO, "baseline").expect("a valid scenario");
    let mut market = Market::new(&scenario, 5);
    let mut strategies: Vec<Strategy> = market
        .catalog()
        .iter()
        .map(|(id, json)| Strategy::from_catalog(*id, json).expect("valid entry").0)
        .collect();
    let mut con = redis::Client::open(server.url())
        .expect("a URL")
        .get_multiplexed_async_connection()
        .await
        .expect("a connection");
    populate(&mut con, &keys, &strategies)
        .await
        .expect("populated");
    let updates = market.step(NOW_MS - MINUTE_MS, NOW_MS).updates;
    write_updates(&mut con, &keys, &updates)
        .await
        .expect("written");
    strategies.push(strategy(UNPOPULATED, "5m"));
    strategies.push(strategy(UNPOPULATED + 1, "0m"));
    assert!(strategies.last().unwrap().timeframe.is_err());

    let want = expected_first_tick(&strategies, &updates);
    assert!(
        want.runs > 0 && want.skipped_no_update > 0,
        "a mixed tick: {want:?}"
    );
    let mut model = SeedModel::default();
    assert_eq!(modelled_tick(&mut model, &strategies, &updates), want);
    let seed_strategies: Vec<SeedStrategy> = strategies.iter().map(SeedStrategy::of).collect();
    let baseline = Baseline::connect(server.url(), keys.clone(), 4, &seed_strategies)
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
    assert_eq!(modelled_tick(&mut model, &strategies, &updates), second);

    let ids: Vec<StrategyId> = strategies.iter().map(|s| s.id).collect();
    clear_trigger_state(&mut con, &keys, &ids)
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

/// The bench's bulk writer passes the record script every key it needs: a ticker written in
/// two minutes keeps its earlier time in `TICK:PRE`, as the store's own writer does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_updates_keep_the_earlier_minute_like_the_store() {
    let server = RedisServer::from_env().await.expect("a Redis");
    let keys = KeySpace::new(server.key_prefix(), false);
    let mut con = redis::Client::open(server.url())
        .expect("a URL")
        .get_multiplexed_async_connection()
        .await
        .expect("a connection");
    let earlier = NOW_MS - MINUTE_MS;
    for ts in [earlier, NOW_MS] {
        write_updates(&mut con, &keys, &[("AAPL".to_owned(), ts)])
            .await
            .expect("written");
    }
    let before: Option<i64> = redis::cmd("ZSCORE")
        .arg(keys.updates_before())
        .arg("AAPL")
        .query_async(&mut con)
        .await
        .expect("ZSCORE");
    assert_eq!(before, Some(earlier));
}
