//! The planner's surroundings, modelled with plain maps: the catalog, the update set and
//! its feed, and the store's claims, runs and jobs. [`World::tick`] drives the planner the
//! way the runtime does (`runtime/tick.rs`) and checks its decisions against
//! [`rule::decide`] on this full state.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tickgate::core::catalog::{Strategy, Universe};
use tickgate::core::jobs::JobMode;
use tickgate::core::planner::{Plan, Planner};
use tickgate::core::rule::{self, Decision, SkipReason};
use tickgate::core::time::MINUTE_MS;
use tickgate::{Bucket, StrategyId, Ticker, Timeframe};

/// A dispatch the store accepted: what it claimed, or the whole run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatched {
    pub bucket: Bucket,
    pub mode: JobMode,
    pub symbols: Vec<Ticker>,
}

/// A job the store holds until it is settled.
#[derive(Debug, Clone)]
struct OpenJob {
    strategy: StrategyId,
    bucket_start_ms: i64,
    /// The tickers it claimed; `None` for a whole run.
    tickers: Option<Vec<Ticker>>,
}

/// The store as the planner's callers see it, with the claim rules of `lib/claim.lua` and
/// `dispatch_strategy.lua`.
#[derive(Debug, Default)]
pub struct Store {
    /// Ticker → last update (`ZADD GT`).
    pub updates: BTreeMap<Ticker, i64>,
    /// Ticker → latest update in an earlier minute than its last (`TICK:PRE`).
    before: BTreeMap<Ticker, i64>,
    /// (strategy, ticker) → bucket start of its last claim.
    claims: BTreeMap<(StrategyId, Ticker), i64>,
    /// Strategy → newest bucket start claimed (a claim for a bucket that ended before it
    /// is stale and claims nothing; a newer bucket drops the older claims).
    newest: BTreeMap<StrategyId, i64>,
    /// Strategy → bucket start of its last whole run.
    runs: BTreeMap<StrategyId, i64>,
    /// Jobs not settled yet, in dispatch order.
    jobs: Vec<OpenJob>,
}

impl Store {
    pub fn record(&mut self, ticker: &Ticker, ts_ms: i64) {
        let minute = |ms: i64| ms.div_euclid(MINUTE_MS);
        if let Some(&last) = self.updates.get(ticker) {
            let earlier = if minute(ts_ms) > minute(last) {
                Some(last)
            } else {
                (minute(ts_ms) < minute(last)).then_some(ts_ms)
            };
            if let Some(e) = earlier {
                let slot = self.before.entry(ticker.clone()).or_insert(e);
                *slot = (*slot).max(e);
            }
        }
        let slot = self.updates.entry(ticker.clone()).or_insert(ts_ms);
        *slot = (*slot).max(ts_ms);
    }

    /// The time of `t` inside `bucket`, if it has one: its last, or its latest in an
    /// earlier minute.
    fn time_inside(&self, t: &Ticker, bucket: Bucket) -> Option<i64> {
        let inside = |ts: &i64| (bucket.start_ms..bucket.end_ms).contains(ts);
        let last = self.updates.get(t).copied().filter(inside);
        last.or_else(|| self.before.get(t).copied().filter(inside))
    }

    /// Claims `tickers` of `s` in `bucket`: returns those newly claimed (the job's symbols).
    pub fn claim(&mut self, s: StrategyId, bucket: Bucket, tickers: &[Ticker]) -> Vec<Ticker> {
        match self.newest.get(&s) {
            Some(&newest) if bucket.end_ms <= newest => return Vec::new(),
            Some(&newest) if bucket.start_ms <= newest => {}
            _ => {
                self.claims.retain(|(id, _), _| *id != s);
                self.newest.insert(s, bucket.start_ms);
            }
        }
        let mut claimed = Vec::new();
        for t in tickers {
            let slot = self.claims.entry((s, t.clone())).or_insert(i64::MIN);
            if *slot != bucket.start_ms {
                *slot = bucket.start_ms;
                claimed.push(t.clone());
            }
        }
        if !claimed.is_empty() {
            self.jobs.push(OpenJob {
                strategy: s,
                bucket_start_ms: bucket.start_ms,
                tickers: Some(claimed.clone()),
            });
        }
        claimed
    }

    /// Runs `s` whole in `bucket`, unless it ran there already or a newer bucket ran.
    pub fn run(&mut self, s: StrategyId, bucket: Bucket) -> bool {
        if let Some(&last) = self.runs.get(&s)
            && (last == bucket.start_ms || bucket.end_ms <= last)
        {
            return false;
        }
        self.runs.insert(s, bucket.start_ms);
        self.jobs.push(OpenJob {
            strategy: s,
            bucket_start_ms: bucket.start_ms,
            tickers: None,
        });
        true
    }

    /// Settles the `i`-th open job (mod their count); a failure releases the claims it
    /// still holds for its bucket. Returns (strategy, claims released).
    pub fn settle(&mut self, i: usize, failed: bool) -> Option<(StrategyId, u64)> {
        if self.jobs.is_empty() {
            return None;
        }
        let job = self.jobs.remove(i % self.jobs.len());
        if !failed {
            return Some((job.strategy, 0));
        }
        let start = job.bucket_start_ms;
        let released = match job.tickers {
            Some(tickers) => tickers
                .into_iter()
                .filter(|t| {
                    let key = (job.strategy, t.clone());
                    let held = self.claims.get(&key) == Some(&start);
                    if held {
                        self.claims.remove(&key);
                    }
                    held
                })
                .count() as u64,
            None if self.runs.get(&job.strategy) == Some(&start) => {
                self.runs.remove(&job.strategy);
                1
            }
            None => 0,
        };
        Some((job.strategy, released))
    }

    /// Redis lost everything: update times, claims, runs, jobs.
    pub fn lose_everything(&mut self) {
        *self = Store::default();
    }
}

/// Everything around one planner.
pub struct World {
    pub planner: Planner,
    pub per_ticker: bool,
    /// Update times further ahead of `now_ms` are ignored (the planner's bound).
    pub max_future_ms: i64,
    pub now_ms: i64,
    /// The active strategies, as the catalog defines them.
    pub catalog: BTreeMap<StrategyId, Strategy>,
    pub store: Store,
    /// Tickers written since the last read (a delta holds them with their current times).
    written: BTreeSet<Ticker>,
    /// The planner knows every update time at or after this (the `since` of its last full
    /// read), as the runtime's `known_from_ms`.
    known_from_ms: i64,
    /// The next read is full (start, lost state, a delta too large).
    full_read_due: bool,
    /// Strategy → (timeframe, bucket) at the previous tick, for the closing passes.
    previous: BTreeMap<StrategyId, (Timeframe, Bucket)>,
}

/// What one tick dispatched and skipped, and what the rule says it should have.
#[derive(Debug, Default)]
pub struct TickOutcome {
    /// (strategy, bucket start) → what the store accepted: a strategy may have a closing
    /// pass and a run in its current bucket in one tick.
    pub dispatched: BTreeMap<(StrategyId, i64), Dispatched>,
    pub expected: BTreeMap<(StrategyId, i64), Dispatched>,
    pub plan: Plan,
    /// The rule's skips: strategy → reason.
    pub rule_skips: BTreeMap<StrategyId, SkipReason>,
    /// Strategies whose proposal the store turned down entirely (claimed or run elsewhere):
    /// the runtime counts each as `bucket_dup` when it dispatches.
    pub refused: Vec<StrategyId>,
    /// Strategies sent to the server-side intersection that came back without a proposal:
    /// the plan does not count them, and the runtime never does either.
    pub silent: Vec<StrategyId>,
    /// Per-ticker strategies the rule skips `no_update` while a universe ticker's time is
    /// hidden as too far ahead: if that time replaced one already dispatched in the bucket
    /// (`ZADD GT`), the planner remembers the update and counts `bucket_dup`.
    pub masked: Vec<StrategyId>,
}

impl TickOutcome {
    /// How many strategies the plan skipped for `reason`.
    pub fn planned(&self, reason: SkipReason) -> u64 {
        self.plan.skipped.get(&reason).copied().unwrap_or(0)
    }

    /// How many of `strategies` the rule skips for `reason`.
    pub fn ruled(&self, reason: SkipReason, strategies: Option<&[StrategyId]>) -> u64 {
        let counted = |s: &StrategyId| strategies.is_none_or(|only| only.contains(s));
        let skips = self.rule_skips.iter().filter(|(s, _)| counted(s));
        skips.filter(|(_, r)| **r == reason).count() as u64
    }
}

impl World {
    pub fn new(per_ticker: bool, lua_threshold: usize, max_future_ms: i64, now_ms: i64) -> World {
        World {
            planner: Planner::new(per_ticker, lua_threshold, max_future_ms),
            per_ticker,
            max_future_ms,
            now_ms,
            catalog: BTreeMap::new(),
            store: Store::default(),
            written: BTreeSet::new(),
            known_from_ms: i64::MAX,
            full_read_due: true,
            previous: BTreeMap::new(),
        }
    }

    /// A catalog write (or removal) reaching the planner, as the catalog sync applies it.
    pub fn upsert(&mut self, id: StrategyId, strategy: Option<Strategy>) {
        match strategy.clone().filter(|s| s.active) {
            Some(s) => {
                // A new timeframe: the planner forgets the bucket it was in, so nothing is
                // closed for it (also when a later edit in the same tick restores it).
                if self
                    .catalog
                    .get(&id)
                    .is_some_and(|old| old.timeframe != s.timeframe)
                {
                    self.previous.remove(&id);
                }
                self.catalog.insert(id, s)
            }
            None => {
                // Removed: the planner forgets it, and with it any bucket to close.
                self.previous.remove(&id);
                self.catalog.remove(&id)
            }
        };
        self.planner.upsert(id, strategy);
    }

    pub fn record(&mut self, ticker: &Ticker, ts_ms: i64) {
        self.store.record(ticker, ts_ms);
        self.written.insert(ticker.clone());
    }

    /// A result settles an open job; a released failure is reported to the planner.
    pub fn settle(&mut self, i: usize, failed: bool) {
        if let Some((s, released)) = self.store.settle(i, failed)
            && released > 0
        {
            self.planner.invalidate(s);
        }
    }

    /// Another engine instance, whose planner this one knows nothing of, claims `tickers`
    /// of `s` (or runs it whole) in its current bucket.
    pub fn other_instance(&mut self, s: StrategyId, tickers: Option<Vec<Ticker>>) {
        let Some(bucket) = self.catalog.get(&s).and_then(|st| self.bucket_of(st)) else {
            return;
        };
        match tickers {
            Some(tickers) => {
                self.store.claim(s, bucket, &tickers);
            }
            None => {
                self.store.run(s, bucket);
            }
        }
    }

    /// Redis lost its state: the runtime restores what it can and the planner forgets.
    pub fn lose_redis_state(&mut self) {
        self.store.lose_everything();
        self.planner.forget_redis_state();
        self.written.clear();
        self.full_read_due = true;
    }

    /// The next read covers a delta too large to read incrementally: a full read.
    pub fn overflow_feed(&mut self) {
        self.full_read_due = true;
    }

    fn bucket_of(&self, s: &Strategy) -> Option<Bucket> {
        s.timeframe.as_ref().ok()?.bucket(self.now_ms).ok()
    }

    /// What the runtime reads: every ticker updated since `read_from_ms` (a full read),
    /// or the tickers written since the last read with their current times (a delta).
    /// With each ticker read, its latest time in an earlier minute if it has one.
    fn read(&mut self) -> (BTreeMap<Ticker, i64>, BTreeMap<Ticker, i64>) {
        let since = self.planner.read_from_ms(self.now_ms);
        let written = std::mem::take(&mut self.written);
        let updates: BTreeMap<Ticker, i64> = if self.full_read_due || since < self.known_from_ms {
            self.full_read_due = false;
            self.known_from_ms = since;
            let updates = self.store.updates.iter();
            updates
                .filter(|(_, ts)| **ts >= since)
                .map(|(t, ts)| (t.clone(), *ts))
                .collect()
        } else {
            written
                .into_iter()
                .map(|t| {
                    let ts = self.store.updates[&t];
                    (t, ts)
                })
                .collect()
        };
        let before = updates
            .keys()
            .filter_map(|t| Some((t.clone(), *self.store.before.get(t)?)))
            .collect();
        (updates, before)
    }

    /// The closing passes the rule owes (DESIGN §2.3 step 6): a per-ticker strategy whose
    /// bucket moved on since the previous tick, with the same timeframe, runs on the tickers
    /// updated inside the closed bucket and not claimed there.
    fn decide_closing(&self, outcome: &mut TickOutcome) {
        for (&s, strategy) in &self.catalog {
            let (Some(&(tf, closed)), Some(now)) =
                (self.previous.get(&s), self.bucket_of(strategy))
            else {
                continue;
            };
            if strategy.timeframe.as_ref().ok() != Some(&tf) || closed.end_ms > now.start_ms {
                continue;
            }
            if !matches!(
                rule::run_shape(&strategy.universe, self.per_ticker),
                rule::RunShape::PerTicker(_)
            ) {
                continue;
            }
            let store = &self.store;
            let decision = rule::decide_in(
                strategy,
                self.per_ticker,
                Some(closed),
                |t| store.time_inside(t, closed),
                |t, start| store.claims.get(&(s, t.clone())) == Some(&start),
                |_| true,
            );
            if let Decision::Run {
                bucket,
                mode,
                symbols,
            } = decision
            {
                let d = Dispatched {
                    bucket,
                    mode,
                    symbols,
                };
                outcome.expected.insert((s, bucket.start_ms), d);
            }
        }
    }

    /// The full evaluation of every active strategy on the state before dispatch; times
    /// more than `max_future_ms` ahead are hidden (DESIGN §2.3).
    fn decide_all(&self, outcome: &mut TickOutcome) {
        let (now_ms, bound) = (self.now_ms, self.max_future_ms);
        for (&s, strategy) in &self.catalog {
            let store = &self.store;
            let decision = rule::decide(
                strategy,
                self.per_ticker,
                now_ms,
                |t| {
                    let ts = store.updates.get(t).copied();
                    ts.filter(|ts| rule::admitted(*ts, now_ms, bound))
                },
                |t, start| store.claims.get(&(s, t.clone())) == Some(&start),
                |start| store.runs.get(&s) == Some(&start),
            );
            match decision {
                Decision::Run {
                    bucket,
                    mode,
                    symbols,
                } => {
                    outcome.expected.insert(
                        (s, bucket.start_ms),
                        Dispatched {
                            bucket,
                            mode,
                            symbols,
                        },
                    );
                }
                Decision::Skip(reason) => {
                    let hidden = |t: &Ticker| {
                        let ts = store.updates.get(t).copied();
                        ts.is_some_and(|ts| !rule::admitted(ts, now_ms, bound))
                    };
                    if reason == SkipReason::NoUpdate
                        && let Universe::Tickers(u) = &strategy.universe
                        && self.per_ticker
                        && u.iter().any(hidden)
                    {
                        outcome.masked.push(s);
                    }
                    outcome.rule_skips.insert(s, reason);
                }
            }
        }
    }

    /// The store's answer to a server-side intersection: the universe's tickers updated at
    /// or after `since_ms`, sorted.
    fn intersect(&self, s: StrategyId, since_ms: i64) -> Vec<Ticker> {
        let Some(Universe::Tickers(universe)) = self.catalog.get(&s).map(|st| &st.universe) else {
            return Vec::new();
        };
        let updated = |t: &&Ticker| self.store.updates.get(*t).is_some_and(|ts| *ts >= since_ms);
        universe.iter().filter(updated).cloned().collect()
    }

    /// One tick at `now_ms`, as `runtime/tick.rs` runs it: read, plan, ask the server for
    /// large dirty universes, dispatch through the store, tell the planner what is claimed.
    pub fn tick(&mut self) -> Result<TickOutcome, TestCaseError> {
        let (updates, before) = self.read();
        let mut outcome = TickOutcome::default();
        self.decide_closing(&mut outcome);
        self.decide_all(&mut outcome);
        self.previous = self
            .catalog
            .iter()
            .filter_map(|(s, st)| Some((*s, (*st.timeframe.as_ref().ok()?, self.bucket_of(st)?))))
            .collect();
        let mut plan = self.planner.plan(self.now_ms, &updates, &before);
        let mut proposals = std::mem::take(&mut plan.tickers);
        for (s, bucket) in std::mem::take(&mut plan.server_side) {
            let changed = self.intersect(s, bucket.start_ms);
            match self.planner.add_changed(s, &changed) {
                Some(p) => proposals.push(p),
                None => outcome.silent.push(s),
            }
        }
        let mut proposed = BTreeSet::new();
        for (i, (s, bucket, tickers)) in proposals.iter().enumerate() {
            let key = (*s, bucket.start_ms);
            prop_assert!(proposed.insert(key), "two proposals for {:?}", key);
            prop_assert!(tickers.is_sorted(), "unsorted proposal {:?}", tickers);
            let claimed = self.store.claim(*s, *bucket, tickers);
            if claimed.is_empty() {
                // A closing pass found all claimed is no skip (see `runtime/tick.rs`).
                if i >= plan.closing {
                    outcome.refused.push(*s);
                }
            } else {
                let d = Dispatched {
                    bucket: *bucket,
                    mode: JobMode::PerTicker,
                    symbols: claimed,
                };
                outcome.dispatched.insert(key, d);
            }
        }
        for (s, bucket, mode, symbols) in &plan.strategies {
            let key = (*s, bucket.start_ms);
            prop_assert!(proposed.insert(key), "two proposals for {:?}", key);
            if self.store.run(*s, *bucket) {
                let d = Dispatched {
                    bucket: *bucket,
                    mode: *mode,
                    symbols: symbols.clone(),
                };
                outcome.dispatched.insert(key, d);
            } else {
                outcome.refused.push(*s);
            }
        }
        // After a dispatch every proposed ticker is claimed, by this instance or another.
        for (s, bucket, tickers) in &proposals {
            self.planner.claimed(*s, *bucket, tickers);
        }
        for (s, bucket, ..) in &plan.strategies {
            self.planner.ran(*s, *bucket);
        }
        outcome.plan = plan;
        Ok(outcome)
    }
}
