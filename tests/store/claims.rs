//! Claims under concurrency, trigger-key expiry, and bad input that must leave every stored
//! value as it was.

use std::collections::BTreeSet;

use tickgate::InputError;
use tickgate::store::{MemoryStore, RedisStore, Store, StoreError};
use tickgate::timeframe::{Bucket, Timeframe};

use crate::common::{MINUTE_MS, T0_MS, redis_state, ticker_pool};

/// Concurrent claimers, as in the issue: more than the cores, so claims really interleave.
const CLAIMERS: usize = 8;
const ROUNDS: i64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_each_ticker_claimed_exactly_once() {
    let server = tickgate_suite::redis().await;
    let tickers = ticker_pool(500);
    // Separate connections, as separate engine instances would have.
    let mut stores = Vec::new();
    for _ in 0..CLAIMERS {
        stores.push(std::sync::Arc::new(
            tickgate_suite::store(&server, "race:").await,
        ));
    }
    let tf: Timeframe = "5m".parse().expect("valid");
    for round in 0..ROUNDS {
        let now = T0_MS + round * 5 * MINUTE_MS;
        let bucket = tf.bucket(now).expect("in range");
        let mut tasks = tokio::task::JoinSet::new();
        for (i, store) in stores.iter().enumerate() {
            let store = store.clone();
            // Each claimer asks in a different order, as instances with other caches would.
            let mut mine = tickers.clone();
            mine.rotate_left(i * 61);
            tasks.spawn(async move { store.claim(42, bucket, now, &mine).await });
        }
        let mut seen = BTreeSet::new();
        let mut total = 0;
        while let Some(result) = tasks.join_next().await {
            let claimed = result.expect("task").expect("claim");
            total += claimed.len();
            seen.extend(claimed);
        }
        assert_eq!(
            total,
            tickers.len(),
            "round {round}: a ticker was claimed twice"
        );
        assert_eq!(
            seen.len(),
            tickers.len(),
            "round {round}: a ticker was never claimed"
        );
    }
}

#[tokio::test]
async fn trigger_state_expires_after_its_bucket_plus_grace() {
    let server = tickgate_suite::redis().await;
    let store = tickgate_suite::store(&server, "ttl:").await;
    let mut con = store.connection();
    let grace = tickgate::store::DEFAULT_TRIGGER_GRACE_MS;
    let day: Timeframe = "1d".parse().expect("valid");
    let now = T0_MS; // 09:30 ET
    let bucket = day.bucket(now).expect("in range");
    let t = ticker_pool(1);
    store.claim(1, bucket, now, &t).await.expect("claim");
    assert!(store.claim_strategy(1, bucket, now).await.expect("claim"));
    for key in [store.keys().triggers(1), store.keys().strategy_run(1)] {
        let pttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut con)
            .await
            .expect("PTTL");
        let want = bucket.end_ms - now + grace;
        // Redis counts down in real time between the claim and this read.
        assert!(
            (want - 5_000..=want).contains(&pttl),
            "{key}: PTTL {pttl}, want ~{want}"
        );
    }
    // A claim for an older, still open bucket (the timeframe got longer) never shortens it.
    let week: Timeframe = "1w".parse().expect("valid");
    let later = now + 6 * 3_600_000;
    store
        .claim(1, day.bucket(later).expect("ok"), later, &t)
        .await
        .expect("claim");
    store
        .claim(1, week.bucket(later).expect("ok"), later, &t)
        .await
        .expect("claim");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(store.keys().triggers(1))
        .query_async(&mut con)
        .await
        .expect("PTTL");
    let week_end = week.bucket(later).expect("ok").end_ms;
    assert!(
        pttl > week_end - later,
        "PTTL {pttl} shorter than the week bucket"
    );
}

/// One scenario, run on both stores: repeated, released, next-bucket and stale claims.
async fn claim_lifecycle<S: Store>(store: &S) {
    let five: Timeframe = "5m".parse().expect("valid");
    let t = ticker_pool(3);
    let b1 = five.bucket(T0_MS).expect("ok");
    let b2 = five.bucket(b1.end_ms).expect("ok");
    let t = &t;
    let claim = |b: Bucket| async move { store.claim(7, b, b.start_ms, t).await.expect("claim") };
    assert_eq!(claim(b1).await, ticker_pool(3), "first claim takes all");
    assert!(claim(b1).await.is_empty(), "same bucket: nothing new");
    assert_eq!(
        store
            .release(7, b1, &ticker_pool(1))
            .await
            .expect("release"),
        1
    );
    assert_eq!(
        claim(b1).await,
        ticker_pool(1),
        "a released ticker is claimable again"
    );
    assert_eq!(claim(b2).await, ticker_pool(3), "the next bucket takes all");
    assert!(
        claim(b1).await.is_empty(),
        "a lagging claim for b1 is stale"
    );
    assert_eq!(
        store
            .release(7, b1, &ticker_pool(3))
            .await
            .expect("release"),
        0
    );
    assert!(
        store
            .claim_strategy(7, b1, b1.start_ms)
            .await
            .expect("claim")
    );
    assert!(
        !store
            .claim_strategy(7, b1, b1.start_ms)
            .await
            .expect("claim")
    );
    assert!(store.release_strategy(7, b1).await.expect("release"));
    assert!(
        store
            .claim_strategy(7, b1, b1.start_ms)
            .await
            .expect("claim")
    );
    assert!(
        store
            .claim_strategy(7, b2, b2.start_ms)
            .await
            .expect("claim")
    );
    assert!(
        !store
            .claim_strategy(7, b1, b1.start_ms)
            .await
            .expect("claim"),
        "stale"
    );
}

#[tokio::test]
async fn stale_and_repeated_claims_claim_nothing_and_release_reopens() {
    let server = tickgate_suite::redis().await;
    claim_lifecycle(&tickgate_suite::store(&server, "stale:").await).await;
    claim_lifecycle(&MemoryStore::new(100)).await;
}

#[tokio::test]
async fn bad_input_is_a_typed_error_and_writes_nothing() {
    let server = tickgate_suite::redis().await;
    let store: RedisStore = tickgate_suite::store(&server, "bad:").await;
    let mut con = store.connection();
    let good = ["AAPL", "BRK.B", "X:BTCUSD"];
    store.replace_universe(1, &good).await.expect("universe");
    store
        .record_updates(&[("AAPL", T0_MS)])
        .await
        .expect("update");
    let b = "1d"
        .parse::<Timeframe>()
        .expect("ok")
        .bucket(T0_MS)
        .expect("ok");
    store
        .claim(1, b, T0_MS, &ticker_pool(2))
        .await
        .expect("claim");
    let before = redis_state(&mut con, store.keys(), [1, 2]).await;

    let long = "L".repeat(65);
    for bad in ["", "  ", "BRK B", "caf\u{e9}", "A\nB", long.as_str()] {
        let e = input(store.record_updates(&[("MSFT", T0_MS), (bad, T0_MS)]).await);
        assert!(matches!(e, InputError::Ticker { .. }), "{e}");
        let e = input(store.replace_universe(1, &["MSFT", bad]).await);
        assert!(matches!(e, InputError::Ticker { .. }), "{e}");
    }
    for ts in [
        -1,
        i64::MIN,
        i64::MAX,
        tickgate::timeframe::MAX_TIMESTAMP_MS,
    ] {
        let e = input(store.record_updates(&[("MSFT", ts)]).await);
        assert_eq!(e, InputError::Timestamp { ts_ms: ts });
        assert!(e.to_string().contains(&ts.to_string()));
        input(store.updated_since(ts).await);
        input(store.cleanup(ts, 0, &[]).await);
        input(
            store
                .claim(
                    2,
                    Bucket {
                        start_ms: ts,
                        end_ms: T0_MS,
                    },
                    T0_MS,
                    &ticker_pool(1),
                )
                .await,
        );
    }
    let e = input(store.replace_universe(1, &[] as &[&str]).await);
    assert_eq!(e, InputError::EmptyUniverse { strategy: 1 });
    let oversized: Vec<String> = (0..tickgate::store::DEFAULT_MAX_UNIVERSE + 1)
        .map(|i| format!("S{i}"))
        .collect();
    let e = input(store.replace_universe(1, &oversized).await);
    assert_eq!(
        e,
        InputError::UniverseTooLarge {
            strategy: 1,
            size: 50_001,
            max: 50_000
        }
    );
    input(
        store
            .claim(
                2,
                Bucket {
                    start_ms: T0_MS,
                    end_ms: T0_MS,
                },
                T0_MS,
                &ticker_pool(1),
            )
            .await,
    );

    assert_eq!(
        redis_state(&mut con, store.keys(), [1, 2]).await,
        before,
        "a rejected input changed Redis"
    );
    // Exactly 50,000 is allowed.
    assert_eq!(
        store
            .replace_universe(1, &oversized[1..])
            .await
            .expect("max size"),
        50_000
    );
}

/// The input error of a rejected call; anything else fails the test.
fn input<T: std::fmt::Debug>(r: Result<T, StoreError>) -> InputError {
    match r {
        Err(StoreError::Input(e)) => e,
        other => panic!("expected an input error, got {other:?}"),
    }
}
