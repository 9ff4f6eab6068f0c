//! Liveness (DESIGN §2.3): every dispatch the full evaluation owes at a tick was made, with
//! all its tickers.

use super::{Merged, Violation};

/// The first dispatch of `want` that `got` lacks, or lacks tickers of.
pub fn check(now: i64, got: &Merged, want: &Merged) -> Result<(), Violation> {
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
    Ok(())
}
