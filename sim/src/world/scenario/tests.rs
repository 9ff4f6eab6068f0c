//! Tests of scenario parsing.

use std::path::PathBuf;

use super::*;
use tickgate::core::time::DAY_MS;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/scenarios")
        .join(format!("{name}.toml"))
}

fn problems(text: &str) -> Vec<Problem> {
    match Scenario::parse(text, "t") {
        Ok(s) => panic!("expected errors, parsed {s:?}"),
        Err(e) => e.0,
    }
}

fn paths(errors: &[Problem]) -> Vec<&str> {
    errors.iter().map(Problem::path).collect()
}

#[test]
fn every_fixture_parses() {
    for name in ["ci", "default", "churn", "w100k"] {
        let s = Scenario::load(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.name, name);
        // Long scenarios tick less often so that they run in minutes.
        let want = match name {
            "default" | "churn" => 300_000,
            _ => 10_000,
        };
        assert_eq!(s.tick_interval_ms, want, "{name}");
        assert!(!s.description.is_empty(), "{name}");
        // Every long run has a memory bound of its own, below the 1 GB default.
        if name == "default" || name == "churn" {
            assert!(s.cleanup.max_redis_memory_mb < 1_024, "{name}");
        }
    }
    let ci = Scenario::load(&fixture("ci")).unwrap();
    assert_eq!(ci.engine.instances, 2);
    assert!(ci.duration_ms <= 2 * DAY_MS);
    let kinds: Vec<&FaultKind> = ci.faults.iter().map(|f| &f.kind).collect();
    assert!(matches!(
        kinds[0],
        FaultKind::RedisPause {
            duration_ms: 30_000
        }
    ));
    assert!(kinds.contains(&&FaultKind::MalformedResults { count: 3 }));
    let default = Scenario::load(&fixture("default")).unwrap();
    assert_eq!(
        (default.duration_ms, default.engine.instances),
        (30 * DAY_MS, 1)
    );
    assert_eq!(default.strategies.count, 1_000);
    let churn = Scenario::load(&fixture("churn")).unwrap();
    assert_eq!(churn.duration_ms, 180 * DAY_MS);
    assert_eq!(churn.cleanup.interval_ms, DAY_MS);
    let w = Scenario::load(&fixture("w100k")).unwrap();
    assert_eq!(
        w.tickers.stocks + w.tickers.crypto + 2 * w.tickers.options_per_day,
        10_000
    );
    assert_eq!(
        (w.strategies.count, w.strategies.universe_max),
        (100_000, 50_000)
    );
    assert_eq!(w.activity.updates_per_minute_open, 3_000);
}

#[test]
fn an_empty_file_is_the_defaults() {
    let s = Scenario::parse("", "fallback").unwrap();
    assert_eq!(s.name, "fallback");
    assert_eq!(s.start_ms, DEFAULT_START_MS);
    assert_eq!(
        (s.duration_ms, s.tick_interval_ms, s.ticks()),
        (DAY_MS, 10_000, 8_640)
    );
    assert_eq!(s.tickers, TickerSpec::default());
    assert_eq!(s.activity, ActivitySpec::default());
    assert_eq!(s.strategies, StrategySpec::default());
    assert_eq!(s.workers, WorkerSpec::default());
    assert_eq!(s.cleanup, CleanupSpec::default());
    assert_eq!(s.engine, EngineSpec::default());
    assert!(s.faults.is_empty());
    let named = Scenario::parse("name = \"mine\"", "fallback").unwrap();
    assert_eq!(named.name, "mine");
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
        duration_ms = -5
        tick_interval_ms = "fast"
        colour = "blue"
        [tickers]
        stocks = 200000
        [activity]
        late_share = 1.5
        [strategies]
        universe_sigma = "wide"
        [strategies.timeframes]
        "5x" = 1
        [engine]
        instances = 4
        [[faults]]
        at_ms = 1000
        kind = "earthquake"
        [[faults]]
        kind = "redis_pause"
    "#;
    let errors = problems(text);
    assert_eq!(
        paths(&errors),
        [
            "duration_ms",
            "tick_interval_ms",
            "colour",
            "tickers.stocks",
            "activity.late_share",
            "strategies.universe_sigma",
            "strategies.timeframes.5x",
            "engine.instances",
            "faults[0].kind",
            "faults[1].at_ms",
            "faults[1].duration_ms",
        ]
    );
    for e in &errors {
        assert!(e.to_string().starts_with(e.path()), "{e}");
    }
    let shown = Problems::new(SUBJECT, errors).to_string();
    assert!(shown.starts_with("11 problem(s)"), "{shown}");
    assert!(
        shown.contains("duration_ms = -5: must be 1 min..=731 days"),
        "{shown}"
    );
    assert!(
        shown.contains("engine.instances = 4: must be 1..=3"),
        "{shown}"
    );
    assert!(shown.contains("\"earthquake\""), "{shown}");
}

#[test]
fn unknown_keys_are_rejected() {
    let text = r#"
        speed = 2
        [tickers]
        bonds = 5
        [market]
        x = 1
        [[faults]]
        at_ms = 0
        kind = "redis_pause"
        duration_ms = 10
        count = 3
        [[faults]]
        at_ms = 0
        kind = "script_flush"
        duration_ms = 10
    "#;
    let errors = problems(text);
    assert!(
        errors
            .iter()
            .all(|e| matches!(e, Problem::UnknownKey { .. }))
    );
    let mut found = paths(&errors);
    found.sort_unstable();
    assert_eq!(
        found,
        [
            "faults[0].count",
            "faults[1].duration_ms",
            "market",
            "speed",
            "tickers.bonds"
        ]
    );
}

#[test]
fn faults_are_read_per_kind_and_sorted() {
    let text = r#"
        [[faults]]
        at_ms = 5000
        kind = "redis_restart_empty"
        [[faults]]
        at_ms = 1000
        kind = "malformed_results"
        count = 2
        [[faults]]
        at_ms = 1000
        kind = "redis_pause"
        duration_ms = 300
        [[faults]]
        at_ms = 3000
        kind = "script_flush"
        [[faults]]
        at_ms = 4000
        kind = "market_burst"
        [[faults]]
        at_ms = 4000
        kind = "catalog_edit"
        count = 5
        [[faults]]
        at_ms = 4500
        kind = "catalog_delete"
        count = 1
    "#;
    let s = Scenario::parse(text, "t").unwrap();
    let got: Vec<(i64, FaultKind)> = s.faults.into_iter().map(|f| (f.at_ms, f.kind)).collect();
    assert_eq!(
        got,
        [
            (1000, FaultKind::MalformedResults { count: 2 }),
            (1000, FaultKind::RedisPause { duration_ms: 300 }),
            (3000, FaultKind::ScriptFlush),
            (4000, FaultKind::MarketBurst),
            (4000, FaultKind::CatalogEdit { count: 5 }),
            (4500, FaultKind::CatalogDelete { count: 1 }),
            (5000, FaultKind::RedisRestartEmpty),
        ]
    );
    let errors =
        problems("duration_ms = 60000\n[[faults]]\nat_ms = 60000\nkind = \"script_flush\"");
    assert_eq!(paths(&errors), ["faults[0].at_ms"]);
    let errors = problems("faults = 3");
    assert_eq!(paths(&errors), ["faults"]);
    let errors = problems("[[faults]]\nat_ms = 1\nkind = \"malformed_results\"\ncount = 0");
    assert_eq!(paths(&errors), ["faults[0].count"]);
}

#[test]
fn start_is_rfc3339_with_an_offset() {
    let at = |text: &str| Scenario::parse(text, "t").map(|s| s.start_ms);
    assert_eq!(
        at("start = \"2024-06-03T09:30:00-04:00\""),
        Ok(1_717_421_400_000)
    );
    assert_eq!(
        at("start = \"2024-06-03T13:30:00Z\""),
        Ok(1_717_421_400_000)
    );
    assert_eq!(
        at("start = 2024-06-03T09:30:00-04:00"),
        Ok(1_717_421_400_000)
    );
    for bad in [
        "start = \"2024-06-03T09:30:00\"",
        "start = \"tomorrow\"",
        "start = \"1999-12-31T00:00:00Z\"",
        "start = \"2090-01-01T00:00:00Z\"",
        "start = 20240603",
    ] {
        let errors = problems(bad);
        assert_eq!(paths(&errors), ["start"], "{bad}");
    }
    let ts = |s: &str| s.parse::<jiff::Timestamp>().unwrap().as_millisecond();
    assert_eq!(MIN_START_MS, ts("2000-01-01T00:00:00Z"));
    assert_eq!(MAX_START_MS, ts("2090-01-01T00:00:00Z"));
    assert_eq!(DEFAULT_START_MS, ts("2024-06-03T00:00:00-04:00"));
}

#[test]
fn rules_between_keys() {
    let cases = [
        ("tick_interval_ms = 7000", "tick_interval_ms"),
        ("duration_ms = 65000", "duration_ms"),
        ("start = \"2024-06-03T09:30:05-04:00\"", "start"),
        ("[tickers]\nstocks = 0\ncrypto = 0", "tickers.stocks"),
        (
            "[tickers]\nstocks = 2\noptions_per_day = 201",
            "tickers.options_per_day",
        ),
        (
            "[tickers]\noptions_per_day = 50000\noption_expiry_days = 30\nstocks = 1000",
            "tickers.options_per_day",
        ),
        (
            "[activity]\nlate_share = 0.1\nlate_max_ms = 0",
            "activity.late_max_ms",
        ),
        ("[activity]\nfuture_share = 0.1", "activity.future_max_ms"),
        (
            "[workers]\nlatency_ms = 5000\nlatency_tail_share = 0.1\nlatency_tail_max_ms = 4000",
            "workers.latency_tail_max_ms",
        ),
        (
            "[strategies]\nuniverse_median = 500\nuniverse_max = 100",
            "strategies.universe_median",
        ),
        (
            "[strategies.timeframes]\n\"5m\" = 0",
            "strategies.timeframes",
        ),
        ("[strategies.timeframes]", "strategies.timeframes"),
    ];
    for (text, path) in cases {
        assert_eq!(paths(&problems(text)), [path], "{text}");
    }
    // A key that is wrong by itself is not reported again by the rules that use it.
    assert_eq!(
        paths(&problems("tick_interval_ms = 0\nduration_ms = 65000")),
        ["tick_interval_ms"]
    );
    // Integers are numbers; shares may be 0 or 1.
    let s = Scenario::parse("[activity]\nburst_multiplier = 5\nlate_share = 1", "t").unwrap();
    assert_eq!(
        (s.activity.burst_multiplier, s.activity.late_share),
        (5.0, 1.0)
    );
}

#[test]
fn wrong_shapes_are_named() {
    let errors = problems("tickers = 5\n[engine]\nper_ticker_throttle = \"yes\"");
    assert_eq!(paths(&errors), ["tickers", "engine.per_ticker_throttle"]);
    assert!(matches!(
        errors[0],
        Problem::WrongType {
            expected: "a table",
            ..
        }
    ));
    let syntax = Scenario::parse("[tickers\nstocks = 1", "t").unwrap_err().0;
    assert!(matches!(syntax[..], [Problem::Syntax { .. }]));
    let missing = Scenario::load(Path::new("/nonexistent/x.toml"))
        .unwrap_err()
        .0;
    assert!(matches!(missing[..], [Problem::Io { .. }]));
}

#[test]
fn a_memory_bound_of_zero_is_rejected_by_name() {
    let found = problems("[cleanup]\nmax_redis_memory_mb = 0\n");
    assert_eq!(paths(&found), ["cleanup.max_redis_memory_mb"], "{found:?}");
}
