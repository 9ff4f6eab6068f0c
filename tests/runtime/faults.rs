//! Redis faults: paused longer than the command timeout, then stopped and restarted empty.
//! The engine keeps stepping, reports not-ready while Redis is gone, restores the catalog
//! and universes from memory, and afterwards dispatches exactly what the oracle says.

use std::time::Duration;

use tickgate::runtime::{Engine, Metrics};
use tickgate::store::{Catalog, RedisStore, Updates};
use tickgate_sim::oracle::{Oracle, merged};
use tickgate_suite::{
    Rng, T0_MS, TICK_MS, Worker, World, engine_config, market_updates, random_catalog, ticker_names,
};

/// Everything a healthy stretch of steps needs.
struct Run {
    world: World,
    engine: Engine<RedisStore>,
    oracle: Oracle,
    rng: Rng,
    pool: Vec<String>,
    /// Steps taken so far: the next one is at `T0_MS + k * TICK_MS`.
    k: i64,
}

impl Run {
    fn next_instant(&mut self) -> i64 {
        self.k += 1;
        T0_MS + (self.k - 1) * TICK_MS
    }

    /// `n` steps with Redis up: each is ready and dispatches exactly the oracle's decisions.
    async fn healthy_steps(&mut self, n: i64) {
        let worker = Worker {
            fail_percent: 5,
            discover_percent: 0,
        };
        for _ in 0..n {
            let now = self.next_instant();
            let batch = market_updates(&mut self.rng, &self.pool, now, 10);
            // The market's own connection may have broken in the outage: one retry
            // reconnects it (a failed write wrote nothing).
            let market = self.world.market();
            if market.record_updates(now, &batch).await.is_err() {
                market
                    .record_updates(now, &batch)
                    .await
                    .expect("record after reconnect");
            }
            self.oracle.record(&batch);
            assert!(self.engine.step(now).await.ready, "not ready at {now}");
            let round = worker
                .round(&**self.engine.store(), &mut self.rng, &self.pool)
                .await;
            let want = self.oracle.tick(now).0;
            assert_eq!(merged(&round.dispatched), merged(&want), "at {now}");
            round.failed.iter().for_each(|job| self.oracle.fail(job));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_survives_a_paused_and_a_restarted_redis() {
    let mut rng = Rng(99);
    let pool = ticker_names(50);
    let entries = random_catalog(&mut rng, 30, &pool);
    let world = World::builder("")
        .dedicated()
        .catalog(entries)
        .build()
        .await;
    let mut config = world.store_config();
    // Short timeouts, so the outage is noticed quickly.
    config.response_timeout = Duration::from_millis(300);
    config.connect_timeout = Duration::from_millis(300);
    config.reconnect_retries = 1;
    let store = world.store_with(&config).await;
    let mut run = Run {
        oracle: world.oracle(true),
        engine: Engine::new(store.into(), engine_config("faults-1")),
        world,
        rng,
        pool,
        k: 0,
    };
    run.healthy_steps(20).await;

    // Paused: the step fails on the response timeout; the engine stays up, not ready.
    run.world.server().pause().await.expect("pause");
    let now = run.next_instant();
    assert!(
        !run.engine.step(now).await.ready,
        "ready while Redis is paused"
    );
    run.world.server().resume().await.expect("resume");
    run.healthy_steps(10).await;

    // Stopped, then restarted empty: not ready while down; afterwards the catalog and the
    // universes are back, and decisions follow the (equally empty) oracle.
    let down_at = run.next_instant();
    let Run { world, engine, .. } = &mut run;
    world
        .server_mut()
        .restart_empty(async {
            assert!(
                !engine.step(down_at).await.ready,
                "ready while Redis is down"
            );
        })
        .await
        .expect("restart");
    run.oracle.forget_redis_state();
    run.healthy_steps(20).await;
    let market = run.world.market();
    let restored = match market.catalog_all().await {
        Ok(c) => c,
        Err(_) => market.catalog_all().await.expect("catalog"),
    };
    assert_eq!(
        &restored,
        run.world.catalog(),
        "the catalog was restored from the engine's memory"
    );
    let errors = Metrics::get(&run.engine.metrics().tick_errors);
    assert!(errors >= 2, "the outages were counted ({errors})");
}
