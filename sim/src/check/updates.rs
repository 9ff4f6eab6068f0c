//! The updates written, indexed by ticker and minute (every bucket boundary is a minute
//! boundary: minutes and hours in UTC, days and longer at New York midnight, whose offset
//! is a whole number of hours), and the windows in which the engine was not up.

use std::collections::{BTreeMap, HashMap};

const MINUTE_MS: i64 = 60_000;

/// The first update the feed wrote for a ticker in one minute: its stamp and when it was
/// written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub ts_ms: i64,
    pub written_ms: i64,
}

/// Updates written, kept for the buckets still open.
#[derive(Debug, Clone, Default)]
pub struct Updates {
    by_ticker: HashMap<String, BTreeMap<i64, Seen>>,
    /// Any ticker, for global strategies.
    any: BTreeMap<i64, Seen>,
}

impl Updates {
    pub fn record(&mut self, ticker: &str, ts_ms: i64, written_ms: i64) {
        let minute = ts_ms.div_euclid(MINUTE_MS);
        let seen = Seen { ts_ms, written_ms };
        self.any.entry(minute).or_insert(seen);
        match self.by_ticker.get_mut(ticker) {
            Some(minutes) => {
                minutes.entry(minute).or_insert(seen);
            }
            None => {
                self.by_ticker
                    .insert(ticker.to_owned(), BTreeMap::from([(minute, seen)]));
            }
        }
    }

    /// The first update of `ticker` stamped in `[start_ms, end_ms)`, if any.
    pub fn of(&self, ticker: &str, start_ms: i64, end_ms: i64) -> Option<Seen> {
        first_in(self.by_ticker.get(ticker)?, start_ms, end_ms)
    }

    /// The first update of any ticker stamped in `[start_ms, end_ms)`.
    pub fn any(&self, start_ms: i64, end_ms: i64) -> Option<Seen> {
        first_in(&self.any, start_ms, end_ms)
    }

    /// Forgets updates stamped before `before_ms` (no open bucket starts earlier).
    pub fn prune(&mut self, before_ms: i64) {
        let first = before_ms.div_euclid(MINUTE_MS);
        self.by_ticker.retain(|_, minutes| {
            *minutes = minutes.split_off(&first);
            !minutes.is_empty()
        });
        self.any = self.any.split_off(&first);
    }
}

fn first_in(minutes: &BTreeMap<i64, Seen>, start_ms: i64, end_ms: i64) -> Option<Seen> {
    let (first, last) = (start_ms.div_euclid(MINUTE_MS), end_ms.div_euclid(MINUTE_MS));
    minutes
        .range(first..last)
        .map(|(_, seen)| *seen)
        .find(|s| (start_ms..end_ms).contains(&s.ts_ms))
}

/// Windows `[start, end]` (logical ms, inclusive) in which Redis was paused or no engine
/// instance reached it.
#[derive(Debug, Clone, Default)]
pub struct Outages {
    closed: Vec<(i64, i64)>,
    open: Option<i64>,
}

impl Outages {
    /// The state at tick `now_ms`: `down` when Redis is paused or no instance was ready.
    pub fn tick(&mut self, now_ms: i64, down: bool) {
        match (self.open, down) {
            (None, true) => self.open = Some(now_ms),
            (Some(start), false) => {
                // The first tick up again is in the window: updates held back are written
                // then, and the engine catches up then.
                self.closed.push((start, now_ms));
                self.open = None;
            }
            _ => {}
        }
    }

    /// Opens a window at `at_ms` (Redis paused between ticks' phases).
    pub fn down_at(&mut self, at_ms: i64) {
        self.open.get_or_insert(at_ms);
    }

    /// Whether `[start_ms, end_ms]` overlaps a window.
    pub fn overlaps(&self, start_ms: i64, end_ms: i64) -> bool {
        let hit = |(a, b): (i64, i64)| a <= end_ms && start_ms <= b;
        self.open.is_some_and(|a| a <= end_ms) || self.closed.iter().any(|w| hit(*w))
    }

    /// Forgets windows that ended before `before_ms`.
    pub fn prune(&mut self, before_ms: i64) {
        self.closed.retain(|(_, end)| *end >= before_ms);
    }
}
