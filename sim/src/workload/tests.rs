//! Unit tests of the workload generator: determinism, the size distribution, names.

use std::collections::BTreeSet;

use tickgate::Ticker;

use super::population::inverse_normal_cdf;
use super::*;

/// A workload small enough for a debug-build unit test, with W-100k's distribution.
fn small() -> WorkloadSpec {
    WorkloadSpec {
        tickers: 1_000,
        strategies: 2_000,
        max_universe: 5_000,
        updates_per_minute: 300,
        global_share: 0.01,
        ..WorkloadSpec::w100k()
    }
}

#[test]
fn same_seed_gives_an_identical_workload() {
    let a = Workload::generate(&small(), 7).expect("valid spec");
    let b = Workload::generate(&small(), 7).expect("valid spec");
    assert_eq!(a, b);
    let mut ra = seeded_rng(3);
    let mut rb = seeded_rng(3);
    let ua = a.updates(0, 150_000, &mut ra).expect("short window");
    let ub = b.updates(0, 150_000, &mut rb).expect("short window");
    assert_eq!(ua, ub);
}

#[test]
fn different_seeds_give_different_workloads() {
    let a = Workload::generate(&small(), 1).expect("valid spec");
    let b = Workload::generate(&small(), 2).expect("valid spec");
    assert_ne!(a.tickers, b.tickers);
    assert_ne!(a.strategies, b.strategies);
}

#[test]
fn w100k_universe_sizes_meet_the_spec() {
    let spec = WorkloadSpec::w100k();
    let mut sizes = universe_sizes(&spec, 99_500, &mut seeded_rng(42));
    sizes.sort_unstable();
    let median = sizes[sizes.len() / 2];
    assert!((43..=47).contains(&median), "median {median}");
    let above = sizes.iter().filter(|&&s| s > LARGE_UNIVERSE).count();
    let share = above as f64 / sizes.len() as f64;
    assert!(
        (0.0095..=0.0105).contains(&share),
        "share above 1000: {share}"
    );
    assert_eq!(sizes.last(), Some(&50_000));
    assert_eq!(sizes.iter().filter(|&&s| s == 50_000).count(), 1);
    assert!(sizes[0] >= 1);
}

#[test]
fn generated_universes_follow_the_sizes_and_the_population() {
    let spec = small();
    let w = Workload::generate(&spec, 11).expect("valid spec");
    assert_eq!(w.strategies.len(), spec.strategies);
    assert_eq!(w.tickers.len(), spec.tickers);
    assert_eq!(w.dormant.len(), spec.max_universe - spec.tickers);
    let globals = w.strategies.iter().filter(|s| s.universe.is_none()).count();
    assert_eq!(globals, 20);
    let sizes: Vec<usize> = w
        .strategies
        .iter()
        .filter_map(|s| s.universe.as_ref().map(Vec::len))
        .collect();
    assert_eq!(sizes.iter().max(), Some(&spec.max_universe));
    let mut sorted = sizes.clone();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    assert!((40..=50).contains(&median), "median {median}");
    for s in &w.strategies {
        assert!(spec.timeframes.iter().any(|(tf, _)| *tf == s.timeframe));
        if let Some(u) = &s.universe {
            let distinct: BTreeSet<&String> = u.iter().collect();
            assert_eq!(
                distinct.len(),
                u.len(),
                "strategy {} repeats a ticker",
                s.id
            );
        }
    }
    let ids: Vec<u64> = w.strategies.iter().map(|s| s.id).collect();
    assert_eq!(ids, (1..=spec.strategies as u64).collect::<Vec<_>>());
}

#[test]
fn every_ticker_is_valid_distinct_and_of_every_shape() {
    let w = Workload::generate(&WorkloadSpec::scaled(10), 5).expect("valid spec");
    assert_eq!(w.tickers.len(), 10_000);
    assert_eq!(w.dormant.len(), 40_000);
    let all: BTreeSet<&String> = w.tickers.iter().chain(&w.dormant).collect();
    assert_eq!(all.len(), 50_000, "tickers are distinct");
    for t in &all {
        let parsed = Ticker::parse(t).expect("valid ticker");
        assert_eq!(parsed.as_str(), t.as_str(), "already normalised");
    }
    let has = |f: &dyn Fn(&str) -> bool| w.tickers.iter().any(|t| f(t));
    assert!(has(&|t| t.bytes().all(|b| b.is_ascii_uppercase())));
    assert!(has(&|t| t.contains('.')));
    assert!(has(&|t| t.starts_with("X:") && t.ends_with("USD")));
    assert!(has(&|t| t.contains('/')));
    assert!(has(&|t| t.starts_with("I:")));
    assert!(has(&|t| t.starts_with("O:") && t.len() > 15));
    assert!(w.dormant.iter().all(|t| t.starts_with("O:")));
}

#[test]
fn updates_cover_the_window_at_the_rate() {
    let w = Workload::generate(&small(), 3).expect("valid spec");
    let mut rng = seeded_rng(9);
    let ups = w
        .updates(1_000_000, 1_000_000 + 90_000, &mut rng)
        .expect("short window");
    // 300 in the first minute, 150 in the half minute after it.
    assert_eq!(ups.len(), 450);
    assert!(
        ups.iter()
            .all(|(_, ts)| (1_000_000..1_090_000).contains(ts))
    );
    assert!(
        ups.windows(2)
            .all(|p| (p[0].1, &p[0].0) <= (p[1].1, &p[1].0))
    );
    let first_minute: BTreeSet<&String> = ups
        .iter()
        .filter(|(_, ts)| *ts < 1_060_000)
        .map(|(t, _)| t)
        .collect();
    assert_eq!(first_minute.len(), 300, "distinct within a minute");
    let active: BTreeSet<&String> = w.tickers.iter().collect();
    assert!(ups.iter().all(|(t, _)| active.contains(t)));
    assert!(w.updates(5, 5, &mut rng).expect("empty").is_empty());
    assert!(matches!(
        w.updates(0, MAX_UPDATE_WINDOW_MS + 1, &mut rng),
        Err(WorkloadError::WindowTooLong { .. })
    ));
}

#[test]
fn invalid_specs_are_rejected_naming_the_field() {
    let cases: [(&str, WorkloadSpec); 5] = [
        (
            "tickers",
            WorkloadSpec {
                tickers: 10,
                ..small()
            },
        ),
        (
            "share_above_1000",
            WorkloadSpec {
                share_above_1000: 0.0,
                ..small()
            },
        ),
        (
            "max_universe",
            WorkloadSpec {
                max_universe: 60_000,
                ..small()
            },
        ),
        (
            "timeframes",
            WorkloadSpec {
                timeframes: vec![("0m".to_owned(), 1)],
                ..small()
            },
        ),
        (
            "updates_per_minute",
            WorkloadSpec {
                updates_per_minute: 5_000,
                ..small()
            },
        ),
    ];
    for (field, spec) in cases {
        match Workload::generate(&spec, 1) {
            Err(WorkloadError::InvalidSpec { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected InvalidSpec, got {other:?}"),
        }
    }
}

#[test]
fn inverse_normal_cdf_matches_known_quantiles() {
    assert!(inverse_normal_cdf(0.5).abs() < 1e-9);
    assert!((inverse_normal_cdf(0.99) - 2.326_347_874).abs() < 1e-6);
    assert!((inverse_normal_cdf(0.01) + 2.326_347_874).abs() < 1e-6);
    assert!((inverse_normal_cdf(0.975) - 1.959_963_985).abs() < 1e-6);
    assert_eq!(inverse_normal_cdf(0.0), f64::NEG_INFINITY);
}
