//! End to end: a catalog across timeframes and universe sizes (some above `lua_threshold`,
//! some global, one with an invalid timeframe, one whose universe is all invalid), updates
//! written over three 5-minute buckets, a worker that fails some runs and reports
//! `used_symbols` for others. After every tick the jobs must equal the oracle's decisions.

use std::collections::BTreeMap;

use tickgate::StrategyId;
use tickgate::clock::ManualClock;
use tickgate::service::{AlertService, ServiceConfig};
use tickgate::store::Store;

use crate::harness::{Oracle, Rng, Worker, merged};

/// 2024-06-03T13:30:00Z, a Monday market open.
pub const T0_MS: i64 = 1_717_421_400_000;
pub const TICK_MS: i64 = 10_000;

/// `n` ticker names with the separators real symbols use.
pub fn tickers(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 4 {
            0 => format!("T{i}"),
            1 => format!("X:C{i}USD"),
            2 => format!("B{i}.A"),
            _ => format!("O:S{i:05}C1"),
        })
        .collect()
}

/// A catalog of `n` strategies over `pool`, deterministic from `rng`.
pub fn catalog(rng: &mut Rng, n: u64, pool: &[String]) -> BTreeMap<StrategyId, String> {
    let timeframes = ["1m", "5m", "15m", "1h", "1d"];
    (1..=n)
        .map(|id| {
            let tf = timeframes[rng.below(timeframes.len() as u64) as usize];
            let universe = match id % 10 {
                0 => "\"all\"".to_owned(),
                _ => {
                    // Mostly small universes; every seventh one above the Lua threshold (20).
                    let size = if id % 7 == 0 { 25 + rng.below(20) } else { 1 + rng.below(12) } as usize;
                    let picked: Vec<String> = (0..size).map(|_| format!("\"{}\"", pool[rng.below(pool.len() as u64) as usize])).collect();
                    format!("[{}]", picked.join(","))
                }
            };
            (id, format!(r#"{{"id":{id},"user_id":{},"name":"s{id}","timeframe":"{tf}","universe":{universe},"active":true}}"#, 1000 + id))
        })
        .collect()
}

pub fn config(consumer: &str) -> ServiceConfig {
    ServiceConfig {
        tick_interval_ms: TICK_MS,
        lua_threshold: 20,
        consumer: consumer.to_owned(),
        ..ServiceConfig::default()
    }
}

/// Market updates for the tick ending at `now`: fresh ones inside the last interval, and a
/// few late arrivals stamped up to ten minutes back.
pub fn updates(rng: &mut Rng, pool: &[String], now: i64, count: u64) -> Vec<(String, i64)> {
    (0..count)
        .map(|_| {
            let t = pool[rng.below(pool.len() as u64) as usize].clone();
            let back = if rng.chance(10) {
                rng.below(600_000) as i64
            } else {
                rng.below(TICK_MS as u64) as i64
            };
            (t, now - 1 - back)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_match_the_oracle_every_tick_across_three_buckets() {
    let server = tickgate_suite::redis().await;
    let market = tickgate_suite::store(&server, "e2e:").await;
    let mut rng = Rng(42);
    let pool = tickers(60);
    let mut entries = catalog(&mut rng, 40, &pool);
    entries.insert(
        41,
        r#"{"id":41,"user_id":1,"timeframe":"5x","universe":["T0"]}"#.to_owned(),
    );
    entries.insert(
        42,
        r#"{"id":42,"user_id":1,"timeframe":"5m","universe":["not valid"]}"#.to_owned(),
    );
    for (id, json) in &entries {
        market
            .catalog_write(*id, Some(json), None)
            .await
            .expect("catalog");
    }
    let mut oracle = Oracle::new(true, &entries);
    let clock = ManualClock::new(T0_MS - 1);
    let service = AlertService::new(
        tickgate_suite::store(&server, "e2e:").await,
        clock.clone(),
        config("e2e-1"),
    );
    service.start();
    let worker = Worker {
        fail_percent: 10,
        discover_percent: 5,
    };
    let (mut jobs, mut failures, mut discoveries) = (0, 0, 0);
    // Three 5-minute buckets.
    for k in 0..=(3 * 5 * 60_000 / TICK_MS) {
        let now = T0_MS + k * TICK_MS;
        let batch = updates(&mut rng, &pool, now, 8);
        market.record_updates(&batch).await.expect("record");
        oracle.record(&batch);
        clock.advance_to(now);
        service.wait_for_step(now).await;
        assert!(service.is_ready(), "tick {k}: not ready");

        let round = worker.round(service.store(), &mut rng, &pool).await;
        let want = oracle.tick(now).0;
        assert_eq!(
            merged(&round.dispatched),
            merged(&want),
            "tick {k} at {now}"
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
    service.stop().await;
    let m = service.metrics();
    let get = tickgate::metrics::Metrics::get;
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
}
