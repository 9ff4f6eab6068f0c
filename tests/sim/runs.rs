//! The simulator proves things only if it is reproducible and if its checks can fail:
//! the same seed against a real Redis gives the same decision-log digest, other seeds give
//! other digests, the hard scenario keeps the guarantee, and a deliberately broken run ends
//! in the right violation — caught by the oracle, and by the independent guarantee checker
//! on its own.

use std::path::Path;

use tickgate::store::{RedisStore, StoreError};
use tickgate_sim::check::GuaranteeKind;
use tickgate_sim::redis::RedisFaults;
use tickgate_sim::run::{Checks, Failure, RunOptions, RunStats, SIM_REDIS_TIMEOUT, Sabotage};
use tickgate_sim::run::{Violation, run};
use tickgate_sim::scenario::{FaultKind, Scenario};
use tickgate_suite::World;

fn fixture(name: &str) -> Scenario {
    let path = format!(
        "{}/fixtures/scenarios/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    Scenario::load(Path::new(&path)).expect("the fixture parses")
}

/// The CI scenario (a fault included), as the README and the issue describe it.
fn ci_scenario() -> Scenario {
    fixture("ci")
}

/// The CI scenario's first hour: enough for every sabotage to show, short enough to run
/// once per sabotage.
fn ci_first_hour() -> Scenario {
    let mut scenario = ci_scenario();
    scenario.duration_ms = 3_600_000;
    scenario
}

/// One simulation on a fresh dedicated Redis.
async fn simulate(
    scenario: &Scenario,
    seed: u64,
    options: impl Into<RunOptions>,
) -> Result<RunStats, Failure> {
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
    let outcome: Result<Result<RunStats, Failure>, StoreError> =
        run(scenario, seed, stores, &mut faults, options, |_, _| {}).await;
    outcome.expect("the simulation ran (no crash)")
}

/// The stats of a run that passed every check, or a panic naming what failed and the
/// independent checker's summary.
fn passed(outcome: Result<RunStats, Failure>, what: &str) -> RunStats {
    match outcome {
        Ok(stats) => {
            println!("{what}: {}", stats.guarantee.line());
            stats
        }
        Err(f) => panic!(
            "{what} failed: {}\n{}\nexamples:\n{}",
            f.violation,
            f.stats.guarantee.line(),
            f.stats
                .guarantee
                .examples
                .iter()
                .map(|e| format!("  {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// The independent checker's verdict of a failed run.
fn guarantee_kind(outcome: &Result<RunStats, Failure>) -> Option<GuaranteeKind> {
    match outcome {
        Err(Failure {
            violation: Violation::Guarantee { finding, .. },
            ..
        }) => Some(finding.kind),
        _ => None,
    }
}

fn describe(outcome: &Result<RunStats, Failure>) -> String {
    match outcome {
        Ok(stats) => format!("passed: {}", stats.guarantee.line()),
        Err(f) => match &f.stopped {
            Some(stopped) => format!("{} (the oracle stopped the run: {stopped})", f.violation),
            None => format!("{} (run to the end)", f.violation),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_same_digest_other_seed_other_digest() {
    let scenario = ci_scenario();
    let a = passed(simulate(&scenario, 7, None).await, "ci.toml seed 7");
    let b = passed(simulate(&scenario, 7, None).await, "ci.toml seed 7 again");
    let c = passed(simulate(&scenario, 8, None).await, "ci.toml seed 8");
    println!(
        "ci.toml: {} ticks, {} jobs, digest {} / {} / {}",
        a.ticks, a.jobs, a.digest, b.digest, c.digest
    );
    assert!(a.jobs > 100, "the scenario dispatches");
    assert!(
        a.timeline.faults.iter().any(|f| f.skipped.is_none()),
        "the scenario includes a fault: {:?}",
        a.timeline.faults
    );
    assert!(
        a.seed_tick_us.len() >= 40,
        "the seed-faithful tick was timed on the same data: {} samples",
        a.seed_tick_us.len()
    );
    assert!(
        a.guarantee.verified > 1_000,
        "the independent checker verified the run: {}",
        a.guarantee.line()
    );
    assert_eq!(a.digest, b.digest, "same seed, same decisions");
    assert_ne!(a.digest, c.digest, "another seed, another market");
}

/// hard.toml: year end with 1m…1y timeframes, three instances, late and out-of-order
/// results, claims of more than 1,000 tickers, a Redis restart with no data — and the
/// guarantee, as the independent checker reads it from the events, holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hard_scenario_keeps_the_guarantee() {
    let outcome = simulate(&fixture("hard"), 7, None).await;
    // Whether it passed or not, the hard cases must have been reached.
    let stats = match &outcome {
        Ok(stats) => stats,
        Err(f) => &f.stats,
    };
    let g = &stats.guarantee;
    assert!(
        stats.largest_claim_tickers > 1_000,
        "a claim of more than 1,000 tickers: {}",
        stats.largest_claim_tickers
    );
    assert!(
        (1..=tickgate::limits::JOB_TICKERS_MAX as u64).contains(&stats.largest_job_tickers),
        "such a claim goes out as jobs of at most {} tickers: {}",
        tickgate::limits::JOB_TICKERS_MAX,
        stats.largest_job_tickers
    );
    assert!(
        g.late_results > 10 && g.overtaken_results > 10,
        "results after their bucket closed and out of order: {}",
        g.line()
    );
    assert!(
        g.events.get("redis restart empty") == Some(&1) && g.events.get("failure") > Some(&10),
        "a restart with no data and failed runs: {}",
        g.line()
    );
    assert!(
        stats
            .timeline
            .faults
            .iter()
            .any(|f| f.kind == FaultKind::MarketBurst && f.skipped.is_none()),
        "{:?}",
        stats.timeline.faults
    );
    assert!(
        g.events.get("catalog") > Some(&(60 + 6)),
        "catalog edits and deletions mid-run: {}",
        g.line()
    );
    let stats = passed(outcome, "hard.toml seed 7");
    assert!(
        stats.guarantee.verified > 1_000,
        "{}",
        stats.guarantee.line()
    );
}

/// The same hard cases across the fall-back night (2024-11-02 22:00 EDT → 11-03 01:00 EST,
/// the 01:00–02:00 hour twice): midnight turns the day and the 2-day bucket, whose day
/// lasts 25 hours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hard_scenario_keeps_the_guarantee_across_the_fall_back() {
    let mut scenario = fixture("hard");
    scenario.start_ms = 1_730_599_200_000; // 2024-11-02T22:00:00-04:00
    let stats = passed(simulate(&scenario, 9, None).await, "hard.toml over DST");
    assert!(
        stats.guarantee.verified > 1_000,
        "{}",
        stats.guarantee.line()
    );
}

/// The CI scenario's first hour with one run in five failing: the retries a failure causes
/// are where a broken claim shows first as a missed retry (a liveness symptom) before it
/// shows as a duplicate, so each sabotage must still exit with its own code here.
fn with_failures() -> Scenario {
    let mut scenario = ci_first_hour();
    scenario.workers.failure_rate = 0.2;
    scenario
}

/// The exit code of a failed run, after checking that runs failed before it ended (the
/// scenario's failures were part of it).
fn code_with_failures(outcome: &Result<RunStats, Failure>) -> u8 {
    match outcome {
        Err(f) => {
            assert!(
                f.stats.failed_runs > 0,
                "no failed run: {}",
                describe(outcome)
            );
            f.violation.exit_code()
        }
        Ok(_) => panic!("the sabotage went unnoticed: {}", describe(outcome)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_skips_claims_is_a_safety_violation_despite_failures() {
    let outcome = simulate(&with_failures(), 11, Some(Sabotage::SkipClaims)).await;
    assert_eq!(code_with_failures(&outcome), 3, "{}", describe(&outcome));
    assert_eq!(
        guarantee_kind(&outcome),
        Some(GuaranteeKind::Duplicate),
        "{}",
        describe(&outcome)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_drops_updates_is_a_liveness_violation_despite_failures() {
    let outcome = simulate(&with_failures(), 12, Some(Sabotage::DropUpdates)).await;
    // The oracle sees the miss at once (the independent checker would at the bucket's
    // close); either way the exit code is liveness's.
    assert!(
        matches!(
            &outcome,
            Err(Failure {
                stopped: Some(Violation::Liveness { .. }),
                ..
            })
        ),
        "{}",
        describe(&outcome)
    );
    assert_eq!(code_with_failures(&outcome), 4, "{}", describe(&outcome));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_memory_above_the_bound_is_a_memory_violation() {
    // Redis holds the catalog and universes from the first sample on: well above 1 MB.
    let mut scenario = ci_scenario();
    scenario.cleanup.max_redis_memory_mb = 1;
    let outcome = simulate(&scenario, 13, None).await;
    assert!(
        matches!(&outcome, Err(Failure { violation: Violation::Memory { used_bytes, limit_mb: 1, .. }, .. }) if *used_bytes > 1_000_000),
        "{}",
        describe(&outcome)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_lost_by_the_workers_client_is_caught_by_the_fred_checker_despite_failures() {
    let outcome = simulate(&with_failures(), 14, Some(Sabotage::HideJob)).await;
    assert!(
        matches!(&outcome, Err(Failure { violation: Violation::Checker { detail, .. }, .. }) if detail.contains("first difference")),
        "{}",
        describe(&outcome)
    );
    assert_eq!(code_with_failures(&outcome), 5, "{}", describe(&outcome));
}

/// Each sabotage is caught by the independent checker alone (the oracle, the `fred`
/// reader and the memory bound not consulted), and the same hour unsabotaged passes it:
/// what it finds is the sabotage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sabotage_is_caught_by_the_independent_checker_alone() {
    let independent = |sabotage| RunOptions {
        sabotage,
        checks: Checks::Independent,
    };
    // With failures: a repeat after a failed run is allowed, one without is the sabotage's.
    let scenario = with_failures();
    let control = simulate(&scenario, 11, independent(None)).await;
    passed(
        control,
        "ci.toml's first hour with failures, unsabotaged, independent checker",
    );
    for (sabotage, seed, kind, code) in [
        (Sabotage::SkipClaims, 11, GuaranteeKind::Duplicate, 3),
        (Sabotage::DropUpdates, 11, GuaranteeKind::Missed, 4),
        // The workers never see the job: as far as the events go, nothing was dispatched.
        (Sabotage::HideJob, 11, GuaranteeKind::Missed, 4),
    ] {
        let outcome = simulate(&scenario, seed, independent(Some(sabotage))).await;
        assert_eq!(code_with_failures(&outcome), code, "{sabotage:?}");
        assert_eq!(
            guarantee_kind(&outcome),
            Some(kind),
            "{sabotage:?}: {}",
            describe(&outcome)
        );
        assert!(
            matches!(&outcome, Err(Failure { stopped: None, .. })),
            "{sabotage:?}: only the independent checker judged: {}",
            describe(&outcome)
        );
    }
}
