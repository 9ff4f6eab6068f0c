//! The service's clock-skew check: Redis expires trigger hashes on its own clock with TTLs
//! computed from the engine's, so an instance whose clock is far ahead would let its claims
//! expire while their bucket is still open (a duplicate later). An instance further from
//! Redis's clock than `max_clock_skew_ms`, ahead or behind, takes no step and is not ready
//! until its clock agrees again; the gauge says by how much.
//!
//! The service runs on an [`ObservedClock`] placed relative to Redis's `TIME`: the test
//! knows a tick was handled when the loop asks to sleep until the next one.

use std::sync::atomic::Ordering;

use tickgate::config::EngineConfig;
use tickgate::core::catalog::CatalogEntry;
use tickgate::core::time::MINUTE_MS;
use tickgate::runtime::{AlertService, Metrics, next_multiple};
use tickgate::store::Updates;
use tickgate_suite::{ObservedClock, Rng, TICK_MS, Worker, World, engine_config, ticker_names};

/// The bound under test: far above the drift of the stopped test clock from Redis's running
/// one while the test runs (seconds), far below the offsets the test applies.
const MAX_SKEW_MS: i64 = MINUTE_MS;
/// How far the test puts the clock from Redis's.
const OFF_MS: i64 = 5 * MINUTE_MS;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_far_from_redis_takes_no_step_until_it_agrees() {
    let universe = Some(vec!["A".to_owned()]);
    let world = World::builder("skew:")
        .catalog([CatalogEntry::new(1, 1, "one", "1m", universe)])
        .build()
        .await;
    let (secs, micros): (i64, i64) = redis::cmd("TIME")
        .query_async(&mut world.connection().await)
        .await
        .expect("TIME");
    let in_sync = next_multiple(secs * 1_000 + micros / 1_000, TICK_MS);
    let behind = in_sync - OFF_MS;
    let clock = ObservedClock::new(behind - 1);
    let config = EngineConfig {
        max_clock_skew_ms: Some(MAX_SKEW_MS),
        ..engine_config("skew-1")
    };
    let service = AlertService::new(world.store().await, clock.clone(), config);
    let metrics = service.metrics();
    let market = world.market();
    let mut rng = Rng(11);
    let pool = ticker_names(1);
    service.start();

    // Five minutes behind Redis: the tick passes without a step.
    market
        .record_updates(behind, &[("A", behind)])
        .await
        .expect("record");
    clock.advance_to(behind);
    clock.requested(behind + TICK_MS).await;
    let skew_ms = metrics.clock_skew_ms.load(Ordering::Relaxed);
    assert!((skew_ms + OFF_MS).abs() < MAX_SKEW_MS, "skew {skew_ms} ms");
    assert!(!service.is_ready());
    assert_eq!(
        Metrics::get(&metrics.ticks),
        0,
        "a step with a skewed clock"
    );
    assert_eq!(Metrics::get(&metrics.clock_skew_skips), 1);
    let round = Worker::PERFECT.round(market, &mut rng, &pool).await;
    assert!(round.dispatched.is_empty(), "{:?}", round.dispatched);

    // In agreement: steps again.
    market
        .record_updates(in_sync, &[("A", in_sync)])
        .await
        .expect("record");
    clock.advance_to(in_sync);
    clock.requested(in_sync + TICK_MS).await;
    assert!(metrics.clock_skew_ms.load(Ordering::Relaxed).abs() < MAX_SKEW_MS);
    assert!(service.is_ready());
    assert_eq!(Metrics::get(&metrics.ticks), 1);
    let round = Worker::PERFECT.round(market, &mut rng, &pool).await;
    assert_eq!(round.dispatched.len(), 1, "{:?}", round.dispatched);

    // Five minutes ahead: no step again, and not ready.
    let ahead = in_sync + OFF_MS;
    market
        .record_updates(ahead, &[("A", ahead)])
        .await
        .expect("record");
    clock.advance_to(ahead);
    clock.requested(ahead + TICK_MS).await;
    let skew_ms = metrics.clock_skew_ms.load(Ordering::Relaxed);
    assert!((skew_ms - OFF_MS).abs() < MAX_SKEW_MS, "skew {skew_ms} ms");
    assert!(!service.is_ready());
    assert_eq!(
        Metrics::get(&metrics.ticks),
        1,
        "a step with a skewed clock"
    );
    assert_eq!(Metrics::get(&metrics.clock_skew_skips), 2);
    let round = Worker::PERFECT.round(market, &mut rng, &pool).await;
    assert!(round.dispatched.is_empty(), "{:?}", round.dispatched);
    service.stop().await;
}
