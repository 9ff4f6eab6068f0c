//! DESIGN §9: after Redis lost its state, the engine writes back only what is missing —
//! never over what the platform wrote meanwhile, never reviving a strategy the platform
//! deleted while Redis was up.

use std::collections::{BTreeMap, BTreeSet};

use redis::AsyncCommands;
use tickgate::StrategyId;
use tickgate::core::catalog::CatalogEntry;
use tickgate::runtime::Engine;
use tickgate::store::{Catalog, RedisStore, Updates};
use tickgate_suite::{Rng, T0_MS, TICK_MS, Worker, World, engine_config};

fn entry(id: StrategyId, name: &str, universe: &str) -> CatalogEntry {
    CatalogEntry::new(id, id, name, "1m", Some(vec![universe.to_owned()]))
}

/// Updates `tickers` just before step `k`, steps, and returns the symbols dispatched per
/// strategy.
async fn step(
    world: &World,
    engine: &mut Engine<RedisStore>,
    k: i64,
    tickers: &[&str],
) -> BTreeMap<StrategyId, BTreeSet<String>> {
    let now = T0_MS + k * TICK_MS;
    let updates: Vec<(&str, i64)> = tickers.iter().map(|t| (*t, now - 1)).collect();
    world
        .market()
        .record_updates(now, &updates)
        .await
        .expect("record");
    assert!(engine.step(now).await.ready, "step {k}");
    let round = Worker::PERFECT
        .round(world.market(), &mut Rng(1), &[])
        .await;
    let mut jobs: BTreeMap<StrategyId, BTreeSet<String>> = BTreeMap::new();
    for (strategy, _, _, symbols) in round.dispatched {
        jobs.entry(strategy).or_default().extend(symbols);
    }
    jobs
}

async fn flushall(world: &World) {
    let mut con = world.connection().await;
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut con)
        .await
        .expect("FLUSHALL");
}

fn jobs(of: &[(StrategyId, &str)]) -> BTreeMap<StrategyId, BTreeSet<String>> {
    of.iter()
        .map(|(id, t)| (*id, [(*t).to_owned()].into()))
        .collect()
}

#[tokio::test]
async fn the_platforms_write_after_a_loss_wins_over_the_engines_memory() {
    let world = World::builder("")
        .dedicated()
        .catalog([entry(1, "old", "A"), entry(2, "kept", "B")])
        .build()
        .await;
    let mut engine = world.engine(engine_config("restore-newer")).await;
    assert_eq!(
        step(&world, &mut engine, 1, &["A", "B"]).await,
        jobs(&[(1, "A"), (2, "B")])
    );
    flushall(&world).await;
    // Before the engine's next step, the platform rewrites strategy 1 (universe C).
    let newer = entry(1, "new", "C").to_json();
    world
        .market()
        .catalog_write(1, Some(&newer), None)
        .await
        .expect("write");
    let k = 60_000 / TICK_MS + 1;
    // The first step after the loss writes claims back and dispatches nothing (DESIGN §9).
    assert_eq!(
        step(&world, &mut engine, k, &["A", "B", "C"]).await,
        jobs(&[])
    );
    let got = step(&world, &mut engine, k + 1, &["A", "B", "C"]).await;
    assert_eq!(got, jobs(&[(1, "C"), (2, "B")]));
    let catalog = world.market().catalog_all().await.expect("read");
    assert_eq!(
        catalog.get(&1),
        Some(&newer),
        "the platform's entry was overwritten"
    );
    assert_eq!(
        catalog.get(&2),
        world.catalog().get(&2),
        "the lost entry is back"
    );
}

#[tokio::test]
async fn a_strategy_deleted_while_redis_was_up_is_never_revived() {
    let world = World::builder("")
        .dedicated()
        .catalog([entry(1, "kept", "A"), entry(2, "deleted", "B")])
        .build()
        .await;
    let mut engine = world.engine(engine_config("restore-deleted")).await;
    assert_eq!(
        step(&world, &mut engine, 1, &["A", "B"]).await,
        jobs(&[(1, "A"), (2, "B")])
    );
    // A step that finds nothing new (its change log holds only the engine's own writes).
    step(&world, &mut engine, 2, &[]).await;
    // The platform deletes strategy 2 directly (no change log) while Redis is up; the
    // engine steps once; then Redis loses everything.
    let mut con = world.connection().await;
    let _: () = con.hdel(world.keys().catalog(), 2).await.expect("HDEL");
    step(&world, &mut engine, 3, &[]).await;
    flushall(&world).await;
    let k = 60_000 / TICK_MS + 1;
    assert_eq!(step(&world, &mut engine, k, &["A", "B"]).await, jobs(&[]));
    let got = step(&world, &mut engine, k + 1, &["A", "B"]).await;
    assert_eq!(got, jobs(&[(1, "A")]));
    let catalog = world.market().catalog_all().await.expect("read");
    assert_eq!(catalog.keys().copied().collect::<Vec<_>>(), vec![1]);
}
