//! Retention of update times (DESIGN §2.6).

use super::calendar::Timeframe;

/// The retention cleanup must apply: `max(configured, longest bucket of any active
/// timeframe)`. With it, cleanup can never change a decision: every entry it removes is
/// older than the start of every current and future bucket.
pub fn effective_retention_ms(configured_ms: i64, active: &[Timeframe]) -> i64 {
    active
        .iter()
        .map(Timeframe::max_bucket_ms)
        .fold(configured_ms, i64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::time::{DAY_MS, HOUR_MS};

    #[test]
    fn longest_active_bucket_wins() {
        let tf = |s: &str| s.parse::<Timeframe>().expect("valid");
        assert_eq!(
            effective_retention_ms(90 * DAY_MS, &[tf("5m"), tf("1d")]),
            90 * DAY_MS
        );
        assert_eq!(
            effective_retention_ms(90 * DAY_MS, &[tf("1q")]),
            92 * DAY_MS + HOUR_MS
        );
        assert_eq!(
            effective_retention_ms(DAY_MS, &[tf("1y")]),
            366 * DAY_MS + HOUR_MS
        );
    }
}
