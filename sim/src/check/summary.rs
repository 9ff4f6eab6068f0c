//! What the independent checker found: its counts, every exclusion by reason, and its
//! findings (violations), each naming the strategy, ticker, bucket and the events involved.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Findings kept in full per kind (the rest are counted): enough to read a pattern, few
/// enough that a run with a systematic bug stays small in memory.
pub const EXAMPLES_PER_KIND: usize = 3;

/// Why a part of the run is not held to the guarantee. Every exclusion is counted and
/// printed; none is silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Exclusion {
    /// (s, t, b) or (s, b): the bucket (from its start to its closing tick) overlaps a
    /// window in which Redis was paused or no engine instance reached it. DESIGN §2.3's
    /// guarantee covers updates "while the engine is up"; updates held back by the pause are
    /// written late, and a closing pass that falls in the window cannot run.
    Outage,
    /// (s, t, b): the ticker joined or left the strategy's universe between the bucket's
    /// start and its closing tick (a catalog edit or a discovery): the engine may rightly
    /// have evaluated the bucket with either universe.
    MembershipChanged,
    /// (s, t, b): after Redis lost its data the engine restores universes from the catalog,
    /// which may or may not already hold a discovery (the persister is asynchronous), and a
    /// discovery from a result of a job issued before the loss may or may not be accepted.
    /// Tickers in one candidate universe and not the other are not required until a later
    /// catalog edit or discovery settles the universe.
    UniverseUncertain,
    /// (s, b): the strategy's entry (timeframe, active flag, universe kind) was written or
    /// deleted between the bucket's start and its closing tick.
    CatalogEdit,
    /// (s, b): an explicit universe with no valid ticker — the strategy-level fallback
    /// (DESIGN §2.3 step 2) runs once per bucket, but which updates oblige it is not defined.
    MissingUniverse,
    /// Strategies: the timeframe does not parse (DESIGN §2.1): skipped by the engine, so
    /// nothing is owed; counted once per strategy definition.
    InvalidTimeframe,
    /// Updates: stamped more than `max_future_ms` ahead of the time they were written —
    /// DESIGN §2.3 lets the engine reject them.
    FutureStamp,
    /// Updates: the ticker is not a valid name (DESIGN §2.1), rejected at recording.
    InvalidTicker,
    /// Updates: written after the closing tick of their bucket for at least one timeframe
    /// in use (a late feed) — the bucket was checked before they existed, and the engine had
    /// closed it.
    LateAfterClose,
    /// (s, b): still open (or its closing tick not reached) when the run ended.
    OpenAtEnd,
}

impl Exclusion {
    /// The name in the summary line.
    pub fn name(self) -> &'static str {
        match self {
            Exclusion::Outage => "outage",
            Exclusion::MembershipChanged => "membership changed",
            Exclusion::UniverseUncertain => "universe uncertain after Redis loss",
            Exclusion::CatalogEdit => "catalog edit in bucket",
            Exclusion::MissingUniverse => "missing universe",
            Exclusion::InvalidTimeframe => "invalid timeframe",
            Exclusion::FutureStamp => "future stamp",
            Exclusion::InvalidTicker => "invalid ticker",
            Exclusion::LateAfterClose => "late after close",
            Exclusion::OpenAtEnd => "open at end",
        }
    }

    /// What one count is.
    pub fn unit(self) -> &'static str {
        match self {
            Exclusion::Outage | Exclusion::MembershipChanged | Exclusion::UniverseUncertain => {
                "checks"
            }
            Exclusion::CatalogEdit | Exclusion::MissingUniverse | Exclusion::OpenAtEnd => "buckets",
            Exclusion::InvalidTimeframe => "strategies",
            Exclusion::FutureStamp | Exclusion::InvalidTicker | Exclusion::LateAfterClose => {
                "updates"
            }
        }
    }
}

/// The kind of a violation of DESIGN §2.3's guarantee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    /// Safety: dispatched again in one bucket without a failed run between.
    Duplicate,
    /// Safety: a job for a bucket start that is not a bucket of the strategy's timeframe.
    Misaligned,
    /// Safety: a new job for a strategy the catalog deleted or deactivated before it.
    Inactive,
    /// Liveness: an update inside a closed bucket was never dispatched for it.
    Missed,
}

impl FindingKind {
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::Duplicate => "duplicate",
            FindingKind::Misaligned => "misaligned",
            FindingKind::Inactive => "inactive",
            FindingKind::Missed => "missed",
        }
    }

    /// Whether it breaks safety (otherwise liveness).
    pub fn is_safety(self) -> bool {
        matches!(
            self,
            FindingKind::Duplicate | FindingKind::Misaligned | FindingKind::Inactive
        )
    }
}

/// One violation, with what shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    /// Logical time at which it was found.
    pub at_ms: i64,
    pub strategy: u64,
    /// `None` for a strategy-level or global run.
    pub ticker: Option<String>,
    pub bucket_start_ms: i64,
    /// The events involved: update stamps, job ids, results.
    pub events: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ticker = match &self.ticker {
            Some(t) => format!("ticker {t:?}"),
            None => "the strategy-level run".to_owned(),
        };
        write!(
            f,
            "{} at {}: strategy {} {ticker} bucket {} ({} ms): {}",
            self.kind.name(),
            iso(self.at_ms),
            self.strategy,
            iso(self.bucket_start_ms),
            self.bucket_start_ms,
            self.events
        )
    }
}

/// An instant as New York wall-clock time with its offset (buckets of days and longer
/// start at midnight there), e.g. `2024-12-31T19:00:00-05:00`.
pub fn iso(ms: i64) -> String {
    let Ok(ts) = Timestamp::from_millisecond(ms) else {
        return format!("{ms} ms");
    };
    match TimeZone::get("America/New_York") {
        Ok(tz) => ts
            .to_zoned_datetime(tz)
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
        Err(_) => ts.to_string(),
    }
}

/// Everything the checker counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events by kind (`update`, `job`, `redelivery`, `result`, `failure`, `dead letter`,
    /// `catalog`, `engine step`, `redis pause`, …).
    pub events: BTreeMap<&'static str, u64>,
    /// (s, t, b) per-ticker checks and (s, b) strategy-level checks that passed or failed.
    pub verified: u64,
    pub exclusions: BTreeMap<Exclusion, u64>,
    /// Violations by kind.
    pub found: BTreeMap<FindingKind, u64>,
    /// The first [`EXAMPLES_PER_KIND`] of each kind, in the order found.
    pub examples: Vec<Finding>,
    /// Jobs for a bucket whose closing tick had passed (allowed; counted).
    pub late_dispatches: u64,
    /// Results posted after their job's bucket had closed (the hard case of late workers).
    pub late_results: u64,
    /// Duplicates whose earlier dispatch came before a Redis restart that lost the data
    /// (DESIGN §9: each instance must restore the claims it made in open buckets).
    pub duplicates_across_loss: u64,
    /// Missed updates written at the bucket's closing tick: stamped after the bucket's last
    /// tick, so only a closing pass (DESIGN §2.3 step 6) could dispatch them.
    pub missed_at_close: u64,
    /// Results posted after the result of a job read later (out of order).
    pub overtaken_results: u64,
    /// Jobs the checker could not place: unparsable, unknown or inactive strategy, invalid
    /// timeframe (counted, not judged).
    pub unplaced_jobs: u64,
}

impl Summary {
    pub(super) fn event(&mut self, kind: &'static str, n: u64) {
        *self.events.entry(kind).or_default() += n;
    }

    pub(super) fn exclude(&mut self, why: Exclusion, n: u64) {
        if n > 0 {
            *self.exclusions.entry(why).or_default() += n;
        }
    }

    pub(super) fn find(&mut self, finding: Finding) {
        let n = self.found.entry(finding.kind).or_default();
        *n += 1;
        if *n as usize <= EXAMPLES_PER_KIND {
            self.examples.push(finding);
        }
    }

    /// The first finding in the order that names a failure best: safety before liveness,
    /// then the earliest.
    pub fn first(&self) -> Option<&Finding> {
        self.examples
            .iter()
            .min_by_key(|f| (!f.kind.is_safety(), f.at_ms))
    }

    /// Findings by kind, e.g. "2 duplicate, 0 misaligned, 0 inactive, 12 missed (2 duplicate
    /// across a Redis loss, 12 missed written at the closing tick)".
    pub fn counts(&self) -> String {
        let found: Vec<String> = [
            FindingKind::Duplicate,
            FindingKind::Misaligned,
            FindingKind::Inactive,
            FindingKind::Missed,
        ]
        .iter()
        .map(|k| format!("{} {}", self.found.get(k).copied().unwrap_or(0), k.name()))
        .collect();
        format!(
            "{} ({} duplicate across a Redis loss, {} missed written at the closing tick)",
            found.join(", "),
            self.duplicates_across_loss,
            self.missed_at_close
        )
    }

    /// The one-line summary of the run's output and report.
    pub fn line(&self) -> String {
        let total: u64 = self.events.values().sum();
        let events: Vec<String> = self
            .events
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        let excluded: Vec<String> = self
            .exclusions
            .iter()
            .map(|(why, n)| format!("{} {n} {}", why.name(), why.unit()))
            .collect();
        format!(
            "independent checker: {total} events ({}), {} checks verified, {}; excluded: {}; {} late dispatches, {} jobs not placed, {} results after their bucket closed, {} out of order",
            events.join(", "),
            self.verified,
            self.counts(),
            if excluded.is_empty() {
                "none".to_owned()
            } else {
                excluded.join(", ")
            },
            self.late_dispatches,
            self.unplaced_jobs,
            self.late_results,
            self.overtaken_results
        )
    }
}
