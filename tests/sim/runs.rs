//! The simulator proves things only if it is reproducible and if its checks can fail:
//! the same seed against a real Redis gives the same decision-log digest, other seeds give
//! other digests, and a deliberately broken run ends in the right violation.

use std::path::Path;

use tickgate::store::{RedisStore, StoreError};
use tickgate_sim::redis::RedisFaults;
use tickgate_sim::run::{RunStats, SIM_REDIS_TIMEOUT, Sabotage, Violation, run};
use tickgate_sim::scenario::Scenario;
use tickgate_suite::World;

/// The CI scenario (a fault included), as the README and the issue describe it.
fn ci_scenario() -> Scenario {
    Scenario::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/scenarios/ci.toml"
    )))
    .expect("ci.toml parses")
}

/// One simulation on a fresh dedicated Redis.
async fn simulate(
    scenario: &Scenario,
    seed: u64,
    sabotage: Option<Sabotage>,
) -> Result<RunStats, Violation> {
    let world = World::builder("").dedicated().build().await;
    let mut config = world.store_config();
    config.response_timeout = SIM_REDIS_TIMEOUT;
    config.connect_timeout = SIM_REDIS_TIMEOUT;
    config.reconnect_retries = 1;
    let admin = RedisStore::connect(&config).await.expect("connect");
    let stores = || {
        let c = config.clone();
        async move { RedisStore::connect(&c).await }
    };
    let mut faults = RedisFaults::new(world.into_server(), admin);
    let outcome: Result<Result<RunStats, Violation>, StoreError> =
        run(scenario, seed, stores, &mut faults, sabotage, |_, _| {}).await;
    outcome.expect("the simulation ran (no crash)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_same_digest_other_seed_other_digest() {
    let scenario = ci_scenario();
    let a = simulate(&scenario, 7, None)
        .await
        .expect("ci.toml passes every check");
    let b = simulate(&scenario, 7, None)
        .await
        .expect("ci.toml passes every check");
    let c = simulate(&scenario, 8, None)
        .await
        .expect("ci.toml passes every check");
    println!(
        "ci.toml: {} ticks, {} jobs, digest {} / {} / {}",
        a.ticks, a.jobs, a.digest, b.digest, c.digest
    );
    assert!(a.jobs > 100, "the scenario dispatches");
    assert!(
        !a.faults_applied.is_empty(),
        "the scenario includes a fault: {:?}",
        a.faults_applied
    );
    assert!(
        a.seed_tick_us.len() >= 40,
        "the seed-faithful tick was timed on the same data: {} samples",
        a.seed_tick_us.len()
    );
    assert_eq!(a.digest, b.digest, "same seed, same decisions");
    assert_ne!(a.digest, c.digest, "another seed, another market");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_skips_claims_is_a_safety_violation() {
    // Without worker failures, the only way a ticker comes back in its bucket is the
    // missing claim (a failure's release would otherwise find nothing to release first).
    let mut scenario = ci_scenario();
    scenario.workers.failure_rate = 0.0;
    let outcome = simulate(&scenario, 11, Some(Sabotage::SkipClaims)).await;
    assert!(
        matches!(outcome, Err(Violation::Safety { .. })),
        "{:?}",
        outcome.map(|s| s.digest)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_drops_updates_is_a_liveness_violation() {
    let outcome = simulate(&ci_scenario(), 12, Some(Sabotage::DropUpdates)).await;
    assert!(
        matches!(outcome, Err(Violation::Liveness { .. })),
        "{:?}",
        outcome.map(|s| s.digest)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_memory_above_the_bound_is_a_memory_violation() {
    // Redis holds the catalog and universes from the first sample on: well above 1 MB.
    let mut scenario = ci_scenario();
    scenario.cleanup.max_redis_memory_mb = 1;
    let outcome = simulate(&scenario, 13, None).await;
    assert!(
        matches!(outcome, Err(Violation::Memory { used_bytes, limit_mb: 1, .. }) if used_bytes > 1_000_000),
        "{:?}",
        outcome.map(|s| s.digest)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_lost_by_the_workers_client_is_caught_by_the_fred_checker() {
    let outcome = simulate(&ci_scenario(), 14, Some(Sabotage::HideJob)).await;
    assert!(
        matches!(&outcome, Err(Violation::Checker { detail, .. }) if detail.contains("first difference")),
        "{:?}",
        outcome.map(|s| s.digest)
    );
}
