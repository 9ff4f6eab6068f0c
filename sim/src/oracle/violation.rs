//! How a failed check is described (`main` maps each kind to its exit code).

use tickgate::StrategyId;

use crate::check::GuaranteeFinding;
use crate::human::when;

/// Why a run failed its checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error(
        "safety: at the tick of {} strategy {strategy} got {ticker:?} again in the bucket starting {}",
        when(*.tick_ms),
        when(*.bucket_ms)
    )]
    Safety {
        tick_ms: i64,
        strategy: StrategyId,
        ticker: String,
        bucket_ms: i64,
    },
    #[error(
        "liveness: at the tick of {} strategy {strategy} was owed {} in the bucket starting {}",
        when(*.tick_ms),
        if .missing.is_empty() { "its strategy-level run".to_owned() } else { .missing.join(", ") },
        when(*.bucket_ms)
    )]
    Liveness {
        tick_ms: i64,
        strategy: StrategyId,
        missing: Vec<String>,
        bucket_ms: i64,
    },
    #[error(
        "memory: at {} Redis used {:.1} MB ({used_bytes} bytes), above the scenario's bound of {limit_mb} MB",
        when(*.tick_ms),
        *.used_bytes as f64 / 1e6
    )]
    Memory {
        tick_ms: i64,
        used_bytes: u64,
        limit_mb: usize,
    },
    #[error(
        "checker: at the tick of {} the workers (redis-rs) and fred read different jobs: {detail}",
        when(*.tick_ms)
    )]
    Checker { tick_ms: i64, detail: String },
    /// The independent checker (`crate::check`) found DESIGN §2.3's guarantee broken, from
    /// the raw events alone: a safety finding (a duplicate, a misaligned bucket) exits as a
    /// safety violation, a missed dispatch as a liveness one.
    #[error(
        "{} (independent checker): {finding}; in all: {found}",
        if .finding.kind.is_safety() { "safety" } else { "liveness" }
    )]
    Guarantee {
        finding: Box<GuaranteeFinding>,
        /// Findings by kind over the run, e.g. "0 duplicate, 0 misaligned, 12 missed".
        found: String,
    },
    #[error(
        "divergence: at the tick of {} the engine dispatched {engine}, the oracle {oracle}",
        when(*.tick_ms)
    )]
    Divergence {
        tick_ms: i64,
        engine: String,
        oracle: String,
    },
}

impl Violation {
    /// The exit code of `tickgate-sim run` for this violation (README's table): 3 safety,
    /// 4 liveness (from the independent checker or the oracle), 5 divergence or the `fred`
    /// reader disagreeing, 6 memory.
    pub fn exit_code(&self) -> u8 {
        match self {
            Violation::Safety { .. } => 3,
            Violation::Liveness { .. } => 4,
            Violation::Guarantee { finding, .. } if finding.kind.is_safety() => 3,
            Violation::Guarantee { .. } => 4,
            Violation::Divergence { .. } | Violation::Checker { .. } => 5,
            Violation::Memory { .. } => 6,
        }
    }
}
