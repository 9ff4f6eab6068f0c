//! Redis faults: paused longer than the command timeout, then stopped and restarted empty.
//! The service keeps running, reports not-ready while Redis is gone, restores the catalog
//! and universes from memory, and afterwards dispatches exactly what the oracle says.

use std::time::Duration;

use tickgate::clock::ManualClock;
use tickgate::service::AlertService;
use tickgate::store::{RedisStore, Store};

use crate::e2e::{T0_MS, TICK_MS, catalog, config, tickers, updates};
use crate::harness::{Oracle, Rng, Worker, merged};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_survives_a_paused_and_a_restarted_redis() {
    let mut server = tickgate_suite::dedicated_redis().await;
    let market = tickgate_suite::store(&server, "").await;
    let mut rng = Rng(99);
    let pool = tickers(50);
    let entries = catalog(&mut rng, 30, &pool);
    for (id, json) in &entries {
        market
            .catalog_write(*id, Some(json), None)
            .await
            .expect("catalog");
    }
    let mut oracle = Oracle::new(true, &entries);
    let clock = ManualClock::new(T0_MS - 1);
    let mut store_config = tickgate_suite::store_config(&server, "");
    // Short timeouts, so the outage is noticed quickly.
    store_config.response_timeout = Duration::from_millis(300);
    store_config.connect_timeout = Duration::from_millis(300);
    store_config.reconnect_retries = 1;
    let engine = RedisStore::connect(&store_config).await.expect("connect");
    let service = AlertService::new(engine, clock.clone(), config("faults-1"));
    service.start();
    let worker = Worker {
        fail_percent: 5,
        discover_percent: 0,
    };
    let mut k = 0;
    let healthy_ticks = async |k: &mut i64, n: i64, oracle: &mut Oracle, rng: &mut Rng| {
        for _ in 0..n {
            let now = T0_MS + *k * TICK_MS;
            *k += 1;
            let batch = updates(rng, &pool, now, 10);
            // The market's own connection may have broken in the outage: one retry
            // reconnects it (a failed write wrote nothing).
            if market.record_updates(&batch).await.is_err() {
                market
                    .record_updates(&batch)
                    .await
                    .expect("record after reconnect");
            }
            oracle.record(&batch);
            clock.advance_to(now);
            service.wait_for_step(now).await;
            assert!(service.is_ready(), "not ready at {now}");
            let round = worker.round(service.store(), rng, &pool).await;
            assert_eq!(
                merged(&round.dispatched),
                merged(&oracle.tick(now).0),
                "at {now}"
            );
            round.failed.iter().for_each(|job| oracle.fail(job));
        }
    };
    healthy_ticks(&mut k, 20, &mut oracle, &mut rng).await;

    // Paused: the step fails on the response timeout; the service stays up, not ready.
    server.pause().await.expect("pause");
    let now = T0_MS + k * TICK_MS;
    k += 1;
    clock.advance_to(now);
    service.wait_for_step(now).await;
    assert!(!service.is_ready(), "ready while Redis is paused");
    assert!(service.is_running());
    server.resume().await.expect("resume");
    healthy_ticks(&mut k, 10, &mut oracle, &mut rng).await;

    // Stopped, then restarted empty: not ready while down; afterwards the catalog and the
    // universes are back, and decisions follow the (equally empty) oracle.
    let down_at = T0_MS + k * TICK_MS;
    k += 1;
    server
        .restart_empty(async {
            clock.advance_to(down_at);
            service.wait_for_step(down_at).await;
            assert!(!service.is_ready(), "ready while Redis is down");
        })
        .await
        .expect("restart");
    oracle.forget_redis_state();
    healthy_ticks(&mut k, 20, &mut oracle, &mut rng).await;
    let restored = match market.catalog_all().await {
        Ok(c) => c,
        Err(_) => market.catalog_all().await.expect("catalog"),
    };
    assert_eq!(
        restored, entries,
        "the catalog was restored from the engine's memory"
    );
    service.stop().await;
    let errors = tickgate::metrics::Metrics::get(&service.metrics().tick_errors);
    assert!(errors >= 2, "the outages were counted ({errors})");
}
