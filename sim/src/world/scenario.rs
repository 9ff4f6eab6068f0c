//! Scenario files (`fixtures/scenarios/*.toml`): everything one simulation run varies — the
//! ticker population and its churn, market activity, strategies, workers, cleanup, engine
//! instances and scheduled faults (DESIGN §7). Like `tickgate.toml`, a file is read into a
//! plain table and checked key by key with the engine's one collect-every-error walker
//! ([`tickgate::config::Reader`]), so unknown keys, wrong types and out-of-range values are
//! **all** reported at once as [`Problem`]s, each naming its `section.key`, the bad value
//! and the rule (serde would stop at the first). The scenario's own shapes (`start`,
//! `[strategies.timeframes]`, `[[faults]]`) and the rules between keys are read in `read`.
//! Every key is optional; the defaults below describe a small one-day market.
//!
//! ```toml
//! name = "ci"                          # defaults to the file stem
//! description = "…"
//! start = "2024-06-04T06:00:00-04:00"  # RFC 3339, 2000..2090
//! duration_ms = 86400000               # 1 min..=2 years, a whole number of ticks
//! tick_interval_ms = 10000             # 100 ms..=1 h, divides 1 h
//! seed_faithful_samples = 50           # 0..=1000 timed seed-faithful ticks (0: none)
//!
//! [tickers]      # stocks, crypto, listings_per_day, delistings_per_day,
//!                # options_per_day, option_expiry_days
//! [activity]     # updates_per_minute_open, updates_per_minute_closed,
//!                # burst_chance_per_minute, burst_multiplier, late_share, late_max_ms,
//!                # future_share, future_max_ms
//! [strategies]   # count, universe_median, universe_sigma, universe_max, global_share,
//!                # invalid_timeframe_share, option_share
//! [strategies.timeframes]  # "5m" = 3, … (timeframe → weight)
//! [workers]      # latency_ms, failure_rate, used_symbols_rate, latency_tail_share,
//!                # latency_tail_max_ms
//! [cleanup]      # initial_delay_ms, interval_ms, retention_ms
//! [engine]       # instances (1..=3), per_ticker_throttle, lua_threshold, clock_skew_ms
//!
//! [[faults]]     # at_ms (offset from start) and kind:
//! at_ms = 3600000
//! kind = "redis_pause"                 # + duration_ms; or "redis_restart_empty",
//! duration_ms = 30000                  # "script_flush", "malformed_results" (+ count),
//!                                      # "market_burst", "catalog_edit" or
//!                                      # "catalog_delete" (+ count)
//! ```

mod read;

use std::collections::BTreeMap;
use std::path::Path;

use tickgate::config::{Problem, Problems};
use tickgate::core::time::{DAY_MS, HOUR_MS};

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

/// Seed-faithful ticks timed per run by default (`seed_faithful_samples`), spread evenly
/// over it. Each costs what the seed's tick costs (hundreds of milliseconds at 1,000
/// strategies in a busy session: every strategy re-reads the day's updates), so 50 bound
/// the extra wall time to tens of seconds while giving a stable p50; their p99 is about
/// their maximum.
pub const SEED_FAITHFUL_SAMPLES: i64 = 50;

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
    /// Seed-faithful ticks timed in the run, spread evenly (0: none). Each costs what the
    /// seed's tick costs, which grows with the longest bucket (the seed re-reads every
    /// update since its start): a scenario with yearly strategies keeps few.
    pub seed_faithful_samples: i64,
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
    /// Share of updates stamped ahead of their arrival (a feed with a fast clock), by up to
    /// `future_max_ms` (0 = none).
    pub future_share: f64,
    pub future_max_ms: i64,
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
            future_share: 0.0,
            future_max_ms: 0,
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
    /// Share of jobs that take longer than `latency_ms`: a long tail of slow runs, whose
    /// results arrive ticks later, across bucket boundaries and out of order (0 = none).
    pub latency_tail_share: f64,
    /// The slowest such run: its latency is drawn uniformly in
    /// `latency_ms..=latency_tail_max_ms`.
    pub latency_tail_max_ms: i64,
}

impl Default for WorkerSpec {
    fn default() -> Self {
        WorkerSpec {
            latency_ms: 2_000,
            failure_rate: 0.01,
            used_symbols_rate: 0.01,
            latency_tail_share: 0.0,
            latency_tail_max_ms: 0,
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
    /// Each instance's clock is off the simulation's by up to this much, either way
    /// (0..=1,000 ms; DESIGN §9: "clocks skewed by up to a second"). With a skew the
    /// instances disagree on the bucket near its ends, so the oracle (which evaluates at the
    /// simulation's time) cannot judge the decisions: only the independent checker does.
    pub clock_skew_ms: i64,
}

impl Default for EngineSpec {
    fn default() -> Self {
        EngineSpec {
            instances: 1,
            per_ticker_throttle: true,
            lua_threshold: 1_000,
            clock_skew_ms: 0,
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
    /// News moves the whole market: every listed ticker is updated once, stamped 1 ms
    /// before the tick, so a strategy whose universe spans the market claims all of it in
    /// one job (more than 1,000 tickers in a big enough market). Not a Redis fault: it
    /// happens in memory mode too.
    MarketBurst,
    /// The platform rewrites `count` (1..=10,000) random strategies: an explicit universe is
    /// replaced by as many random listed tickers, and half of them move to another of the
    /// scenario's timeframes.
    CatalogEdit { count: u32 },
    /// The platform deletes `count` (1..=10,000) random strategies.
    CatalogDelete { count: u32 },
}

impl FaultKind {
    /// A word or two for a chart's fault marker.
    pub fn label(&self) -> &'static str {
        match self {
            FaultKind::RedisPause { .. } => "pause",
            FaultKind::RedisRestartEmpty => "restart",
            FaultKind::ScriptFlush => "script flush",
            FaultKind::MalformedResults { .. } => "malformed",
            FaultKind::MarketBurst => "burst",
            FaultKind::CatalogEdit { .. } => "edit",
            FaultKind::CatalogDelete { .. } => "delete",
        }
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultKind::RedisPause { duration_ms } => write!(
                f,
                "Redis paused for {}",
                crate::human::duration(*duration_ms)
            ),
            FaultKind::RedisRestartEmpty => write!(f, "Redis restarted with no data"),
            FaultKind::ScriptFlush => write!(f, "SCRIPT FLUSH (every loaded script gone)"),
            FaultKind::MalformedResults { count } => write!(f, "{count} malformed results posted"),
            FaultKind::MarketBurst => write!(f, "market burst (every listed ticker updated)"),
            FaultKind::CatalogEdit { count } => write!(f, "{count} strategies rewritten"),
            FaultKind::CatalogDelete { count } => write!(f, "{count} strategies deleted"),
        }
    }
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
    pub fn load(path: &Path) -> Result<Scenario, Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let io = Problem::Io {
                path: path.display().to_string(),
                reason: e.to_string(),
            };
            Problems::new(SUBJECT, vec![io])
        })?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        Scenario::parse(&text, stem.as_deref().unwrap_or("scenario"))
    }

    /// Parses and checks a scenario; `name` is used unless the file sets one.
    pub fn parse(text: &str, name: &str) -> Result<Scenario, Problems> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let syntax = Problem::Syntax {
                reason: e.to_string(),
            };
            Problems::new(SUBJECT, vec![syntax])
        })?;
        let mut problems = Vec::new();
        let scenario = read::scenario(&table, name, &mut problems);
        if problems.is_empty() {
            Ok(scenario)
        } else {
            Err(Problems::new(SUBJECT, problems))
        }
    }
}

/// What [`Problems`] of a scenario call it ("N problem(s) in the scenario").
const SUBJECT: &str = "scenario";

/// Monday 2024-06-03 00:00 ET: a summer weekday, so a default run sees a whole trading day.
const DEFAULT_START_MS: i64 = 1_717_387_200_000;

#[cfg(test)]
mod tests;
