//! Taking over from the original system on the same Redis (DESIGN §3): its ingestion keeps
//! writing `ZADD TICK:UPD GT` directly (no sequence number), and its `STRAT:<id>:LAST`
//! hashes (ticker → bucket start, no bookkeeping fields) say what it already dispatched.
//! A direct write is seen at the next tick, and nothing the original dispatched in the open
//! bucket is dispatched again.

use std::collections::BTreeSet;

use super::{per_ticker_jobs, symbols};
use tickgate::core::catalog::CatalogEntry;
use tickgate::core::time::{MINUTE_MS, SECOND_MS};
use tickgate_suite::{Rng, T0_MS, TICK_MS, World, engine_config};

/// The original's ingestion: `ZADD TICK:UPD GT ts ticker`.
async fn direct_write(world: &World, ticker: &str, ts_ms: i64) {
    let _: i64 = redis::cmd("ZADD")
        .arg(world.keys().updates())
        .arg("GT")
        .arg(ts_ms)
        .arg(ticker)
        .query_async(&mut world.connection().await)
        .await
        .expect("ZADD");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_originals_writers_are_seen_within_a_tick_and_its_dispatches_honoured() {
    let universe = Some(vec!["A".to_owned(), "B".to_owned()]);
    let world = World::builder("takeover:")
        .catalog([CatalogEntry::new(1, 7, "one minute", "1m", universe)])
        .build()
        .await;
    let mut engine = world.engine(engine_config("takeover-1")).await;
    let mut rng = Rng(8);
    let b = T0_MS; // bucket [T0, T0 + 1 min)
    assert!(engine.step(b).await.ready);
    assert!(per_ticker_jobs(&world, &mut rng).await.is_empty());

    // The original wrote both updates and already ran A in this bucket.
    direct_write(&world, "A", b + 5 * SECOND_MS).await;
    direct_write(&world, "B", b + 6 * SECOND_MS).await;
    let _: i64 = redis::cmd("HSET")
        .arg(world.keys().triggers(1))
        .arg("A")
        .arg(b)
        .query_async(&mut world.connection().await)
        .await
        .expect("HSET");
    assert!(engine.step(b + TICK_MS).await.ready);
    let want = BTreeSet::from([(b, symbols(&["B"]))]);
    assert_eq!(per_ticker_jobs(&world, &mut rng).await, want);

    // The next bucket: a direct write is dispatched at the next tick, once.
    let next = b + MINUTE_MS;
    for k in 2..6 {
        assert!(engine.step(b + k * TICK_MS).await.ready);
    }
    direct_write(&world, "A", next + SECOND_MS).await;
    assert!(engine.step(next).await.ready); // its read came before the write's stamp
    assert!(engine.step(next + TICK_MS).await.ready);
    let want = BTreeSet::from([(next, symbols(&["A"]))]);
    assert_eq!(per_ticker_jobs(&world, &mut rng).await, want);
    assert!(engine.step(next + 2 * TICK_MS).await.ready);
    assert!(per_ticker_jobs(&world, &mut rng).await.is_empty());
}
