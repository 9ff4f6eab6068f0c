//! DESIGN §2.3: an update time more than `max_future_ms` ahead of the engine's clock, found
//! in Redis (a direct `ZADD` bypasses the record script's check), is ignored and counted —
//! not dispatched, while a ticker beside it is — and is dispatched once the clock comes
//! within the bound of it (`ZADD GT` never lowers it, so trusting it would pin the ticker).

use std::collections::BTreeSet;

use super::{per_ticker_jobs, symbols};
use tickgate::core::catalog::CatalogEntry;
use tickgate::core::time::{DAY_MS, MINUTE_MS};
use tickgate::limits::DEFAULT_MAX_FUTURE_MS;
use tickgate::runtime::Metrics;
use tickgate::store::Updates;
use tickgate_suite::{Rng, T0_MS, TICK_MS, World, engine_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stamp_too_far_ahead_in_redis_is_ignored_and_counted_until_its_time_comes() {
    let universe = Some(vec!["A".to_owned(), "B".to_owned()]);
    let world = World::builder("future:")
        .catalog([CatalogEntry::new(1, 7, "one minute", "1m", universe)])
        .build()
        .await;
    let mut engine = world.engine(engine_config("future-1")).await;
    let mut rng = Rng(5);
    // A direct writer stamps A a day ahead; the market records B normally.
    let bogus = T0_MS + DAY_MS;
    let _: () = redis::cmd("ZADD")
        .arg(world.keys().updates())
        .arg(bogus)
        .arg("A")
        .query_async(&mut world.connection().await)
        .await
        .expect("ZADD");
    let now = T0_MS + TICK_MS;
    world
        .market()
        .record_updates(now, &[("B", now - 1)])
        .await
        .expect("record");
    assert!(engine.step(now).await.ready);
    assert_eq!(
        per_ticker_jobs(&world, &mut rng).await,
        BTreeSet::from([(T0_MS, symbols(&["B"]))]),
        "A's time is too far ahead: only B runs"
    );
    let future_stamps = || Metrics::get(&engine.metrics().future_stamps);
    assert_eq!(future_stamps(), 1);

    // Re-examined every tick, still ignored, counted once per time read.
    for k in 2..5 {
        assert!(engine.step(T0_MS + k * TICK_MS).await.ready);
    }
    assert!(per_ticker_jobs(&world, &mut rng).await.is_empty());
    assert_eq!(Metrics::get(&engine.metrics().future_stamps), 1);

    // Once the clock is within the bound of it, A's time counts: it is an update in the
    // current bucket.
    let later = bogus - DEFAULT_MAX_FUTURE_MS;
    assert!(engine.step(later).await.ready);
    let start = later.div_euclid(MINUTE_MS) * MINUTE_MS;
    assert_eq!(
        per_ticker_jobs(&world, &mut rng).await,
        BTreeSet::from([(start, symbols(&["A"]))])
    );
    assert_eq!(Metrics::get(&engine.metrics().future_stamps), 1);
}
