//! DESIGN §2.3 step 2, precedence: the newest write of a universe wins. A catalog write
//! (here a direct `HSET` of a changed entry, seen at the next resync) replaces the Redis
//! universe; a discovery replaces it at once and reaches the catalog through the persister,
//! which never overwrites a newer catalog edit.

use std::collections::{BTreeMap, BTreeSet};

use redis::AsyncCommands;
use tickgate::core::catalog::CatalogEntry;
use tickgate::runtime::Engine;
use tickgate::store::{Catalog, RedisStore, Universes, Updates};
use tickgate::{StrategyId, Ticker};
use tickgate_suite::{Rng, T0_MS, TICK_MS, Worker, World, engine_config, persist};

fn entry(universe: &[&str]) -> CatalogEntry {
    let universe = universe.iter().map(|t| (*t).to_owned()).collect();
    CatalogEntry::new(1, 1, "edited", "1m", Some(universe))
}

/// Updates `tickers` just before step `k`, steps, and returns what the worker took.
async fn step(
    world: &World,
    engine: &mut Engine<RedisStore>,
    k: i64,
    tickers: &[&str],
    worker: &Worker,
    pool: &[String],
) -> BTreeMap<StrategyId, BTreeSet<String>> {
    let now = T0_MS + k * TICK_MS;
    let updates: Vec<(&str, i64)> = tickers.iter().map(|t| (*t, now - 1)).collect();
    if !updates.is_empty() {
        world
            .market()
            .record_updates(now, &updates)
            .await
            .expect("record");
    }
    assert!(engine.step(now).await.ready, "step {k}");
    let round = worker.round(world.market(), &mut Rng(k as u64), pool).await;
    let mut jobs: BTreeMap<StrategyId, BTreeSet<String>> = BTreeMap::new();
    for (strategy, _, _, symbols) in round.dispatched {
        jobs.entry(strategy).or_default().extend(symbols);
    }
    jobs
}

fn jobs(symbols: &[&str]) -> BTreeMap<StrategyId, BTreeSet<String>> {
    [(1, symbols.iter().map(|s| (*s).to_owned()).collect())].into()
}

#[tokio::test]
async fn a_catalog_edit_of_a_universe_replaces_the_one_in_redis() {
    let world = World::builder("precedence-edit:")
        .catalog([entry(&["A"])])
        .build()
        .await;
    let mut config = engine_config("precedence-edit");
    // Every step reloads the catalog, so a direct HSET is seen at the next one.
    config.catalog_resync_ms = TICK_MS;
    let mut engine = world.engine(config).await;
    let perfect = Worker::PERFECT;
    let none: &[String] = &[];
    assert_eq!(
        step(&world, &mut engine, 1, &["A"], &perfect, none).await,
        jobs(&["A"])
    );
    // The platform rewrites the entry directly (no change log): A → B.
    let mut con = world.connection().await;
    let _: () = con
        .hset(world.keys().catalog(), 1, entry(&["B"]).to_json())
        .await
        .expect("HSET");
    // The next minute's bucket: B dispatches, A does not (it is no longer in the universe).
    let k = 60_000 / TICK_MS + 1;
    let got = step(&world, &mut engine, k, &["A", "B"], &perfect, none).await;
    assert_eq!(got, jobs(&["B"]));
    let redis = world.market().universes(&[1]).await.expect("read");
    assert_eq!(
        redis[0].as_ref().expect("a set"),
        &Some([Ticker::parse("B").expect("ticker")].into())
    );
}

#[tokio::test]
async fn a_discovery_never_overwrites_a_newer_catalog_edit() {
    let world = World::builder("precedence-discovery:")
        .catalog([entry(&["A"])])
        .build()
        .await;
    let mut engine = world.engine(engine_config("precedence-discovery")).await;
    // Every job reports used_symbols ["C"].
    let discovering = Worker {
        fail_percent: 0,
        discover_percent: 100,
    };
    let pool = ["C".to_owned()];
    assert_eq!(
        step(&world, &mut engine, 1, &["A"], &discovering, &pool).await,
        jobs(&["A"])
    );
    // Step 2 settles the result: the universe is ["C"] in Redis at once, queued for the
    // catalog. Before the persister runs, the platform edits the universe to ["B"].
    step(&world, &mut engine, 2, &[], &Worker::PERFECT, &pool).await;
    let redis = world.market().universes(&[1]).await.expect("read");
    assert_eq!(
        redis[0].as_ref().expect("a set"),
        &Some([Ticker::parse("C").expect("ticker")].into())
    );
    let edited = entry(&["B"]).to_json();
    world
        .market()
        .catalog_write(1, Some(&edited), None)
        .await
        .expect("edit");
    persist(&engine).await;
    let catalog = world.market().catalog_get(&[1]).await.expect("read");
    assert_eq!(
        catalog[0].as_deref(),
        Some(edited.as_str()),
        "the edit is newer"
    );
    // And the engine follows the edit: B dispatches (next bucket), C does not.
    let k = 60_000 / TICK_MS + 1;
    let got = step(&world, &mut engine, k, &["B", "C"], &Worker::PERFECT, &pool).await;
    assert_eq!(got, jobs(&["B"]));
}

#[tokio::test]
async fn a_discovery_reaches_the_catalog_and_outlives_the_resync() {
    let world = World::builder("precedence-persist:")
        .catalog([entry(&["A"])])
        .build()
        .await;
    let mut config = engine_config("precedence-persist");
    config.catalog_resync_ms = TICK_MS;
    let mut engine = world.engine(config).await;
    let discovering = Worker {
        fail_percent: 0,
        discover_percent: 100,
    };
    let pool = ["C".to_owned()];
    step(&world, &mut engine, 1, &["A"], &discovering, &pool).await;
    step(&world, &mut engine, 2, &[], &Worker::PERFECT, &pool).await;
    persist(&engine).await;
    let catalog = world.market().catalog_get(&[1]).await.expect("read");
    let persisted = catalog[0].clone().expect("entry");
    assert!(persisted.contains(r#""universe":["C"]"#), "{persisted}");
    // Reloads (every step) keep the discovered universe: C dispatches, A does not.
    let k = 60_000 / TICK_MS + 1;
    let got = step(&world, &mut engine, k, &["A", "C"], &Worker::PERFECT, &pool).await;
    assert_eq!(got, jobs(&["C"]));
}

#[tokio::test]
async fn a_discovery_replaces_a_missing_universe_across_reloads_and_reaches_the_catalog() {
    // No valid ticker: the strategy runs whole (a missing universe) until a discovery.
    let world = World::builder("precedence-missing:")
        .catalog([entry(&["not valid"])])
        .build()
        .await;
    let mut config = engine_config("precedence-missing");
    config.catalog_resync_ms = TICK_MS;
    let mut engine = world.engine(config).await;
    let discovering = Worker {
        fail_percent: 0,
        discover_percent: 100,
    };
    let pool = ["C".to_owned()];
    let whole = step(&world, &mut engine, 1, &["A"], &discovering, &pool).await;
    assert_eq!(whole, jobs(&[]), "a whole-strategy run");
    // Step 2 settles the result: the universe is ["C"]. The next steps reload the entry
    // (still without a valid ticker) before the persister runs: the discovery is newer.
    step(&world, &mut engine, 2, &[], &Worker::PERFECT, &pool).await;
    let k = 60_000 / TICK_MS + 1;
    let got = step(&world, &mut engine, k, &["A", "C"], &Worker::PERFECT, &pool).await;
    assert_eq!(got, jobs(&["C"]), "the discovered universe, per ticker");
    persist(&engine).await;
    let catalog = world.market().catalog_get(&[1]).await.expect("read");
    let persisted = catalog[0].clone().expect("entry");
    assert!(persisted.contains(r#""universe":["C"]"#), "{persisted}");
    let k = 2 * 60_000 / TICK_MS + 1;
    let got = step(&world, &mut engine, k, &["A", "C"], &Worker::PERFECT, &pool).await;
    assert_eq!(got, jobs(&["C"]), "after the persister wrote it");
}
