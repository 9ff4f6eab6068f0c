//! The scenario file, section by section, on the engine's collect-every-error walker
//! ([`Reader`]): one function per section, the scenario's own shapes (`start`,
//! `[strategies.timeframes]`, `[[faults]]`) as functions over a [`Reader`], and the rules
//! between keys. A target keeps its default when its key is absent or bad; every problem is
//! recorded, never returned early.

use std::collections::BTreeMap;

use tickgate::Timeframe;
use tickgate::config::{Problem, Reader};
use tickgate::core::time::{DAY_MS, HOUR_MS, MINUTE_MS};
use tickgate::limits::DEFAULT_MAX_UNIVERSE;

use super::{
    ActivitySpec, CleanupSpec, DEFAULT_START_MS, EngineSpec, Fault, FaultKind, MAX_DURATION_MS,
    MAX_LIVE_OPTIONS, MAX_OPTIONS_PER_STOCK, MAX_START_MS, MIN_START_MS, SEED_FAITHFUL_SAMPLES,
    Scenario, StrategySpec, TickerSpec, WorkerSpec,
};

/// The sections of a scenario file, in the order they are read.
const SECTIONS: [&str; 6] = [
    "tickers",
    "activity",
    "strategies",
    "workers",
    "cleanup",
    "engine",
];

/// Reads every key of `table` into a scenario named `name` (unless the file names it),
/// pushing every problem onto `problems`.
pub(super) fn scenario(table: &toml::Table, name: &str, problems: &mut Vec<Problem>) -> Scenario {
    let mut s = Scenario {
        name: name.to_owned(),
        description: String::new(),
        start_ms: DEFAULT_START_MS,
        duration_ms: DAY_MS,
        tick_interval_ms: 10_000,
        seed_faithful_samples: SEED_FAITHFUL_SAMPLES,
        tickers: TickerSpec::default(),
        activity: ActivitySpec::default(),
        strategies: StrategySpec::default(),
        workers: WorkerSpec::default(),
        cleanup: CleanupSpec::default(),
        engine: EngineSpec::default(),
        faults: Vec::new(),
    };
    let mut top = Reader::new(String::new(), Some(table), problems);
    let [tickers, activity, strategies, workers, cleanup, engine] =
        SECTIONS.map(|name| top.table(name));
    let faults = top.get("faults");
    top.string("name", &mut s.name);
    top.string("description", &mut s.description);
    start(&mut top, &mut s.start_ms);
    top.ms(
        "duration_ms",
        &mut s.duration_ms,
        MINUTE_MS,
        MAX_DURATION_MS,
    );
    top.ms("tick_interval_ms", &mut s.tick_interval_ms, 100, HOUR_MS);
    top.count(
        "seed_faithful_samples",
        &mut s.seed_faithful_samples,
        0,
        1_000,
    );
    top.finish();
    let section = |name: &str, table| (name.to_owned(), table);
    s.tickers = read_tickers(section("tickers", tickers), problems);
    s.activity = read_activity(section("activity", activity), problems);
    s.strategies = read_strategies(section("strategies", strategies), problems);
    s.workers = read_workers(section("workers", workers), problems);
    s.cleanup = read_cleanup(section("cleanup", cleanup), problems);
    s.engine = read_engine(section("engine", engine), problems);
    // A bad duration is reported once, not again by every fault after its default.
    let horizon = if failed(problems, &["duration_ms"]) {
        MAX_DURATION_MS
    } else {
        s.duration_ms
    };
    s.faults = read_faults(faults, horizon, problems);
    cross_checks(&s, problems);
    s
}

/// A section's prefix and table (absent: every key keeps its default).
type Section<'a> = (String, Option<&'a toml::Table>);

fn read_tickers((prefix, table): Section<'_>, problems: &mut Vec<Problem>) -> TickerSpec {
    let mut t = TickerSpec::default();
    let mut r = Reader::new(prefix, table, problems);
    r.count("stocks", &mut t.stocks, 0, 100_000);
    r.count("crypto", &mut t.crypto, 0, 10_000);
    r.float("listings_per_day", &mut t.listings_per_day, 0.0, 1_000.0);
    r.float(
        "delistings_per_day",
        &mut t.delistings_per_day,
        0.0,
        1_000.0,
    );
    r.count("options_per_day", &mut t.options_per_day, 0, 50_000);
    r.count("option_expiry_days", &mut t.option_expiry_days, 0, 366);
    r.finish();
    t
}

fn read_activity((prefix, table): Section<'_>, problems: &mut Vec<Problem>) -> ActivitySpec {
    let mut a = ActivitySpec::default();
    let mut r = Reader::new(prefix, table, problems);
    r.count(
        "updates_per_minute_open",
        &mut a.updates_per_minute_open,
        0,
        100_000,
    );
    r.count(
        "updates_per_minute_closed",
        &mut a.updates_per_minute_closed,
        0,
        100_000,
    );
    r.float(
        "burst_chance_per_minute",
        &mut a.burst_chance_per_minute,
        0.0,
        1.0,
    );
    r.float("burst_multiplier", &mut a.burst_multiplier, 1.0, 100.0);
    r.float("late_share", &mut a.late_share, 0.0, 1.0);
    r.ms("late_max_ms", &mut a.late_max_ms, 0, DAY_MS);
    r.float("future_share", &mut a.future_share, 0.0, 1.0);
    r.ms("future_max_ms", &mut a.future_max_ms, 0, DAY_MS);
    r.finish();
    a
}

fn read_strategies((prefix, table): Section<'_>, problems: &mut Vec<Problem>) -> StrategySpec {
    let mut st = StrategySpec::default();
    let max_universe = DEFAULT_MAX_UNIVERSE as i64;
    let mut r = Reader::new(prefix, table, problems);
    r.count("count", &mut st.count, 0, 1_000_000);
    r.count("universe_median", &mut st.universe_median, 1, max_universe);
    r.float("universe_sigma", &mut st.universe_sigma, 0.0, 5.0);
    r.count("universe_max", &mut st.universe_max, 1, max_universe);
    r.float("global_share", &mut st.global_share, 0.0, 1.0);
    timeframes(&mut r, &mut st.timeframes);
    r.float(
        "invalid_timeframe_share",
        &mut st.invalid_timeframe_share,
        0.0,
        1.0,
    );
    r.float("option_share", &mut st.option_share, 0.0, 1.0);
    r.finish();
    st
}

fn read_workers((prefix, table): Section<'_>, problems: &mut Vec<Problem>) -> WorkerSpec {
    let mut w = WorkerSpec::default();
    let mut r = Reader::new(prefix, table, problems);
    r.ms("latency_ms", &mut w.latency_ms, 0, HOUR_MS);
    r.float("failure_rate", &mut w.failure_rate, 0.0, 1.0);
    r.float("used_symbols_rate", &mut w.used_symbols_rate, 0.0, 1.0);
    r.float("latency_tail_share", &mut w.latency_tail_share, 0.0, 1.0);
    r.ms("latency_tail_max_ms", &mut w.latency_tail_max_ms, 0, DAY_MS);
    r.finish();
    w
}

/// The engine's own limits (`tickgate::config`), so every scenario is a valid config.
fn read_cleanup((prefix, table): Section<'_>, problems: &mut Vec<Problem>) -> CleanupSpec {
    let mut c = CleanupSpec::default();
    let mut r = Reader::new(prefix, table, problems);
    r.ms("initial_delay_ms", &mut c.initial_delay_ms, 0, 30 * DAY_MS);
    r.ms("interval_ms", &mut c.interval_ms, MINUTE_MS, 30 * DAY_MS);
    r.ms("retention_ms", &mut c.retention_ms, 0, 3_650 * DAY_MS);
    r.count(
        "max_redis_memory_mb",
        &mut c.max_redis_memory_mb,
        1,
        1_000_000,
    );
    r.finish();
    c
}

fn read_engine((prefix, table): Section<'_>, problems: &mut Vec<Problem>) -> EngineSpec {
    let mut e = EngineSpec::default();
    let mut r = Reader::new(prefix, table, problems);
    r.count("instances", &mut e.instances, 1, 3);
    r.boolean("per_ticker_throttle", &mut e.per_ticker_throttle);
    r.count("lua_threshold", &mut e.lua_threshold, 0, 10_000_000);
    r.ms("clock_skew_ms", &mut e.clock_skew_ms, 0, 1_000);
    r.finish();
    e
}

/// Whether one of `paths` already has a problem.
fn failed(problems: &[Problem], paths: &[&str]) -> bool {
    problems.iter().any(|e| paths.contains(&e.path()))
}

fn out_of_range(path: &str, value: impl ToString, rule: String) -> Problem {
    Problem::OutOfRange {
        path: path.to_owned(),
        value: value.to_string(),
        rule,
    }
}

/// `start`: an RFC 3339 string with an offset (or a TOML offset date-time).
fn start(r: &mut Reader<'_, '_>, target: &mut i64) {
    let text = match r.get("start") {
        None => return,
        Some(toml::Value::String(s)) => s.clone(),
        Some(toml::Value::Datetime(d)) => d.to_string(),
        Some(_) => return r.wrong_type("start", "an RFC 3339 date-time string"),
    };
    match text.parse::<jiff::Timestamp>() {
        Ok(ts) if (MIN_START_MS..MAX_START_MS).contains(&ts.as_millisecond()) => {
            *target = ts.as_millisecond();
        }
        Ok(_) => {
            let rule = "must be in 2000-01-01..2090-01-01 (option symbols carry a two-digit \
                        year)";
            r.out_of_range("start", format!("{text:?}"), rule.into());
        }
        Err(e) => {
            let rule = format!(
                "must be RFC 3339 with an offset, e.g. \"2024-06-03T09:30:00-04:00\" ({e})"
            );
            r.out_of_range("start", format!("{text:?}"), rule);
        }
    }
}

/// `[strategies.timeframes]`: timeframe → weight; replaces the default mix when given.
fn timeframes(r: &mut Reader<'_, '_>, target: &mut BTreeMap<String, u32>) {
    let Some(table) = r.table("timeframes") else {
        return;
    };
    let mut mix = BTreeMap::new();
    for (tf, weight) in table {
        let path = r.path(&format!("timeframes.{tf}"));
        let error = match (weight.as_integer(), tf.parse::<Timeframe>()) {
            (_, Err(e)) => out_of_range(&path, format!("{tf:?}"), format!("{e}")),
            (Some(w), Ok(_)) if (0..=1_000_000).contains(&w) => {
                mix.insert(tf.clone(), w as u32);
                continue;
            }
            (Some(w), Ok(_)) => out_of_range(&path, w, "weight must be 0..=1000000".into()),
            (None, Ok(_)) => Problem::WrongType {
                path,
                expected: "an integer weight",
            },
        };
        r.errors.push(error);
    }
    // Only when every entry was fine: a bad entry is already reported.
    if mix.len() == table.len() && mix.values().all(|w| *w == 0) {
        let rule = "needs a timeframe with a positive weight".into();
        r.out_of_range("timeframes", format!("{mix:?}"), rule);
    } else {
        *target = mix;
    }
}

/// Rules between keys; each is skipped when one of its keys already has an error (also one
/// found by an earlier rule), so a single mistake is reported once.
fn cross_checks(s: &Scenario, problems: &mut Vec<Problem>) {
    let tick = s.tick_interval_ms;
    if !failed(problems, &["tick_interval_ms"]) && HOUR_MS % tick != 0 {
        let rule = "must divide 1 h (3600000 ms): ticks land on the same offsets every hour";
        problems.push(out_of_range("tick_interval_ms", tick, rule.into()));
    }
    if !failed(problems, &["tick_interval_ms", "duration_ms"]) && s.duration_ms % tick != 0 {
        let rule = format!("must be a whole number of ticks (tick_interval_ms = {tick})");
        problems.push(out_of_range("duration_ms", s.duration_ms, rule));
    }
    if !failed(problems, &["tick_interval_ms", "start"]) && s.start_ms.rem_euclid(tick) != 0 {
        let rule = format!("must be on the tick grid (epoch ms a multiple of {tick})");
        problems.push(out_of_range("start", s.start_ms, rule));
    }
    let t = &s.tickers;
    if !failed(problems, &["tickers.stocks", "tickers.crypto"]) && t.stocks + t.crypto == 0 {
        let rule = "the market needs a stock or a crypto pair (tickers.crypto is 0 too)";
        problems.push(out_of_range("tickers.stocks", 0, rule.into()));
    }
    let option_keys = [
        "tickers.stocks",
        "tickers.options_per_day",
        "tickers.option_expiry_days",
    ];
    if t.options_per_day > 0 && !failed(problems, &option_keys) {
        let per_day = t.options_per_day as u64;
        if per_day > (t.stocks as u64).saturating_mul(MAX_OPTIONS_PER_STOCK) {
            let rule = format!(
                "at most {MAX_OPTIONS_PER_STOCK} new contracts per stock and day \
                 (tickers.stocks = {})",
                t.stocks
            );
            problems.push(out_of_range("tickers.options_per_day", per_day, rule));
        }
        if per_day * (u64::from(t.option_expiry_days) + 1) > MAX_LIVE_OPTIONS {
            let rule = format!(
                "times (option_expiry_days + 1) must be at most {MAX_LIVE_OPTIONS} live contracts"
            );
            problems.push(out_of_range("tickers.options_per_day", per_day, rule));
        }
    }
    stamp_and_latency_checks(s, problems);
    let st = &s.strategies;
    let universe_keys = ["strategies.universe_median", "strategies.universe_max"];
    if !failed(problems, &universe_keys) && st.universe_median > st.universe_max {
        let rule = format!(
            "must not exceed strategies.universe_max = {}",
            st.universe_max
        );
        problems.push(out_of_range(
            "strategies.universe_median",
            st.universe_median,
            rule,
        ));
    }
}

/// The rules between the late and future stamps' shares and bounds, and the workers'
/// latency tail.
fn stamp_and_latency_checks(s: &Scenario, problems: &mut Vec<Problem>) {
    let a = &s.activity;
    let late_keys = ["activity.late_share", "activity.late_max_ms"];
    if !failed(problems, &late_keys) && a.late_share > 0.0 && a.late_max_ms == 0 {
        let rule = "must be positive when activity.late_share is".into();
        problems.push(out_of_range("activity.late_max_ms", 0, rule));
    }
    let future_keys = ["activity.future_share", "activity.future_max_ms"];
    if !failed(problems, &future_keys) && a.future_share > 0.0 && a.future_max_ms == 0 {
        let rule = "must be positive when activity.future_share is".into();
        problems.push(out_of_range("activity.future_max_ms", 0, rule));
    }
    let w = &s.workers;
    let tail_keys = [
        "workers.latency_ms",
        "workers.latency_tail_share",
        "workers.latency_tail_max_ms",
    ];
    if !failed(problems, &tail_keys)
        && w.latency_tail_share > 0.0
        && w.latency_tail_max_ms < w.latency_ms
    {
        let rule = format!(
            "must be at least workers.latency_ms = {} when workers.latency_tail_share is positive",
            w.latency_ms
        );
        problems.push(out_of_range(
            "workers.latency_tail_max_ms",
            w.latency_tail_max_ms,
            rule,
        ));
    }
}

/// `[[faults]]`: each entry's keys depend on its `kind`; anything else is unknown.
fn read_faults(
    value: Option<&toml::Value>,
    horizon_ms: i64,
    problems: &mut Vec<Problem>,
) -> Vec<Fault> {
    let entries = match value {
        None => return Vec::new(),
        Some(toml::Value::Array(entries)) => entries,
        Some(_) => {
            problems.push(Problem::WrongType {
                path: "faults".into(),
                expected: "an array of tables ([[faults]])",
            });
            return Vec::new();
        }
    };
    let mut faults = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let prefix = format!("faults[{i}]");
        let Some(table) = entry.as_table() else {
            problems.push(Problem::WrongType {
                path: prefix,
                expected: "a table",
            });
            continue;
        };
        let mut r = Reader::new(prefix, Some(table), problems);
        r.require("at_ms");
        let at_ms = r.opt_ms("at_ms", 0, horizon_ms - 1);
        r.require("kind");
        let mut kind = String::new();
        r.string("kind", &mut kind);
        let kind = match kind.as_str() {
            "" => None,
            "redis_pause" => {
                r.require("duration_ms");
                let duration_ms = r.opt_ms("duration_ms", 1, DAY_MS);
                duration_ms.map(|duration_ms| FaultKind::RedisPause { duration_ms })
            }
            "redis_restart_empty" => Some(FaultKind::RedisRestartEmpty),
            "script_flush" => Some(FaultKind::ScriptFlush),
            "malformed_results" => {
                r.require("count");
                let count = r.int("count", 1, 10_000, || "must be 1..=10000".into());
                count.map(|count| FaultKind::MalformedResults {
                    count: count as u32,
                })
            }
            "market_burst" => Some(FaultKind::MarketBurst),
            "catalog_edit" | "catalog_delete" => {
                r.require("count");
                let count = r.int("count", 1, 10_000, || "must be 1..=10000".into());
                count.map(|count| match kind.as_str() {
                    "catalog_edit" => FaultKind::CatalogEdit {
                        count: count as u32,
                    },
                    _ => FaultKind::CatalogDelete {
                        count: count as u32,
                    },
                })
            }
            other => {
                let rule = "must be one of redis_pause, redis_restart_empty, script_flush, \
                            malformed_results, market_burst, catalog_edit, catalog_delete";
                r.out_of_range("kind", format!("{other:?}"), rule.into());
                None
            }
        };
        r.finish();
        if let (Some(at_ms), Some(kind)) = (at_ms, kind) {
            faults.push(Fault { at_ms, kind });
        }
    }
    // Stable: faults at the same time keep their file order.
    faults.sort_by_key(|f| f.at_ms);
    faults
}
