//! The checker on hand-made event logs: each property caught, each allowance honoured,
//! each exclusion counted.

use super::summary::{Exclusion, FindingKind};
use super::{Guarantee, Settings};

/// 2024-06-04T14:00:00Z, a minute boundary.
const T0: i64 = 1_717_509_600_000;
const TICK: i64 = 10_000;

fn checker(per_ticker: bool) -> Guarantee {
    let mut g = Guarantee::new(Settings {
        per_ticker_throttle: per_ticker,
        max_universe: 50_000,
        max_future_ms: 60_000,
        max_clock_offset_ms: 0,
    });
    let one = r#"{"id":1,"timeframe":"1m","universe":["A","B"]}"#;
    let global = r#"{"id":2,"timeframe":"1m","universe":"all"}"#;
    let invalid = r#"{"id":3,"timeframe":"0m","universe":["A"]}"#;
    for (id, json) in [(1, one), (2, global), (3, invalid)] {
        g.catalog(T0, id, Some(json), true);
    }
    g
}

fn job(id: &str, strategy: u64, bucket: i64, symbols: &[&str]) -> String {
    let (mode, symbols) = match symbols {
        [] => ("global", String::new()),
        s => ("per_ticker", format!(",\"symbols\":{s:?}")),
    };
    format!(
        r#"{{"job_id":"{id}","strategy_id":{strategy},"user_id":1,"bucket_start_ms":{bucket},"mode":"{mode}"{symbols}}}"#
    )
}

/// Ticks from `from` to `to` (inclusive), every engine ready, nothing else happening.
fn idle(g: &mut Guarantee, from: i64, to: i64) {
    let mut t = from;
    while t <= to {
        g.engine_step(true);
        g.close_tick(t);
        t += TICK;
    }
}

fn found(g: &Guarantee, kind: FindingKind) -> u64 {
    g.summary().found.get(&kind).copied().unwrap_or(0)
}

#[test]
fn exactly_once_passes_and_a_missed_tail_update_is_found() {
    let mut g = checker(true);
    idle(&mut g, T0, T0);
    g.updates(T0 + TICK, &[("A".into(), T0 + 5_000)]);
    g.job(T0 + TICK, Some(&job("1-a", 1, T0, &["A"])));
    g.job(T0 + TICK, Some(&job("2-a", 2, T0, &[])));
    idle(&mut g, T0 + TICK, T0 + 50_000);
    // B11's case: stamped after the bucket's last tick, written at its closing tick, and
    // never dispatched for it.
    g.updates(T0 + 60_000, &[("B".into(), T0 + 55_000)]);
    idle(&mut g, T0 + 60_000, T0 + 60_000);
    let s = g.summary();
    assert_eq!(found(&g, FindingKind::Missed), 1, "{}", s.line());
    let missed = &s.examples[0];
    assert_eq!((missed.strategy, missed.ticker.as_deref()), (1, Some("B")));
    assert_eq!(missed.bucket_start_ms, T0);
    assert!(missed.events.contains("1-a"), "{missed}");
    assert!(
        missed.to_string().contains("2024-06-04T10:00:00-04:00"),
        "{missed}"
    );
    // A (owed, dispatched), B (owed, missed), the global run (owed, made).
    assert_eq!(s.verified, 3);
    assert_eq!(s.exclusions.get(&Exclusion::InvalidTimeframe), Some(&1));
}

#[test]
fn a_second_dispatch_needs_a_failed_run_between() {
    let mut g = checker(true);
    idle(&mut g, T0, T0);
    let first = job("1-1", 1, T0, &["A", "B"]);
    g.job(T0 + TICK, Some(&first));
    // The same entry re-delivered while unanswered is one dispatch.
    g.job(T0 + 2 * TICK, Some(&first));
    assert_eq!(found(&g, FindingKind::Duplicate), 0);
    assert_eq!(g.summary().events.get("redelivery"), Some(&1));
    // B failed with its job: once more is allowed, for B only.
    g.result(T0 + 3 * TICK, &first, T0 + TICK, false, None);
    g.job(T0 + 3 * TICK, Some(&job("1-2", 1, T0, &["B"])));
    assert_eq!(found(&g, FindingKind::Duplicate), 0);
    // B again without a failure between; A's release by the failed 1-1 was still unused.
    g.job(T0 + 4 * TICK, Some(&job("1-3", 1, T0, &["A", "B"])));
    assert_eq!(found(&g, FindingKind::Duplicate), 1);
    let dup = g.summary().examples[0].clone();
    assert_eq!(dup.ticker.as_deref(), Some("B"));
    assert!(
        dup.events.contains("1-2") && dup.events.contains("1-3"),
        "{dup}"
    );
    // A dead-lettered job releases as a failed run does.
    g.dead_letter(T0 + 5 * TICK, &job("1-3", 1, T0, &["A", "B"]));
    g.job(T0 + 5 * TICK, Some(&job("1-4", 1, T0, &["A"])));
    assert_eq!(found(&g, FindingKind::Duplicate), 1);
    // Global runs: once per bucket. A run's id has no sequence: dispatched again after its
    // result, the same id is a new dispatch (allowed only after a failure).
    let run = job("2-run", 2, T0, &[]);
    g.job(T0 + TICK, Some(&run));
    g.result(T0 + 2 * TICK, &run, T0 + TICK, false, None);
    g.job(T0 + 2 * TICK, Some(&run));
    assert_eq!(found(&g, FindingKind::Duplicate), 1);
    g.result(T0 + 3 * TICK, &run, T0 + 2 * TICK, true, None);
    g.job(T0 + 4 * TICK, Some(&run));
    assert_eq!(found(&g, FindingKind::Duplicate), 2);
    let dup = g.summary().examples.last().unwrap().clone();
    assert!(
        dup.ticker.is_none() && dup.events.contains("2-run"),
        "{dup}"
    );
}

#[test]
fn after_redis_restarts_empty_a_reissued_job_id_is_a_new_dispatch() {
    // B7's case: the engine forgot its claims with Redis and dispatches again, reusing the
    // job id (numbers restart).
    let mut g = checker(true);
    idle(&mut g, T0, T0);
    g.job(T0 + TICK, Some(&job("1-1", 1, T0, &["A"])));
    g.redis_restarted_empty(T0 + 2 * TICK);
    g.job(T0 + 2 * TICK, Some(&job("1-1", 1, T0, &["A"])));
    assert_eq!(found(&g, FindingKind::Duplicate), 1);
    assert_eq!(g.summary().duplicates_across_loss, 1);
}

#[test]
fn misaligned_jobs_are_safety_findings() {
    let mut g = checker(true);
    g.job(T0, Some(&job("1-x", 1, T0 + 1_000, &["A"])));
    assert_eq!(found(&g, FindingKind::Misaligned), 1);
    assert!(g.summary().first().unwrap().kind.is_safety());
    g.job(T0, Some("not a job"));
    g.job(T0, Some(&job("9-1", 9, T0, &["A"])));
    assert_eq!(g.summary().unplaced_jobs, 2);
}

#[test]
fn outages_membership_changes_and_future_stamps_are_excluded_and_counted() {
    let mut g = checker(true);
    idle(&mut g, T0, T0);
    // Redis paused inside the first minute: nothing of it is owed.
    g.updates(T0 + TICK, &[("A".into(), T0 + 5_000)]);
    g.redis_paused(T0 + 2 * TICK);
    g.close_tick(T0 + 2 * TICK);
    g.redis_resumed();
    idle(&mut g, T0 + 3 * TICK, T0 + 60_000);
    assert_eq!(g.summary().exclusions.get(&Exclusion::Outage), Some(&2));
    // Second minute: a discovery drops B, which had been updated.
    g.updates(T0 + 70_000, &[("B".into(), T0 + 65_000)]);
    let used = vec!["A".to_owned(), "C".to_owned()];
    g.result(
        T0 + 80_000,
        &job("1-7", 1, T0, &["A"]),
        T0,
        true,
        Some(&used),
    );
    // Stamped far ahead: rejected by the engine, not owed.
    g.updates(T0 + 80_000, &[("A".into(), T0 + 80_000 + 61_000)]);
    idle(&mut g, T0 + 70_000, T0 + 120_000);
    let s = g.summary();
    assert_eq!(s.exclusions.get(&Exclusion::MembershipChanged), Some(&1));
    assert_eq!(s.exclusions.get(&Exclusion::FutureStamp), Some(&1));
    // The global strategy owed a run in the second minute and got none.
    assert_eq!(found(&g, FindingKind::Missed), 1, "{}", s.line());
    assert!(s.line().contains("outage 2 checks"), "{}", s.line());
}

#[test]
fn strategy_level_mode_owes_one_run_per_updated_bucket() {
    let mut g = checker(false);
    idle(&mut g, T0, T0);
    g.updates(
        T0 + TICK,
        &[("A".into(), T0 + 1_000), ("B".into(), T0 + 2_000)],
    );
    let run = r#"{"job_id":"1-run","strategy_id":1,"bucket_start_ms":T,"mode":"strategy","symbols":["A","B"]}"#
        .replace('T', &T0.to_string());
    g.job(T0 + TICK, Some(&run));
    idle(&mut g, T0 + TICK, T0 + 60_000);
    let s = g.summary();
    assert_eq!(
        found(&g, FindingKind::Missed),
        1,
        "only the global run: {}",
        s.line()
    );
    assert_eq!(s.verified, 2);
}

#[test]
fn catalog_edits_move_the_universe_and_deletions_end_dispatching() {
    let mut g = checker(true);
    idle(&mut g, T0, T0);
    // The platform replaces strategy 1's universe with C inside the first minute: A (left)
    // and C (joined) are not owed there, C is owed from the next minute on.
    let edited = r#"{"id":1,"timeframe":"1m","universe":["C"]}"#;
    g.catalog(T0 + TICK, 1, Some(edited), false);
    g.updates(
        T0 + TICK,
        &[("A".into(), T0 + 5_000), ("C".into(), T0 + 6_000)],
    );
    g.job(T0 + TICK, Some(&job("2-a", 2, T0, &[])));
    idle(&mut g, T0 + TICK, T0 + 60_000);
    assert_eq!(
        g.summary().exclusions.get(&Exclusion::MembershipChanged),
        Some(&2)
    );
    g.updates(
        T0 + 70_000,
        &[("C".into(), T0 + 65_000), ("A".into(), T0 + 66_000)],
    );
    g.job(T0 + 70_000, Some(&job("2-b", 2, T0 + 60_000, &[])));
    idle(&mut g, T0 + 70_000, T0 + 120_000);
    assert_eq!(found(&g, FindingKind::Missed), 1, "C, and only C");
    assert_eq!(g.summary().examples[0].ticker.as_deref(), Some("C"));
    // Deleted: a job for it afterwards is a safety finding; the timeframe edit of the
    // global strategy excludes the bucket it happened in.
    g.catalog(T0 + 130_000, 1, None, false);
    g.job(T0 + 130_000, Some(&job("1-9", 1, T0 + 120_000, &["C"])));
    assert_eq!(found(&g, FindingKind::Inactive), 1);
    let hourly = r#"{"id":2,"timeframe":"1h","universe":"all"}"#;
    g.catalog(T0 + 130_000, 2, Some(hourly), false);
    g.updates(T0 + 140_000, &[("A".into(), T0 + 135_000)]);
    idle(&mut g, T0 + 130_000, T0 + 3_600_000);
    assert_eq!(
        g.summary().exclusions.get(&Exclusion::CatalogEdit),
        Some(&1)
    );
    assert_eq!(found(&g, FindingKind::Missed), 1);
}
