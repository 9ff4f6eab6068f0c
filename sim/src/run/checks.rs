//! The checks a tick must pass, and how a failure is described.

use std::collections::BTreeSet;

use tickgate::StrategyId;
use tickgate::core::jobs::JobMode;

use crate::checker::Entry;
use crate::oracle::Merged;

/// Why a run failed its checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error(
        "safety: at tick {tick_ms} strategy {strategy} got {ticker:?} again in bucket {bucket_ms}"
    )]
    Safety {
        tick_ms: i64,
        strategy: StrategyId,
        ticker: String,
        bucket_ms: i64,
    },
    #[error(
        "liveness: at tick {tick_ms} strategy {strategy} was owed {missing:?} in bucket {bucket_ms}"
    )]
    Liveness {
        tick_ms: i64,
        strategy: StrategyId,
        missing: Vec<String>,
        bucket_ms: i64,
    },
    #[error(
        "memory: at tick {tick_ms} Redis used {used_bytes} bytes, above the scenario's bound of {limit_mb} MB"
    )]
    Memory {
        tick_ms: i64,
        used_bytes: u64,
        limit_mb: usize,
    },
    #[error(
        "checker: at tick {tick_ms} the workers (redis-rs) and fred read different jobs: {detail}"
    )]
    Checker { tick_ms: i64, detail: String },
    #[error(
        "divergence: at tick {tick_ms} the engine dispatched {engine:?}, the oracle {oracle:?}"
    )]
    Divergence {
        tick_ms: i64,
        engine: String,
        oracle: String,
    },
}

/// Where two readings of the jobs stream first differ.
pub(super) fn first_difference(workers: &[Entry], fred: &[Entry]) -> String {
    let at = workers
        .iter()
        .zip(fred)
        .position(|(a, b)| a != b)
        .unwrap_or(workers.len().min(fred.len()));
    format!(
        "{} entries vs {}; first difference at #{at}: {:?} vs {:?}",
        workers.len(),
        fred.len(),
        workers.get(at).map(|e| &e.0),
        fred.get(at).map(|e| &e.0)
    )
}

/// Classifies the first difference between the engine's and the oracle's decisions.
pub(super) fn compare(
    now: i64,
    got: &Merged,
    want: &Merged,
    dispatched: &BTreeSet<(StrategyId, i64, String)>,
) -> Result<(), Violation> {
    if got == want {
        return Ok(());
    }
    for ((id, bucket, mode), symbols) in got {
        if *mode == JobMode::PerTicker {
            for t in symbols {
                if dispatched.contains(&(*id, *bucket, t.clone())) {
                    return Err(Violation::Safety {
                        tick_ms: now,
                        strategy: *id,
                        ticker: t.clone(),
                        bucket_ms: *bucket,
                    });
                }
            }
        }
    }
    for (key @ (id, bucket, _), symbols) in want {
        let have = got.get(key).cloned().unwrap_or_default();
        let missing: Vec<String> = symbols.difference(&have).cloned().collect();
        if !missing.is_empty() || !got.contains_key(key) {
            return Err(Violation::Liveness {
                tick_ms: now,
                strategy: *id,
                missing,
                bucket_ms: *bucket,
            });
        }
    }
    let first = |m: &Merged| {
        m.iter()
            .find(|(k, v)| want.get(*k) != Some(*v) || got.get(*k) != Some(*v))
            .map(|e| format!("{e:?}"))
            .unwrap_or_default()
    };
    Err(Violation::Divergence {
        tick_ms: now,
        engine: first(got),
        oracle: first(want),
    })
}
