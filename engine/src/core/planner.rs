//! The incremental tick: the same decisions as [`super::rule::decide`] for every
//! strategy, with work proportional to what changed (DESIGN §6).
//!
//! Per tick the engine reads what changed in the update set once: the tickers written since
//! its last read (a delta), or, on start and after Redis lost its data, every ticker updated
//! since the earliest current bucket start. The planner diffs either against what it knew
//! (so both plan the same), and for each
//! ticker whose time moved it looks up the strategies containing it in an index (ticker id
//! → strategies); a strategy is only examined per *hit*. Strategies whose definition,
//! universe or claims changed outside that flow (new, edited, a released failed run, a
//! failed dispatch) are marked dirty and fully evaluated once. A cache of what is already
//! claimed in each strategy's current bucket keeps repeated updates from re-proposing; the
//! Redis scripts remain the authority (a proposal already claimed elsewhere claims nothing).
//!
//! No I/O and no clock: the service feeds it reads and the time.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::calendar::{Bucket, Timeframe};
use super::catalog::{Strategy, Universe};
use super::jobs::JobMode;
use super::rule::{RunShape, SkipReason, run_shape};
use super::ticker::{StrategyId, Ticker};

/// Interned ticker id: dense, so per-ticker state is a `Vec` index.
type TickerId = u32;

/// What one tick should dispatch, and why the rest is skipped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Per-ticker proposals: (strategy, bucket, sorted tickers). The first
    /// [`Plan::closing`] are closing passes (DESIGN §2.3 step 6) of buckets that just closed.
    pub tickers: Vec<(StrategyId, Bucket, Vec<Ticker>)>,
    /// How many of `tickers`, from the start, are closing passes: not skip-counted when
    /// the store finds them claimed (skips describe the current buckets).
    pub closing: usize,
    /// Whole-strategy runs: (strategy, bucket, mode, sorted symbols or none).
    pub strategies: Vec<(StrategyId, Bucket, JobMode, Vec<Ticker>)>,
    /// Dirty per-ticker strategies with universes above the Lua threshold: the service asks
    /// Redis for their changed tickers and hands them back with [`Planner::add_changed`].
    pub server_side: Vec<(StrategyId, Bucket)>,
    /// Strategies not run, by reason (whole tick, all strategies).
    pub skipped: BTreeMap<SkipReason, u64>,
    /// Strategies run strategy-level because their universe is missing.
    pub missing_universe: u64,
    /// Update times read this tick that are more than `max_future_ms` ahead of the clock:
    /// ignored (DESIGN §2.3) until the clock comes within the bound. Counted once per time
    /// read, not once per tick it stays ignored.
    pub future_stamps: u64,
}

#[derive(Debug)]
struct Tracked {
    strategy: Strategy,
    /// Sorted ticker ids of an explicit universe.
    universe: Vec<TickerId>,
    /// The bucket the cached state below belongs to.
    bucket: Option<Bucket>,
    /// Tickers known claimed (by any instance) in `bucket`.
    claimed: HashSet<TickerId>,
    /// A whole-strategy run is known for `bucket`.
    ran: bool,
    /// Some universe ticker was updated inside `bucket` (for the `no_update` count).
    has_update: bool,
    /// The previous bucket while its closing pass (DESIGN §2.3 step 6) is due, with the
    /// tickers known claimed in it: set when the bucket rolls, cleared once a plan has
    /// nothing to close or the closing dispatch is done ([`Planner::claimed`]).
    closing: Option<(Bucket, HashSet<TickerId>)>,
}

/// The planner's state; one per engine instance.
#[derive(Debug)]
pub struct Planner {
    per_ticker: bool,
    lua_threshold: usize,
    max_future_ms: i64,
    /// Update times after this are ignored: the current tick's time plus `max_future_ms`.
    admit_until_ms: i64,
    ids: HashMap<Ticker, TickerId>,
    names: Vec<Ticker>,
    /// Last update time per ticker id, as of the previous read (`i64::MIN`: not seen).
    last_update: Vec<i64>,
    /// Latest update time in an earlier minute than `last_update`, per ticker id
    /// (`i64::MIN`: none): a closing pass sees an update in the closed bucket through it.
    before: Vec<i64>,
    /// Ticker id → per-ticker strategies whose universe contains it.
    index: Vec<Vec<StrategyId>>,
    strategies: BTreeMap<StrategyId, Tracked>,
    dirty: BTreeSet<StrategyId>,
    /// Counts the changes of the tracked strategies (added, replaced, removed), so that
    /// what is derived from all of them is recomputed only after one.
    revision: u64,
    /// Tickers stamped later than the last tick's time (a feed clock ahead of ours): they
    /// may belong to a bucket that has not started yet, or be ignored for now (more than
    /// `max_future_ms` ahead), so they are re-examined every tick until the time passes
    /// them.
    ahead: BTreeSet<TickerId>,
    /// Proposals of the tick in progress: strategy → (bucket, ticker ids).
    pending: BTreeMap<StrategyId, (Bucket, BTreeSet<TickerId>)>,
    /// Closing-pass proposals of the tick in progress: strategy → (closed bucket, ids).
    pending_closing: BTreeMap<StrategyId, (Bucket, BTreeSet<TickerId>)>,
}

impl Planner {
    /// An empty planner. `per_ticker` is the `per_ticker_throttle` flag; universes larger
    /// than `lua_threshold` are intersected server-side when fully evaluated; update times
    /// more than `max_future_ms` ahead of the tick's time are ignored until it comes within
    /// the bound ([`super::rule::admitted`]).
    pub fn new(per_ticker: bool, lua_threshold: usize, max_future_ms: i64) -> Planner {
        Planner {
            per_ticker,
            lua_threshold,
            max_future_ms,
            admit_until_ms: i64::MIN,
            ids: HashMap::new(),
            names: Vec::new(),
            last_update: Vec::new(),
            before: Vec::new(),
            index: Vec::new(),
            strategies: BTreeMap::new(),
            dirty: BTreeSet::new(),
            revision: 0,
            ahead: BTreeSet::new(),
            pending: BTreeMap::new(),
            pending_closing: BTreeMap::new(),
        }
    }

    fn intern(&mut self, t: &Ticker) -> TickerId {
        if let Some(id) = self.ids.get(t) {
            return *id;
        }
        let id = self.names.len() as TickerId;
        self.ids.insert(t.clone(), id);
        self.names.push(t.clone());
        self.last_update.push(i64::MIN);
        self.before.push(i64::MIN);
        self.index.push(Vec::new());
        id
    }

    /// Adds, replaces or (with `None`, or an inactive strategy) removes a strategy. A
    /// changed definition is fully evaluated next tick.
    pub fn upsert(&mut self, id: StrategyId, strategy: Option<Strategy>) {
        let strategy = strategy.filter(|s| s.active);
        let mut kept = None;
        if let Some(old) = self.strategies.get(&id) {
            if Some(&old.strategy) == strategy.as_ref() {
                return;
            }
            self.revision += 1;
            let old = self.strategies.remove(&id).expect("present");
            for t in &old.universe {
                self.index[*t as usize].retain(|s| *s != id);
            }
            self.dirty.remove(&id);
            // Same timeframe (e.g. a discovered universe): the bucket, and a closing pass
            // due for the previous one, carry over; the claim caches are re-learned.
            if strategy
                .as_ref()
                .is_some_and(|s| s.timeframe == old.strategy.timeframe)
            {
                let closing = old.closing.map(|(b, _)| (b, HashSet::new()));
                kept = Some((old.bucket, closing));
            }
        }
        let Some(strategy) = strategy else {
            return;
        };
        self.revision += 1;
        let (bucket, closing) = kept.unwrap_or((None, None));
        let mut universe = Vec::new();
        if let Universe::Tickers(set) = &strategy.universe {
            universe = set.iter().map(|t| self.intern(t)).collect();
            universe.sort_unstable();
            if self.per_ticker {
                for t in &universe {
                    self.index[*t as usize].push(id);
                }
            }
        }
        self.strategies.insert(
            id,
            Tracked {
                strategy,
                universe,
                bucket,
                claimed: HashSet::new(),
                ran: false,
                has_update: false,
                closing,
            },
        );
        self.dirty.insert(id);
    }

    /// The strategies tracked, for the service's catalog bookkeeping.
    pub fn strategy(&self, id: StrategyId) -> Option<&Strategy> {
        self.strategies.get(&id).map(|t| &t.strategy)
    }

    /// Ids of all tracked (active) strategies.
    pub fn strategy_ids(&self) -> impl Iterator<Item = StrategyId> + '_ {
        self.strategies.keys().copied()
    }

    /// Forgets what is cached as claimed for `id` and evaluates it fully next tick (a
    /// failed run released claims, or a dispatch failed midway).
    pub fn invalidate(&mut self, id: StrategyId) {
        if let Some(t) = self.strategies.get_mut(&id) {
            t.claimed.clear();
            if let Some((_, claimed)) = &mut t.closing {
                claimed.clear();
            }
            t.ran = false;
            self.dirty.insert(id);
        }
    }

    /// Forgets every update time and claim cache — Redis lost them (restart, flush) — and
    /// evaluates every strategy fully next tick, against what Redis holds from now on.
    pub fn forget_redis_state(&mut self) {
        self.last_update.fill(i64::MIN);
        self.before.fill(i64::MIN);
        self.ahead.clear();
        for (id, t) in &mut self.strategies {
            t.claimed.clear();
            t.closing = None;
            t.ran = false;
            t.has_update = false;
            self.dirty.insert(*id);
        }
    }

    /// The earliest bucket start any strategy may still dispatch in at `now_ms`: its
    /// current bucket, or the one it was in (a closing pass may be due): a full read covers
    /// the update set from here.
    pub fn read_from_ms(&self, now_ms: i64) -> i64 {
        let timeframes: BTreeSet<Timeframe> = self
            .strategies
            .values()
            .filter_map(|t| t.strategy.timeframe.as_ref().ok().copied())
            .collect();
        let current = timeframes
            .iter()
            .filter_map(|tf| tf.bucket(now_ms).ok())
            .map(|b| b.start_ms);
        let previous = self.strategies.values().flat_map(|t| {
            let closing = t.closing.as_ref().map(|(b, _)| b.start_ms);
            t.bucket.map(|b| b.start_ms).into_iter().chain(closing)
        });
        current.chain(previous).min().unwrap_or(now_ms)
    }

    /// Plans one tick at `now_ms` from `updates`: tickers with their current update times,
    /// at least every one whose time changed since the previous call (a delta), or every
    /// one updated since [`Planner::read_from_ms`] (a full read); `before`: the latest time
    /// in an earlier minute of those that have one (the feed's `TICK:PRE`).
    ///
    /// The plan's closing passes (DESIGN §2.3 step 6: a strategy whose bucket rolled is
    /// evaluated once more for the bucket that just closed) come first in
    /// [`Plan::tickers`], before any proposal for a current bucket.
    pub fn plan(
        &mut self,
        now_ms: i64,
        updates: &BTreeMap<Ticker, i64>,
        before: &BTreeMap<Ticker, i64>,
    ) -> Plan {
        let mut plan = Plan::default();
        self.pending.clear();
        self.pending_closing.clear();
        self.admit_until_ms = now_ms.saturating_add(self.max_future_ms);
        self.roll_buckets(now_ms);
        plan.future_stamps = self.propose_changed(now_ms, updates, before);
        self.propose_dirty(&mut plan);
        let held: BTreeSet<StrategyId> = plan.server_side.iter().map(|(s, _)| *s).collect();
        self.classify(&mut plan, &held);
        let closing = std::mem::take(&mut self.pending_closing);
        for (s, t) in &mut self.strategies {
            if !closing.contains_key(s) {
                t.closing = None; // nothing (more) to close
            }
        }
        plan.closing = closing.len();
        for (s, (bucket, ids)) in closing {
            plan.tickers.push((s, bucket, self.sorted_names(&ids)));
        }
        // Server-side strategies keep their index hits pending: `add_changed` merges them
        // with the server's answer into one proposal.
        for (s, (bucket, ids)) in std::mem::take(&mut self.pending) {
            if held.contains(&s) {
                self.pending.insert(s, (bucket, ids));
                continue;
            }
            plan.tickers.push((s, bucket, self.sorted_names(&ids)));
        }
        plan
    }

    /// Moves every strategy to its bucket at `now_ms` (one bucket per timeframe, computed
    /// once). A per-ticker strategy whose bucket moved on keeps the old bucket and its claim
    /// cache for its closing pass.
    fn roll_buckets(&mut self, now_ms: i64) {
        let mut buckets: BTreeMap<Timeframe, Option<Bucket>> = BTreeMap::new();
        for tracked in self.strategies.values_mut() {
            let Ok(tf) = &tracked.strategy.timeframe else {
                continue;
            };
            let bucket = *buckets.entry(*tf).or_insert_with(|| tf.bucket(now_ms).ok());
            if bucket != tracked.bucket {
                let claimed = std::mem::take(&mut tracked.claimed);
                let per_ticker = matches!(
                    run_shape(&tracked.strategy.universe, self.per_ticker),
                    RunShape::PerTicker(_)
                );
                tracked.closing = match (tracked.bucket, bucket) {
                    (Some(old), Some(new)) if per_ticker && old.end_ms <= new.start_ms => {
                        Some((old, claimed))
                    }
                    _ => None,
                };
                tracked.bucket = bucket;
                tracked.ran = false;
                tracked.has_update = false;
            }
        }
    }

    /// Proposes, through the index, every ticker whose times moved since the last read, and
    /// those stamped ahead of the last tick's time. Returns how many times read now are
    /// beyond `max_future_ms` (ignored, and re-examined each tick like any time ahead).
    fn propose_changed(
        &mut self,
        now_ms: i64,
        updates: &BTreeMap<Ticker, i64>,
        before: &BTreeMap<Ticker, i64>,
    ) -> u64 {
        let mut changed: BTreeSet<TickerId> = std::mem::take(&mut self.ahead);
        let mut future_stamps = 0;
        for (ticker, ts) in updates {
            let id = self.intern(ticker) as usize;
            let earlier = before.get(ticker).copied().unwrap_or(i64::MIN);
            if self.last_update[id] != *ts || self.before[id] != earlier {
                if self.last_update[id] != *ts && *ts > self.admit_until_ms {
                    future_stamps += 1;
                    tracing::debug!(%ticker, ts_ms = *ts, now_ms, max_future_ms = self.max_future_ms, "update time too far ahead; ignored until the clock comes within the bound");
                }
                self.last_update[id] = *ts;
                self.before[id] = earlier;
                changed.insert(id as TickerId);
            }
        }
        for &id in &changed {
            let (ts, earlier) = (self.last_update[id as usize], self.before[id as usize]);
            if ts > now_ms {
                self.ahead.insert(id);
            }
            // A time too far ahead is not an update yet; its earlier time may still close
            // a bucket (a closed bucket ends before `now_ms`, so `ts` is never inside it).
            let admitted = ts <= self.admit_until_ms;
            for &s in &self.index[id as usize] {
                if let Some(t) = self.strategies.get_mut(&s) {
                    propose_closing(&mut self.pending_closing, t, s, id, [ts, earlier]);
                    if admitted {
                        propose(&mut self.pending, t, s, id, ts);
                    }
                }
            }
        }
        future_stamps
    }

    /// Evaluates every dirty per-ticker strategy in full: in process, or server-side when
    /// its universe is above the Lua threshold.
    fn propose_dirty(&mut self, plan: &mut Plan) {
        for &s in &std::mem::take(&mut self.dirty) {
            let Some(t) = self.strategies.get_mut(&s) else {
                continue;
            };
            let (Some(bucket), Universe::Tickers(_)) = (t.bucket, &t.strategy.universe) else {
                continue;
            };
            if !self.per_ticker {
                continue;
            }
            // The closing pass in process: the planner knows every time inside the closed
            // bucket (it was current here), and a dirty strategy at a roll is rare.
            for &id in t.universe.iter().filter(|_| t.closing.is_some()) {
                let times = [self.last_update[id as usize], self.before[id as usize]];
                propose_closing(&mut self.pending_closing, t, s, id, times);
            }
            if t.universe.len() > self.lua_threshold {
                plan.server_side.push((s, bucket));
                continue;
            }
            for i in 0..t.universe.len() {
                let id = t.universe[i];
                let ts = self.last_update[id as usize];
                if ts <= self.admit_until_ms {
                    propose(&mut self.pending, t, s, id, ts);
                }
            }
        }
    }

    /// Whole runs (DESIGN §2.4) into the plan, and every strategy not run counted by reason.
    /// `held`: strategies waiting for a server-side intersection.
    fn classify(&self, plan: &mut Plan, held: &BTreeSet<StrategyId>) {
        for (&s, t) in &self.strategies {
            let Some(bucket) = t.bucket else {
                *plan
                    .skipped
                    .entry(SkipReason::InvalidTimeframe)
                    .or_default() += 1;
                continue;
            };
            match run_shape(&t.strategy.universe, self.per_ticker) {
                RunShape::Whole { .. } if t.ran => {
                    *plan.skipped.entry(SkipReason::BucketDup).or_default() += 1
                }
                RunShape::Whole { mode, symbols } => {
                    if t.strategy.universe == Universe::Missing {
                        plan.missing_universe += 1;
                    }
                    plan.strategies.push((s, bucket, mode, symbols));
                }
                RunShape::PerTicker(_) if self.pending.contains_key(&s) || held.contains(&s) => {}
                RunShape::PerTicker(_) if t.has_update => {
                    *plan.skipped.entry(SkipReason::BucketDup).or_default() += 1
                }
                RunShape::PerTicker(_) => {
                    *plan.skipped.entry(SkipReason::NoUpdate).or_default() += 1
                }
            }
        }
    }

    /// Feeds back the changed tickers of a server-side intersection (see
    /// [`Plan::server_side`]) and returns the per-ticker proposal it yields, if any.
    pub fn add_changed(
        &mut self,
        s: StrategyId,
        changed: &[Ticker],
    ) -> Option<(StrategyId, Bucket, Vec<Ticker>)> {
        let ids: Vec<TickerId> = changed.iter().map(|t| self.intern(t)).collect();
        let t = self.strategies.get_mut(&s)?;
        let bucket = t.bucket?;
        for id in ids {
            // The server filtered by the bucket's start, not by the bound: a time known too
            // far ahead (every time since the bucket's start was read) stays ignored.
            if self.last_update[id as usize] > self.admit_until_ms {
                continue;
            }
            propose(&mut self.pending, t, s, id, bucket.start_ms);
        }
        let (bucket, ids) = self.pending.remove(&s)?;
        Some((s, bucket, self.sorted_names(&ids)))
    }

    /// The tickers of `ids`, sorted by name (ids follow interning order, not names): a
    /// job's symbols are sorted (DESIGN §2.8).
    fn sorted_names(&self, ids: &BTreeSet<TickerId>) -> Vec<Ticker> {
        let mut names: Vec<Ticker> = ids
            .iter()
            .map(|id| self.names[*id as usize].clone())
            .collect();
        names.sort_unstable();
        names
    }

    /// Records that `tickers` of `s` are claimed in `bucket` (newly by us, or already by
    /// someone: after a dispatch, every proposed ticker is claimed either way).
    /// A closing dispatch ends the closing pass.
    pub fn claimed(&mut self, s: StrategyId, bucket: Bucket, tickers: &[Ticker]) {
        let ids: Vec<TickerId> = tickers
            .iter()
            .filter_map(|t| self.ids.get(t).copied())
            .collect();
        let Some(t) = self.strategies.get_mut(&s) else {
            return;
        };
        if t.bucket == Some(bucket) {
            t.claimed.extend(ids);
        } else if t.closing.as_ref().is_some_and(|(b, _)| *b == bucket) {
            t.closing = None;
        }
    }

    /// Records that the whole-strategy run of `s` in `bucket` is done (or already was).
    pub fn ran(&mut self, s: StrategyId, bucket: Bucket) {
        if let Some(t) = self.strategies.get_mut(&s)
            && t.bucket == Some(bucket)
        {
            t.ran = true;
        }
    }

    /// Sizes of the explicit universes, for the metrics gauges.
    pub fn universe_sizes(&self) -> impl Iterator<Item = usize> + '_ {
        self.strategies
            .values()
            .filter(|t| matches!(t.strategy.universe, Universe::Tickers(_)))
            .map(|t| t.universe.len())
    }

    /// Changes of the tracked strategies so far (see [`Planner::upsert`]).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Active strategies tracked.
    pub fn len(&self) -> usize {
        self.strategies.len()
    }

    /// Whether no strategy is tracked.
    pub fn is_empty(&self) -> bool {
        self.strategies.is_empty()
    }
}

/// Proposes ticker `id` for the closing pass of `s` if one of its `times` (last, and latest
/// in an earlier minute) lies inside the closed bucket and it is not known claimed there.
fn propose_closing(
    pending: &mut BTreeMap<StrategyId, (Bucket, BTreeSet<TickerId>)>,
    t: &Tracked,
    s: StrategyId,
    id: TickerId,
    times: [i64; 2],
) {
    let Some((bucket, claimed)) = &t.closing else {
        return;
    };
    let inside = times
        .iter()
        .any(|ts| (bucket.start_ms..bucket.end_ms).contains(ts));
    if inside && !claimed.contains(&id) {
        pending
            .entry(s)
            .or_insert_with(|| (*bucket, BTreeSet::new()))
            .1
            .insert(id);
    }
}

/// Proposes ticker `id` (updated at `ts`) for strategy `s` if it lies in the current bucket
/// and is not known claimed there.
fn propose(
    pending: &mut BTreeMap<StrategyId, (Bucket, BTreeSet<TickerId>)>,
    t: &mut Tracked,
    s: StrategyId,
    id: TickerId,
    ts: i64,
) {
    let Some(bucket) = t.bucket else { return };
    if ts < bucket.start_ms {
        return;
    }
    t.has_update = true;
    if !t.claimed.contains(&id) {
        pending
            .entry(s)
            .or_insert_with(|| (bucket, BTreeSet::new()))
            .1
            .insert(id);
    }
}
