//! The closing pass (DESIGN §2.3 step 6): an update after a bucket's last tick and before
//! its end is dispatched for that bucket at the first tick at or after its end — also when
//! a newer update of the same ticker, inside the next bucket, replaced it in `TICK:UPD`
//! before the engine read it, and also when another instance already claimed the next
//! bucket. And a damaged score costs only its ticker.

use std::collections::BTreeSet;

use super::{per_ticker_jobs, symbols};
use tickgate::core::catalog::CatalogEntry;
use tickgate::core::time::{MINUTE_MS, SECOND_MS};
use tickgate::store::{Store, Updates};
use tickgate_suite::{Rng, T0_MS, TICK_MS, World, engine_config};

/// One 1m strategy on `A`, `B` and `C`.
fn catalog() -> Vec<CatalogEntry> {
    let universe = Some(vec!["A".to_owned(), "B".to_owned(), "C".to_owned()]);
    vec![CatalogEntry::new(1, 7, "one minute", "1m", universe)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_after_the_last_tick_of_a_bucket_is_dispatched_at_its_end() {
    let world = World::builder("closing:").catalog(catalog()).build().await;
    let mut engine = world.engine(engine_config("closing-1")).await;
    let mut rng = Rng(3);
    let b = T0_MS; // bucket [T0, T0 + 1 min)
    // Ticks on 10 s multiples; the bucket's last is at :50 and sees nothing.
    for k in 0..6 {
        assert!(engine.step(b + k * TICK_MS).await.ready);
    }
    assert!(per_ticker_jobs(&world, &mut rng).await.is_empty());
    let market = world.market();
    // A at :55 and B at :58, after the last tick; then A again at :00.2 of the next
    // bucket, before the engine's next read: TICK:UPD holds only that one for A.
    let (end, late) = (b + MINUTE_MS, b + 55 * SECOND_MS);
    market
        .record_updates(end, &[("A", late)])
        .await
        .expect("record");
    market
        .record_updates(end, &[("B", late + 3_000)])
        .await
        .expect("record");
    market
        .record_updates(end + 200, &[("A", end + 200)])
        .await
        .expect("record");

    let report = engine.step(end + 500).await;
    assert!(report.ready);
    let want = BTreeSet::from([(b, symbols(&["A", "B"])), (end, symbols(&["A"]))]);
    assert_eq!(per_ticker_jobs(&world, &mut rng).await, want);
    // The closing pass is done: nothing more for the closed bucket, ever.
    market
        .record_updates(end + 500, &[("B", late + 4_000)])
        .await
        .expect("record");
    for k in 1..4 {
        assert!(engine.step(end + 500 + k * TICK_MS).await.ready);
    }
    assert!(per_ticker_jobs(&world, &mut rng).await.is_empty());
}

/// One instance closes a bucket and claims the next before an update stamped inside the
/// closed bucket reaches Redis (ingestion lag); a second instance, a little behind, reads it
/// in its own closing pass. The claims of the closed bucket must still be there to compare
/// with: it runs what the bucket never ran, and not what it did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_pass_after_another_instance_moved_on_runs_only_what_the_bucket_did_not() {
    let world = World::builder("closing-late:")
        .catalog(catalog())
        .build()
        .await;
    let mut ahead = world.engine(engine_config("closing-ahead")).await;
    let mut behind = world.engine(engine_config("closing-behind")).await;
    let mut rng = Rng(5);
    let market = world.market();
    let b = T0_MS; // bucket [T0, T0 + 1 min)
    market
        .record_updates(b + 5_000, &[("B", b + 5_000)])
        .await
        .expect("record");
    for k in 0..6 {
        assert!(ahead.step(b + k * TICK_MS).await.ready);
        assert!(behind.step(b + k * TICK_MS).await.ready);
    }
    let ran = BTreeSet::from([(b, symbols(&["B"]))]);
    assert_eq!(per_ticker_jobs(&world, &mut rng).await, ran);

    let end = b + MINUTE_MS;
    market
        .record_updates(end + 100, &[("C", b + 52_000), ("B", end + 100)])
        .await
        .expect("record");
    // `ahead` closes the bucket (C, after its last tick), then claims the next one (B).
    assert!(ahead.step(end + 200).await.ready);
    let next = BTreeSet::from([(b, symbols(&["C"])), (end, symbols(&["B"]))]);
    assert_eq!(per_ticker_jobs(&world, &mut rng).await, next);
    // Stamped inside the closed bucket, written only now: A never ran in it; B and C did
    // (B at :10, C in `ahead`'s closing pass, which `behind` never saw).
    market
        .record_updates(end + 300, &[("A", b + 55_000), ("B", b + 57_000)])
        .await
        .expect("record");
    assert!(behind.step(end + 500).await.ready);
    let closing = BTreeSet::from([(b, symbols(&["A"]))]);
    assert_eq!(per_ticker_jobs(&world, &mut rng).await, closing);
    // Both closing passes are done; the next bucket's B stays claimed once.
    for k in 1..4 {
        assert!(ahead.step(end + 500 + k * TICK_MS).await.ready);
        assert!(behind.step(end + 500 + k * TICK_MS).await.ready);
    }
    assert!(per_ticker_jobs(&world, &mut rng).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fractional_score_costs_only_its_ticker() {
    let world = World::builder("fraction:").catalog(catalog()).build().await;
    let mut engine = world.engine(engine_config("fraction-1")).await;
    let mut rng = Rng(4);
    // A direct writer's damaged score beside a good update.
    let _: () = redis::cmd("ZADD")
        .arg(world.keys().updates())
        .arg((T0_MS as f64) + 0.5)
        .arg("A")
        .query_async(&mut world.connection().await)
        .await
        .expect("ZADD");
    world
        .market()
        .record_updates(T0_MS + 1, &[("B", T0_MS + 1)])
        .await
        .expect("record");
    let report = engine.step(T0_MS + TICK_MS).await;
    assert!(report.ready, "one bad score must not fail the tick");
    assert_eq!(
        per_ticker_jobs(&world, &mut rng).await,
        BTreeSet::from([(T0_MS, symbols(&["B"]))])
    );
    let counters = engine.store().counters();
    let skipped = counters
        .invalid_scores
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(skipped, 1);
}
