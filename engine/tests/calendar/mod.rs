//! Buckets pinned by properties (any instant 1970–2100, every unit, N in 1..=12) and by the
//! examples the original got wrong (DESIGN §2.2).

use jiff::Timestamp;
use jiff::civil::Weekday;
use proptest::prelude::*;
use tickgate::core::calendar::{MARKET_TIME_ZONE, MIN_BUCKET_INSTANT_MS};
use tickgate::core::ticker::MAX_TIMESTAMP_MS;
use tickgate::core::time::{DAY_MS, HOUR_MS, MINUTE_MS};
use tickgate::{Bucket, Timeframe, TimeframeError, Unit};

/// 1970-01-01T00:00Z .. 2100-01-01T00:00Z.
const MIN_MS: i64 = 0;
const MAX_MS: i64 = 4_102_444_800_000;

/// Cases per property: each case checks one instant against one timeframe, and the
/// unit × count space is only 72 timeframes, so 10,000 cases visit each about 140 times.
const CASES: u32 = 10_000;

fn tf(s: &str) -> Timeframe {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn bucket(tf: &Timeframe, t: i64) -> Bucket {
    tf.bucket(t).unwrap_or_else(|e| panic!("{tf} at {t}: {e}"))
}

fn any_timeframe() -> impl Strategy<Value = Timeframe> {
    (prop::sample::select(Unit::ALL.to_vec()), 1u32..=12)
        .prop_map(|(unit, n)| Timeframe::new(n, unit).expect("1..=12 is valid for every unit"))
}

fn market_zoned(ms: i64) -> jiff::ZonedDateTime {
    Timestamp::from_millisecond(ms)
        .expect("in range")
        .in_tz(MARKET_TIME_ZONE)
        .expect("bundled tz")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Multi-unit buckets count whole units from the 1970 origin (DESIGN §2.2): the start's
    /// civil day, week (from Monday 1970-01-05), quarter or year index is a multiple of N.
    /// Computed here from the civil date alone, not from the calendar's own arithmetic.
    #[test]
    fn multi_unit_buckets_count_whole_units_from_1970(
        unit in prop::sample::select(vec![Unit::Day, Unit::Week, Unit::Quarter, Unit::Year]),
        n in 2u32..=12,
        t in MIN_MS..MAX_MS,
    ) {
        let tf = Timeframe::new(n, unit).expect("valid");
        let start = market_zoned(bucket(&tf, t).start_ms).date();
        let days = i64::from(
            jiff::civil::date(1970, 1, 1)
                .until(start)
                .expect("in range")
                .get_days(),
        );
        let (year, month) = (i64::from(start.year()), i64::from(start.month()));
        let index = match unit {
            Unit::Day => days,
            Unit::Week => (days - 4).div_euclid(7),
            Unit::Quarter => (year - 1970) * 4 + (month - 1) / 3,
            _ => year - 1970,
        };
        prop_assert_eq!(index.rem_euclid(i64::from(n)), 0, "{} at {}: start {}", tf, t, start);
    }

    #[test]
    fn bucket_contains_its_instant(tf in any_timeframe(), t in MIN_MS..MAX_MS) {
        let b = bucket(&tf, t);
        prop_assert!(b.start_ms <= t && t < b.end_ms, "{tf} {t} -> {b:?}");
    }

    #[test]
    fn every_instant_of_a_bucket_maps_to_it(
        tf in any_timeframe(),
        t in MIN_MS..MAX_MS,
        frac in 0.0f64..1.0,
    ) {
        let b = bucket(&tf, t);
        // Both edges and one random interior instant.
        let inside = b.start_ms + ((b.len_ms() as f64 * frac) as i64).min(b.len_ms() - 1);
        for probe in [b.start_ms, inside, b.end_ms - 1] {
            prop_assert_eq!(bucket(&tf, probe), b, "{} probe {}", tf, probe);
        }
    }

    #[test]
    fn buckets_are_contiguous(tf in any_timeframe(), t in MIN_MS..MAX_MS) {
        let b = bucket(&tf, t);
        let next = bucket(&tf, b.end_ms);
        prop_assert_eq!(next.start_ms, b.end_ms, "gap or overlap after {:?}", b);
        prop_assert!(next.end_ms > next.start_ms);
    }

    #[test]
    fn bucket_never_exceeds_max_bucket_ms(tf in any_timeframe(), t in MIN_MS..MAX_MS) {
        let b = bucket(&tf, t);
        prop_assert!(b.len_ms() <= tf.max_bucket_ms(), "{tf}: {b:?} longer than {}", tf.max_bucket_ms());
    }

    #[test]
    fn calendar_buckets_start_at_market_midnight(tf in any_timeframe(), t in MIN_MS..MAX_MS) {
        let b = bucket(&tf, t);
        match tf.unit() {
            Unit::Minute | Unit::Hour => {
                let width = i64::from(tf.count()) * if tf.unit() == Unit::Minute { MINUTE_MS } else { HOUR_MS };
                prop_assert_eq!(b.start_ms % width, 0);
                prop_assert_eq!(b.len_ms(), width);
            }
            unit => {
                for edge in [b.start_ms, b.end_ms] {
                    let z = market_zoned(edge);
                    prop_assert_eq!((z.hour(), z.minute(), z.second(), z.subsec_nanosecond()), (0, 0, 0, 0), "{} {:?}", tf, z);
                    match unit {
                        Unit::Week => prop_assert_eq!(z.weekday(), Weekday::Monday),
                        Unit::Quarter => prop_assert!(z.day() == 1 && [1, 4, 7, 10].contains(&z.month()), "{:?}", z),
                        Unit::Year => prop_assert!(z.day() == 1 && z.month() == 1, "{:?}", z),
                        _ => {}
                    }
                }
            }
        }
    }
}

#[test]
fn dst_days_of_2024_are_23_and_25_hours() {
    const H: i64 = HOUR_MS;
    // Spring forward, Sunday 2024-03-10: midnight EST to midnight EDT.
    let spring = bucket(&tf("1d"), 1_710_086_400_000); // 12:00 EDT
    assert_eq!(
        spring,
        Bucket {
            start_ms: 1_710_046_800_000,
            end_ms: 1_710_129_600_000
        }
    );
    assert_eq!(spring.len_ms(), 23 * H);
    // 03:30 EDT, just after the gap, is still the same day.
    assert_eq!(bucket(&tf("1d"), 1_710_055_800_000), spring);
    // Fall back, Sunday 2024-11-03.
    let fall = bucket(&tf("1d"), 1_730_653_200_000); // 12:00 EST
    assert_eq!(
        fall,
        Bucket {
            start_ms: 1_730_606_400_000,
            end_ms: 1_730_696_400_000
        }
    );
    assert_eq!(fall.len_ms(), 25 * H);

    // Both days are even day numbers since 1970-01-01 (19792 and 20030), so they open a
    // `2d` bucket that ends two civil midnights later.
    let spring2 = bucket(&tf("2d"), 1_710_086_400_000);
    assert_eq!(
        spring2,
        Bucket {
            start_ms: 1_710_046_800_000,
            end_ms: 1_710_216_000_000
        }
    );
    assert_eq!(spring2.len_ms(), 47 * H);
    let fall2 = bucket(&tf("2d"), 1_730_653_200_000);
    assert_eq!(
        fall2,
        Bucket {
            start_ms: 1_730_606_400_000,
            end_ms: 1_730_782_800_000
        }
    );
    assert_eq!(fall2.len_ms(), 49 * H);
}

#[test]
fn half_past_midnight_in_summer_belongs_to_that_day() {
    // 2024-07-15T00:30-04:00. The Go code's hour-based division put it in July 14.
    let b = bucket(&tf("1d"), 1_721_017_800_000);
    assert_eq!(
        b,
        Bucket {
            start_ms: 1_721_016_000_000,
            end_ms: 1_721_102_400_000
        }
    );
}

#[test]
fn max_bucket_covers_the_longest_calendar_periods() {
    const DAY: i64 = DAY_MS;
    const H: i64 = HOUR_MS;
    assert_eq!(tf("1q").max_bucket_ms(), 92 * DAY + H);
    assert_eq!(tf("1y").max_bucket_ms(), 366 * DAY + H);
    assert_eq!(tf("1d").max_bucket_ms(), DAY + H);
    assert_eq!(tf("5m").max_bucket_ms(), 5 * MINUTE_MS);
    // Two quarters: Jul–Dec is 184 days, the longest pair.
    assert_eq!(tf("2q").max_bucket_ms(), 184 * DAY + H);
}

#[test]
fn invalid_timeframes_are_rejected_with_named_errors() {
    let err = |s: &str| s.parse::<Timeframe>().expect_err(s);
    assert_eq!(err("0m"), TimeframeError::Zero { input: "0m".into() });
    assert_eq!(err("0"), TimeframeError::Zero { input: "0".into() });
    assert_eq!(err(""), TimeframeError::Malformed { input: "".into() });
    assert_eq!(err("5x"), TimeframeError::Malformed { input: "5x".into() });
    assert_eq!(
        err("-1d"),
        TimeframeError::Malformed {
            input: "-1d".into()
        }
    );
    assert_eq!(err("d"), TimeframeError::Malformed { input: "d".into() });
    assert_eq!(
        err(" 5m"),
        TimeframeError::Malformed {
            input: " 5m".into()
        }
    );
    assert!(matches!(
        err("99999999999999999999m"),
        TimeframeError::TooLong { .. }
    ));
    assert!(matches!(
        err("101y"),
        TimeframeError::TooLong { max: 100, .. }
    ));
    // Every message names the input and the rule it broke.
    let msg = err("5x").to_string();
    assert!(
        msg.contains("\"5x\"") && msg.contains("^(\\d+)([mhdwqy]?)$"),
        "{msg}"
    );
    let msg = err("99999999999999999999m").to_string();
    assert!(
        msg.contains("99999999999999999999m") && msg.contains("maximum"),
        "{msg}"
    );
}

#[test]
fn units_are_case_insensitive_and_default_to_minutes() {
    assert_eq!(tf("5M"), tf("5m"));
    assert_eq!(tf("1H"), tf("1h"));
    assert_eq!(tf("15"), tf("15m"));
    assert_eq!(tf("05m").to_string(), "5m");
    assert_eq!(tf("1Q").unit(), Unit::Quarter);
}

#[test]
fn instants_outside_the_supported_range_are_errors_not_panics() {
    let d = tf("1d");
    assert!(d.bucket(MIN_BUCKET_INSTANT_MS - 1).is_err());
    assert!(d.bucket(i64::MIN).is_err());
    // Early 1970 instants have buckets that start in 1969, which have buckets too.
    let week = tf("1w").bucket(0).expect("1970-01-01");
    assert_eq!(tf("1w").bucket(week.start_ms).expect("1969-12-29"), week);
    assert!(d.bucket(i64::MAX).is_err());
    assert!(tf("100y").bucket(MAX_TIMESTAMP_MS - 1).is_ok());
}
