//! A market, a worker and an oracle for service tests.
//!
//! - [`Rng`]: SplitMix64, so every test is reproducible from its seed.
//! - the oracle is the simulator's ([`tickgate_sim::oracle`]): full evaluation of DESIGN
//!   §2.3–2.4; what every engine instance together dispatches must equal it.
//! - [`Worker`]: reads jobs, answers with results (some failing, some with `used_symbols`).

use std::collections::BTreeSet;

use tickgate::StrategyId;
use tickgate::jobs::{Job, JobMode};
use tickgate::store::Store;
pub use tickgate_sim::oracle::{Dispatch, Oracle, merged};

/// SplitMix64: tiny, portable, good enough to generate test traffic.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A worker that answers every job: failing some, reporting `used_symbols` for others.
pub struct Worker {
    pub fail_percent: u64,
    pub discover_percent: u64,
}

/// What a worker did in one round.
#[derive(Default)]
pub struct Round {
    pub dispatched: BTreeSet<Dispatch>,
    pub failed: Vec<Job>,
    pub discovered: Vec<(StrategyId, Vec<String>)>,
    /// (strategy, bucket, symbol) of every per-ticker job, with repeats, to find duplicates.
    pub per_ticker: Vec<(StrategyId, i64, String)>,
}

/// Jobs a worker takes per read: small, so the loop below is exercised.
const TAKE: usize = 64;
/// Bound on reads per round: far above any test's jobs per tick.
const MAX_READS: usize = 10_000;

impl Worker {
    /// Takes every queued job and answers it. `pool` is where `used_symbols` come from.
    pub async fn round<S: Store>(&self, store: &S, rng: &mut Rng, pool: &[String]) -> Round {
        let mut round = Round::default();
        for _ in 0..MAX_READS {
            let entries = store.take_jobs("worker-1", TAKE).await.expect("take jobs");
            if entries.is_empty() {
                break;
            }
            for entry in entries {
                let job: Job = serde_json::from_str(entry.payload.as_deref().expect("job field"))
                    .expect("job JSON");
                let mode = match job.mode.as_str() {
                    "per_ticker" => JobMode::PerTicker,
                    "strategy" => JobMode::Strategy,
                    _ => JobMode::Global,
                };
                let symbols: BTreeSet<String> = job
                    .symbols
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                if mode == JobMode::PerTicker {
                    round.per_ticker.extend(
                        symbols
                            .iter()
                            .map(|t| (job.strategy_id, job.bucket_start_ms, t.clone())),
                    );
                }
                round
                    .dispatched
                    .insert((job.strategy_id, job.bucket_start_ms, mode, symbols));
                let success = !rng.chance(self.fail_percent);
                let mut result = serde_json::json!({
                    "job_id": job.job_id, "strategy_id": job.strategy_id, "success": success,
                    "alerts": [], "execution_time_ms": 3,
                });
                if rng.chance(self.discover_percent) {
                    let n = 1 + rng.below(6) as usize;
                    let used: Vec<String> = (0..n)
                        .map(|_| pool[rng.below(pool.len() as u64) as usize].clone())
                        .collect();
                    result["used_symbols"] = serde_json::json!(used);
                    round.discovered.push((job.strategy_id, used));
                }
                if !success {
                    result["error"] = serde_json::json!({"type": "Timeout", "message": "test worker failed on purpose"});
                    round.failed.push(job);
                }
                store
                    .finish_job(&entry.id, &result.to_string())
                    .await
                    .expect("finish job");
            }
        }
        round
    }
}
