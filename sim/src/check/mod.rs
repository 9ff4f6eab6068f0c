//! The independent guarantee checker (DESIGN §2.3 "Guarantee", §7): it reads the raw
//! events of a run — every update the feed wrote (ticker, stamp, when), every job as the
//! workers read it from the jobs stream, every result the workers posted, dead-lettered
//! jobs, the catalog writes the scenario made, engine readiness and Redis faults, each at
//! its logical time — and checks the guarantee directly from them:
//!
//! - **safety**: no (strategy, ticker, bucket) is dispatched twice unless a run containing
//!   that ticker for that bucket failed (a failed result, or its job dead-lettered) in
//!   between; a strategy-level or global run at most once per (strategy, bucket) on the same
//!   terms; no job names a bucket start that is not one of its timeframe's buckets; and no
//!   strategy is dispatched after the catalog deleted or deactivated it (the scenario writes
//!   the catalog before the engines step, so every step after sees it);
//! - **liveness**: once bucket `b` of strategy `s` has closed — checked at its closing tick,
//!   the first tick at which an engine clock reached `b.end`, after that tick's dispatches
//!   (DESIGN's closing pass dispatches then) — every ticker of `s`'s universe with an update
//!   stamped inside `b` was dispatched for `(s, b)`; a strategy-level or global strategy ran
//!   in `b` if a universe ticker (any ticker, for a global one) was updated in `b`.
//!
//! It shares no decision code with the engine: its own bucket arithmetic on `jiff`
//! ([`calendar`]), its own parsing of timeframes, catalog entries, jobs and tickers
//! ([`parse`]), its own view of universes over time ([`strategies`]). What it cannot hold the
//! engine to is excluded by a named [`Exclusion`], counted and printed, never silently.
//! The equality of the engine's decisions with the rule (the `oracle` module) is a second,
//! separate checker.
//!
//! Memory stays bounded over long runs: updates are kept per ticker and minute only for
//! buckets still open, dispatches for a day after their bucket's end.

pub mod calendar;
mod close;
mod ledger;
pub mod parse;
mod strategies;
pub mod summary;
mod updates;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use self::calendar::{Bucket, Frame};
use self::ledger::{KEEP_AFTER_END_MS, Ledger, Recorded};
use self::strategies::Strategies;
use self::summary::{Exclusion, Finding, FindingKind, Summary, iso};
use self::updates::{Outages, Updates};

pub use self::summary::{Finding as GuaranteeFinding, FindingKind as GuaranteeKind};

/// How often the checker forgets what no open bucket needs.
const PRUNE_EVERY_MS: i64 = 60 * 60 * 1000;

/// What the checker must know of the run besides its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The engine's `per_ticker_throttle`: when false every strategy is strategy-level.
    pub per_ticker_throttle: bool,
    /// Largest universe a discovery may set (DESIGN §2.7).
    pub max_universe: usize,
    /// Updates stamped more than this ahead of the time they were written are not owed
    /// (DESIGN §2.3 `max_future_ms`).
    pub max_future_ms: i64,
    /// The largest engine instance's clock offset from the simulation's time (negative
    /// when every clock is behind): a bucket closes at the first tick at which some
    /// instance's clock reached its end.
    pub max_clock_offset_ms: i64,
}

/// The checker: its view of the world, what it owes, what it found.
#[derive(Debug, Clone)]
pub struct Guarantee {
    settings: Settings,
    strategies: Strategies,
    updates: Updates,
    outages: Outages,
    ledger: Ledger,
    /// Per timeframe in use, the earliest bucket not yet closed.
    cursors: BTreeMap<Frame, Bucket>,
    /// The latest start among `cursors`: an update stamped before it arrived after the
    /// closing tick of its bucket for at least one timeframe.
    latest_open_start_ms: i64,
    /// Redis epoch: one more after every restart that lost the data (job ids restart).
    epoch: u64,
    /// Logical times of the Redis restarts that lost the data: epoch `k` began at the
    /// `k`-th.
    lost_at_ms: Vec<i64>,
    /// The latest read time of a job whose result was posted: a result for a job read
    /// earlier comes out of order.
    latest_answered_taken_ms: i64,
    paused: bool,
    /// Whether some engine instance reached Redis at the tick in progress.
    ready: bool,
    next_prune_ms: i64,
    summary: Summary,
}

impl Guarantee {
    pub fn new(settings: Settings) -> Guarantee {
        Guarantee {
            settings,
            strategies: Strategies {
                per_ticker_throttle: settings.per_ticker_throttle,
                max_universe: settings.max_universe,
                ..Strategies::default()
            },
            updates: Updates::default(),
            outages: Outages::default(),
            ledger: Ledger::default(),
            cursors: BTreeMap::new(),
            latest_open_start_ms: i64::MIN,
            epoch: 0,
            lost_at_ms: Vec::new(),
            latest_answered_taken_ms: i64::MIN,
            paused: false,
            ready: false,
            next_prune_ms: i64::MIN,
            summary: Summary::default(),
        }
    }

    /// What the checker counted and found so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The scenario wrote (`Some`) or deleted (`None`) strategy `id`'s catalog entry;
    /// `initial` for the catalog the run starts with.
    pub fn catalog(&mut self, at_ms: i64, id: u64, json: Option<&str>, initial: bool) {
        self.summary.event("catalog", 1);
        if self.strategies.write(at_ms, id, json, initial) {
            self.summary.exclude(Exclusion::InvalidTimeframe, 1);
        }
    }

    /// The feed wrote `batch` (ticker, stamp) at `at_ms`.
    pub fn updates(&mut self, at_ms: i64, batch: &[(String, i64)]) {
        self.summary.event("update", batch.len() as u64);
        for (raw, ts_ms) in batch {
            let Some(ticker) = parse::ticker(raw) else {
                self.summary.exclude(Exclusion::InvalidTicker, 1);
                continue;
            };
            if *ts_ms > at_ms.saturating_add(self.settings.max_future_ms) {
                self.summary.exclude(Exclusion::FutureStamp, 1);
                continue;
            }
            if *ts_ms < self.latest_open_start_ms {
                self.summary.exclude(Exclusion::LateAfterClose, 1);
            }
            self.updates.record(&ticker, *ts_ms, at_ms);
        }
    }

    /// The workers read a jobs-stream entry (its `job` field) at `at_ms`.
    pub fn job(&mut self, at_ms: i64, payload: Option<&str>) {
        self.summary.event("job", 1);
        let Some((job, bucket)) = self.place(payload) else {
            self.summary.unplaced_jobs += 1;
            return;
        };
        let s = &self.strategies.by_id[&job.strategy];
        let (active, edited) = (s.active, s.defined_at != i64::MIN);
        if bucket.start_ms != job.bucket_start_ms && edited {
            // A job of the timeframe before an edit (a re-delivery): not judged.
            self.summary.unplaced_jobs += 1;
            return;
        }
        if bucket.start_ms != job.bucket_start_ms {
            let events = format!(
                "job {} names bucket start {} ms; the {}'s bucket there is [{}, {})",
                job.id,
                job.bucket_start_ms,
                self.strategies.by_id[&job.strategy]
                    .frame
                    .map(|f| format!("{}{:?}", f.count, f.unit))
                    .unwrap_or_default(),
                iso(bucket.start_ms),
                iso(bucket.end_ms)
            );
            self.find(FindingKind::Misaligned, at_ms, &job, None, events);
            return;
        }
        if bucket.end_ms.saturating_add(KEEP_AFTER_END_MS) < at_ms
            && !self.ledger.keeps(job.strategy, bucket.start_ms)
        {
            self.summary.unplaced_jobs += 1;
            return;
        }
        if self.closed(&job, bucket) {
            self.summary.late_dispatches += 1;
        }
        match self.ledger.dispatch(at_ms, self.epoch, &job, bucket.end_ms) {
            Recorded::Redelivered => self.summary.event("redelivery", 1),
            Recorded::New(duplicates) => {
                if !active {
                    let events = format!(
                        "job {} read at {}; the strategy was deleted or deactivated at {}",
                        job.id,
                        iso(at_ms),
                        iso(self.strategies.by_id[&job.strategy].defined_at)
                    );
                    self.find(FindingKind::Inactive, at_ms, &job, None, events);
                }
                for d in duplicates {
                    if d.previous.last_epoch != self.epoch {
                        self.summary.duplicates_across_loss += 1;
                    }
                    let events = format!(
                        "dispatched {} time(s) before (first by job {}, last by job {} at {}), \
                         again by job {} at {}, with no failed run between",
                        d.previous.count,
                        d.previous.first_job,
                        d.previous.last_job,
                        iso(d.previous.last_at_ms),
                        job.id,
                        iso(at_ms)
                    );
                    self.find(FindingKind::Duplicate, at_ms, &job, d.ticker, events);
                }
            }
        }
    }

    /// A worker posted the result of the job it read at `taken_ms` (`job` is that job's
    /// payload) at `at_ms`.
    pub fn result(
        &mut self,
        at_ms: i64,
        job: &str,
        taken_ms: i64,
        success: bool,
        used_symbols: Option<&[String]>,
    ) {
        self.summary.event("result", 1);
        if taken_ms < self.latest_answered_taken_ms {
            self.summary.overtaken_results += 1;
        }
        self.latest_answered_taken_ms = self.latest_answered_taken_ms.max(taken_ms);
        let Some((job, bucket)) = self.place(Some(job)) else {
            return;
        };
        if self.closed(&job, bucket) {
            self.summary.late_results += 1;
        }
        // Restarts are in the order they happened: the delivery's epoch is how many came
        // before it was read (a read in the restart's own tick follows the restart).
        let epoch = self.lost_at_ms.iter().filter(|r| **r <= taken_ms).count() as u64;
        self.ledger.answered(epoch, &job);
        if !success {
            self.summary.event("failure", 1);
            self.ledger.fail(at_ms, &job);
        }
        if let Some(used) = used_symbols {
            // A job read before Redis lost its data may be unknown to the engine now.
            let certain = epoch == self.epoch;
            self.strategies.discover(at_ms, job.strategy, used, certain);
        }
    }

    /// A job entry (`job` field) appeared in the dead-letter stream: its claims are
    /// released (DESIGN §2.8), as after a failed run.
    pub fn dead_letter(&mut self, at_ms: i64, job: &str) {
        self.summary.event("dead letter", 1);
        if let Some(job) = parse::job(job) {
            self.ledger.fail(at_ms, &job);
        }
    }

    /// An engine instance stepped; `ready`: it reached Redis.
    pub fn engine_step(&mut self, ready: bool) {
        self.summary.event("engine step", 1);
        self.ready |= ready;
    }

    pub fn redis_paused(&mut self, at_ms: i64) {
        self.summary.event("redis pause", 1);
        self.paused = true;
        self.outages.down_at(at_ms);
    }

    pub fn redis_resumed(&mut self) {
        self.summary.event("redis resume", 1);
        self.paused = false;
    }

    /// Redis restarted with no data at `at_ms`: job ids start over, and universes a
    /// discovery set may come back as the catalog's.
    pub fn redis_restarted_empty(&mut self, at_ms: i64) {
        self.summary.event("redis restart empty", 1);
        self.epoch += 1;
        self.lost_at_ms.push(at_ms);
        self.strategies.redis_lost(at_ms);
    }

    pub fn script_flushed(&mut self) {
        self.summary.event("script flush", 1);
    }

    /// The strategy, bucket and job a payload names, if the checker can place it.
    fn place(&self, payload: Option<&str>) -> Option<(parse::JobView, Bucket)> {
        let job = parse::job(payload?)?;
        let s = self.strategies.by_id.get(&job.strategy)?;
        let bucket = s.frame?.bucket(job.bucket_start_ms)?;
        Some((job, bucket))
    }

    /// Whether `bucket` of `job`'s strategy was already closed (checked).
    fn closed(&self, job: &parse::JobView, bucket: Bucket) -> bool {
        let frame = self
            .strategies
            .by_id
            .get(&job.strategy)
            .and_then(|s| s.frame);
        frame
            .and_then(|f| self.cursors.get(&f))
            .is_some_and(|open| open.start_ms >= bucket.end_ms)
    }

    fn find(
        &mut self,
        kind: FindingKind,
        at_ms: i64,
        job: &parse::JobView,
        ticker: Option<String>,
        events: String,
    ) {
        self.summary.find(Finding {
            kind,
            at_ms,
            strategy: job.strategy,
            ticker,
            bucket_start_ms: job.bucket_start_ms,
            events,
        });
    }
}
