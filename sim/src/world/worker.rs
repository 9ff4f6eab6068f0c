//! One simulated strategy worker (DESIGN §7): it takes jobs through [`WorkerSide`] (the
//! worker's half of the streams, never the engine's), decides each run's outcome from its
//! own seeded stream, and posts each result `latency_ms` after it took the job. The
//! simulator runs one; integration tests can run it too (a latency of 0 answers at once).
//!
//! Per job, in stream order, exactly these draws (their order is part of every run's
//! decision log, so changing it changes every digest):
//! 1. `success = !bool(failure_rate)`;
//! 2. `bool(used_symbols_rate)`; when true, `n` uniform in `1..=`[`MAX_USED_SYMBOLS`], and
//!    `n` tickers from the caller's sample (the simulator's market has a stream of its own
//!    for them, so a worker's sample never shifts the market);
//! 3. only when `latency_tail_share > 0` (so scenarios without a tail keep their streams):
//!    `bool(latency_tail_share)`; when true, the latency uniform in
//!    `latency_ms..=latency_tail_max_ms` instead of `latency_ms` — slow runs whose results
//!    arrive ticks later, across bucket boundaries and after later jobs' results.
//!
//! An entry whose payload is not a job is skipped without a draw.
//!
//! Results are due in `(due, taken order)` order and posted together, each atomic with its
//! job's acknowledgement ([`WorkerSide::finish_jobs`]).

use std::collections::BTreeMap;

use rand::RngExt;
use tickgate::core::jobs::Job;
use tickgate::store::{StoreError, StreamEntry, WorkerSide};

use super::rng::{SimRng, seeded_rng};
use super::scenario::WorkerSpec;

/// Mixed into the run's seed for the worker's stream, so that it is independent of the
/// market's streams drawn from the same seed.
pub const WORKER_STREAM: u64 = 0x5eed_0f00_0000_0001;

/// Most tickers one result reports in `used_symbols` (a discovered universe): a handful,
/// like a screen that ended up looking at a few names.
pub const MAX_USED_SYMBOLS: usize = 8;

/// Jobs read per call, and the bound on calls per [`Worker::take`] (far more than any
/// scenario enqueues in one tick).
pub const TAKE_BATCH: usize = 1_000;
pub const MAX_TAKES: usize = 10_000;

/// The consumer name the worker reads the jobs stream as.
pub const CONSUMER: &str = "sim-worker";

/// A job the worker ran, and the result it posts once due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The jobs-stream entry, acknowledged when the result is posted.
    pub entry_id: String,
    /// The entry's `job` field as read (what the independent checker parses).
    pub payload: String,
    pub job: Job,
    pub success: bool,
    /// The discovered universe, when this result reports one.
    pub used_symbols: Option<Vec<String>>,
    /// Simulated time at which the job was taken.
    pub taken_ms: i64,
    /// Simulated time at which the result is posted.
    pub due_ms: i64,
}

impl Answer {
    /// The result JSON (DESIGN §2.8): `job_id`, `strategy_id`, `success` and, when
    /// reported, `used_symbols`.
    pub fn result_json(&self) -> String {
        let mut result = serde_json::json!({
            "job_id": self.job.job_id,
            "strategy_id": self.job.strategy_id,
            "success": self.success,
        });
        if let Some(used) = &self.used_symbols {
            result["used_symbols"] = serde_json::json!(used);
        }
        result.to_string()
    }
}

/// What one [`Worker::round`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    /// Jobs taken and answered this round, in stream order.
    pub answered: Vec<Answer>,
    /// Results posted this round (due by its time), in due order.
    pub posted: Vec<Answer>,
}

/// The simulated worker: its spec, its random stream and the results not yet due.
#[derive(Debug, Clone)]
pub struct Worker {
    spec: WorkerSpec,
    rng: SimRng,
    /// `(due, sequence)` → answer: the sequence keeps equal due times in taken order.
    due: BTreeMap<(i64, u64), Answer>,
    sequence: u64,
}

impl Worker {
    /// A worker following `spec`, its stream seeded from the run's `seed`.
    pub fn new(spec: &WorkerSpec, seed: u64) -> Worker {
        Worker {
            spec: spec.clone(),
            rng: seeded_rng(seed ^ WORKER_STREAM),
            due: BTreeMap::new(),
            sequence: 0,
        }
    }

    /// Every job waiting for this worker, in stream order (at most
    /// [`TAKE_BATCH`] × [`MAX_TAKES`]). Takes nothing from the worker's state, so a call
    /// that failed on a broken connection can simply be made again.
    pub async fn take<S: WorkerSide>(&self, store: &S) -> Result<Vec<StreamEntry>, StoreError> {
        let mut all = Vec::new();
        for _ in 0..MAX_TAKES {
            let batch = store.take_jobs(CONSUMER, TAKE_BATCH).await?;
            if batch.is_empty() {
                break;
            }
            all.extend(batch);
        }
        Ok(all)
    }

    /// Runs the job in `entry`, taken at `now_ms` (the draws of the module docs);
    /// `sample(n)` gives `n` tickers for `used_symbols`. `None`, without a draw, when the
    /// entry holds no job.
    pub fn answer(
        &mut self,
        now_ms: i64,
        entry: StreamEntry,
        sample: impl FnOnce(usize) -> Vec<String>,
    ) -> Option<&Answer> {
        let payload = entry.payload?;
        let job: Job = serde_json::from_str(&payload).ok()?;
        let success = !self.rng.random_bool(self.spec.failure_rate.clamp(0.0, 1.0));
        let used_symbols = self
            .rng
            .random_bool(self.spec.used_symbols_rate.clamp(0.0, 1.0))
            .then(|| sample(self.rng.random_range(1..=MAX_USED_SYMBOLS)));
        self.sequence += 1;
        let due_ms = now_ms + self.latency_ms();
        let answer = Answer {
            entry_id: entry.id,
            payload,
            job,
            success,
            used_symbols,
            taken_ms: now_ms,
            due_ms,
        };
        Some(self.due.entry((due_ms, self.sequence)).or_insert(answer))
    }

    /// This job's latency: `latency_ms`, or a draw from the tail (draw 3 of the module
    /// docs).
    fn latency_ms(&mut self) -> i64 {
        let (base, share) = (self.spec.latency_ms, self.spec.latency_tail_share);
        if share <= 0.0 || !self.rng.random_bool(share.min(1.0)) {
            return base;
        }
        self.rng
            .random_range(base..=self.spec.latency_tail_max_ms.max(base))
    }

    /// Removes and returns the answers due by `now_ms`, in due order.
    pub fn due(&mut self, now_ms: i64) -> Vec<Answer> {
        let later = self.due.split_off(&(now_ms.saturating_add(1), 0));
        std::mem::replace(&mut self.due, later)
            .into_values()
            .collect()
    }

    /// Answers taken and not yet posted.
    pub fn pending(&self) -> usize {
        self.due.len()
    }

    /// Posts `answers` (each acknowledges its job), in order.
    pub async fn post<S: WorkerSide>(store: &S, answers: &[Answer]) -> Result<(), StoreError> {
        let results: Vec<(String, String)> = answers
            .iter()
            .map(|a| (a.entry_id.clone(), a.result_json()))
            .collect();
        store.finish_jobs(&results).await
    }

    /// One round as a test drives it: takes and answers every waiting job, then posts
    /// every result due by `now_ms` (with a latency of 0, this round's too).
    pub async fn round<S: WorkerSide>(
        &mut self,
        store: &S,
        now_ms: i64,
        mut sample: impl FnMut(usize) -> Vec<String>,
    ) -> Result<Round, StoreError> {
        let mut round = Round::default();
        for entry in self.take(store).await? {
            if let Some(answer) = self.answer(now_ms, entry, &mut sample) {
                round.answered.push(answer.clone());
            }
        }
        round.posted = self.due(now_ms);
        Worker::post(store, &round.posted).await?;
        Ok(round)
    }
}

#[cfg(test)]
mod tests {
    use tickgate::Ticker;
    use tickgate::core::jobs::{JobMode, JobRef, job_json};

    use super::*;

    fn entry(n: u64) -> StreamEntry {
        let job = JobRef {
            strategy: n,
            bucket_start_ms: 1_717_421_400_000,
            seq: Some(1),
        };
        let symbols = [Ticker::parse("AAPL").expect("valid")];
        StreamEntry {
            id: format!("{n}-0"),
            payload: Some(job_json(&job, 7, JobMode::PerTicker, &symbols)),
        }
    }

    fn spec() -> WorkerSpec {
        WorkerSpec {
            latency_ms: 2_000,
            failure_rate: 0.5,
            used_symbols_rate: 0.5,
            ..WorkerSpec::default()
        }
    }

    fn answers(worker: &mut Worker, entries: Vec<StreamEntry>) -> Vec<Answer> {
        let sample = |n: usize| (0..n).map(|i| format!("T{i}")).collect();
        entries
            .into_iter()
            .filter_map(|e| worker.answer(1_000, e, sample).cloned())
            .collect()
    }

    #[test]
    fn same_seed_same_answers_and_entries_without_a_job_draw_nothing() {
        let jobs = || (1..=40).map(entry).collect::<Vec<_>>();
        let a = answers(&mut Worker::new(&spec(), 3), jobs());
        let mut with_junk = jobs();
        with_junk.insert(
            5,
            StreamEntry {
                id: "junk".to_owned(),
                payload: Some("{not a job".to_owned()),
            },
        );
        let b = answers(&mut Worker::new(&spec(), 3), with_junk);
        assert_eq!(a, b);
        assert_ne!(a, answers(&mut Worker::new(&spec(), 4), jobs()));
        assert!(a.iter().any(|x| !x.success) && a.iter().any(|x| x.success));
        let used: Vec<usize> = a
            .iter()
            .filter_map(|x| x.used_symbols.as_ref().map(Vec::len))
            .collect();
        assert!(!used.is_empty() && used.iter().all(|n| (1..=MAX_USED_SYMBOLS).contains(n)));
    }

    #[test]
    fn results_fall_due_after_the_latency_in_taken_order() {
        let mut worker = Worker::new(&spec(), 1);
        let first = answers(&mut worker, (1..=3).map(entry).collect());
        assert_eq!(worker.pending(), 3);
        assert!(worker.due(2_999).is_empty());
        assert_eq!(worker.due(3_000), first);
        assert_eq!(worker.pending(), 0);
        let json: serde_json::Value =
            serde_json::from_str(&first[0].result_json()).expect("valid JSON");
        assert_eq!(json["job_id"], first[0].job.job_id.as_str());
        assert_eq!(json["success"], first[0].success);
        assert_eq!(
            json.get("used_symbols").is_some(),
            first[0].used_symbols.is_some()
        );
    }

    #[test]
    fn a_latency_tail_makes_results_late_and_out_of_order() {
        let tail = WorkerSpec {
            latency_tail_share: 0.3,
            latency_tail_max_ms: 600_000,
            ..spec()
        };
        let mut worker = Worker::new(&tail, 5);
        let taken = answers(&mut worker, (1..=50).map(entry).collect());
        let slow = taken.iter().filter(|a| a.due_ms > 3_000).count();
        assert!((5..=30).contains(&slow), "{slow} of 50 in the tail");
        assert!(taken.iter().all(|a| (3_000..=601_000).contains(&a.due_ms)));
        assert!(
            taken.iter().any(|a| a.due_ms > 60_000),
            "some come minutes later"
        );
        let posted = worker.due(i64::MAX);
        let order: Vec<&str> = posted.iter().map(|a| a.entry_id.as_str()).collect();
        let taken_order: Vec<&str> = taken.iter().map(|a| a.entry_id.as_str()).collect();
        assert_ne!(order, taken_order, "a slow result is overtaken");
        // Without a tail the draws are those of a worker that has none.
        let none = WorkerSpec {
            latency_tail_max_ms: 600_000,
            ..spec()
        };
        assert_eq!(
            answers(&mut Worker::new(&none, 5), (1..=50).map(entry).collect()),
            answers(&mut Worker::new(&spec(), 5), (1..=50).map(entry).collect())
        );
    }
}
