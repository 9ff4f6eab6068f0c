//! The synthetic market a simulation replays (DESIGN §7): a ticker population with
//! listings, delistings and daily option contracts that expire (the churn that makes
//! cleanup matter), updates that follow US market hours with bursts and late stamps, and
//! the strategy catalog drawn from the population at the start.
//!
//! It is the one world generator: the simulator runs it on any scenario, and the W-100k
//! bench (`benches/tick.rs`) on `fixtures/scenarios/w100k.toml`, DESIGN §6's reference
//! workload.
//!
//! **Determinism.** Everything is a function of (scenario, seed, the sequence of calls):
//! randomness comes only from generators seeded from the seed (one stream for market
//! events, one for the catalog, one for [`Market::sample_listed`], so asking for a catalog
//! or a worker's sample never shifts the market's events), every collection whose order
//! is observable is a `Vec`, `BTreeMap` or `BTreeSet`, and nothing reads a clock.
//!
//! **Time.** The market is generated one UTC minute at a time, in order, when a
//! [`Market::step`] first reaches that minute; a step returns the events of its window.
//! So the events do not depend on how a run slices time into steps, as long as the steps
//! follow each other. Per minute, in this order:
//! 1. option contracts whose expiry (16:00 ET of their date) has come are delisted;
//! 2. at the first minute of a weekday's regular session (09:30 ET), `options_per_day` new
//!    contracts are listed, expiring `option_expiry_days` later;
//! 3. random listings and delistings of stocks and crypto pairs (Poisson per minute);
//! 4. updates: a Poisson count at the minute's rate, each a uniformly drawn listed ticker
//!    arriving at a uniform instant of the minute; `late_share` of them are stamped up to
//!    `late_max_ms` earlier (never before the ticker's listing); of the others,
//!    `future_share` are stamped up to `future_max_ms` ahead (a feed with a fast clock) —
//!    drawn only when `future_share > 0`, so scenarios without it keep their streams.
//!
//! Rates per minute: in regular hours (09:30–16:00 America/New_York, Monday–Friday; no
//! holiday calendar) `updates_per_minute_open` over every listed ticker; at other times
//! `updates_per_minute_closed` over stocks and options, while crypto pairs keep their
//! regular-hours share around the clock. A burst minute multiplies both.
//!
//! **Cost.** A step costs O(minutes it opens + updates it returns): per minute a few draws,
//! per update one. Daily option listings cost O(`options_per_day`) once a day and each
//! expiry O(1); nothing is O(population) except [`Market::new`], [`Market::catalog`] and
//! [`Market::listed`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use jiff::civil::Date;
use rand::RngExt;

use tickgate::core::time::{DAY_MS, MINUTE_MS};

use self::calendar::{Calendar, Day, add_days, yymmdd};
use self::names::{FAMOUS_CRYPTO, FAMOUS_STOCKS, crypto_pair};
use super::rng::{SimRng, poisson, poisson_cap, sample_indexes, seeded_rng, stream_seed};
use super::scenario::{ActivitySpec, Scenario, StrategySpec, TickerSpec};

mod calendar;
mod catalog;
mod names;
mod population;
#[cfg(test)]
mod tests;

pub use self::catalog::INVALID_TIMEFRAMES;

/// Longest window one [`Market::step`] generates: 31 days (44,640 minutes). The simulation
/// asks for one tick (10 s) at a time and tests for a few days; a longer window returns
/// only its first 31 days, which keeps every call's loop and memory bounded.
pub const MAX_STEP_MS: i64 = 31 * DAY_MS;

/// How far before a window the market replays population events (expiries, option
/// listings, listings and delistings; no updates) when a step skips ahead of the last one.
/// Further back nothing is replayed, except that overdue expiries still happen.
pub const MAX_FAST_FORWARD_MS: i64 = 31 * DAY_MS;

/// Attempts at a fresh name (a random stock or crypto symbol not yet used, an option
/// strike not yet listed that day) before a listing is skipped. Within the scenario's
/// limits a draw hits a taken name with probability about one half at worst (100,000
/// stocks fill the 3-letter roots; 4-letter roots stay mostly free), so 64 misses in a row
/// (< 1e-18) never happen in practice; the bound only guarantees termination.
const MAX_NAME_ATTEMPTS: usize = 64;

/// Random delistings never remove the last ticker of a class: options need an underlying,
/// and a class with no member could never trade again.
const MIN_CLASS_SIZE: usize = 1;

/// The market's event stream and the worker sample stream (the catalog has its own).
const MARKET_STREAM: u64 = 0;
const WORKER_STREAM: u64 = 1;

/// Dormant (never traded) contracts expire this long after the start: a LEAPS, beyond any
/// live contract's life in practice (their strikes differ anyway, see `names`).
const DORMANT_EXPIRY_DAYS: i64 = 365;

/// Everything that happened in one window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarketStep {
    /// `(ticker, ts_ms)` in arrival order; a late update's `ts_ms` is before its arrival.
    pub updates: Vec<(String, i64)>,
    /// Newly listed tickers (stocks, crypto pairs, option contracts), in listing order.
    pub listed: Vec<String>,
    /// Delisted tickers (expired options included): never updated again.
    pub delisted: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Stock = 0,
    Crypto = 1,
    Option = 2,
}

/// An update generated but not yet handed out; the name is resolved at generation, since
/// a ticker's slot is reused after its delisting.
struct Pending {
    arrival_ms: i64,
    ticker: String,
    ts_ms: i64,
}

/// Not listed (a free slot).
const UNLISTED: usize = usize::MAX;

/// The synthetic market of one scenario and seed.
pub struct Market {
    tickers: TickerSpec,
    activity: ActivitySpec,
    strategies: StrategySpec,
    seed: u64,
    rng: SimRng,
    worker_rng: SimRng,
    calendar: Calendar,
    /// The New York day of the minute being generated.
    day: Day,
    // Listed tickers by slot; slots of delisted tickers are reused (`free`).
    names: Vec<String>,
    class: Vec<Class>,
    listed_at: Vec<i64>,
    /// Position in `pools[class]`, or [`UNLISTED`].
    position: Vec<usize>,
    free: Vec<u32>,
    /// Listed slots per class, for O(1) uniform picks and removals.
    pools: [Vec<u32>; 3],
    /// Every stock and crypto name ever listed: names are never reused.
    taken: BTreeSet<String>,
    /// Option symbols listed the current day (different days have different expiries).
    day_options: BTreeSet<String>,
    /// Expiry instant → option slots.
    expiries: BTreeMap<i64, Vec<u32>>,
    /// The latest date whose options are listed (or whose open is before the start).
    last_option_date: Option<Date>,
    /// Population at the start, for the catalog.
    initial_base: Vec<String>,
    initial_options: Vec<String>,
    initial_roots: Vec<String>,
    dormant_expiry: Option<String>,
    /// Minutes before this are generated.
    generated_until: i64,
    pending: VecDeque<Pending>,
    /// Cap of one minute's update count (see [`Market::max_updates_per_minute`]).
    minute_cap: u64,
}

impl Market {
    /// The market at `scenario.start_ms`: `stocks` stocks (famous names first), `crypto`
    /// pairs, and the option contracts of earlier weekdays that are still alive, so option
    /// churn is in steady state from the first step. O(population).
    pub fn new(scenario: &Scenario, seed: u64) -> Market {
        let calendar = Calendar::new();
        let start_ms = scenario.start_ms;
        let activity = sane_activity(&scenario.activity);
        // The busiest minute: a burst at the open rate plus the closed rate (crypto's
        // share of the open rate is at most the open rate).
        let peak = (f64::from(activity.updates_per_minute_open)
            + f64::from(activity.updates_per_minute_closed))
            * activity.burst_multiplier;
        let mut market = Market {
            tickers: scenario.tickers.clone(),
            activity,
            strategies: scenario.strategies.clone(),
            seed,
            rng: seeded_rng(stream_seed(seed, MARKET_STREAM)),
            worker_rng: seeded_rng(stream_seed(seed, WORKER_STREAM)),
            day: calendar.day(start_ms),
            calendar,
            names: Vec::new(),
            class: Vec::new(),
            listed_at: Vec::new(),
            position: Vec::new(),
            free: Vec::new(),
            pools: [Vec::new(), Vec::new(), Vec::new()],
            taken: BTreeSet::new(),
            day_options: BTreeSet::new(),
            expiries: BTreeMap::new(),
            last_option_date: None,
            initial_base: Vec::new(),
            initial_options: Vec::new(),
            initial_roots: Vec::new(),
            dormant_expiry: None,
            generated_until: start_ms.div_euclid(MINUTE_MS).saturating_mul(MINUTE_MS),
            pending: VecDeque::new(),
            minute_cap: poisson_cap(peak),
        };
        market.list_initial_population(start_ms);
        market
    }

    /// The population at `start_ms`, listed long before it (late stamps are never clamped
    /// for it), and the catalog's view of it.
    fn list_initial_population(&mut self, start_ms: i64) {
        for i in 0..self.tickers.stocks {
            let famous = FAMOUS_STOCKS.get(i).map(|s| (*s).to_owned());
            self.list_fresh(Class::Stock, famous, i64::MIN, None);
        }
        for i in 0..self.tickers.crypto {
            let famous = FAMOUS_CRYPTO.get(i).map(|b| crypto_pair(b));
            self.list_fresh(Class::Crypto, famous, i64::MIN, None);
        }
        self.list_initial_options(start_ms);

        let names_of = |m: &Market, class: Class| -> Vec<String> {
            m.pools[class as usize]
                .iter()
                .map(|&slot| m.names[slot as usize].clone())
                .collect()
        };
        self.initial_base = names_of(self, Class::Stock);
        self.initial_roots = self
            .initial_base
            .iter()
            .filter(|s| !s.contains('.'))
            .cloned()
            .collect();
        let crypto = names_of(self, Class::Crypto);
        self.initial_base.extend(crypto);
        self.initial_options = names_of(self, Class::Option);
        self.dormant_expiry = self
            .calendar
            .date_of(start_ms)
            .and_then(|d| add_days(d, DORMANT_EXPIRY_DAYS))
            .map(yymmdd);
    }

    /// Everything that happens in `[from_ms, to_ms)` (see the module docs): updates whose
    /// arrival is in the window (`ts_ms` in it, or up to `late_max_ms` earlier for late
    /// ones), listings and delistings. Windows are meant to follow each other; a window
    /// that overlaps an earlier one only gets the events not handed out yet, one that
    /// skips ahead replays the skipped population events (up to [`MAX_FAST_FORWARD_MS`])
    /// without their updates, and one longer than [`MAX_STEP_MS`] is cut to it.
    pub fn step(&mut self, from_ms: i64, to_ms: i64) -> MarketStep {
        let mut out = MarketStep::default();
        if to_ms <= from_ms {
            return out;
        }
        let to_ms = to_ms.min(from_ms.saturating_add(MAX_STEP_MS));
        let first_minute = from_ms.div_euclid(MINUTE_MS).saturating_mul(MINUTE_MS);
        self.generated_until = self
            .generated_until
            .max(first_minute.saturating_sub(MAX_FAST_FORWARD_MS));
        // At most (MAX_FAST_FORWARD_MS + MAX_STEP_MS) / MINUTE_MS + 1 minutes.
        while self.generated_until < to_ms {
            let minute = self.generated_until;
            self.generate_minute(minute, from_ms, &mut out);
            self.generated_until = minute.saturating_add(MINUTE_MS);
        }
        while self.pending.front().is_some_and(|p| p.arrival_ms < to_ms) {
            if let Some(p) = self.pending.pop_front()
                && p.arrival_ms >= from_ms
            {
                out.updates.push((p.ticker, p.ts_ms));
            }
        }
        out
    }

    /// The strategy catalog: strategy id (`1..=count`) → JSON in the DESIGN §2.8 format,
    /// drawn from the population at the start whenever it is called (its own generator).
    /// Universe sizes are log-normal (median, σ), clamped to `1..=universe_max` with the
    /// largest raised to `universe_max`; `global_share` of the strategies are global
    /// (`"all"`), `invalid_timeframe_share` carry an invalid timeframe
    /// ([`INVALID_TIMEFRAMES`]); `option_share` of the members are option contracts (which
    /// expire). A universe larger than the population is filled with dormant contracts,
    /// listed far out and never traded. O(strategies + universe members).
    pub fn catalog(&mut self) -> BTreeMap<u64, String> {
        let population = catalog::Population {
            base: &self.initial_base,
            options: &self.initial_options,
            roots: &self.initial_roots,
            dormant_expiry: self.dormant_expiry.clone(),
        };
        catalog::build(&self.strategies, &population, self.seed)
    }

    /// Up to `n` distinct listed tickers drawn uniformly (sorted), for simulated workers'
    /// `used_symbols`. Its own generator: a worker's sample never shifts market events.
    /// O(n log n).
    pub fn sample_listed(&mut self, n: usize) -> Vec<String> {
        let total = self.listed_count();
        let mut out: Vec<String> = sample_indexes(&mut self.worker_rng, total, n)
            .into_iter()
            .filter_map(|i| self.listed_at_index(i))
            .map(|slot| self.names[slot as usize].clone())
            .collect();
        out.sort_unstable();
        out
    }

    /// Tickers listed now (stocks, crypto pairs, live option contracts).
    pub fn listed_count(&self) -> usize {
        self.pools.iter().map(Vec::len).sum()
    }

    /// Every listed ticker, sorted. O(population): for setting up a run, not per step.
    pub fn listed(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .pools
            .iter()
            .flatten()
            .map(|&slot| self.names[slot as usize].clone())
            .collect();
        out.sort_unstable();
        out
    }

    /// The cap on one minute's update count, derived from the scenario: the busiest
    /// possible minute's mean (a burst at the open plus the closed rate) plus
    /// `POISSON_CAP_SIGMAS` standard deviations — never reached in practice; it bounds
    /// each step at `minutes × cap` updates.
    pub fn max_updates_per_minute(&self) -> u64 {
        self.minute_cap
    }

    /// The `i`-th listed ticker over stocks, crypto pairs, then options.
    fn listed_at_index(&self, mut i: usize) -> Option<u32> {
        for pool in &self.pools {
            if i < pool.len() {
                return Some(pool[i]);
            }
            i -= pool.len();
        }
        None
    }

    /// Generates the minute starting at `minute` (see the module docs); its updates only
    /// when the minute reaches into the window starting at `from_ms`.
    fn generate_minute(&mut self, minute: i64, from_ms: i64, out: &mut MarketStep) {
        if !self.day.contains(minute) {
            self.day = self.calendar.day(minute);
        }
        // 1. Expiries due (each entry is removed, so this ends).
        while let Some(entry) = self.expiries.first_entry() {
            if *entry.key() > minute {
                break;
            }
            for slot in entry.remove() {
                out.delisted.extend(self.remove(slot));
            }
        }
        // 2. The weekday's new contracts, at the open.
        let day = self.day;
        if day.is_open(minute) && day.date.is_some() && self.last_option_date < day.date {
            self.last_option_date = day.date;
            if let Some(date) = day.date {
                self.list_options(date, minute, minute, Some(&mut out.listed));
            }
        }
        // 3. Random listings and delistings of stocks and crypto pairs.
        let per_minute = |per_day: f64| per_day * MINUTE_MS as f64 / DAY_MS as f64;
        let lambda = per_minute(self.tickers.listings_per_day);
        for _ in 0..poisson(&mut self.rng, lambda, poisson_cap(lambda)) {
            let (stocks, crypto) = (self.tickers.stocks as f64, self.tickers.crypto as f64);
            let class = if self.rng.random::<f64>() * (stocks + crypto) < crypto {
                Class::Crypto
            } else {
                Class::Stock
            };
            self.list_fresh(class, None, minute, Some(&mut out.listed));
        }
        let lambda = per_minute(self.tickers.delistings_per_day);
        for _ in 0..poisson(&mut self.rng, lambda, poisson_cap(lambda)) {
            let n = self.pools[0].len() + self.pools[1].len();
            if n == 0 {
                break;
            }
            let index = self.rng.random_range(0..n);
            let slot = self.listed_at_index(index);
            if let Some(slot) = slot
                && self.pools[self.class[slot as usize] as usize].len() > MIN_CLASS_SIZE
            {
                out.delisted.extend(self.remove(slot));
            }
        }
        // 4. Updates.
        if minute.saturating_add(MINUTE_MS) > from_ms {
            self.generate_updates(minute);
        }
    }

    fn generate_updates(&mut self, minute: i64) {
        let a = &self.activity;
        let burst = if self.rng.random_bool(a.burst_chance_per_minute) {
            a.burst_multiplier
        } else {
            1.0
        };
        let n_stock = self.pools[Class::Stock as usize].len();
        let n_crypto = self.pools[Class::Crypto as usize].len();
        let n_equity = n_stock + self.pools[Class::Option as usize].len();
        let n = n_equity + n_crypto;
        if n == 0 {
            return;
        }
        let open_rate = f64::from(a.updates_per_minute_open) * burst;
        let crypto_rate = open_rate * n_crypto as f64 / n as f64;
        let equity_rate = if n_equity == 0 {
            0.0
        } else if self.day.is_open(minute) {
            open_rate * n_equity as f64 / n as f64
        } else {
            f64::from(a.updates_per_minute_closed) * burst
        };
        let (late_share, late_max_ms) = (a.late_share, a.late_max_ms);
        let (future_share, future_max_ms) = (a.future_share, a.future_max_ms);
        let total = crypto_rate + equity_rate;
        let count = poisson(&mut self.rng, total, self.minute_cap);
        let mut batch = Vec::with_capacity(count as usize);
        for _ in 0..count {
            // Thinning one Poisson count into two classes keeps each Poisson.
            let slot = if self.rng.random::<f64>() * total < crypto_rate {
                self.pools[Class::Crypto as usize][self.rng.random_range(0..n_crypto)]
            } else {
                let i = self.rng.random_range(0..n_equity);
                match self.pools[Class::Stock as usize].get(i) {
                    Some(&slot) => slot,
                    None => self.pools[Class::Option as usize][i - n_stock],
                }
            };
            let arrival_ms = minute.saturating_add(self.rng.random_range(0..MINUTE_MS));
            let mut ts_ms = arrival_ms;
            if late_share > 0.0 && self.rng.random_bool(late_share) {
                let late = self.rng.random_range(1..=late_max_ms);
                ts_ms = arrival_ms
                    .saturating_sub(late)
                    .max(self.listed_at[slot as usize]);
            } else if future_share > 0.0 && self.rng.random_bool(future_share) {
                ts_ms = arrival_ms.saturating_add(self.rng.random_range(1..=future_max_ms));
            }
            batch.push(Pending {
                arrival_ms,
                ticker: self.names[slot as usize].clone(),
                ts_ms,
            });
        }
        // Stable: equal arrivals keep their draw order.
        batch.sort_by_key(|p| p.arrival_ms);
        self.pending.extend(batch);
    }
}

/// The scenario's activity, made safe to draw from: scenarios are validated by
/// `Scenario::parse`, but one built by hand must not make a draw panic, so probabilities
/// are clamped, a late share without a late bound is dropped and the burst multiplier is
/// at least 1.
fn sane_activity(activity: &ActivitySpec) -> ActivitySpec {
    let prob = |p: f64| {
        if p.is_finite() {
            p.clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    let mut activity = activity.clone();
    activity.burst_chance_per_minute = prob(activity.burst_chance_per_minute);
    activity.late_share = prob(activity.late_share);
    activity.late_max_ms = activity.late_max_ms.max(0);
    if activity.late_max_ms == 0 {
        activity.late_share = 0.0;
    }
    activity.future_share = prob(activity.future_share);
    activity.future_max_ms = activity.future_max_ms.max(0);
    if activity.future_max_ms == 0 {
        activity.future_share = 0.0;
    }
    if !(activity.burst_multiplier >= 1.0 && activity.burst_multiplier.is_finite()) {
        activity.burst_multiplier = 1.0;
    }
    activity
}
