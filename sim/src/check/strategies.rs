//! The strategies as the events define them: each catalog write and deletion the scenario
//! made, and each discovery (`used_symbols`) DESIGN §2.7 says the engine accepts, in the
//! order they happened — with, per ticker, when its membership last changed, so a bucket in
//! which a ticker joined or left is not held against the engine.

use std::collections::{BTreeMap, BTreeSet};

use super::calendar::Frame;
use super::parse::{self, Definition};

/// What the guarantee asks of a strategy in a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Inactive or deleted: nothing is owed.
    Idle,
    /// The timeframe does not parse: skipped (DESIGN §2.1).
    Invalid,
    /// Each updated universe ticker once per bucket (DESIGN §2.3).
    PerTicker,
    /// One run per bucket if a universe ticker was updated (DESIGN §2.4).
    Strategy,
    /// One run per bucket if any ticker was updated (DESIGN §2.4).
    Global,
    /// An explicit universe with no valid ticker (strategy-level fallback).
    Missing,
}

/// One strategy's definition and universe over time.
#[derive(Debug, Clone, Default)]
pub struct Strategy {
    pub frame: Option<Frame>,
    pub active: bool,
    pub global: bool,
    /// The universe the engine holds, as far as the events tell.
    pub members: BTreeSet<String>,
    /// Tickers whose membership the events cannot tell (after Redis lost its data).
    pub uncertain: BTreeSet<String>,
    /// Ticker → last time it joined, left or became uncertain.
    pub changed: BTreeMap<String, i64>,
    /// Last time the definition (timeframe, active flag, universe kind) changed; `i64::MIN`
    /// for the catalog the run started with.
    pub defined_at: i64,
    /// The universe of the last catalog write: what a restore may bring back.
    pub catalog_members: BTreeSet<String>,
    /// Whether a discovery replaced the universe since the last catalog write.
    pub discovered: bool,
}

impl Strategy {
    /// Tickers whose membership changed, joined or not, since `since_ms`.
    pub fn changed_since(&self, since_ms: i64) -> impl Iterator<Item = &String> {
        self.changed
            .iter()
            .filter(move |(_, at)| **at >= since_ms)
            .map(|(t, _)| t)
    }

    /// Forgets membership changes before `before_ms` (no open bucket starts earlier).
    pub fn forget_changes_before(&mut self, before_ms: i64) {
        self.changed.retain(|_, at| *at >= before_ms);
    }

    fn mark(&mut self, at_ms: i64, tickers: impl IntoIterator<Item = String>) {
        for t in tickers {
            self.changed.insert(t, at_ms);
        }
    }

    fn kind(&self) -> (Option<Frame>, bool, bool, bool) {
        let missing = !self.global && self.members.is_empty() && self.uncertain.is_empty();
        (self.frame, self.active, self.global, missing)
    }
}

/// Every strategy the events defined.
#[derive(Debug, Clone, Default)]
pub struct Strategies {
    pub per_ticker_throttle: bool,
    /// Largest universe a discovery may set (DESIGN §2.7).
    pub max_universe: usize,
    pub by_id: BTreeMap<u64, Strategy>,
    /// Active strategies with a valid timeframe, by timeframe.
    pub by_frame: BTreeMap<Frame, BTreeSet<u64>>,
}

impl Strategies {
    pub fn level(&self, s: &Strategy) -> Level {
        match (s.active, s.frame, s.global) {
            (false, _, _) => Level::Idle,
            (true, None, _) => Level::Invalid,
            (true, Some(_), true) => Level::Global,
            _ if !self.per_ticker_throttle => Level::Strategy,
            _ if s.members.is_empty() && s.uncertain.is_empty() => Level::Missing,
            _ => Level::PerTicker,
        }
    }

    /// A catalog write (`Some`) or deletion (`None`) of strategy `id` at `at_ms`; `initial`
    /// for the catalog the run starts with. Returns whether its timeframe is invalid (an
    /// exclusion to count). An entry the engine cannot use at all counts as a deletion.
    pub fn write(&mut self, at_ms: i64, id: u64, json: Option<&str>, initial: bool) -> bool {
        let def: Option<Definition> = json.and_then(|j| parse::definition(id, j));
        let s = self.by_id.entry(id).or_default();
        let before = s.kind();
        let new: BTreeSet<String> = def
            .as_ref()
            .and_then(|d| d.universe.clone())
            .unwrap_or_default()
            .into_iter()
            .collect();
        let moved: Vec<String> = s
            .members
            .symmetric_difference(&new)
            .chain(&s.uncertain)
            .cloned()
            .collect();
        if !initial {
            s.mark(at_ms, moved);
        }
        s.members = new.clone();
        s.uncertain.clear();
        s.catalog_members = new;
        s.discovered = false;
        match &def {
            Some(d) => {
                s.frame = Frame::parse(&d.timeframe);
                s.active = d.active;
                s.global = d.universe.is_none();
            }
            None => s.active = false,
        }
        if initial {
            s.defined_at = i64::MIN;
        } else if s.kind() != before || def.is_none() {
            s.defined_at = at_ms;
        }
        let invalid = def.is_some() && s.frame.is_none();
        self.index(id);
        invalid
    }

    /// A result's `used_symbols` for strategy `id` at `at_ms` (DESIGN §2.7): valid names
    /// replace an explicit universe when at least one is valid and no more than
    /// `max_universe`. `certain` is false when the engine may not accept it (its job was
    /// issued before Redis lost its data): then the tickers it moves become uncertain.
    pub fn discover(&mut self, at_ms: i64, id: u64, used: &[String], certain: bool) {
        let max = self.max_universe;
        let Some(s) = self.by_id.get_mut(&id) else {
            return;
        };
        let new: BTreeSet<String> = used.iter().filter_map(|t| parse::ticker(t)).collect();
        if s.global || new.is_empty() || new.len() > max {
            return;
        }
        let before = s.kind();
        let moved: Vec<String> = s.members.symmetric_difference(&new).cloned().collect();
        if certain {
            let settled: Vec<String> = s.uncertain.iter().cloned().collect();
            s.mark(at_ms, settled);
            s.uncertain.clear();
        } else {
            s.uncertain.extend(moved.iter().cloned());
        }
        s.mark(at_ms, moved);
        s.members = new;
        s.discovered = true;
        if s.kind() != before {
            s.defined_at = at_ms;
        }
    }

    /// Redis lost its data at `at_ms`: a universe a discovery set may come back as the
    /// catalog's (or stay, if the persister wrote it there first).
    pub fn redis_lost(&mut self, at_ms: i64) {
        for s in self.by_id.values_mut().filter(|s| s.discovered) {
            let moved: Vec<String> = s
                .members
                .symmetric_difference(&s.catalog_members)
                .cloned()
                .collect();
            s.uncertain.extend(moved.iter().cloned());
            s.mark(at_ms, moved);
        }
    }

    /// Files strategy `id` under its timeframe if it is active with a valid one.
    fn index(&mut self, id: u64) {
        for ids in self.by_frame.values_mut() {
            ids.remove(&id);
        }
        if let Some(s) = self.by_id.get(&id)
            && s.active
            && let Some(frame) = s.frame
        {
            self.by_frame.entry(frame).or_default().insert(id);
        }
        self.by_frame.retain(|_, ids| !ids.is_empty());
    }
}
