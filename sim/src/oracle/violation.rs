//! How a failed check is described (`main` maps each kind to its exit code).

use tickgate::StrategyId;

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
