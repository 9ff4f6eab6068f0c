//! DESIGN §2.3, Isolation: a bad catalog entry, a key of the wrong type or an oversized
//! universe costs only its own strategy. Each test has two strategies, one poisoned: the
//! step stays ready, the healthy one dispatches its job, the poisoned one is counted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use redis::AsyncCommands;
use tickgate::StrategyId;
use tickgate::core::catalog::CatalogEntry;
use tickgate::runtime::{Engine, Metrics};
use tickgate::store::{Intersection, StoreError, Universes, Updates};
use tickgate_suite::{Rng, T0_MS, TICK_MS, Worker, World, engine_config};

/// Strategy 1 (healthy, universe `["A"]`) and strategy 2 (`universe2`), both 1m.
async fn world(namespace: &str, universe2: Vec<String>) -> World {
    World::builder(namespace)
        .catalog([
            CatalogEntry::new(1, 1, "healthy", "1m", Some(vec!["A".into()])),
            CatalogEntry::new(2, 2, "poisoned", "1m", Some(universe2)),
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
    let world = world("isolate-big:", big).await;
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
    let world = world("isolate-last:", vec!["B".into()]).await;
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
async fn a_wrong_typed_universe_skips_only_its_strategy() {
    let world = world("isolate-univ:", vec!["B".into()]).await;
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
