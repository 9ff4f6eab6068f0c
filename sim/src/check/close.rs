//! Liveness: at the end of every tick, after its dispatches, each bucket whose closing tick
//! this is gets checked — every (strategy, ticker) owed in it must have been dispatched.

use std::collections::BTreeSet;

use super::calendar::{Bucket, Frame};
use super::strategies::{Level, Strategy};
use super::summary::{Exclusion, Finding, FindingKind, iso};
use super::updates::Seen;
use super::{Guarantee, PRUNE_EVERY_MS};

/// Most buckets of one timeframe closed in one tick, a bound on the loop: a tick interval
/// (at most an hour) closes at most 60 one-minute buckets. Should the clock ever jump
/// further, the rest close at the following ticks.
const MAX_CLOSES_PER_TICK: usize = 10_000;

/// What one (strategy, ticker, bucket) — or (strategy, bucket) — check concluded.
enum Verdict {
    Owed(Seen),
    Excluded(Exclusion),
    Nothing,
}

impl Guarantee {
    /// The end of tick `now_ms`, after its dispatches: the outage window's state, then every
    /// bucket whose closing tick this is.
    pub fn close_tick(&mut self, now_ms: i64) {
        let down = self.paused || !self.ready;
        self.outages.tick(now_ms, down);
        self.ready = false;
        let frames: Vec<Frame> = self.strategies.by_frame.keys().copied().collect();
        self.cursors.retain(|f, _| frames.contains(f));
        let reach_ms = now_ms.saturating_add(self.settings.max_clock_offset_ms);
        for frame in frames {
            let Some(mut open) = self
                .cursors
                .get(&frame)
                .copied()
                .or_else(|| frame.bucket(reach_ms))
            else {
                continue;
            };
            let mut closes = 0;
            while open.end_ms <= reach_ms && closes < MAX_CLOSES_PER_TICK {
                self.close_bucket(frame, open, now_ms);
                match frame.bucket(open.end_ms) {
                    Some(next) => open = next,
                    None => break,
                }
                closes += 1;
            }
            self.cursors.insert(frame, open);
        }
        self.latest_open_start_ms = self
            .cursors
            .values()
            .map(|b| b.start_ms)
            .max()
            .unwrap_or(i64::MIN);
        if now_ms >= self.next_prune_ms {
            self.prune(now_ms);
            self.next_prune_ms = now_ms.saturating_add(PRUNE_EVERY_MS);
        }
    }

    /// The run ended at `end_ms`: buckets not closed yet are counted, not checked.
    pub fn finish(&mut self) {
        let open: u64 = self
            .cursors
            .keys()
            .filter_map(|f| self.strategies.by_frame.get(f))
            .map(|ids| ids.len() as u64)
            .sum();
        self.summary.exclude(Exclusion::OpenAtEnd, open);
        self.cursors.clear();
    }

    fn prune(&mut self, now_ms: i64) {
        if let Some(oldest) = self.cursors.values().map(|b| b.start_ms).min() {
            self.updates.prune(oldest);
            self.outages.prune(oldest);
        }
        self.ledger.prune(now_ms);
    }

    /// Checks bucket `b` of every strategy of `frame`, at its closing tick `now_ms`.
    fn close_bucket(&mut self, frame: Frame, b: Bucket, now_ms: i64) {
        let ids: Vec<u64> = self
            .strategies
            .by_frame
            .get(&frame)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default();
        let outage = self.outages.overlaps(b.start_ms, now_ms);
        for id in ids {
            let Some(s) = self.strategies.by_id.get(&id) else {
                continue;
            };
            let level = self.strategies.level(s);
            if (b.start_ms..=now_ms).contains(&s.defined_at) {
                self.summary.exclude(Exclusion::CatalogEdit, 1);
            } else {
                let verdicts = match level {
                    Level::PerTicker => self.per_ticker(s, b, outage),
                    Level::Strategy => vec![(None, self.strategy_level(s, b, outage))],
                    Level::Global => {
                        let any = self.updates.any(b.start_ms, b.end_ms);
                        vec![(None, excluded_if(outage, any))]
                    }
                    Level::Missing => vec![(None, Verdict::Excluded(Exclusion::MissingUniverse))],
                    Level::Idle | Level::Invalid => Vec::new(),
                };
                for (ticker, verdict) in verdicts {
                    self.judge(id, b, now_ms, ticker, verdict);
                }
            }
            if let Some(s) = self.strategies.by_id.get_mut(&id) {
                s.forget_changes_before(b.end_ms);
            }
        }
    }

    /// Every ticker of `s` that may matter in `b`: its members, and those whose membership
    /// changed or is uncertain.
    fn per_ticker(&self, s: &Strategy, b: Bucket, outage: bool) -> Vec<(Option<String>, Verdict)> {
        let mut out = Vec::new();
        let extra: BTreeSet<&String> = s
            .uncertain
            .iter()
            .chain(s.changed_since(b.start_ms))
            .filter(|t| !s.members.contains(*t))
            .collect();
        for t in s.members.iter().chain(extra) {
            let Some(seen) = self.updates.of(t, b.start_ms, b.end_ms) else {
                continue;
            };
            let verdict = if outage {
                Verdict::Excluded(Exclusion::Outage)
            } else if s.changed.get(t).is_some_and(|at| *at >= b.start_ms) {
                Verdict::Excluded(Exclusion::MembershipChanged)
            } else if s.uncertain.contains(t) {
                Verdict::Excluded(Exclusion::UniverseUncertain)
            } else if s.members.contains(t) {
                Verdict::Owed(seen)
            } else {
                Verdict::Nothing
            };
            out.push((Some(t.clone()), verdict));
        }
        out
    }

    /// A strategy-level strategy owes a run if a certain member was updated in `b`.
    fn strategy_level(&self, s: &Strategy, b: Bucket, outage: bool) -> Verdict {
        let mut unsure = false;
        for (t, certain) in s
            .members
            .iter()
            .map(|t| (t, true))
            .chain(s.uncertain.iter().map(|t| (t, false)))
        {
            let Some(seen) = self.updates.of(t, b.start_ms, b.end_ms) else {
                continue;
            };
            let moved = s.changed.get(t).is_some_and(|at| *at >= b.start_ms);
            if certain && !moved && !s.uncertain.contains(t) {
                return excluded_if(outage, Some(seen));
            }
            unsure = true;
        }
        if unsure {
            Verdict::Excluded(Exclusion::MembershipChanged)
        } else {
            Verdict::Nothing
        }
    }

    /// Counts a verdict; an owed dispatch that is missing is a finding.
    fn judge(&mut self, id: u64, b: Bucket, now_ms: i64, ticker: Option<String>, verdict: Verdict) {
        let seen = match verdict {
            Verdict::Nothing => return,
            Verdict::Excluded(why) => return self.summary.exclude(why, 1),
            Verdict::Owed(seen) => seen,
        };
        self.summary.verified += 1;
        let done = match &ticker {
            Some(t) => self.ledger.covers(id, b.start_ms, t),
            None => self.ledger.ran(id, b.start_ms),
        };
        if done {
            return;
        }
        if seen.written_ms == now_ms {
            self.summary.missed_at_close += 1;
        }
        let jobs = self.ledger.jobs_of(id, b.start_ms);
        let events = format!(
            "update stamped {} ({} ms), written at {}, inside [{}, {}); closing tick {}; \
             jobs for this bucket: {}",
            iso(seen.ts_ms),
            seen.ts_ms,
            iso(seen.written_ms),
            iso(b.start_ms),
            iso(b.end_ms),
            iso(now_ms),
            if jobs.is_empty() {
                "none".to_owned()
            } else {
                format!("{jobs:?} (none with it)")
            }
        );
        self.summary.find(Finding {
            kind: FindingKind::Missed,
            at_ms: now_ms,
            strategy: id,
            ticker,
            bucket_start_ms: b.start_ms,
            events,
        });
    }
}

fn excluded_if(outage: bool, seen: Option<Seen>) -> Verdict {
    match (seen, outage) {
        (None, _) => Verdict::Nothing,
        (Some(_), true) => Verdict::Excluded(Exclusion::Outage),
        (Some(seen), false) => Verdict::Owed(seen),
    }
}
