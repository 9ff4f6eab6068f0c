//! Two and three engine instances on one Redis, 500 ticks of random updates: together they
//! dispatch every (strategy, ticker, bucket) of the oracle exactly once — no duplicate, no
//! miss — although each plans on its own.

use std::collections::BTreeSet;

use tickgate::clock::ManualClock;
use tickgate::jobs::JobMode;
use tickgate::service::AlertService;
use tickgate::store::Store;

use crate::e2e::{T0_MS, TICK_MS, catalog, config, tickers, updates};
use crate::harness::{Oracle, Rng, Worker};

const TICKS: i64 = 500;

async fn instances_dispatch_exactly_once(n: usize) {
    let server = tickgate_suite::redis().await;
    let namespace = format!("multi{n}:");
    let market = tickgate_suite::store(&server, &namespace).await;
    let mut rng = Rng(7 + n as u64);
    let pool = tickers(80);
    let entries = catalog(&mut rng, 60, &pool);
    for (id, json) in &entries {
        market
            .catalog_write(*id, Some(json), None)
            .await
            .expect("catalog");
    }
    let mut oracle = Oracle::new(true, &entries);
    let clock = ManualClock::new(T0_MS - 1);
    let mut services = Vec::new();
    for i in 0..n {
        let store = tickgate_suite::store(&server, &namespace).await;
        let service = AlertService::new(store, clock.clone(), config(&format!("engine-{i}")));
        service.start();
        services.push(service);
    }
    let worker = Worker {
        fail_percent: 0,
        discover_percent: 0,
    };
    let (mut seen, mut want) = (Vec::new(), BTreeSet::new());
    for k in 0..TICKS {
        let now = T0_MS + k * TICK_MS;
        let batch = updates(&mut rng, &pool, now, 12);
        market.record_updates(&batch).await.expect("record");
        oracle.record(&batch);
        clock.advance_to(now);
        for s in &services {
            s.wait_for_step(now).await;
        }
        let round = worker.round(&market, &mut rng, &pool).await;
        seen.extend(round.per_ticker);
        for (id, start, mode, symbols) in oracle.tick(now).0 {
            if mode == JobMode::PerTicker {
                want.extend(symbols.into_iter().map(|t| (id, start, t)));
            }
        }
    }
    for s in &services {
        s.stop().await;
    }
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    println!(
        "{n} instances: {} per-ticker dispatches, {} unique, oracle {}",
        seen.len(),
        unique.len(),
        want.len()
    );
    assert_eq!(
        seen.len(),
        unique.len(),
        "a (strategy, ticker, bucket) was dispatched twice"
    );
    let missing: Vec<_> = want.difference(&unique).take(5).collect();
    let extra: Vec<_> = unique.difference(&want).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    assert!(want.len() > 1_000, "the run exercised enough dispatches");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_dispatch_exactly_once() {
    instances_dispatch_exactly_once(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_dispatch_exactly_once() {
    instances_dispatch_exactly_once(3).await;
}
