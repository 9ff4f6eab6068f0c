//! Validated inputs (DESIGN §2.1): tickers, strategy ids and timestamps. Everything that
//! reaches Redis has passed through here, so a bad value is rejected with an error that
//! names it and the rule it broke, before anything is written.

use std::fmt;
use std::sync::Arc;

/// Longest ticker accepted, in bytes. Option symbols (`O:AAPL251219C00200000`) are 21;
/// 64 leaves room for any venue's format while keeping keys and job payloads small.
pub const MAX_TICKER_BYTES: usize = 64;

/// Cap on how much of a rejected value an error message repeats: values are external data
/// and an error line must stay a line.
const ERROR_EXCERPT_BYTES: usize = 80;

/// Latest instant (exclusive) accepted anywhere, and for which a bucket can be computed:
/// 3000-01-01T00:00:00Z. Far beyond any market timestamp, and with
/// [`crate::core::calendar::Unit::max_count`] it keeps every bucket end inside jiff's civil
/// range (year 9999) and far from `i64` overflow.
pub const MAX_TIMESTAMP_MS: i64 = 32_503_680_000_000;

/// A strategy's identifier (the `<id>` in `STRAT:<id>:UNIV`).
pub type StrategyId = u64;

/// A market symbol: trimmed, 1..=64 bytes of printable ASCII without whitespace.
///
/// Shared, not owned: a tick clones tickers by the hundred thousand (proposals, claims, job
/// symbols), and a clone of an `Arc<str>` is a counter increment, not an allocation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticker(Arc<str>);

/// Why an input was rejected. Every variant names the value and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("ticker {value:?} is invalid: {rule}")]
    Ticker { value: String, rule: &'static str },
    #[error("timestamp {ts_ms} ms is invalid: must be in 0..{MAX_TIMESTAMP_MS} (1970 to 3000)")]
    Timestamp { ts_ms: i64 },
    #[error(
        "timestamp {ts_ms} ms of ticker {ticker:?} is {} ms ahead of now ({now_ms} ms): must be at most max_future_ms = {max_future_ms} ms ahead",
        ts_ms.saturating_sub(*now_ms)
    )]
    FutureTimestamp {
        ticker: String,
        ts_ms: i64,
        now_ms: i64,
        max_future_ms: i64,
    },
    #[error("universe of strategy {strategy} is empty: an empty universe is never stored")]
    EmptyUniverse { strategy: StrategyId },
    #[error("universe of strategy {strategy} has {size} tickers, above max_universe = {max}")]
    UniverseTooLarge {
        strategy: StrategyId,
        size: usize,
        max: usize,
    },
    #[error("{name} = {value} is invalid: {rule}")]
    Setting {
        name: &'static str,
        value: String,
        rule: &'static str,
    },
}

/// `value`, shortened for an error message.
pub fn excerpt(value: &str) -> String {
    if value.len() <= ERROR_EXCERPT_BYTES {
        return value.to_owned();
    }
    let mut end = ERROR_EXCERPT_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &value[..end], value.len())
}

impl Ticker {
    /// Normalises (trims) and validates a ticker.
    pub fn parse(raw: &str) -> Result<Ticker, InputError> {
        let value = raw.trim();
        let reject = |rule| InputError::Ticker {
            value: excerpt(raw),
            rule,
        };
        if value.is_empty() {
            return Err(reject("empty after trimming"));
        }
        if value.len() > MAX_TICKER_BYTES {
            return Err(reject("longer than 64 bytes"));
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(reject(
                "must be printable ASCII without whitespace or control characters",
            ));
        }
        Ok(Ticker(Arc::from(value)))
    }

    /// The ticker as stored in Redis.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Ticker {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Validates every ticker of `raw`; the first invalid one is the error.
pub fn parse_tickers<S: AsRef<str>>(raw: &[S]) -> Result<Vec<Ticker>, InputError> {
    raw.iter().map(|t| Ticker::parse(t.as_ref())).collect()
}

/// Checks that `ts_ms` is a supported instant (see [`MAX_TIMESTAMP_MS`]).
pub fn check_timestamp(ts_ms: i64) -> Result<i64, InputError> {
    if (0..MAX_TIMESTAMP_MS).contains(&ts_ms) {
        Ok(ts_ms)
    } else {
        Err(InputError::Timestamp { ts_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_symbols_are_accepted_and_trimmed() {
        for s in [
            "AAPL",
            "BRK.B",
            "X:BTCUSD",
            "O:AAPL251219C00200000",
            "a/b",
            " MSFT\t",
        ] {
            let t = Ticker::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
            assert_eq!(t.as_str(), s.trim());
        }
    }

    #[test]
    fn bad_symbols_name_value_and_rule() {
        let long = "A".repeat(65);
        for (s, rule) in [
            ("", "empty"),
            ("   ", "empty"),
            ("BRK B", "whitespace"),
            ("caf\u{e9}", "ASCII"),
            ("A\u{7}", "control"),
            (long.as_str(), "64 bytes"),
        ] {
            let e = Ticker::parse(s).expect_err(s).to_string();
            assert!(e.contains(rule), "{e}");
            assert!(e.contains(&format!("{:?}", excerpt(s))), "{e}");
        }
    }

    #[test]
    fn timestamps_outside_1970_to_3000_are_rejected() {
        assert!(check_timestamp(-1).is_err());
        assert!(check_timestamp(MAX_TIMESTAMP_MS).is_err());
        assert_eq!(check_timestamp(0), Ok(0));
        assert!(
            check_timestamp(i64::MIN)
                .unwrap_err()
                .to_string()
                .contains("-9223372036854775808")
        );
    }
}
