//! The reference workload "W-100k" of DESIGN §6, generated deterministically from a seed:
//! 10,000 active tickers, 100,000 strategies, universe sizes log-normal around 45 with 1%
//! above 1,000 and the largest at 50,000, a 1m…1d timeframe mix, 3,000 tickers updated
//! per minute. [`WorkloadSpec`] holds every parameter, so smaller variants (tests, CI) use
//! the same generator.
//!
//! Determinism: the only randomness is a [`WorkloadRng`] seeded by the caller, drawn in a
//! fixed order; no wall clock, no hash-map iteration order. Same seed and spec ⇒ identical
//! workload, which the unit tests pin down.
//!
//! **Universes larger than the active population.** W-100k's largest universe (50,000)
//! exceeds its 10,000 active tickers. Such a universe holds every active ticker plus
//! *dormant* option symbols ([`Workload::dormant`]): listed contracts that never trade and
//! so never appear in `TICK:UPD` — the normal shape of a big options-chain universe. Only
//! universes larger than the active population draw from the dormant pool.

use rand::{Rng, RngExt, SeedableRng};
use redis::aio::ConnectionLike;
use tickgate::Timeframe;
use tickgate::limits::{DEFAULT_MAX_UNIVERSE, WRITE_CHUNK_MEMBERS as WRITE_CHUNK};
use tickgate::store::{KeySpace, RECORD_SCRIPT};

pub use self::population::universe_sizes;
use self::population::{
    partial_shuffle, pick_weighted, sample_universe, shuffle, ticker_population,
};

mod population;
#[cfg(test)]
mod tests;

/// The generator every workload uses: PCG's output is specified, so a seed gives the same
/// stream on every platform (DESIGN §5).
pub type WorkloadRng = rand_pcg::Pcg64;

/// A [`WorkloadRng`] from a seed, for callers (benches, the simulator) that draw updates.
pub fn seeded_rng(seed: u64) -> WorkloadRng {
    WorkloadRng::seed_from_u64(seed)
}

/// Universe size that DESIGN §6 counts as large (and the seed used as its Lua threshold):
/// the spec's `share_above_1000` is the share of universes above this.
pub const LARGE_UNIVERSE: usize = 1_000;

/// Fewest active tickers a spec may ask for: every ticker category (equities, share
/// classes, crypto, FX, indices, options) then gets at least one member.
pub const MIN_TICKERS: usize = 100;

/// Most active tickers a spec may ask for: ten times W-100k, and small enough that every
/// category fits comfortably in its name space (the tightest, crypto, has 17,576 names).
pub const MAX_TICKERS: usize = 100_000;

/// Most strategies a spec may ask for: ten times W-100k. At W-100k's mean universe (≈110)
/// this is about 110 million member strings, the most a 24 GiB machine should hold.
pub const MAX_STRATEGIES: usize = 1_000_000;

/// Longest window [`Workload::updates`] accepts: one day at W-100k's rate is 4.3 million
/// updates, already far more than any tick or simulation step replays at once.
pub const MAX_UPDATE_WINDOW_MS: i64 = 24 * 3_600_000;

/// Universe members sent per pipelined round trip by [`populate`]: about 1 MB of request,
/// so one round trip blocks Redis for a few milliseconds at most and the client's buffer
/// stays small, while W-100k's ≈11 million members need only ≈220 round trips.
pub const POPULATE_BATCH_MEMBERS: usize = 50_000;

/// Keys deleted per `DEL` by [`clear_trigger_state`], and `DEL`s per pipelined round trip
/// of it: 1,000 × 20 = 20,000 keys per round trip keeps each one short.
pub const CLEAR_KEYS_PER_DEL: usize = 1_000;
const CLEAR_DELS_PER_ROUND_TRIP: usize = 20;

/// One minute, the granularity of `updates_per_minute`.
const MINUTE_MS: i64 = 60_000;

/// Average strategies per user: several alerts each, as on the seed's platform.
const STRATEGIES_PER_USER: usize = 4;

/// Strategy setups, for human-readable names.
pub(crate) const SETUPS: [&str; 10] = [
    "gap up",
    "gap down",
    "rsi oversold",
    "vwap reclaim",
    "breakout",
    "volume spike",
    "ma cross",
    "earnings drift",
    "short squeeze",
    "opening range",
];

/// Why a spec or a request was rejected, or Redis failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("workload spec {field} = {value} is invalid: {rule}")]
    InvalidSpec {
        field: &'static str,
        value: String,
        rule: &'static str,
    },
    #[error(
        "update window [{from_ms}, {to_ms}) is longer than {MAX_UPDATE_WINDOW_MS} ms; ask for it in pieces"
    )]
    WindowTooLong { from_ms: i64, to_ms: i64 },
    #[error("Redis failed during {op}: {reason}")]
    Redis { op: &'static str, reason: String },
}

fn redis_error(op: &'static str) -> impl FnOnce(redis::RedisError) -> WorkloadError {
    move |e| WorkloadError::Redis {
        op,
        reason: e.to_string(),
    }
}

/// Every parameter of a workload.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadSpec {
    /// Active tickers: the ones that ever update.
    pub tickers: usize,
    /// Strategies, global ones included.
    pub strategies: usize,
    /// Median universe size of the log-normal.
    pub universe_median: f64,
    /// Share of explicit universes larger than [`LARGE_UNIVERSE`]; with the median this
    /// fixes the log-normal's spread.
    pub share_above_1000: f64,
    /// The largest universe (≤ the engine's `DEFAULT_MAX_UNIVERSE`): the top stratum of the
    /// size distribution gets exactly this, larger draws are clamped to it (at W-100k no
    /// other draw comes near, so exactly one strategy has it).
    pub max_universe: usize,
    /// Timeframes with integer weights.
    pub timeframes: Vec<(String, u32)>,
    /// Distinct active tickers updated per minute.
    pub updates_per_minute: usize,
    /// Share of strategies with a global universe (`"all"`).
    pub global_share: f64,
}

impl WorkloadSpec {
    /// W-100k (DESIGN §6). Timeframe weights (percent): 1m 10, 5m 25, 15m 20, 1h 20, 4h 10,
    /// 1d 15 — intraday alerts cluster on 5m–1h; 1m is the costliest tier users pick
    /// least; daily screens are the common end-of-day use.
    pub fn w100k() -> WorkloadSpec {
        let timeframes = [
            ("1m", 10),
            ("5m", 25),
            ("15m", 20),
            ("1h", 20),
            ("4h", 10),
            ("1d", 15),
        ];
        WorkloadSpec {
            tickers: 10_000,
            strategies: 100_000,
            universe_median: 45.0,
            share_above_1000: 0.01,
            max_universe: 50_000,
            timeframes: timeframes.iter().map(|&(t, w)| (t.to_owned(), w)).collect(),
            updates_per_minute: 3_000,
            // A handful of whole-market scanners: the rest name their symbols.
            global_share: 0.005,
        }
    }

    /// W-100k with `strategies` strategies and everything else unchanged (same ticker
    /// population, size distribution and largest universe), for benches at a smaller scale.
    pub fn scaled(strategies: usize) -> WorkloadSpec {
        WorkloadSpec {
            strategies,
            ..WorkloadSpec::w100k()
        }
    }

    /// Checks every field; the first bad one is the error.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        let bad =
            |field, value: String, rule| Err(WorkloadError::InvalidSpec { field, value, rule });
        if !(MIN_TICKERS..=MAX_TICKERS).contains(&self.tickers) {
            return bad(
                "tickers",
                self.tickers.to_string(),
                "must be in 100..=100000",
            );
        }
        if !(1..=MAX_STRATEGIES).contains(&self.strategies) {
            return bad(
                "strategies",
                self.strategies.to_string(),
                "must be in 1..=1000000",
            );
        }
        if !(1.0..LARGE_UNIVERSE as f64).contains(&self.universe_median) {
            return bad(
                "universe_median",
                self.universe_median.to_string(),
                "must be in [1, 1000)",
            );
        }
        if !(self.share_above_1000 > 0.0 && self.share_above_1000 < 0.5) {
            return bad(
                "share_above_1000",
                self.share_above_1000.to_string(),
                "must be in (0, 0.5): above the median's share would need a median above 1000",
            );
        }
        if !(1..=DEFAULT_MAX_UNIVERSE).contains(&self.max_universe) {
            return bad(
                "max_universe",
                self.max_universe.to_string(),
                "must be in 1..=50000 (the engine rejects larger universes)",
            );
        }
        if self.timeframes.is_empty() || self.timeframes.iter().all(|(_, w)| *w == 0) {
            return bad(
                "timeframes",
                format!("{:?}", self.timeframes),
                "needs a positive weight",
            );
        }
        if let Some((tf, _)) = self
            .timeframes
            .iter()
            .find(|(tf, _)| tf.parse::<Timeframe>().is_err())
        {
            return bad("timeframes", tf.clone(), "is not a valid timeframe");
        }
        if self.updates_per_minute > self.tickers {
            return bad(
                "updates_per_minute",
                self.updates_per_minute.to_string(),
                "counts distinct tickers, so it cannot exceed tickers",
            );
        }
        if !(0.0..1.0).contains(&self.global_share) {
            return bad(
                "global_share",
                self.global_share.to_string(),
                "must be in [0, 1)",
            );
        }
        Ok(())
    }
}

/// One strategy, shaped like the catalog entry of DESIGN §2.8 (without `active`: every
/// generated strategy is active).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrategyDef {
    pub id: u64,
    pub user_id: u64,
    pub name: String,
    /// A valid timeframe string from the spec's mix.
    pub timeframe: String,
    /// The explicit universe, or `None` for a global strategy.
    pub universe: Option<Vec<String>>,
}

/// A generated workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub spec: WorkloadSpec,
    pub seed: u64,
    /// The active population: every ticker that ever updates.
    pub tickers: Vec<String>,
    /// Option symbols that never update; they only fill universes larger than the active
    /// population (see the module docs).
    pub dormant: Vec<String>,
    /// Strategies with ids `1..=spec.strategies`, in id order.
    pub strategies: Vec<StrategyDef>,
}

impl Workload {
    /// Generates the workload of `spec` from `seed`.
    pub fn generate(spec: &WorkloadSpec, seed: u64) -> Result<Workload, WorkloadError> {
        spec.validate()?;
        let mut rng = seeded_rng(seed);
        let dormant_count = spec.max_universe.saturating_sub(spec.tickers);
        let (tickers, dormant) = ticker_population(&mut rng, spec.tickers, dormant_count);

        let globals = (spec.strategies as f64 * spec.global_share).round() as usize;
        let explicit = spec.strategies - globals.min(spec.strategies);
        let mut sizes = universe_sizes(spec, explicit, &mut rng).into_iter();
        // Which ids are global: a shuffled flag vector, so exactly `globals` of them.
        let mut is_global = vec![false; spec.strategies];
        is_global.iter_mut().take(globals).for_each(|g| *g = true);
        shuffle(&mut is_global, &mut rng);

        let weight_total: u64 = spec.timeframes.iter().map(|(_, w)| u64::from(*w)).sum();
        let users = (spec.strategies / STRATEGIES_PER_USER).max(1) as u64;
        let mut scratch: Vec<u32> = (0..tickers.len() as u32).collect();
        let mut strategies = Vec::with_capacity(spec.strategies);
        for (index, global) in is_global.into_iter().enumerate() {
            let id = index as u64 + 1;
            let timeframe = pick_weighted(&spec.timeframes, weight_total, &mut rng);
            let setup = SETUPS[rng.random_range(0..SETUPS.len())];
            // Globals take no size, so the `explicit` sizes go to exactly the others.
            let size = if global { None } else { sizes.next() };
            let universe =
                size.map(|size| sample_universe(size, &tickers, &dormant, &mut scratch, &mut rng));
            strategies.push(StrategyDef {
                id,
                user_id: rng.random_range(1..=users),
                name: format!("{setup} {timeframe} #{id}"),
                timeframe,
                universe,
            });
        }
        Ok(Workload {
            spec: spec.clone(),
            seed,
            tickers,
            dormant,
            strategies,
        })
    }

    /// Universe members over all strategies.
    pub fn universe_members(&self) -> u64 {
        self.strategies
            .iter()
            .filter_map(|s| s.universe.as_ref())
            .map(|u| u.len() as u64)
            .sum()
    }

    /// The active tickers updated in `[from_ms, to_ms)`: each minute of the window (counted
    /// from `from_ms`; a last partial minute gets its share) updates `updates_per_minute`
    /// distinct tickers drawn uniformly, at uniform times inside that minute. Sorted by
    /// time, then ticker. An empty or inverted window gives no updates.
    pub fn updates<R: Rng + ?Sized>(
        &self,
        from_ms: i64,
        to_ms: i64,
        rng: &mut R,
    ) -> Result<Vec<(String, i64)>, WorkloadError> {
        if to_ms <= from_ms {
            return Ok(Vec::new());
        }
        if to_ms - from_ms > MAX_UPDATE_WINDOW_MS {
            return Err(WorkloadError::WindowTooLong { from_ms, to_ms });
        }
        let n = self.tickers.len();
        let mut scratch: Vec<u32> = (0..n as u32).collect();
        let mut out = Vec::new();
        // At most MAX_UPDATE_WINDOW_MS / MINUTE_MS = 1,440 slices (checked above).
        let mut start = from_ms;
        while start < to_ms {
            let end = (start + MINUTE_MS).min(to_ms);
            let count = ((self.spec.updates_per_minute as i64 * (end - start) + MINUTE_MS / 2)
                / MINUTE_MS) as usize;
            for &i in partial_shuffle(&mut scratch, count.min(n), rng) {
                out.push((
                    self.tickers[i as usize].clone(),
                    rng.random_range(start..end),
                ));
            }
            start = end;
        }
        out.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        Ok(out)
    }
}

/// What [`populate`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PopulateReport {
    pub universes: u64,
    pub members: u64,
    pub round_trips: u64,
}

/// Writes every explicit universe to `STRAT:<id>:UNIV` (replacing what was there): `DEL`
/// then `SADD`s of at most [`WRITE_CHUNK`] members, pipelined in round trips of about
/// [`POPULATE_BATCH_MEMBERS`] members. Not atomic per key: it sets up a bench or a
/// simulation before anything reads, it is not the engine's universe replacement.
pub async fn populate(
    con: &mut impl ConnectionLike,
    keys: &KeySpace,
    w: &Workload,
) -> Result<PopulateReport, WorkloadError> {
    let mut report = PopulateReport::default();
    let mut pipe = redis::pipe();
    let mut pending = 0usize;
    for s in &w.strategies {
        let Some(universe) = &s.universe else {
            continue;
        };
        let key = keys.universe(s.id);
        pipe.del(&key).ignore();
        for chunk in universe.chunks(WRITE_CHUNK) {
            pipe.sadd(&key, chunk).ignore();
            pending += chunk.len();
            if pending >= POPULATE_BATCH_MEMBERS {
                pipe.query_async::<()>(con)
                    .await
                    .map_err(redis_error("populate"))?;
                pipe.clear();
                report.round_trips += 1;
                pending = 0;
            }
        }
        report.universes += 1;
        report.members += universe.len() as u64;
    }
    if !pipe.is_empty() {
        pipe.query_async::<()>(con)
            .await
            .map_err(redis_error("populate"))?;
        report.round_trips += 1;
    }
    Ok(report)
}

/// Records `updates` with tickgate's record script ([`RECORD_SCRIPT`]: `ZADD … GT` plus
/// the change sequence engines read deltas from), one call per [`WRITE_CHUNK`] updates,
/// pipelined in round trips of about [`POPULATE_BATCH_MEMBERS`]. Returns the round trips.
pub async fn write_updates(
    con: &mut impl ConnectionLike,
    keys: &KeySpace,
    updates: &[(String, i64)],
) -> Result<u64, WorkloadError> {
    let script = redis::Script::new(RECORD_SCRIPT);
    let mut round_trips = 0;
    for batch in updates.chunks(POPULATE_BATCH_MEMBERS) {
        let mut pipe = redis::pipe();
        // Loaded first in the same round trip, so a `SCRIPT FLUSH` cannot fail the calls.
        pipe.cmd("SCRIPT").arg("LOAD").arg(RECORD_SCRIPT).ignore();
        for chunk in batch.chunks(WRITE_CHUNK) {
            let mut call = script.key(keys.updates());
            call.key(keys.update_sequence()).key(keys.update_feed());
            for (ticker, ts) in chunk {
                call.arg(*ts).arg(ticker);
            }
            pipe.invoke_script(&call).ignore();
        }
        pipe.query_async::<()>(con)
            .await
            .map_err(redis_error("write_updates"))?;
        round_trips += 1;
    }
    Ok(round_trips)
}

/// Deletes every strategy's trigger state (`STRAT:<id>:LAST` and `STRAT:<id>:RUN`), so the
/// next tick sees the same state as the first: benches call it between iterations.
/// Returns the round trips made.
pub async fn clear_trigger_state(
    con: &mut impl ConnectionLike,
    keys: &KeySpace,
    strategies: &[StrategyDef],
) -> Result<u64, WorkloadError> {
    let mut round_trips = 0;
    for batch in strategies.chunks(CLEAR_KEYS_PER_DEL / 2 * CLEAR_DELS_PER_ROUND_TRIP) {
        let mut pipe = redis::pipe();
        for chunk in batch.chunks(CLEAR_KEYS_PER_DEL / 2) {
            let mut del = redis::cmd("DEL");
            for s in chunk {
                del.arg(keys.triggers(s.id)).arg(keys.strategy_run(s.id));
            }
            pipe.add_command(del).ignore();
        }
        pipe.query_async::<()>(con)
            .await
            .map_err(redis_error("clear_trigger_state"))?;
        round_trips += 1;
    }
    Ok(round_trips)
}
