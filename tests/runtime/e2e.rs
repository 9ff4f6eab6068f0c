//! End to end: a catalog across timeframes and universe sizes (some above `lua_threshold`,
//! some global, one with an invalid timeframe, one whose universe is all invalid), updates
//! written over three 5-minute buckets, a worker that fails some runs and reports
//! `used_symbols` for others. After every step the jobs must equal the oracle's decisions.

use tickgate::core::catalog::CatalogEntry;
use tickgate::core::time::MINUTE_MS;
use tickgate::runtime::Metrics;
use tickgate::store::Updates;
use tickgate_sim::oracle::merged;
use tickgate_suite::{
    Rng, T0_MS, TICK_MS, Worker, World, engine_config, market_updates, persist, random_catalog,
    ticker_names,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_match_the_oracle_every_step_across_three_buckets() {
    let mut rng = Rng(42);
    let pool = ticker_names(60);
    let mut entries = random_catalog(&mut rng, 40, &pool);
    entries.push(CatalogEntry::new(
        41,
        1,
        "bad timeframe",
        "5x",
        Some(vec!["T0".into()]),
    ));
    let all_invalid = Some(vec!["not valid".into()]);
    entries.push(CatalogEntry::new(
        42,
        1,
        "no valid ticker",
        "5m",
        all_invalid,
    ));
    let world = World::builder("e2e:").catalog(entries).build().await;
    let mut oracle = world.oracle(true);
    let mut engine = world.engine(engine_config("e2e-1")).await;
    let worker = Worker {
        fail_percent: 10,
        discover_percent: 5,
    };
    let (mut jobs, mut failures, mut discoveries) = (0, 0, 0);
    // Three 5-minute buckets.
    for k in 0..=(3 * 5 * MINUTE_MS / TICK_MS) {
        let now = T0_MS + k * TICK_MS;
        let batch = market_updates(&mut rng, &pool, now, 8);
        world
            .market()
            .record_updates(now, &batch)
            .await
            .expect("record");
        oracle.record(&batch);
        let report = engine.step(now).await;
        assert!(report.ready, "step {k}: not ready");
        persist(&engine).await;

        let round = worker.round(world.market(), &mut rng, &pool).await;
        let want = oracle.tick(now).0;
        assert_eq!(
            merged(&round.dispatched),
            merged(&want),
            "step {k} at {now}"
        );
        assert_eq!(
            report.jobs_enqueued,
            round.dispatched.len() as u64,
            "step {k}"
        );
        jobs += round.dispatched.len();
        failures += round.failed.len();
        discoveries += round.discovered.len();
        for job in &round.failed {
            oracle.fail(job);
        }
        for (id, used) in &round.discovered {
            oracle.discover(*id, used);
        }
    }
    let totals = (jobs, failures, discoveries);
    assert_every_path_taken(engine.metrics(), totals);
}

/// The run took every path it is meant to: failures, discoveries, the Lua path, every skip
/// reason, the missing-universe fallback.
fn assert_every_path_taken(m: &Metrics, (jobs, failures, discoveries): (usize, usize, usize)) {
    let get = Metrics::get;
    println!(
        "e2e: {jobs} jobs, {failures} failed, {discoveries} with used_symbols; lua {} fallbacks {}; skipped no_update {} bucket_dup {} invalid {}",
        get(&m.lua_intersections),
        get(&m.lua_fallbacks),
        get(&m.skipped_no_update),
        get(&m.skipped_bucket_dup),
        get(&m.skipped_invalid_timeframe)
    );
    assert!(
        failures > 0 && discoveries > 0,
        "the worker exercised failures and discovery"
    );
    assert!(
        get(&m.lua_intersections) > 0,
        "universes above lua_threshold took the Lua path"
    );
    assert!(get(&m.skipped_invalid_timeframe) > 0);
    assert!(get(&m.missing_universe_fallbacks) > 0);
    assert!(
        get(&m.claims_released) > 0,
        "failed runs released their claims"
    );
    assert!(
        get(&m.universe_discoveries) > 0,
        "discovered universes replaced the old ones"
    );
}

/// A strategy with a longer timeframe than any the engine knew, added mid-run: its bucket
/// starts before the update times the engine has read, so the next tick reads the update
/// set in full from that start, and a ticker updated earlier in the day is dispatched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_longer_timeframe_added_mid_run_sees_updates_from_its_whole_bucket() {
    use tickgate::store::{Catalog, WorkerSide};
    let world = World::builder("longer:")
        .catalog([CatalogEntry::new(
            1,
            1,
            "minute",
            "1m",
            Some(vec!["AAPL".into()]),
        )])
        .build()
        .await;
    let market = world.market();
    // Earlier in the day (T0 is 09:30 ET): inside today's 1d bucket, long before any 1m one.
    let earlier_ms = T0_MS - 2 * 60 * MINUTE_MS;
    market
        .record_updates(earlier_ms, &[("MSFT", earlier_ms)])
        .await
        .expect("record");
    let mut engine = world.engine(engine_config("longer-1")).await;
    for k in 0..2 {
        assert!(engine.step(T0_MS + k * TICK_MS).await.ready);
    }
    assert!(market.take_jobs("w", 10).await.expect("take").is_empty());
    let daily = CatalogEntry::new(2, 1, "daily", "1d", Some(vec!["MSFT".into()]));
    let written = market.catalog_write(2, Some(&daily.to_json()), None).await;
    assert!(written.expect("catalog write"));
    assert!(engine.step(T0_MS + 2 * TICK_MS).await.ready);
    let jobs = market.take_jobs("w", 10).await.expect("take");
    let jobs: Vec<tickgate::core::jobs::Job> = jobs
        .iter()
        .map(|e| serde_json::from_str(e.payload.as_deref().expect("job")).expect("json"))
        .collect();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(
        (jobs[0].strategy_id, jobs[0].symbols.as_deref()),
        (2, Some(&["MSFT".to_owned()][..]))
    );
}
