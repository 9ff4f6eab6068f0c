//! What must happen, kept apart from the run loop (TigerBeetle's state checker): the full
//! evaluation of DESIGN §2.3–2.4 on the oracle's own copy of the world, and one checker per
//! property the simulator proves.
//!
//! - [`Oracle`] (this file): every strategy, every tick, through
//!   [`tickgate::core::rule::decide_in`]. Whatever the engine instances dispatch together
//!   must equal what it dispatches. It also counts what the baselines would have done on
//!   the same world: the run-everything mode (one run per strategy per bucket) and the
//!   seed's algorithm ([`seed`]).
//! - [`seed`]: the seed's algorithm and its one cost model, shared with the seed-faithful
//!   replay against Redis.
//! - [`safety`]: no ticker dispatched twice for a strategy in one bucket without a failed
//!   run between, from the dispatches alone.
//! - [`liveness`]: every dispatch the oracle owes was made.
//! - [`divergence`]: any other difference from the full evaluation.
//! - [`memory`]: Redis memory stays under the scenario's bound.
//! - [`fred`]: the independent reader — a second Redis client reads the jobs stream, which
//!   must equal what the workers read through redis-rs.
//! - [`violation`]: how a failed check is described (and its exit code).

pub mod divergence;
pub mod fred;
pub mod liveness;
pub mod memory;
pub mod safety;
pub mod seed;
pub mod violation;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use tickgate::core::catalog::{Strategy, Universe};
use tickgate::core::jobs::{Job, JobMode};
use tickgate::core::rule::{Decision, SkipReason, admitted, decide_in};
use tickgate::{Bucket, Timeframe};
use tickgate::{StrategyId, Ticker};

pub use self::safety::Safety;
pub use self::seed::{SeedModel, SeedStep};
pub use self::violation::Violation;

/// One dispatch: (strategy, bucket start, mode, symbols).
pub type Dispatch = (StrategyId, i64, JobMode, BTreeSet<String>);

/// Dispatches merged per (strategy, bucket, mode): one strategy's tickers may be split over
/// several jobs in one tick (e.g. over several engine instances).
pub type Merged = BTreeMap<(StrategyId, i64, JobMode), BTreeSet<String>>;

/// FNV-1a: the oracle probes every universe ticker of every strategy every tick, and for
/// keys of a few bytes this is several times cheaper than the default SipHash. The keys
/// are our own generated tickers, so hash flooding is not a concern here.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A hash map keyed with [`Fnv`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// What the baselines would have cost on one tick of the same world.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BaselineCounts {
    /// Runs the run-everything (legacy) mode makes this tick: every active strategy whose
    /// current bucket has not run yet.
    pub run_everything: u64,
    /// Round trips the seed's algorithm makes this tick on its own trigger state
    /// ([`seed`]): per strategy ZRANGEBYSCORE and SMEMBERS, then HMGET if something
    /// changed, then HMSET if something is new (GET and SET of a marker for globals).
    pub seed_round_trips: u64,
}

/// The world as DESIGN.md says it evolves.
#[derive(Debug, Clone)]
pub struct Oracle {
    pub per_ticker: bool,
    pub max_universe: usize,
    /// Update times more than this ahead of the tick's time are ignored until it comes
    /// within the bound (DESIGN §2.3), as the engine's planner ignores them.
    pub max_future_ms: i64,
    pub strategies: BTreeMap<StrategyId, Strategy>,
    /// Ticker → last update. Hash maps (never iterated, so order cannot leak into results)
    /// because the oracle probes every universe ticker of every strategy every tick.
    pub updates: FastMap<Ticker, i64>,
    /// Ticker → its latest update in an earlier minute than its last (what `TICK:PRE`
    /// keeps): a closing pass still sees an update the next one replaced.
    before: FastMap<Ticker, i64>,
    /// Strategy → (timeframe, bucket) at the previous tick: a strategy whose bucket moved on
    /// with the same timeframe is evaluated once more for the bucket that closed
    /// (DESIGN §2.3 step 6).
    previous: BTreeMap<StrategyId, (Timeframe, Bucket)>,
    /// Redis lost its state: at the next tick the engines write their claims back and
    /// dispatch nothing (DESIGN §9), so the oracle decides nothing either.
    deferred: bool,
    /// Strategy → ticker → bucket start of its claim.
    claims: FastMap<StrategyId, FastMap<Ticker, i64>>,
    runs: BTreeMap<StrategyId, i64>,
    /// Bucket start of the last run-everything run per strategy.
    legacy_runs: BTreeMap<StrategyId, i64>,
    /// Skips of the last tick, by reason.
    pub skipped: BTreeMap<SkipReason, u64>,
    /// The seed's algorithm on the same world, with its own trigger state.
    seed: SeedModel,
}

impl Oracle {
    /// An oracle over the active strategies of `catalog` (id → JSON). Entries that do not
    /// parse are left out, as the engine leaves them out.
    pub fn new(per_ticker: bool, catalog: &BTreeMap<StrategyId, String>) -> Oracle {
        let strategies = catalog
            .iter()
            .filter_map(|(id, json)| Some((*id, Strategy::from_catalog(*id, json).ok()?.0)))
            .filter(|(_, s)| s.active)
            .collect();
        Oracle {
            per_ticker,
            max_universe: tickgate::limits::DEFAULT_MAX_UNIVERSE,
            max_future_ms: tickgate::limits::DEFAULT_MAX_FUTURE_MS,
            strategies,
            updates: FastMap::default(),
            before: FastMap::default(),
            previous: BTreeMap::new(),
            deferred: false,
            claims: FastMap::default(),
            runs: BTreeMap::new(),
            legacy_runs: BTreeMap::new(),
            skipped: BTreeMap::new(),
            seed: SeedModel::default(),
        }
    }

    /// Redis lost everything it held (restart empty): update times. Not the claims: every
    /// engine instance writes back those it made in open buckets before it dispatches
    /// again, and dispatches nothing at that tick (DESIGN §9). Not `previous`: the engines
    /// still close the bucket they were in.
    pub fn forget_redis_state(&mut self) {
        self.updates.clear();
        self.before.clear();
        self.deferred = true;
        self.seed.forget();
    }

    /// Records updates with `ZADD GT` semantics; invalid tickers are ignored (the engine's
    /// store rejects them).
    /// The latest time in an earlier minute is kept beside the last one.
    pub fn record(&mut self, updates: &[(String, i64)]) {
        for (t, ts) in updates {
            let Ok(t) = Ticker::parse(t) else { continue };
            let minute = |ms: i64| ms.div_euclid(60_000);
            let last = self.updates.get(&t).copied();
            let earlier = match last {
                Some(last) if minute(*ts) > minute(last) => Some(last),
                Some(last) if minute(*ts) < minute(last) => Some(*ts),
                _ => None,
            };
            if let Some(e) = earlier {
                let slot = self.before.entry(t.clone()).or_insert(e);
                *slot = (*slot).max(e);
            }
            self.updates.insert(t, last.map_or(*ts, |l| l.max(*ts)));
        }
    }

    /// Removes update entries older than `cutoff_ms`, as a cleanup run does.
    pub fn cleanup(&mut self, cutoff_ms: i64) {
        self.updates.retain(|_, ts| *ts >= cutoff_ms);
        let updates = &self.updates;
        self.before.retain(|t, _| updates.contains_key(t));
    }

    /// The closing passes due at `now` (DESIGN §2.3 step 6), before anything of the current
    /// buckets: per-ticker strategies whose bucket moved on since the previous tick, on the
    /// tickers updated inside the closed bucket (last time, or latest in an earlier minute)
    /// and not claimed in it.
    fn close_buckets(&mut self, current: &BTreeMap<StrategyId, Bucket>) -> BTreeSet<Dispatch> {
        let mut out = BTreeSet::new();
        for (id, s) in &self.strategies {
            let (Some(&(tf, closed)), Some(now_bucket)) = (self.previous.get(id), current.get(id))
            else {
                continue;
            };
            if s.timeframe.as_ref().ok() != Some(&tf) || closed.end_ms > now_bucket.start_ms {
                continue;
            }
            if !matches!(
                tickgate::core::rule::run_shape(&s.universe, self.per_ticker),
                tickgate::core::rule::RunShape::PerTicker(_)
            ) {
                continue;
            }
            let inside = |ts: &i64| (closed.start_ms..closed.end_ms).contains(ts);
            let time_inside = |t: &Ticker| {
                let last = self.updates.get(t).copied().filter(inside);
                last.or_else(|| self.before.get(t).copied().filter(inside))
            };
            let claims = self.claims.get(id);
            let decision = decide_in(
                s,
                self.per_ticker,
                Some(closed),
                time_inside,
                |t, start| claims.and_then(|c| c.get(t)) == Some(&start),
                |_| true,
            );
            if let Decision::Run { mode, symbols, .. } = decision {
                let symbols = symbols.iter().map(|t| t.as_str().to_owned()).collect();
                out.insert((*id, closed.start_ms, mode, symbols));
            }
        }
        out
    }

    /// Full evaluation of every strategy at `now`; claims what it dispatches.
    pub fn tick(&mut self, now: i64) -> (BTreeSet<Dispatch>, BaselineCounts) {
        let mut out: BTreeSet<Dispatch> = BTreeSet::new();
        let mut counts = BaselineCounts::default();
        if std::mem::take(&mut self.deferred) {
            self.skipped.clear();
            return (out, counts);
        }
        self.skipped.clear();
        // One bucket per distinct timeframe: bucket arithmetic in the market's time zone is
        // the costliest part of evaluating a strategy.
        let mut buckets: BTreeMap<Timeframe, Option<Bucket>> = BTreeMap::new();
        let mut bucket_of = |s: &Strategy| {
            let tf = *s.timeframe.as_ref().ok()?;
            *buckets.entry(tf).or_insert_with(|| tf.bucket(now).ok())
        };
        let mut current: BTreeMap<StrategyId, Bucket> = BTreeMap::new();
        let (updates, bound) = (&self.updates, self.max_future_ms);
        let last_update = |t: &Ticker| {
            updates
                .get(t)
                .copied()
                .filter(|ts| admitted(*ts, now, bound))
        };
        for (id, s) in &self.strategies {
            let bucket = bucket_of(s);
            if let Some(b) = bucket {
                current.insert(*id, b);
            }
            let decision = decide_in(
                s,
                self.per_ticker,
                bucket,
                last_update,
                |t, start| self.claims.get(id).and_then(|c| c.get(t)) == Some(&start),
                |start| self.runs.get(id) == Some(&start),
            );
            if s.timeframe.is_ok()
                && let Some(b) = bucket
                && self.legacy_runs.get(id) != Some(&b.start_ms)
            {
                counts.run_everything += 1;
            }
            let unchanged = decision == Decision::Skip(SkipReason::NoUpdate);
            let seed = self
                .seed
                .step(s, bucket, unchanged, |t| updates.get(t).copied());
            counts.seed_round_trips += seed.round_trips();
            match decision {
                Decision::Run {
                    bucket,
                    mode,
                    symbols,
                } => {
                    out.insert((
                        *id,
                        bucket.start_ms,
                        mode,
                        symbols.iter().map(|t| t.as_str().to_owned()).collect(),
                    ));
                }
                Decision::Skip(reason) => *self.skipped.entry(reason).or_default() += 1,
            }
        }
        let closing = self.close_buckets(&current);
        self.previous.clear();
        for (id, b) in current {
            self.legacy_runs.insert(id, b.start_ms);
            if let Some(Ok(tf)) = self.strategies.get(&id).map(|s| &s.timeframe) {
                self.previous.insert(id, (*tf, b));
            }
        }
        out.extend(closing);
        self.claim(&out);
        (out, counts)
    }

    /// Claims what the oracle dispatched: per-ticker claims, or whole runs.
    fn claim(&mut self, out: &BTreeSet<Dispatch>) {
        for (id, start, mode, symbols) in out {
            if *mode == JobMode::PerTicker {
                let claims = self.claims.entry(*id).or_default();
                for t in symbols {
                    if let Ok(t) = Ticker::parse(t) {
                        claims.insert(t, *start);
                    }
                }
            } else {
                self.runs.insert(*id, *start);
            }
        }
    }

    /// A failed run releases its claims (those still held for its bucket).
    pub fn fail(&mut self, job: &Job) {
        let id = job.strategy_id;
        match &job.symbols {
            Some(symbols) if job.mode == JobMode::PerTicker => {
                let Some(claims) = self.claims.get_mut(&id) else {
                    return;
                };
                for t in symbols {
                    let Ok(t) = Ticker::parse(t) else { continue };
                    if claims.get(&t) == Some(&job.bucket_start_ms) {
                        claims.remove(&t);
                    }
                }
            }
            _ => {
                if self.runs.get(&id) == Some(&job.bucket_start_ms) {
                    self.runs.remove(&id);
                }
            }
        }
    }

    /// `used_symbols` replace an explicit (or missing) universe when some are valid and no
    /// more than `max_universe`.
    pub fn discover(&mut self, id: StrategyId, used: &[String]) {
        let Some(s) = self.strategies.get_mut(&id) else {
            return;
        };
        if s.universe == Universe::Global {
            return;
        }
        let valid: BTreeSet<Ticker> = used.iter().filter_map(|t| Ticker::parse(t).ok()).collect();
        if !valid.is_empty() && valid.len() <= self.max_universe {
            s.universe = Universe::Tickers(valid);
        }
    }
}

/// Merges dispatches per (strategy, bucket, mode).
pub fn merged(dispatches: &BTreeSet<Dispatch>) -> Merged {
    let mut out: Merged = BTreeMap::new();
    for (id, start, mode, symbols) in dispatches {
        out.entry((*id, *start, *mode))
            .or_default()
            .extend(symbols.iter().cloned());
    }
    out
}

/// A job as the checkers see it: its strategy, bucket, mode and symbols.
pub fn dispatch_of(job: &Job) -> Dispatch {
    let symbols = job.symbols.iter().flatten().cloned().collect();
    (job.strategy_id, job.bucket_start_ms, job.mode, symbols)
}

/// The checks of one tick, in the order that names a difference best: a tick equal to the
/// full evaluation passes; otherwise a repeat is a safety violation, a missing dispatch a
/// liveness one, anything else a divergence.
pub fn check_tick(now: i64, got: &Merged, want: &Merged, safety: &Safety) -> Result<(), Violation> {
    if got == want {
        return Ok(());
    }
    safety.check(now, got)?;
    liveness::check(now, got, want)?;
    divergence::check(now, got, want)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickgate::core::catalog::CatalogEntry;
    use tickgate::limits::DEFAULT_MAX_FUTURE_MS;

    /// 2024-06-03T13:30Z, a minute boundary.
    const NOW: i64 = 1_717_421_400_000;

    #[test]
    fn a_time_too_far_ahead_is_ignored_until_the_clock_comes_within_the_bound() {
        let universe = Some(vec!["A".to_owned(), "B".to_owned()]);
        let entry = CatalogEntry::new(1, 7, "s", "1m", universe);
        let mut oracle = Oracle::new(true, &BTreeMap::from([(1, entry.to_json())]));
        let now = NOW + 10_000;
        let far = now + DEFAULT_MAX_FUTURE_MS + 1;
        oracle.record(&[("A".to_owned(), far), ("B".to_owned(), NOW + 1)]);
        let symbols = |tickers: &[&str]| tickers.iter().map(|t| (*t).to_owned()).collect();
        let (out, _) = oracle.tick(now);
        let want = (1, NOW, JobMode::PerTicker, symbols(&["B"]));
        assert_eq!(out, BTreeSet::from([want]));
        let later = far - DEFAULT_MAX_FUTURE_MS;
        let (out, _) = oracle.tick(later);
        let start = later.div_euclid(60_000) * 60_000;
        assert_eq!(
            out,
            BTreeSet::from([(1, start, JobMode::PerTicker, symbols(&["A"]))])
        );
    }
}
