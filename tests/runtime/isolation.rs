//! DESIGN §2.3, Isolation: a bad catalog entry, a key of the wrong type or an oversized
//! universe costs only its own strategy. Each test has two strategies, one poisoned: the
//! step stays ready, the healthy one dispatches its job (or settles its result), the
//! poisoned one is counted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use redis::AsyncCommands;
use tickgate::StrategyId;
use tickgate::core::catalog::CatalogEntry;
use tickgate::runtime::{Engine, Metrics};
use tickgate::store::{ENGINE_GROUP, Intersection, KeySpace, StoreError, Universes, Updates};
use tickgate_suite::{Rng, T0_MS, TICK_MS, Worker, World, engine_config};

/// Strategy 1 (healthy, universe `["A"]`) and strategy 2 (`universe2`; `None`: global),
/// both 1m.
async fn world(namespace: &str, universe2: Option<Vec<String>>) -> World {
    World::builder(namespace)
        .catalog([
            CatalogEntry::new(1, 1, "healthy", "1m", Some(vec!["A".into()])),
            CatalogEntry::new(2, 2, "poisoned", "1m", universe2),
        ])
        .build()
        .await
}

/// Records an update of every ticker of both universes, steps once, and returns the
/// symbols dispatched per strategy.
async fn step_with_updates(
    world: &World,
    engine: &mut Engine<tickgate::store::RedisStore>,
    tickers: &[&str],
) -> BTreeMap<StrategyId, BTreeSet<String>> {
    let now = T0_MS + TICK_MS;
    let updates: Vec<(&str, i64)> = tickers.iter().map(|t| (*t, now - 1)).collect();
    world
        .market()
        .record_updates(now, &updates)
        .await
        .expect("record");
    let report = engine.step(now).await;
    assert!(report.ready, "one poisoned strategy failed the whole step");
    let round = Worker::PERFECT
        .round(world.market(), &mut Rng(1), &["A".to_owned()])
        .await;
    let mut jobs: BTreeMap<StrategyId, BTreeSet<String>> = BTreeMap::new();
    for (strategy, _, _, symbols) in round.dispatched {
        jobs.entry(strategy).or_default().extend(symbols);
    }
    jobs
}

fn only_healthy() -> BTreeMap<StrategyId, BTreeSet<String>> {
    [(1, ["A".to_owned()].into())].into()
}

#[tokio::test]
async fn an_oversized_catalog_universe_skips_only_its_strategy() {
    let big: Vec<String> = (0..6).map(|i| format!("B{i}")).collect();
    let world = world("isolate-big:", Some(big)).await;
    let mut config = engine_config("isolate-big");
    config.max_universe = 5;
    let mut store_config = world.store_config();
    store_config.max_universe = 5;
    let store = world.store_with(&store_config).await;
    let mut engine = Engine::new(Arc::new(store), config);
    let jobs = step_with_updates(&world, &mut engine, &["A", "B0", "B5"]).await;
    assert_eq!(jobs, only_healthy());
    let m = engine.metrics();
    assert!(Metrics::get(&m.skipped_oversized_universe) >= 1);
}

#[tokio::test]
async fn a_wrong_typed_trigger_hash_skips_only_its_strategy() {
    let world = world("isolate-last:", Some(vec!["B".into()])).await;
    let mut con = world.connection().await;
    let _: () = con
        .set(world.keys().triggers(2), "not a hash")
        .await
        .expect("SET");
    let mut engine = world.engine(engine_config("isolate-last")).await;
    let jobs = step_with_updates(&world, &mut engine, &["A", "B"]).await;
    assert_eq!(jobs, only_healthy());
    let m = engine.metrics();
    assert_eq!(Metrics::get(&m.skipped_damaged_key), 1);
    // Left alone: someone else wrote it, an operator looks at it.
    let kept: String = con.get(world.keys().triggers(2)).await.expect("GET");
    assert_eq!(kept, "not a hash");
}

#[tokio::test]
async fn a_wrong_typed_run_key_skips_only_its_strategy() {
    let world = world("isolate-run:", None).await;
    let mut con = world.connection().await;
    let _: () = con
        .hset(world.keys().strategy_run(2), "f", "not a string")
        .await
        .expect("HSET");
    let mut engine = world.engine(engine_config("isolate-run")).await;
    let jobs = step_with_updates(&world, &mut engine, &["A"]).await;
    assert_eq!(jobs, only_healthy());
    let m = engine.metrics();
    assert_eq!(Metrics::get(&m.skipped_damaged_key), 1);
    let kept: String = con
        .hget(world.keys().strategy_run(2), "f")
        .await
        .expect("HGET");
    assert_eq!(kept, "not a string");
}

/// Both strategies dispatch and their runs fail; then the key of strategy 2 that `key`
/// names is overwritten with a list, and the next step settles the batch of both results.
async fn settle_with_one_damaged_key(
    namespace: &str,
    universe2: Option<Vec<String>>,
    key: impl Fn(&KeySpace) -> String,
) {
    let world = world(namespace, universe2).await;
    let key = key(world.keys());
    let mut engine = world.engine(engine_config(namespace)).await;
    let now = T0_MS + TICK_MS;
    let updates = [("A", now - 1), ("B", now - 1)];
    world
        .market()
        .record_updates(now, &updates)
        .await
        .expect("record");
    assert!(engine.step(now).await.ready);
    let failing = Worker {
        fail_percent: 100,
        discover_percent: 0,
    };
    let pool = ["A".to_owned()];
    let round = failing.round(world.market(), &mut Rng(1), &pool).await;
    let strategies: BTreeSet<StrategyId> = round.failed.iter().map(|j| j.strategy_id).collect();
    assert_eq!(strategies, [1, 2].into(), "both dispatched, both failed");
    let mut con = world.connection().await;
    let _: () = con.del(&key).await.expect("DEL");
    let _: () = con.lpush(&key, "not ours").await.expect("LPUSH");

    let report = engine.step(now + TICK_MS).await;
    assert!(
        report.ready,
        "one damaged key failed the settlement of the whole batch"
    );
    // Strategy 1's failure was settled: its claim released and retried in the same bucket.
    let m = engine.metrics();
    assert_eq!(Metrics::get(&m.tick_errors), 0, "a step attempt failed");
    assert_eq!(Metrics::get(&m.claims_released), 1);
    let retry = Worker::PERFECT
        .round(world.market(), &mut Rng(2), &pool)
        .await;
    let retried: Vec<StrategyId> = retry.dispatched.iter().map(|d| d.0).collect();
    assert_eq!(retried, [1]);
    // Strategy 2's result is acknowledged into the dead-letter stream, naming the key.
    let dead: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(world.keys().dead())
        .arg("-")
        .arg("+")
        .query_async(&mut con)
        .await
        .expect("XRANGE dead");
    assert_eq!(dead.len(), 1, "{dead:?}");
    let reason = dead[0]
        .1
        .iter()
        .find(|(f, _)| f == "reason")
        .map(|(_, v)| v);
    assert!(reason.is_some_and(|r| r.contains(&key)), "{dead:?}");
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(world.keys().results())
        .arg(ENGINE_GROUP)
        .arg("-")
        .arg("+")
        .arg(10)
        .query_async(&mut con)
        .await
        .expect("XPENDING");
    assert!(pending.is_empty(), "results left pending: {pending:?}");
    assert!(Metrics::get(&m.skipped_damaged_key) >= 1);
    let kept: Vec<String> = con.lrange(&key, 0, -1).await.expect("LRANGE");
    assert_eq!(kept, ["not ours"]);
}

#[tokio::test]
async fn a_wrong_typed_trigger_hash_sets_aside_only_its_own_result() {
    let universe2 = Some(vec!["B".into()]);
    settle_with_one_damaged_key("isolate-settle-last:", universe2, |k| k.triggers(2)).await;
}

#[tokio::test]
async fn a_wrong_typed_run_key_sets_aside_only_its_own_result() {
    settle_with_one_damaged_key("isolate-settle-run:", None, |k| k.strategy_run(2)).await;
}

#[tokio::test]
async fn a_wrong_typed_universe_skips_only_its_strategy() {
    let world = world("isolate-univ:", Some(vec!["B".into()])).await;
    let mut con = world.connection().await;
    let _: () = con
        .set(world.keys().universe(2), "not a set")
        .await
        .expect("SET");
    let mut engine = world.engine(engine_config("isolate-univ")).await;
    let jobs = step_with_updates(&world, &mut engine, &["A", "B"]).await;
    assert_eq!(jobs, only_healthy());
    let m = engine.metrics();
    assert!(Metrics::get(&m.skipped_damaged_key) >= 1);
    let kept: String = con.get(world.keys().universe(2)).await.expect("GET");
    assert_eq!(kept, "not a set");
}

#[tokio::test]
async fn intersections_name_a_wrong_typed_universe_both_ways() {
    let world = World::new("isolate-intersect:").await;
    let store = world.store().await;
    let mut con = world.connection().await;
    let _: () = con
        .set(world.keys().universe(9), "not a set")
        .await
        .expect("SET");
    for method in [Intersection::ClientSide, Intersection::AdaptiveLua] {
        match store.intersect(9, T0_MS, method).await {
            Err(StoreError::Damaged(d)) => {
                assert_eq!((d.strategy, d.found.as_str()), (9, "string"), "{method:?}");
                assert_eq!(d.key, world.keys().universe(9));
            }
            other => panic!("{method:?}: {other:?}"),
        }
    }
    let read = store
        .universes(&[9])
        .await
        .expect("one damaged key is not an error");
    assert!(
        matches!(&read[0], Err(d) if d.found == "string"),
        "{read:?}"
    );
}
