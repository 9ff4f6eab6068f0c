//! Two and three engine instances on one Redis, 500 steps of random updates, every step
//! taken by all instances at once: together they dispatch every (strategy, ticker, bucket)
//! of the oracle exactly once — no duplicate, no miss — although each plans on its own.

use std::collections::BTreeSet;

use tickgate::core::jobs::JobMode;
use tickgate::store::Updates;
use tickgate_suite::{
    Rng, T0_MS, TICK_MS, Worker, World, engine_config, market_updates, random_catalog, step_all,
    ticker_names,
};

const STEPS: i64 = 500;

async fn instances_dispatch_exactly_once(n: usize) {
    let mut rng = Rng(7 + n as u64);
    let pool = ticker_names(80);
    let entries = random_catalog(&mut rng, 60, &pool);
    let world = World::builder(&format!("multi{n}:"))
        .catalog(entries)
        .build()
        .await;
    let mut oracle = world.oracle(true);
    let mut engines = Vec::new();
    for i in 0..n {
        engines.push(world.engine(engine_config(&format!("engine-{i}"))).await);
    }
    let (mut seen, mut want) = (Vec::new(), BTreeSet::new());
    for k in 0..STEPS {
        let now = T0_MS + k * TICK_MS;
        let batch = market_updates(&mut rng, &pool, now, 12);
        world
            .market()
            .record_updates(now, &batch)
            .await
            .expect("record");
        oracle.record(&batch);
        for report in step_all(&mut engines, now).await {
            assert!(report.ready, "step {k}: an instance was not ready");
        }
        let round = Worker::PERFECT.round(world.market(), &mut rng, &pool).await;
        seen.extend(round.per_ticker);
        for (id, start, mode, symbols) in oracle.tick(now).0 {
            if mode == JobMode::PerTicker {
                want.extend(symbols.into_iter().map(|t| (id, start, t)));
            }
        }
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
