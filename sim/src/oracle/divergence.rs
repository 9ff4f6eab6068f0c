//! Divergence: the engine's dispatches at a tick equal the full evaluation's. Run after
//! [`super::safety`] and [`super::liveness`], so what it reports is any other difference
//! (an extra dispatch, another mode, tickers the oracle did not owe).

use super::{Merged, Violation};

/// The first entry on which `got` and `want` differ, on each side.
pub fn check(now: i64, got: &Merged, want: &Merged) -> Result<(), Violation> {
    if got == want {
        return Ok(());
    }
    let first = |m: &Merged| {
        m.iter()
            .find(|(k, v)| want.get(*k) != Some(*v) || got.get(*k) != Some(*v))
            .map(|((id, bucket, mode), symbols)| {
                let symbols: Vec<&str> = symbols.iter().map(String::as_str).collect();
                format!(
                    "strategy {id} {} [{}] in the bucket starting {}",
                    mode.as_str(),
                    symbols.join(", "),
                    crate::human::when(*bucket)
                )
            })
            .unwrap_or_else(|| "nothing more".to_owned())
    };
    Err(Violation::Divergence {
        tick_ms: now,
        engine: first(got),
        oracle: first(want),
    })
}
