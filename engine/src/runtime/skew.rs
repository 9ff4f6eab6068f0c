//! The clock-skew check of the service (DESIGN §2.3, trigger expiry): before each step the
//! engine's clock is compared with Redis's (`TIME`). Redis expires trigger hashes on its own
//! clock with TTLs computed from the engine's, so an instance ahead by X lets its claims
//! expire X early, and past `trigger_grace_ms` a bucket re-opens to duplicates; no TTL formula
//! computed from a wrong clock avoids that. An instance whose clock is further off than
//! `max_clock_skew_ms` therefore takes no step (it is not ready, and the other instances
//! carry on) until its clock agrees again. Redis's time is only ever compared, never used for
//! a decision: decisions stay a function of the engine's clock.

use std::sync::atomic::Ordering;

use super::{Clock, Metrics};
use crate::store::Maintenance;

/// What one check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skew {
    /// Within the bound: the engine clock minus Redis's, in ms.
    Within(i64),
    /// Beyond the bound: no step may be taken.
    Beyond(i64),
    /// No answer (Redis unreachable: the step will say so) or a store without a clock.
    Unknown,
}

/// Compares `clock` with the store's clock, sets the `clock_skew_ms` gauge and, when the
/// skew is beyond `max_ms`, counts a skipped step and logs it. The round trip is not skew:
/// the engine's time is taken as the midpoint of its readings before and after `TIME`, and
/// only what exceeds half the round trip counts against the bound.
pub async fn check<S: Maintenance, C: Clock>(
    store: &S,
    clock: &C,
    metrics: &Metrics,
    max_ms: i64,
) -> Skew {
    let before_ms = clock.now_ms();
    let server_ms = match store.server_time_ms().await {
        Ok(Some(ms)) => ms,
        Ok(None) | Err(_) => return Skew::Unknown,
    };
    let after_ms = clock.now_ms();
    let skew_ms = before_ms + (after_ms - before_ms) / 2 - server_ms;
    metrics.clock_skew_ms.store(skew_ms, Ordering::Relaxed);
    let uncertainty_ms = (after_ms - before_ms) / 2;
    if skew_ms.abs() - uncertainty_ms <= max_ms {
        return Skew::Within(skew_ms);
    }
    Metrics::add(&metrics.clock_skew_skips, 1);
    tracing::warn!(
        clock_skew_ms = skew_ms,
        max_clock_skew_ms = max_ms,
        "this instance's clock is {} {} Redis's, beyond max_clock_skew_ms: no step until it agrees (its claims would expire early, or its buckets roll at the wrong time)",
        crate::config::human_ms(skew_ms.abs()),
        if skew_ms > 0 { "ahead of" } else { "behind" },
    );
    Skew::Beyond(skew_ms)
}
