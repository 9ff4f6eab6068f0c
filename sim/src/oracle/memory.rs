//! Memory: Redis `used_memory` stays at or under the scenario's bound at every sample, so
//! cleanup and the stream caps keep Redis bounded over long runs.

use super::Violation;

/// Bytes per MB in the bound (decimal, as the report prints MB).
const BYTES_PER_MB: u64 = 1_000_000;

/// Whether `used_bytes`, sampled at `now`, is within `limit_mb`.
pub fn check(now: i64, used_bytes: u64, limit_mb: usize) -> Result<(), Violation> {
    if used_bytes > limit_mb as u64 * BYTES_PER_MB {
        return Err(Violation::Memory {
            tick_ms: now,
            used_bytes,
            limit_mb,
        });
    }
    Ok(())
}
