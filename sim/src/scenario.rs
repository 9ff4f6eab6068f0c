//! Scenario files (`fixtures/scenarios/*.toml`): everything one simulation run varies — the
//! ticker population and its churn, market activity, strategies, workers, cleanup, engine
//! instances and scheduled faults (DESIGN §7). Like `tickgate.toml`
//! (`tickgate::config`), a file is read into a plain table and checked key by key, so
//! unknown keys, wrong types and out-of-range values are **all** reported at once, each
//! naming its `section.key`, the bad value and the rule (serde would stop at the first).
//! Every key is optional; the defaults below describe a small one-day market.
//!
//! ```toml
//! name = "ci"                          # defaults to the file stem
//! description = "…"
//! start = "2024-06-04T06:00:00-04:00"  # RFC 3339, 2000..2090
//! duration_ms = 86400000               # 1 min..=2 years, a whole number of ticks
//! tick_interval_ms = 10000             # 100 ms..=1 h, divides 1 h
//!
//! [tickers]      # stocks, crypto, listings_per_day, delistings_per_day,
//!                # options_per_day, option_expiry_days
//! [activity]     # updates_per_minute_open, updates_per_minute_closed,
//!                # burst_chance_per_minute, burst_multiplier, late_share, late_max_ms
//! [strategies]   # count, universe_median, universe_sigma, universe_max, global_share,
//!                # invalid_timeframe_share, option_share
//! [strategies.timeframes]  # "5m" = 3, … (timeframe → weight)
//! [workers]      # latency_ms, failure_rate, used_symbols_rate
//! [cleanup]      # initial_delay_ms, interval_ms, retention_ms
//! [engine]       # instances (1..=3), per_ticker_throttle, lua_threshold
//!
//! [[faults]]     # at_ms (offset from start) and kind:
//! at_ms = 3600000
//! kind = "redis_pause"                 # + duration_ms; or "redis_restart_empty",
//! duration_ms = 30000                  # "script_flush", "malformed_results" (+ count)
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use tickgate::Timeframe;
use tickgate::limits::DEFAULT_MAX_UNIVERSE;

/// One minute in milliseconds.
pub const MINUTE_MS: i64 = 60_000;
/// One hour in milliseconds.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// One (24 h) day in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Earliest `start`: 2000-01-01T00:00:00Z. Option symbols carry a two-digit year, so the
/// run and every expiry must stay inside one century.
pub const MIN_START_MS: i64 = 946_684_800_000;
/// Latest `start` (exclusive): 2090-01-01T00:00:00Z, which leaves room for the longest run
/// plus the longest option expiry (and the market's one-year LEAPS) before 2100.
pub const MAX_START_MS: i64 = 3_786_912_000_000;
/// Longest run: two years, enough for a whole `1y` bucket plus its retention, and short
/// enough that the ticker name spaces never fill up.
pub const MAX_DURATION_MS: i64 = 731 * DAY_MS;
/// Most live option contracts `options_per_day × (option_expiry_days + 1)` may imply: a
/// hundred times W-100k's option population, and a bound on the market's memory.
pub const MAX_LIVE_OPTIONS: u64 = 1_000_000;
/// New option contracts per underlying stock and day, at most: keeps every chain sparse
/// enough that a free strike is always found quickly.
pub const MAX_OPTIONS_PER_STOCK: u64 = 100;

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {path}: {reason}")]
    Io { path: String, reason: String },
    #[error("not valid TOML: {reason}")]
    Syntax { reason: String },
    #[error("{path}: unknown setting")]
    UnknownKey { path: String },
    #[error("{path}: expected {expected}")]
    WrongType {
        path: String,
        expected: &'static str,
    },
    #[error("{path}: required")]
    Missing { path: String },
    #[error("{path} = {value}: {rule}")]
    OutOfRange {
        path: String,
        value: String,
        rule: String,
    },
}

impl ScenarioError {
    /// The `section.key` the problem is about (the file, for I/O and syntax errors).
    pub fn path(&self) -> &str {
        match self {
            ScenarioError::Io { path, .. }
            | ScenarioError::UnknownKey { path }
            | ScenarioError::WrongType { path, .. }
            | ScenarioError::Missing { path }
            | ScenarioError::OutOfRange { path, .. } => path,
            ScenarioError::Syntax { .. } => "",
        }
    }
}

/// Every problem found in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioErrors(pub Vec<ScenarioError>);

impl std::fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} problem(s) in the scenario:", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

/// A whole simulation run.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Names the report (`reports/sim-<name>.md`); defaults to the file stem.
    pub name: String,
    /// Free text for the report.
    pub description: String,
    /// UTC epoch ms of the first tick.
    pub start_ms: i64,
    pub duration_ms: i64,
    pub tick_interval_ms: i64,
    pub tickers: TickerSpec,
    pub activity: ActivitySpec,
    pub strategies: StrategySpec,
    pub workers: WorkerSpec,
    pub cleanup: CleanupSpec,
    pub engine: EngineSpec,
    /// Sorted by `at_ms` (file order among equal times).
    pub faults: Vec<Fault>,
}

/// The ticker population at the start and its churn.
#[derive(Debug, Clone, PartialEq)]
pub struct TickerSpec {
    /// Listed stocks at the start (0..=100,000); about 3% are share classes (`BRK.B`).
    pub stocks: usize,
    /// Listed crypto pairs (`X:BTCUSD`) at the start (0..=10,000); they trade 24/7.
    pub crypto: usize,
    /// New stocks or crypto pairs per calendar day (0..=1,000), at random minutes.
    pub listings_per_day: f64,
    /// Stocks or crypto pairs delisted per calendar day (0..=1,000), at random minutes.
    pub delistings_per_day: f64,
    /// New option contracts listed at 09:30 ET every weekday (0..=50,000).
    pub options_per_day: usize,
    /// Calendar days from listing to expiry (0..=366; 0 = same-day expiry); a contract is
    /// delisted at 16:00 ET on its expiry date and never updated again.
    pub option_expiry_days: u32,
}

impl Default for TickerSpec {
    fn default() -> Self {
        TickerSpec {
            stocks: 1_000,
            crypto: 50,
            listings_per_day: 1.0,
            delistings_per_day: 0.5,
            options_per_day: 100,
            option_expiry_days: 7,
        }
    }
}

/// Market activity (updates are `(ticker, ts_ms)` events; a ticker may update many times a
/// minute).
#[derive(Debug, Clone, PartialEq)]
pub struct ActivitySpec {
    /// Updates per minute over the whole market during US regular hours (09:30–16:00
    /// America/New_York, Monday–Friday), spread uniformly over every listed ticker.
    pub updates_per_minute_open: u32,
    /// Updates per minute of stocks and options at all other times (pre-market, after
    /// hours, nights, weekends). Crypto pairs trade 24/7: they keep their regular-hours
    /// share of `updates_per_minute_open` around the clock, on top of this.
    pub updates_per_minute_closed: u32,
    /// Chance that a minute is a burst (news): every rate of that minute is multiplied.
    pub burst_chance_per_minute: f64,
    /// Rate multiplier of a burst minute (1..=100).
    pub burst_multiplier: f64,
    /// Share of updates stamped in the past (a late feed), by up to `late_max_ms`.
    pub late_share: f64,
    pub late_max_ms: i64,
}

impl Default for ActivitySpec {
    fn default() -> Self {
        ActivitySpec {
            updates_per_minute_open: 300,
            updates_per_minute_closed: 10,
            burst_chance_per_minute: 0.01,
            burst_multiplier: 5.0,
            late_share: 0.01,
            late_max_ms: 30_000,
        }
    }
}

/// The strategy catalog, drawn from the population at the start.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategySpec {
    pub count: usize,
    /// Median of the log-normal universe size.
    pub universe_median: usize,
    /// σ of the log-normal (of ln size); W-100k's 1% above 1,000 at median 45 is 1.333.
    pub universe_sigma: f64,
    /// Sizes are clamped to `1..=universe_max`, and the largest drawn size is raised to it
    /// so the worst case is always exercised (DESIGN §6: "largest 50,000").
    pub universe_max: usize,
    /// Share of strategies with a global universe (`"all"`).
    pub global_share: f64,
    /// Timeframe → weight.
    pub timeframes: BTreeMap<String, u32>,
    /// Share of strategies with an invalid timeframe (`0m`, `5x`, …): skipped by the engine.
    pub invalid_timeframe_share: f64,
    /// Share of universe members drawn from the option contracts listed at the start.
    pub option_share: f64,
}

impl Default for StrategySpec {
    fn default() -> Self {
        StrategySpec {
            count: 1_000,
            universe_median: 20,
            universe_sigma: 1.2,
            universe_max: 2_000,
            global_share: 0.01,
            timeframes: [("1m", 1), ("5m", 3), ("1h", 2), ("1d", 1)]
                .iter()
                .map(|&(t, w)| (t.to_owned(), w))
                .collect(),
            invalid_timeframe_share: 0.005,
            option_share: 0.05,
        }
    }
}

/// Simulated strategy workers.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSpec {
    /// Simulated time from a job's dispatch to its result.
    pub latency_ms: i64,
    /// Share of runs that fail (their claims are released and retried).
    pub failure_rate: f64,
    /// Share of results carrying `used_symbols` (a discovered universe).
    pub used_symbols_rate: f64,
}

impl Default for WorkerSpec {
    fn default() -> Self {
        WorkerSpec {
            latency_ms: 2_000,
            failure_rate: 0.01,
            used_symbols_rate: 0.01,
        }
    }
}

/// The engine's cleanup schedule (DESIGN §2.6).
#[derive(Debug, Clone, PartialEq)]
pub struct CleanupSpec {
    pub initial_delay_ms: i64,
    pub interval_ms: i64,
    /// Configured retention; the engine raises it to the longest active bucket.
    pub retention_ms: i64,
    /// Invariant: Redis `used_memory` never exceeds this at any hourly sample (1..=1,000,000
    /// MB). Cleanup and the stream caps must keep memory bounded; a leak ends the run.
    pub max_redis_memory_mb: usize,
}

impl Default for CleanupSpec {
    fn default() -> Self {
        CleanupSpec {
            initial_delay_ms: HOUR_MS,
            interval_ms: DAY_MS,
            retention_ms: 7 * DAY_MS,
            max_redis_memory_mb: 1_024,
        }
    }
}

/// The engine instances sharing one Redis.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSpec {
    /// 1..=3.
    pub instances: usize,
    pub per_ticker_throttle: bool,
    pub lua_threshold: usize,
}

impl Default for EngineSpec {
    fn default() -> Self {
        EngineSpec {
            instances: 1,
            per_ticker_throttle: true,
            lua_threshold: 1_000,
        }
    }
}

/// A fault injected at `at_ms` after the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub at_ms: i64,
    pub kind: FaultKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Redis stops answering for `duration_ms` (1 ms..=1 day).
    RedisPause { duration_ms: i64 },
    /// Redis restarts with no data.
    RedisRestartEmpty,
    /// `SCRIPT FLUSH`: every loaded script is gone (`NOSCRIPT`).
    ScriptFlush,
    /// `count` (1..=10,000) malformed results are posted.
    MalformedResults { count: u32 },
}

impl Scenario {
    /// UTC epoch ms at which the run ends (exclusive).
    pub fn end_ms(&self) -> i64 {
        self.start_ms.saturating_add(self.duration_ms)
    }

    /// Ticks in the run.
    pub fn ticks(&self) -> i64 {
        self.duration_ms / self.tick_interval_ms.max(1)
    }

    /// Reads and checks a scenario file; its name defaults to the file stem.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ScenarioErrors(vec![ScenarioError::Io {
                path: path.display().to_string(),
                reason: e.to_string(),
            }])
        })?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        Scenario::parse(&text, stem.as_deref().unwrap_or("scenario"))
    }

    /// Parses and checks a scenario; `name` is used unless the file sets one.
    pub fn parse(text: &str, name: &str) -> Result<Scenario, ScenarioErrors> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            ScenarioErrors(vec![ScenarioError::Syntax {
                reason: e.to_string(),
            }])
        })?;
        let mut errors = Vec::new();
        let mut s = Scenario {
            name: name.to_owned(),
            description: String::new(),
            start_ms: DEFAULT_START_MS,
            duration_ms: DAY_MS,
            tick_interval_ms: 10_000,
            tickers: TickerSpec::default(),
            activity: ActivitySpec::default(),
            strategies: StrategySpec::default(),
            workers: WorkerSpec::default(),
            cleanup: CleanupSpec::default(),
            engine: EngineSpec::default(),
            faults: Vec::new(),
        };
        let mut top = Reader::new(String::new(), Some(&table), &mut errors);
        let sections = [
            "tickers",
            "activity",
            "strategies",
            "workers",
            "cleanup",
            "engine",
        ]
        .map(|name| top.table(name));
        let faults = top.get("faults");
        top.string("name", &mut s.name);
        top.string("description", &mut s.description);
        top.start(&mut s.start_ms);
        top.ms(
            "duration_ms",
            &mut s.duration_ms,
            MINUTE_MS,
            MAX_DURATION_MS,
        );
        top.ms("tick_interval_ms", &mut s.tick_interval_ms, 100, HOUR_MS);
        top.finish();
        let [tickers, activity, strategies, workers, cleanup, engine] = sections;

        let t = &mut s.tickers;
        let mut r = Reader::new("tickers".into(), tickers, &mut errors);
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

        let a = &mut s.activity;
        let mut r = Reader::new("activity".into(), activity, &mut errors);
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
        r.finish();

        let st = &mut s.strategies;
        let max_universe = DEFAULT_MAX_UNIVERSE as i64;
        let mut r = Reader::new("strategies".into(), strategies, &mut errors);
        r.count("count", &mut st.count, 0, 1_000_000);
        r.count("universe_median", &mut st.universe_median, 1, max_universe);
        r.float("universe_sigma", &mut st.universe_sigma, 0.0, 5.0);
        r.count("universe_max", &mut st.universe_max, 1, max_universe);
        r.float("global_share", &mut st.global_share, 0.0, 1.0);
        r.timeframes(&mut st.timeframes);
        r.float(
            "invalid_timeframe_share",
            &mut st.invalid_timeframe_share,
            0.0,
            1.0,
        );
        r.float("option_share", &mut st.option_share, 0.0, 1.0);
        r.finish();

        let w = &mut s.workers;
        let mut r = Reader::new("workers".into(), workers, &mut errors);
        r.ms("latency_ms", &mut w.latency_ms, 0, HOUR_MS);
        r.float("failure_rate", &mut w.failure_rate, 0.0, 1.0);
        r.float("used_symbols_rate", &mut w.used_symbols_rate, 0.0, 1.0);
        r.finish();

        // The engine's own limits (`tickgate::config`), so every scenario is a valid config.
        let c = &mut s.cleanup;
        let mut r = Reader::new("cleanup".into(), cleanup, &mut errors);
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

        let e = &mut s.engine;
        let mut r = Reader::new("engine".into(), engine, &mut errors);
        r.count("instances", &mut e.instances, 1, 3);
        r.boolean("per_ticker_throttle", &mut e.per_ticker_throttle);
        r.count("lua_threshold", &mut e.lua_threshold, 0, 10_000_000);
        r.finish();

        // A bad duration is reported once, not again by every fault after its default.
        let horizon = if failed(&errors, &["duration_ms"]) {
            MAX_DURATION_MS
        } else {
            s.duration_ms
        };
        s.faults = read_faults(faults, horizon, &mut errors);
        cross_checks(&s, &mut errors);
        if errors.is_empty() {
            Ok(s)
        } else {
            Err(ScenarioErrors(errors))
        }
    }
}

/// Monday 2024-06-03 00:00 ET: a summer weekday, so a default run sees a whole trading day.
const DEFAULT_START_MS: i64 = 1_717_387_200_000;

/// Whether one of `paths` already has an error.
fn failed(errors: &[ScenarioError], paths: &[&str]) -> bool {
    errors.iter().any(|e| paths.contains(&e.path()))
}

fn out_of_range(path: &str, value: impl ToString, rule: String) -> ScenarioError {
    ScenarioError::OutOfRange {
        path: path.to_owned(),
        value: value.to_string(),
        rule,
    }
}

/// Rules between keys; each is skipped when one of its keys already has an error (also one
/// found by an earlier rule), so a single mistake is reported once.
fn cross_checks(s: &Scenario, errors: &mut Vec<ScenarioError>) {
    let tick = s.tick_interval_ms;
    if !failed(errors, &["tick_interval_ms"]) && HOUR_MS % tick != 0 {
        let rule = "must divide 1 h (3600000 ms): ticks land on the same offsets every hour";
        errors.push(out_of_range("tick_interval_ms", tick, rule.into()));
    }
    if !failed(errors, &["tick_interval_ms", "duration_ms"]) && s.duration_ms % tick != 0 {
        let rule = format!("must be a whole number of ticks (tick_interval_ms = {tick})");
        errors.push(out_of_range("duration_ms", s.duration_ms, rule));
    }
    if !failed(errors, &["tick_interval_ms", "start"]) && s.start_ms.rem_euclid(tick) != 0 {
        let rule = format!("must be on the tick grid (epoch ms a multiple of {tick})");
        errors.push(out_of_range("start", s.start_ms, rule));
    }
    let t = &s.tickers;
    if !failed(errors, &["tickers.stocks", "tickers.crypto"]) && t.stocks + t.crypto == 0 {
        let rule = "the market needs a stock or a crypto pair (tickers.crypto is 0 too)";
        errors.push(out_of_range("tickers.stocks", 0, rule.into()));
    }
    let option_keys = [
        "tickers.stocks",
        "tickers.options_per_day",
        "tickers.option_expiry_days",
    ];
    if t.options_per_day > 0 && !failed(errors, &option_keys) {
        let per_day = t.options_per_day as u64;
        if per_day > (t.stocks as u64).saturating_mul(MAX_OPTIONS_PER_STOCK) {
            let rule = format!(
                "at most {MAX_OPTIONS_PER_STOCK} new contracts per stock and day \
                 (tickers.stocks = {})",
                t.stocks
            );
            errors.push(out_of_range("tickers.options_per_day", per_day, rule));
        }
        if per_day * (u64::from(t.option_expiry_days) + 1) > MAX_LIVE_OPTIONS {
            let rule = format!(
                "times (option_expiry_days + 1) must be at most {MAX_LIVE_OPTIONS} live contracts"
            );
            errors.push(out_of_range("tickers.options_per_day", per_day, rule));
        }
    }
    let a = &s.activity;
    let late_keys = ["activity.late_share", "activity.late_max_ms"];
    if !failed(errors, &late_keys) && a.late_share > 0.0 && a.late_max_ms == 0 {
        let rule = "must be positive when activity.late_share is".into();
        errors.push(out_of_range("activity.late_max_ms", 0, rule));
    }
    let st = &s.strategies;
    let universe_keys = ["strategies.universe_median", "strategies.universe_max"];
    if !failed(errors, &universe_keys) && st.universe_median > st.universe_max {
        let rule = format!(
            "must not exceed strategies.universe_max = {}",
            st.universe_max
        );
        errors.push(out_of_range(
            "strategies.universe_median",
            st.universe_median,
            rule,
        ));
    }
}

/// `[[faults]]`: each entry's keys depend on its `kind`; anything else is unknown.
fn read_faults(
    value: Option<&toml::Value>,
    horizon_ms: i64,
    errors: &mut Vec<ScenarioError>,
) -> Vec<Fault> {
    let entries = match value {
        None => return Vec::new(),
        Some(toml::Value::Array(entries)) => entries,
        Some(_) => {
            errors.push(ScenarioError::WrongType {
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
            errors.push(ScenarioError::WrongType {
                path: prefix,
                expected: "a table",
            });
            continue;
        };
        let mut r = Reader::new(prefix, Some(table), errors);
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
            other => {
                let rule = "must be one of redis_pause, redis_restart_empty, script_flush, \
                            malformed_results";
                let error = out_of_range(&r.path("kind"), format!("{other:?}"), rule.into());
                r.errors.push(error);
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

/// `1 day`, `2 h`, `100 ms`…: ranges in rules read like the scenario's comments.
fn human_ms(ms: i64) -> String {
    let units = [
        (DAY_MS, "day"),
        (HOUR_MS, "h"),
        (MINUTE_MS, "min"),
        (1_000, "s"),
    ];
    for (unit, name) in units {
        if ms != 0 && ms % unit == 0 {
            let n = ms / unit;
            let plural = if name == "day" && n != 1 { "s" } else { "" };
            return format!("{n} {name}{plural}");
        }
    }
    format!("{ms} ms")
}

/// Reads the keys of one table, recording what it saw and every problem (the pattern of
/// `tickgate::config`): a target keeps its default when its key is absent or bad.
struct Reader<'a, 'e> {
    prefix: String,
    table: Option<&'a toml::Table>,
    seen: BTreeSet<String>,
    errors: &'e mut Vec<ScenarioError>,
}

impl<'a, 'e> Reader<'a, 'e> {
    fn new(
        prefix: String,
        table: Option<&'a toml::Table>,
        errors: &'e mut Vec<ScenarioError>,
    ) -> Self {
        Reader {
            prefix,
            table,
            seen: BTreeSet::new(),
            errors,
        }
    }

    fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn get(&mut self, key: &str) -> Option<&'a toml::Value> {
        self.seen.insert(key.to_owned());
        self.table?.get(key)
    }

    fn wrong_type(&mut self, key: &str, expected: &'static str) {
        let path = self.path(key);
        self.errors
            .push(ScenarioError::WrongType { path, expected });
    }

    fn out_of_range(&mut self, key: &str, value: impl ToString, rule: String) {
        let error = out_of_range(&self.path(key), value, rule);
        self.errors.push(error);
    }

    /// Reports `key` as missing when it is absent.
    fn require(&mut self, key: &str) {
        if !self.table.is_some_and(|t| t.contains_key(key)) {
            let path = self.path(key);
            self.errors.push(ScenarioError::Missing { path });
        }
    }

    /// A sub-table (`[tickers]`), or `None` when absent or not a table.
    fn table(&mut self, key: &str) -> Option<&'a toml::Table> {
        match self.get(key)? {
            toml::Value::Table(t) => Some(t),
            _ => {
                self.wrong_type(key, "a table");
                None
            }
        }
    }

    fn int(&mut self, key: &str, min: i64, max: i64, rule: impl FnOnce() -> String) -> Option<i64> {
        match self.get(key).map(toml::Value::as_integer)? {
            Some(v) if (min..=max).contains(&v) => Some(v),
            Some(v) => {
                self.out_of_range(key, v, rule());
                None
            }
            None => {
                self.wrong_type(key, "an integer");
                None
            }
        }
    }

    /// Milliseconds in `min..=max`.
    fn opt_ms(&mut self, key: &str, min: i64, max: i64) -> Option<i64> {
        self.int(key, min, max, || {
            format!("must be {}..={}", human_ms(min), human_ms(max))
        })
    }

    fn ms(&mut self, key: &str, target: &mut i64, min: i64, max: i64) {
        if let Some(v) = self.opt_ms(key, min, max) {
            *target = v;
        }
    }

    /// A count in `min..=max`, stored in the field's integer type.
    fn count<T: TryFrom<i64>>(&mut self, key: &str, target: &mut T, min: i64, max: i64) {
        let rule = || format!("must be {min}..={max}");
        if let Some(v) = self
            .int(key, min, max, rule)
            .and_then(|v| T::try_from(v).ok())
        {
            *target = v;
        }
    }

    /// A finite number in `min..=max`; integers are accepted (`burst_multiplier = 5`).
    fn float(&mut self, key: &str, target: &mut f64, min: f64, max: f64) {
        let v = match self.get(key) {
            None => return,
            Some(toml::Value::Float(v)) => *v,
            Some(toml::Value::Integer(v)) => *v as f64,
            Some(_) => return self.wrong_type(key, "a number"),
        };
        if v.is_finite() && (min..=max).contains(&v) {
            *target = v;
        } else {
            self.out_of_range(key, v, format!("must be a number in {min}..={max}"));
        }
    }

    fn boolean(&mut self, key: &str, target: &mut bool) {
        match self.get(key).map(toml::Value::as_bool) {
            None => {}
            Some(Some(v)) => *target = v,
            Some(None) => self.wrong_type(key, "true or false"),
        }
    }

    fn string(&mut self, key: &str, target: &mut String) {
        match self.get(key).map(toml::Value::as_str) {
            None => {}
            Some(Some(v)) => v.clone_into(target),
            Some(None) => self.wrong_type(key, "a string"),
        }
    }

    /// `start`: an RFC 3339 string with an offset (or a TOML offset date-time).
    fn start(&mut self, target: &mut i64) {
        let text = match self.get("start") {
            None => return,
            Some(toml::Value::String(s)) => s.clone(),
            Some(toml::Value::Datetime(d)) => d.to_string(),
            Some(_) => return self.wrong_type("start", "an RFC 3339 date-time string"),
        };
        match text.parse::<jiff::Timestamp>() {
            Ok(ts) if (MIN_START_MS..MAX_START_MS).contains(&ts.as_millisecond()) => {
                *target = ts.as_millisecond();
            }
            Ok(_) => {
                let rule = "must be in 2000-01-01..2090-01-01 (option symbols carry a two-digit \
                            year)";
                self.out_of_range("start", format!("{text:?}"), rule.into());
            }
            Err(e) => {
                let rule = format!(
                    "must be RFC 3339 with an offset, e.g. \"2024-06-03T09:30:00-04:00\" ({e})"
                );
                self.out_of_range("start", format!("{text:?}"), rule);
            }
        }
    }

    /// `[strategies.timeframes]`: timeframe → weight; replaces the default mix when given.
    fn timeframes(&mut self, target: &mut BTreeMap<String, u32>) {
        let Some(table) = self.table("timeframes") else {
            return;
        };
        let mut mix = BTreeMap::new();
        for (tf, weight) in table {
            let path = format!("{}.timeframes.{tf}", self.prefix);
            let error = match (weight.as_integer(), tf.parse::<Timeframe>()) {
                (_, Err(e)) => out_of_range(&path, format!("{tf:?}"), format!("{e}")),
                (Some(w), Ok(_)) if (0..=1_000_000).contains(&w) => {
                    mix.insert(tf.clone(), w as u32);
                    continue;
                }
                (Some(w), Ok(_)) => out_of_range(&path, w, "weight must be 0..=1000000".into()),
                (None, Ok(_)) => ScenarioError::WrongType {
                    path,
                    expected: "an integer weight",
                },
            };
            self.errors.push(error);
        }
        // Only when every entry was fine: a bad entry is already reported.
        if mix.len() == table.len() && mix.values().all(|w| *w == 0) {
            let rule = "needs a timeframe with a positive weight".into();
            self.out_of_range("timeframes", format!("{mix:?}"), rule);
        } else {
            *target = mix;
        }
    }

    fn finish(self) {
        let Some(table) = self.table else { return };
        for key in table.keys() {
            if !self.seen.contains(key) {
                let path = self.path(key);
                self.errors.push(ScenarioError::UnknownKey { path });
            }
        }
    }
}

#[cfg(test)]
mod tests;
