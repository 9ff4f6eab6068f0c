//! Safety from the dispatches and the failures alone: per (strategy, bucket), every ticker
//! dispatched (and every strategy-level run) with the job that did it and whether a run
//! containing it failed since. A second dispatch with no failure between is a duplicate.

use std::collections::HashMap;

use super::parse::{JobView, Mode};

/// How long after its end a bucket's ledger is kept: any job for a bucket that old is
/// counted as not placed instead of judged. A day is far beyond the closing tick, a
/// re-delivery or the slowest result of any scenario.
pub const KEEP_AFTER_END_MS: i64 = 24 * 60 * 60 * 1000;

/// The dispatches of one ticker (or of the strategy-level run) in one bucket.
#[derive(Debug, Clone)]
pub struct Runs {
    pub count: u32,
    pub first_job: String,
    pub last_job: String,
    pub last_at_ms: i64,
    /// The Redis epoch of the last dispatch.
    pub last_epoch: u64,
    /// A failed run containing it since the last dispatch: (job id, when).
    pub failed: Option<(String, i64)>,
}

/// A duplicate: the earlier dispatch and the new one.
#[derive(Debug, Clone)]
pub struct Duplicate {
    /// `None` for the strategy-level run.
    pub ticker: Option<String>,
    pub previous: Runs,
}

#[derive(Debug, Clone, Default)]
struct BucketLedger {
    end_ms: i64,
    tickers: HashMap<String, Runs>,
    run: Option<Runs>,
    /// Jobs seen, by (Redis epoch, job id).
    jobs: HashMap<(u64, String), Delivered>,
}

/// One job id as delivered: what it holds, and its deliveries not yet answered. The same
/// job read again while a delivery is unanswered is a re-delivery (DESIGN §2.8: not
/// acknowledged within the visibility timeout), not a new dispatch; read again after every
/// delivery was answered, it is a new dispatch (a strategy-level run's id has no sequence
/// number, so a retry after a failure repeats it exactly).
#[derive(Debug, Clone)]
struct Delivered {
    content: (Mode, Vec<String>),
    unanswered: u32,
}

/// Every bucket's dispatches still kept.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    buckets: HashMap<(u64, i64), BucketLedger>,
}

/// What recording a job found.
#[derive(Debug, Clone)]
pub enum Recorded {
    /// A re-delivery of a job already recorded.
    Redelivered,
    /// A new dispatch, with any duplicates it made.
    New(Vec<Duplicate>),
}

impl Ledger {
    /// Records job `job`, seen at `at_ms` in Redis epoch `epoch` (a Redis that restarted
    /// empty reissues job ids), for the bucket ending at `end_ms`.
    pub fn dispatch(&mut self, at_ms: i64, epoch: u64, job: &JobView, end_ms: i64) -> Recorded {
        let ledger = self
            .buckets
            .entry((job.strategy, job.bucket_start_ms))
            .or_default();
        ledger.end_ms = end_ms;
        let key = (epoch, job.id.clone());
        let content = (job.mode, job.symbols.clone());
        match ledger.jobs.get_mut(&key) {
            Some(seen) if seen.content == content && seen.unanswered > 0 => {
                return Recorded::Redelivered;
            }
            Some(seen) if seen.content == content => seen.unanswered = 1,
            _ => {
                let unanswered = 1;
                ledger.jobs.insert(
                    key,
                    Delivered {
                        content,
                        unanswered,
                    },
                );
            }
        }
        let mut duplicates = Vec::new();
        let mut note = |slot: Option<&mut Runs>, ticker: Option<&String>| -> Option<Runs> {
            let Some(runs) = slot else {
                return Some(Runs {
                    count: 1,
                    first_job: job.id.clone(),
                    last_job: job.id.clone(),
                    last_at_ms: at_ms,
                    last_epoch: epoch,
                    failed: None,
                });
            };
            if runs.failed.is_none() {
                duplicates.push(Duplicate {
                    ticker: ticker.cloned(),
                    previous: runs.clone(),
                });
            }
            runs.count += 1;
            runs.last_job = job.id.clone();
            runs.last_at_ms = at_ms;
            runs.last_epoch = epoch;
            runs.failed = None;
            None
        };
        if job.mode == Mode::PerTicker {
            for t in &job.symbols {
                if let Some(new) = note(ledger.tickers.get_mut(t), Some(t)) {
                    ledger.tickers.insert(t.clone(), new);
                }
            }
        } else if let Some(new) = note(ledger.run.as_mut(), None) {
            ledger.run = Some(new);
        }
        Recorded::New(duplicates)
    }

    /// A worker answered a delivery of `job`, read in Redis epoch `epoch`.
    pub fn answered(&mut self, epoch: u64, job: &JobView) {
        let key = (epoch, job.id.clone());
        if let Some(seen) = self
            .buckets
            .get_mut(&(job.strategy, job.bucket_start_ms))
            .and_then(|l| l.jobs.get_mut(&key))
        {
            seen.unanswered = seen.unanswered.saturating_sub(1);
        }
    }

    /// A run failed at `at_ms` (a failed result, or its job dead-lettered): each ticker it
    /// held (or the strategy-level run) may be dispatched once more in its bucket.
    pub fn fail(&mut self, at_ms: i64, job: &JobView) {
        let Some(ledger) = self.buckets.get_mut(&(job.strategy, job.bucket_start_ms)) else {
            return;
        };
        let failed = Some((job.id.clone(), at_ms));
        if job.mode == Mode::PerTicker {
            for t in &job.symbols {
                if let Some(runs) = ledger.tickers.get_mut(t) {
                    runs.failed.clone_from(&failed);
                }
            }
        } else if let Some(runs) = ledger.run.as_mut() {
            runs.failed = failed;
        }
    }

    /// Whether `ticker` was dispatched for (strategy, bucket), by a per-ticker job or a
    /// whole-strategy run.
    pub fn covers(&self, strategy: u64, bucket_start_ms: i64, ticker: &str) -> bool {
        self.buckets
            .get(&(strategy, bucket_start_ms))
            .is_some_and(|l| l.run.is_some() || l.tickers.contains_key(ticker))
    }

    /// Whether anything was dispatched for (strategy, bucket).
    pub fn ran(&self, strategy: u64, bucket_start_ms: i64) -> bool {
        self.buckets
            .get(&(strategy, bucket_start_ms))
            .is_some_and(|l| l.run.is_some() || !l.tickers.is_empty())
    }

    /// The job ids seen for (strategy, bucket), sorted, for a finding's events.
    pub fn jobs_of(&self, strategy: u64, bucket_start_ms: i64) -> Vec<String> {
        let mut ids: Vec<String> = self
            .buckets
            .get(&(strategy, bucket_start_ms))
            .map(|l| l.jobs.keys().map(|(_, id)| id.clone()).collect())
            .unwrap_or_default();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Whether (strategy, bucket) is still kept (else a job for it cannot be judged).
    pub fn keeps(&self, strategy: u64, bucket_start_ms: i64) -> bool {
        self.buckets.contains_key(&(strategy, bucket_start_ms))
    }

    /// Drops buckets that ended more than [`KEEP_AFTER_END_MS`] before `now_ms`.
    pub fn prune(&mut self, now_ms: i64) {
        self.buckets
            .retain(|_, l| l.end_ms.saturating_add(KEEP_AFTER_END_MS) >= now_ms);
    }
}
