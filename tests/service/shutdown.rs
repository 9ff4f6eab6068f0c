//! Shutdown: passed in as a future (mini-redis style), idempotent, and bounded by its
//! deadline even when a step is stuck on a frozen Redis.

use std::time::{Duration, Instant};

use tickgate::clock::ManualClock;
use tickgate::service::{AlertService, ServiceConfig};
use tickgate::store::{RedisStore, Store};

use crate::e2e::{T0_MS, TICK_MS, catalog, config, tickers, updates};
use crate::harness::{Rng, Worker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_future_stops_every_task_and_no_tick_follows() {
    let server = tickgate_suite::redis().await;
    let market = tickgate_suite::store(&server, "shutdown:").await;
    let mut rng = Rng(5);
    let pool = tickers(20);
    for (id, json) in catalog(&mut rng, 10, &pool) {
        market
            .catalog_write(id, Some(&json), None)
            .await
            .expect("catalog");
    }
    let clock = ManualClock::new(T0_MS - 1);
    let service = std::sync::Arc::new(AlertService::new(
        tickgate_suite::store(&server, "shutdown:").await,
        clock.clone(),
        config("shutdown-1"),
    ));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = {
        let service = service.clone();
        tokio::spawn(async move { service.run(async { stop_rx.await.unwrap_or(()) }).await })
    };
    let worker = Worker {
        fail_percent: 0,
        discover_percent: 0,
    };
    let mut jobs = 0;
    for k in 0..5 {
        let now = T0_MS + k * TICK_MS;
        market
            .record_updates(&updates(&mut rng, &pool, now, 10))
            .await
            .expect("record");
        clock.advance_to(now);
        service.wait_for_step(now).await;
        jobs += worker
            .round(&market, &mut rng, &pool)
            .await
            .dispatched
            .len();
    }
    assert!(jobs > 0 && service.is_running());
    stop_tx.send(()).expect("service listens");
    running.await.expect("run returned");
    assert!(!service.is_running() && !service.is_ready());
    service.stop().await; // idempotent

    // Time goes on, updates arrive: a stopped service dispatches nothing.
    let later = T0_MS + 50 * TICK_MS;
    market
        .record_updates(&updates(&mut rng, &pool, later, 30))
        .await
        .expect("record");
    clock.advance_to(later);
    tokio::task::yield_now().await;
    assert!(
        worker
            .round(&market, &mut rng, &pool)
            .await
            .dispatched
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_returns_within_its_deadline_while_a_step_is_stuck() {
    let server = tickgate_suite::dedicated_redis().await;
    let market = tickgate_suite::store(&server, "").await;
    market
        .catalog_write(
            1,
            Some(r#"{"id":1,"timeframe":"1m","universe":["A"]}"#),
            None,
        )
        .await
        .expect("catalog");
    let clock = ManualClock::new(T0_MS - 1);
    let mut store_config = tickgate_suite::store_config(&server, "");
    // A step on a frozen Redis waits 2 × 5 s for answers: far past the deadline below.
    store_config.response_timeout = Duration::from_secs(5);
    let engine = RedisStore::connect(&store_config).await.expect("connect");
    let config = ServiceConfig {
        shutdown_deadline_ms: 300,
        ..config("stuck-1")
    };
    let service = AlertService::new(engine, clock.clone(), config);
    service.start();
    clock.advance_to(T0_MS);
    service.wait_for_step(T0_MS).await;
    assert!(service.is_ready());

    server.pause().await.expect("pause");
    clock.advance_to(T0_MS + TICK_MS);
    service.wait_for_step_start(T0_MS + TICK_MS).await;
    let started = Instant::now();
    service.stop().await;
    let took = started.elapsed();
    server.resume().await.expect("resume");
    println!("stop() with a step stuck on a paused Redis returned after {took:?}");
    assert!(!service.is_running());
    // It did wait for the stuck step up to the deadline (the step was really in progress).
    assert!(
        took >= Duration::from_millis(300),
        "stop took only {took:?}"
    );
    // The deadline is the property under test: 300 ms, plus scheduling slack.
    assert!(
        took < Duration::from_millis(300 + 1_500),
        "stop took {took:?}"
    );
}
