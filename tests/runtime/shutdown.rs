//! Shutdown of the production driver: passed in as a future (mini-redis style), idempotent,
//! and bounded by its deadline even when a step is stuck on a frozen Redis.
//!
//! The service runs on an [`ObservedClock`] (a manual clock that reports its sleepers), so
//! the test knows when a step has begun or finished from what the service itself does —
//! never from a sleep, a yield or a wall-clock bound.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tickgate::config::EngineConfig;
use tickgate::core::catalog::CatalogEntry;
use tickgate::runtime::{AlertService, Metrics};
use tickgate::store::Updates;
use tickgate_suite::{
    ObservedClock, Rng, T0_MS, TICK_MS, Worker, World, engine_config, market_updates,
    random_catalog, ticker_names,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_future_stops_every_task_and_no_step_follows() {
    let mut rng = Rng(5);
    let pool = ticker_names(20);
    let entries = random_catalog(&mut rng, 10, &pool);
    let world = World::builder("shutdown:").catalog(entries).build().await;
    let clock = ObservedClock::new(T0_MS - 1);
    let service = Arc::new(AlertService::new(
        world.store().await,
        clock.clone(),
        engine_config("shutdown-1"),
    ));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = {
        let service = service.clone();
        tokio::spawn(async move { service.run(async { stop_rx.await.unwrap_or(()) }).await })
    };
    let mut jobs = 0;
    for k in 0..5 {
        let now = T0_MS + k * TICK_MS;
        let batch = market_updates(&mut rng, &pool, now, 10);
        world
            .market()
            .record_updates(now, &batch)
            .await
            .expect("record");
        clock.advance_to(now);
        // The engine loop sleeps until the next step once this one is done.
        clock.requested(now + TICK_MS).await;
        assert!(service.is_ready(), "step {k}");
        let round = Worker::PERFECT.round(world.market(), &mut rng, &pool).await;
        jobs += round.dispatched.len();
    }
    let metrics = service.metrics();
    let steps = Metrics::get(&metrics.ticks);
    assert!(
        jobs > 0 && steps == 5 && service.is_running(),
        "{jobs} jobs, {steps} steps"
    );
    stop_tx.send(()).expect("service listens");
    running.await.expect("run returned");
    assert!(!service.is_running() && !service.is_ready());
    service.stop().await; // idempotent
    assert!(!service.is_running());

    // Every task has ended: nothing sleeps on the clock, so no step can follow. Time goes
    // on and updates arrive: nothing is dispatched.
    assert_eq!(clock.sleepers(), 0, "a task still waits for the clock");
    let later = T0_MS + 50 * TICK_MS;
    let batch = market_updates(&mut rng, &pool, later, 30);
    world
        .market()
        .record_updates(later, &batch)
        .await
        .expect("record");
    clock.advance_to(later);
    let round = Worker::PERFECT.round(world.market(), &mut rng, &pool).await;
    assert!(round.dispatched.is_empty());
    assert_eq!(Metrics::get(&metrics.ticks), steps, "a step after shutdown");
    assert!(!clock.was_requested(later + TICK_MS));
}

/// A step on a frozen Redis waits this long for an answer: far longer than the test, so the
/// step can only end by being aborted.
const FROZEN_RESPONSE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long `stop()` may wait for a step before aborting it.
const SHUTDOWN_DEADLINE_MS: u64 = 300;
/// A hang guard, not a benchmark: `stop()` must return long before the frozen step could.
const HANG_GUARD: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_returns_at_its_deadline_while_a_step_is_stuck() {
    let universe = Some(vec!["A".into()]);
    let world = World::builder("")
        .dedicated()
        .catalog([CatalogEntry::new(1, 1, "one", "1m", universe)])
        .build()
        .await;
    let mut store_config = world.store_config();
    store_config.response_timeout = FROZEN_RESPONSE_TIMEOUT;
    let config = EngineConfig {
        shutdown_deadline_ms: SHUTDOWN_DEADLINE_MS,
        ..engine_config("stuck-1")
    };
    let clock = ObservedClock::new(T0_MS - 1);
    let service = AlertService::new(world.store_with(&store_config).await, clock.clone(), config);
    service.start();
    clock.advance_to(T0_MS);
    clock.requested(T0_MS + TICK_MS).await;
    assert!(service.is_ready());
    let metrics = service.metrics();
    let steps = Metrics::get(&metrics.ticks);

    world.server().pause().await.expect("pause");
    let stuck_at = T0_MS + TICK_MS;
    clock.advance_to(stuck_at);
    // The sleep for `stuck_at` woke: that step has begun, and waits on the frozen Redis.
    clock.woken(stuck_at).await;
    let started = Instant::now();
    tokio::time::timeout(HANG_GUARD, service.stop())
        .await
        .expect("stop() returned: the stuck step was aborted");
    let took = started.elapsed();
    world.server().resume().await.expect("resume");
    println!("stop() with a step stuck on a paused Redis returned after {took:?}");

    assert!(!service.is_running() && !service.is_ready());
    // The step was aborted, not finished: it neither failed nor completed, and the loop
    // never went on to wait for the step after it.
    assert_eq!(
        Metrics::get(&metrics.tick_errors),
        0,
        "the step ran to an error"
    );
    assert_eq!(
        Metrics::get(&metrics.ticks),
        steps,
        "the step ran to its end"
    );
    assert!(!clock.was_requested(stuck_at + TICK_MS));
    assert_eq!(clock.sleepers(), 0, "a task outlived stop()");
    // And stop() gave the step its deadline first (tokio's timers never fire early).
    assert!(
        took >= Duration::from_millis(SHUTDOWN_DEADLINE_MS),
        "stop took only {took:?}"
    );
}
