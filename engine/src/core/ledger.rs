//! What one engine instance claimed in buckets that are still open (DESIGN §9). Redis holds
//! the claims; when it loses them (restart empty, flush), each instance writes its own back
//! before it dispatches again, so the loss never makes it dispatch a ticker twice in a
//! bucket. The claims of other instances are theirs to write back.
//!
//! No I/O and no clock: the runtime records what it dispatched and hands the time in.

use std::collections::{BTreeMap, BTreeSet};

use super::calendar::Bucket;
use super::jobs::JobRef;
use super::ticker::{StrategyId, Ticker};

/// This instance's claims in open buckets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ledger {
    /// (strategy, bucket) → tickers claimed there by this instance's per-ticker jobs.
    tickers: BTreeMap<(StrategyId, Bucket), BTreeSet<Ticker>>,
    /// Per-ticker jobs issued by this instance and not known settled: job → its tickers, so
    /// a failure it settles itself releases them here too.
    jobs: BTreeMap<JobRef, Vec<Ticker>>,
    /// (strategy, bucket) of this instance's whole-strategy runs.
    runs: BTreeSet<(StrategyId, Bucket)>,
    /// Strategy → the highest job number this instance issued into its trigger hash:
    /// written back too, so job numbers never repeat after a loss.
    job_numbers: BTreeMap<StrategyId, u64>,
}

/// One strategy's claims in one bucket, to write back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimBack {
    pub strategy: StrategyId,
    pub bucket: Bucket,
    /// Sorted.
    pub tickers: Vec<Ticker>,
    /// The highest job number this instance issued for the strategy (0: none known).
    pub jobs_issued: u64,
    /// This instance's jobs in the bucket not known settled: (job number, its tickers), so
    /// a failure reported after the loss still releases its claims.
    pub open_jobs: Vec<(u64, Vec<Ticker>)>,
}

/// The claims to write back after a loss: per-ticker claims, and whole runs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteBack {
    pub tickers: Vec<ClaimBack>,
    pub runs: Vec<(StrategyId, Bucket)>,
}

impl Ledger {
    /// Records the per-ticker job `job`, which claimed `tickers` in `bucket`.
    pub fn claimed(&mut self, job: JobRef, bucket: Bucket, tickers: &[Ticker]) {
        let key = (job.strategy, bucket);
        self.tickers
            .entry(key)
            .or_default()
            .extend(tickers.iter().cloned());
        if let Some(n) = job.seq {
            let max = self.job_numbers.entry(job.strategy).or_default();
            *max = (*max).max(n);
        }
        self.jobs.insert(job, tickers.to_vec());
    }

    /// Records a whole-strategy run of `strategy` in `bucket`.
    pub fn ran(&mut self, strategy: StrategyId, bucket: Bucket) {
        self.runs.insert((strategy, bucket));
    }

    /// A job of this instance was settled: a failure released its claims (the tickers are
    /// retried, and must not be written back). Results settled by another instance are not
    /// seen here; after a loss those claims are written back, and the retry of those
    /// tickers in that bucket is lost (a missed retry, never a duplicate).
    pub fn settled(&mut self, job: &JobRef, failed: bool) {
        let tickers = self.jobs.remove(job);
        if !failed {
            return;
        }
        let Some(tickers) = tickers else {
            self.runs
                .retain(|(s, b)| !(*s == job.strategy && b.start_ms == job.bucket_start_ms));
            return;
        };
        for ((s, b), held) in &mut self.tickers {
            if *s == job.strategy && b.start_ms == job.bucket_start_ms {
                tickers.iter().for_each(|t| {
                    held.remove(t);
                });
            }
        }
    }

    /// Forgets buckets that ended at least `keep_ms` before `now_ms`: a closed bucket's
    /// claims matter until its closing pass, at the first tick after its end.
    pub fn prune(&mut self, now_ms: i64, keep_ms: i64) {
        let open = |b: &Bucket| b.end_ms.saturating_add(keep_ms) > now_ms;
        self.tickers
            .retain(|(_, b), held| open(b) && !held.is_empty());
        self.runs.retain(|(_, b)| open(b));
        let open_buckets: BTreeSet<(StrategyId, i64)> =
            self.tickers.keys().map(|(s, b)| (*s, b.start_ms)).collect();
        self.jobs
            .retain(|j, _| open_buckets.contains(&(j.strategy, j.bucket_start_ms)));
        let strategies: BTreeSet<StrategyId> = open_buckets.iter().map(|(s, _)| *s).collect();
        self.job_numbers.retain(|s, _| strategies.contains(s));
    }

    /// Everything to write back, in order.
    pub fn write_back(&self) -> WriteBack {
        WriteBack {
            tickers: self
                .tickers
                .iter()
                .map(|((s, b), held)| ClaimBack {
                    strategy: *s,
                    bucket: *b,
                    tickers: held.iter().cloned().collect(),
                    jobs_issued: self.job_numbers.get(s).copied().unwrap_or(0),
                    open_jobs: self
                        .jobs
                        .iter()
                        .filter(|(j, _)| j.strategy == *s && j.bucket_start_ms == b.start_ms)
                        .filter_map(|(j, tickers)| Some((j.seq?, tickers.clone())))
                        .collect(),
                })
                .collect(),
            runs: self.runs.iter().copied().collect(),
        }
    }
}
