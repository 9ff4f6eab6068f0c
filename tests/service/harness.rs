//! A market, a worker and an oracle for service tests.
//!
//! - [`Rng`]: SplitMix64, so every test is reproducible from its seed.
//! - [`Oracle`]: DESIGN §2.3–2.4 by full evaluation ([`tickgate::throttle::decide`]) over its
//!   own copy of the world; what every engine instance together dispatches must equal it.
//! - [`Worker`]: reads jobs, answers with results (some failing, some with `used_symbols`).

use std::collections::{BTreeMap, BTreeSet};

use tickgate::jobs::{Job, JobMode};
use tickgate::store::Store;
use tickgate::throttle::{Decision, Strategy, Universe, decide};
use tickgate::{StrategyId, Ticker};

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

/// One dispatch: (strategy, bucket start, mode, symbols).
pub type Dispatch = (StrategyId, i64, JobMode, BTreeSet<String>);

/// The world as DESIGN.md says it evolves.
pub struct Oracle {
    pub per_ticker: bool,
    pub max_universe: usize,
    pub strategies: BTreeMap<StrategyId, Strategy>,
    pub updates: BTreeMap<Ticker, i64>,
    claims: BTreeMap<(StrategyId, Ticker), i64>,
    runs: BTreeMap<StrategyId, i64>,
}

impl Oracle {
    pub fn new(per_ticker: bool, catalog: &BTreeMap<StrategyId, String>) -> Oracle {
        let strategies = catalog
            .iter()
            .map(|(id, json)| {
                (
                    *id,
                    Strategy::from_catalog(*id, json).expect("valid entry").0,
                )
            })
            .filter(|(_, s)| s.active)
            .collect();
        Oracle {
            per_ticker,
            max_universe: tickgate::store::DEFAULT_MAX_UNIVERSE,
            strategies,
            updates: BTreeMap::new(),
            claims: BTreeMap::new(),
            runs: BTreeMap::new(),
        }
    }

    /// Redis lost everything it held (restart empty): update times and claims.
    pub fn forget_redis_state(&mut self) {
        self.updates.clear();
        self.claims.clear();
        self.runs.clear();
    }

    /// Records updates with `ZADD GT` semantics.
    pub fn record(&mut self, updates: &[(String, i64)]) {
        for (t, ts) in updates {
            let t = Ticker::parse(t).expect("valid");
            let slot = self.updates.entry(t).or_insert(*ts);
            *slot = (*slot).max(*ts);
        }
    }

    /// Full evaluation of every strategy at `now`; claims what it dispatches.
    pub fn tick(&mut self, now: i64) -> BTreeSet<Dispatch> {
        let mut out: BTreeSet<Dispatch> = BTreeSet::new();
        for (id, s) in &self.strategies {
            let decision = decide(
                s,
                self.per_ticker,
                now,
                |t| self.updates.get(t).copied(),
                |t, start| self.claims.get(&(*id, t.clone())) == Some(&start),
                |start| self.runs.get(id) == Some(&start),
            );
            if let Decision::Run {
                bucket,
                mode,
                symbols,
            } = decision
            {
                out.insert((
                    *id,
                    bucket.start_ms,
                    mode,
                    symbols.iter().map(|t| t.as_str().to_owned()).collect(),
                ));
            }
        }
        for (id, start, mode, symbols) in &out {
            match mode {
                JobMode::PerTicker => {
                    for t in symbols {
                        self.claims
                            .insert((*id, Ticker::parse(t).expect("valid")), *start);
                    }
                }
                _ => {
                    self.runs.insert(*id, *start);
                }
            }
        }
        out
    }

    /// A failed run releases its claims (those still held for its bucket).
    pub fn fail(&mut self, job: &Job) {
        let id = job.strategy_id;
        match &job.symbols {
            Some(symbols) if job.mode == "per_ticker" => {
                for t in symbols {
                    let key = (id, Ticker::parse(t).expect("valid"));
                    if self.claims.get(&key) == Some(&job.bucket_start_ms) {
                        self.claims.remove(&key);
                    }
                }
            }
            _ => {
                if self.runs.get(&id) == Some(&job.bucket_start_ms) {
                    self.runs.remove(&id);
                }
            }
        }
    }

    /// `used_symbols` replace an explicit (or missing) universe when some are valid.
    pub fn discover(&mut self, id: StrategyId, used: &[String]) {
        let Some(s) = self.strategies.get_mut(&id) else {
            return;
        };
        if s.universe == Universe::Global {
            return;
        }
        let valid: BTreeSet<Ticker> = used.iter().filter_map(|t| Ticker::parse(t).ok()).collect();
        if !valid.is_empty() && valid.len() <= self.max_universe {
            s.universe = Universe::Tickers(valid);
        }
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

/// Merges a round's dispatches per (strategy, bucket, mode): a strategy's tickers may be
/// split over several jobs in one tick (e.g. a lagging and a leading instance).
pub fn merged(
    dispatches: &BTreeSet<Dispatch>,
) -> BTreeMap<(StrategyId, i64, JobMode), BTreeSet<String>> {
    let mut out: BTreeMap<_, BTreeSet<String>> = BTreeMap::new();
    for (id, start, mode, symbols) in dispatches {
        out.entry((*id, *start, *mode))
            .or_default()
            .extend(symbols.iter().cloned());
    }
    out
}
