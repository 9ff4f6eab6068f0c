//! Checks every store applies to its input before it writes (so both stores reject
//! identically), and the intersection fallback shared by the runtime and the benches.

use std::collections::{BTreeMap, BTreeSet};

use super::{Intersection, Store, StoreCounters, StoreError};
use crate::core::calendar::Bucket;
use crate::core::rule::admitted;
use crate::core::ticker::{InputError, StrategyId, Ticker, check_timestamp, parse_tickers};
use crate::core::time::MINUTE_MS;

/// Intersects with `method`; a failing script is answered client-side instead and counted
/// in `lua_fallbacks` (DESIGN §2.5). Non-script errors (Redis down) are returned as is.
pub async fn intersect_or_fall_back<S: Store>(
    store: &S,
    id: StrategyId,
    since_ms: i64,
    method: Intersection,
) -> Result<Vec<Ticker>, StoreError> {
    match store.intersect(id, since_ms, method).await {
        Err(StoreError::Script { script, reason }) => {
            tracing::warn!(strategy = id, script, %reason, "Lua intersection failed; falling back to client-side");
            StoreCounters::bump(&store.counters().lua_fallbacks, 1);
            store
                .intersect(id, since_ms, Intersection::ClientSide)
                .await
        }
        Ok(tickers) => {
            if method != Intersection::ClientSide {
                StoreCounters::bump(&store.counters().lua_intersections, 1);
            }
            Ok(tickers)
        }
        other => other,
    }
}

/// A batch of updates as the record script takes it: per ticker its latest time, and the
/// latest of its times in an earlier minute than that, if the batch holds one.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct UpdateBatch {
    pub latest: BTreeMap<Ticker, i64>,
    /// Recorded first, so that `TICK:PRE` keeps it: a batch that spans a minute boundary
    /// (a writer that batches, or one that catches up after an outage) must not lose an
    /// update inside a bucket that the ticker's next update, in the same batch, outdates
    /// (DESIGN §2.3 step 6, the closing pass).
    pub earlier: BTreeMap<Ticker, i64>,
}

/// Validates a batch of updates recorded at `now_ms`: every ticker valid, every time in
/// range and at most `max_future_ms` ahead of `now_ms` (the first problem is the error and
/// nothing is written); de-duplicated into what the record script takes. Shared by both
/// stores so they reject and record identically.
pub(crate) fn validate_updates<S: AsRef<str>>(
    now_ms: i64,
    max_future_ms: i64,
    updates: &[(S, i64)],
) -> Result<UpdateBatch, InputError> {
    check_timestamp(now_ms)?;
    let mut parsed = Vec::with_capacity(updates.len());
    let mut batch = UpdateBatch::default();
    for (raw, ts_ms) in updates {
        let ticker = Ticker::parse(raw.as_ref())?;
        let ts_ms = check_timestamp(*ts_ms)?;
        if !admitted(ts_ms, now_ms, max_future_ms) {
            return Err(InputError::FutureTimestamp {
                ticker: ticker.as_str().to_owned(),
                ts_ms,
                now_ms,
                max_future_ms,
            });
        }
        let slot = batch.latest.entry(ticker.clone()).or_insert(ts_ms);
        *slot = (*slot).max(ts_ms);
        parsed.push((ticker, ts_ms));
    }
    let minute = |ms: i64| ms.div_euclid(MINUTE_MS);
    for (ticker, ts_ms) in parsed {
        if minute(ts_ms) < minute(batch.latest[&ticker]) {
            let slot = batch.earlier.entry(ticker).or_insert(ts_ms);
            *slot = (*slot).max(ts_ms);
        }
    }
    Ok(batch)
}

/// Validates a universe: every ticker valid, not empty, at most `max` distinct tickers.
pub(crate) fn validate_universe<S: AsRef<str>>(
    id: StrategyId,
    tickers: &[S],
    max: usize,
) -> Result<BTreeSet<Ticker>, InputError> {
    let set: BTreeSet<Ticker> = parse_tickers(tickers)?.into_iter().collect();
    if set.is_empty() {
        return Err(InputError::EmptyUniverse { strategy: id });
    }
    if set.len() > max {
        return Err(InputError::UniverseTooLarge {
            strategy: id,
            size: set.len(),
            max,
        });
    }
    Ok(set)
}

/// Checks a bucket handed to a dispatch: both ends valid instants, start before end.
pub(crate) fn check_bucket(bucket: Bucket) -> Result<Bucket, InputError> {
    check_timestamp(bucket.start_ms)?;
    check_timestamp(bucket.end_ms)?;
    if bucket.start_ms >= bucket.end_ms {
        return Err(InputError::Setting {
            name: "bucket",
            value: format!("[{}, {})", bucket.start_ms, bucket.end_ms),
            rule: "start must be before end",
        });
    }
    Ok(bucket)
}

/// Milliseconds a trigger key must live, counted from logical `now_ms`.
pub(crate) fn trigger_ttl_ms(bucket: Bucket, now_ms: i64, grace_ms: i64) -> i64 {
    (bucket.end_ms - now_ms).max(0) + grace_ms
}
