//! The catalog sweep, the safety resync spread over the steps: each step re-reads its share
//! of the catalog (all of it every `catalog_resync_ms`), so a writer that bypasses the change
//! log — a direct rewrite of an entry, a direct write of a universe — is taken in within the
//! period, and no step pays a full reload.

use std::collections::BTreeSet;

use redis::AsyncCommands;
use tickgate::config::EngineConfig;
use tickgate::core::catalog::CatalogEntry;
use tickgate::runtime::Metrics;
use tickgate::store::{Updates, WorkerSide};
use tickgate_suite::{T0_MS, TICK_MS, World, engine_config};

/// More entries than Redis keeps in a compact hash (128), so `HSCAN` pages really are pages.
const STRATEGIES: u64 = 300;

fn entry(id: u64, ticker: &str) -> CatalogEntry {
    CatalogEntry::new(id, 1, "swept", "1m", Some(vec![ticker.to_owned()]))
}

/// The strategies of the jobs workers can take now.
async fn dispatched(world: &World) -> BTreeSet<u64> {
    let jobs = world.market().take_jobs("w", 1_000).await.expect("take");
    jobs.iter()
        .map(|e| {
            let job: tickgate::core::jobs::Job =
                serde_json::from_str(e.payload.as_deref().expect("job")).expect("json");
            job.strategy_id
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_rewrites_are_taken_in_a_slice_per_step_within_the_period() {
    let world = World::builder("sweep:")
        .catalog((1..=STRATEGIES).map(|id| entry(id, "A")))
        .build()
        .await;
    let config = EngineConfig {
        // A third of the catalog per step.
        catalog_resync_ms: 3 * TICK_MS,
        ..engine_config("sweep-1")
    };
    let mut engine = world.engine(config).await;
    let metrics = engine.metrics().clone();
    // The first step loads the catalog and writes the universes; the second reads back
    // those writes through the change log.
    for k in 0..2 {
        assert!(engine.step(T0_MS + k * TICK_MS).await.ready);
    }
    assert_eq!(Metrics::get(&metrics.catalog_sweep_reapplied), 0);

    // The platform rewrites every entry directly (no change log, same field count): A → B.
    let mut con = world.connection().await;
    for id in 1..=STRATEGIES {
        let () = con
            .hset(world.keys().catalog(), id, entry(id, "B").to_json())
            .await
            .expect("HSET");
    }
    assert!(engine.step(T0_MS + 2 * TICK_MS).await.ready);
    let first = Metrics::get(&metrics.catalog_sweep_reapplied);
    assert!(
        first > 0 && first < STRATEGIES,
        "one step re-reads a slice, not the catalog: {first}"
    );
    // One whole scan later every entry is taken in, each once.
    for k in 3..=6 {
        assert!(engine.step(T0_MS + k * TICK_MS).await.ready);
    }
    assert_eq!(Metrics::get(&metrics.catalog_sweep_reapplied), STRATEGIES);

    // A direct write of one universe (a size the engine does not hold) is taken in too: the
    // universe written from the catalog is as new, so Redis's wins (DESIGN §2.3 step 2).
    let () = con.sadd(world.keys().universe(7), "C").await.expect("SADD");
    for k in 7..=10 {
        assert!(engine.step(T0_MS + k * TICK_MS).await.ready);
    }
    assert_eq!(
        Metrics::get(&metrics.catalog_sweep_reapplied),
        STRATEGIES + 1
    );
    dispatched(&world).await; // what the first minute dispatched
    let next_minute = T0_MS + 60_000;
    world
        .market()
        .record_updates(next_minute, &[("A", next_minute), ("C", next_minute)])
        .await
        .expect("record");
    assert!(engine.step(next_minute + TICK_MS).await.ready);
    assert_eq!(
        dispatched(&world).await,
        BTreeSet::from([7]),
        "A left every universe; C joined strategy 7's"
    );
}
