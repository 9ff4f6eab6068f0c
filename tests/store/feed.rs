//! The incremental update read (`read_updates`): deltas hold exactly the tickers written
//! since the cursor, with their current times, and every case where a delta could be wrong
//! falls back to a full read. A stamp too far ahead of the writer's clock is rejected.

use std::collections::BTreeMap;

use tickgate::core::time::MINUTE_MS;
use tickgate::limits::{
    DEFAULT_MAX_FUTURE_MS, DEFAULT_MAX_UNIVERSE, FEED_DELTA_MAX, WRITE_CHUNK_MEMBERS,
};
use tickgate::store::{FeedCursor, FeedRead, ModelStore, RedisStore, StoreError, Updates};
use tickgate::{InputError, Ticker};
use tickgate_suite::{T0_MS, World, ticker_pool};

fn times(pairs: &[(&Ticker, i64)]) -> BTreeMap<Ticker, i64> {
    pairs.iter().map(|(t, ts)| ((*t).clone(), *ts)).collect()
}

/// A recent window no ticker reaches: a delta is then the sequence's part alone.
const NO_RECENT_MS: i64 = T0_MS + 365 * 24 * 60 * MINUTE_MS;

async fn read(store: &RedisStore, cursor: &FeedCursor, since_ms: i64) -> FeedRead {
    store
        .read_updates(cursor, since_ms, NO_RECENT_MS, "epoch-a")
        .await
        .expect("read")
}

#[tokio::test]
async fn a_delta_holds_exactly_the_tickers_written_since_the_cursor() {
    let world = World::new("feed-delta:").await;
    let store = world.store().await;
    let pool = ticker_pool(4);
    let recorded = |n: usize, ts: i64| (pool[n].as_str(), ts);
    store
        .record_updates(
            T0_MS,
            &[recorded(0, T0_MS), recorded(1, T0_MS - 10 * MINUTE_MS)],
        )
        .await
        .expect("record");

    // First read: no epoch yet, so a full read from `since`, which names the epoch.
    let first = read(&store, &FeedCursor::default(), T0_MS - MINUTE_MS).await;
    assert!(first.full);
    assert_eq!(first.updates, times(&[(&pool[0], T0_MS)]));
    assert_eq!(first.cursor.epoch.as_deref(), Some("epoch-a"));
    assert_eq!(first.cursor.seq, 1, "one write, one sequence number");

    // A raise, an older stamp (time unchanged), a new ticker, a second raise of one ticker.
    store
        .record_updates(
            T0_MS + 5,
            &[recorded(0, T0_MS + 5), recorded(1, T0_MS - 20 * MINUTE_MS)],
        )
        .await
        .expect("record");
    store
        .record_updates(T0_MS + 9, &[recorded(2, T0_MS + 1), recorded(0, T0_MS + 9)])
        .await
        .expect("record");
    let second = read(&store, &first.cursor, T0_MS).await;
    assert!(!second.full, "same epoch, few changes: a delta");
    assert_eq!(
        second.updates,
        times(&[
            (&pool[0], T0_MS + 9),
            (&pool[1], T0_MS - 10 * MINUTE_MS),
            (&pool[2], T0_MS + 1)
        ]),
        "every ticker written, with its current time (an older stamp never lowers it)"
    );
    assert_eq!(second.cursor.seq, 3);

    // Nothing changed: an empty delta, the cursor stays.
    let third = read(&store, &second.cursor, T0_MS).await;
    assert!(!third.full && third.updates.is_empty());
    assert_eq!(third.cursor, second.cursor);
}

#[tokio::test]
async fn a_lost_update_set_is_read_in_full_even_past_the_old_cursor() {
    let world = World::new("feed-lost:").await;
    let store = world.store().await;
    let pool = ticker_pool(8);
    store
        .record_updates(T0_MS, &[(pool[0].as_str(), T0_MS)])
        .await
        .expect("record");
    let before = read(&store, &FeedCursor::default(), T0_MS).await;
    assert_eq!(before.cursor.seq, 1);

    // Redis loses everything; writers then push the new sequence past the old cursor.
    let mut con = world.connection().await;
    let keys = world.keys();
    redis::cmd("DEL")
        .arg(keys.updates())
        .arg(keys.update_sequence())
        .arg(keys.update_feed())
        .query_async::<()>(&mut con)
        .await
        .expect("DEL");
    for t in &pool[1..4] {
        store
            .record_updates(T0_MS + 1, &[(t.as_str(), T0_MS + 1)])
            .await
            .expect("record");
    }
    let after = store
        .read_updates(&before.cursor, T0_MS, NO_RECENT_MS, "epoch-b")
        .await
        .expect("read");
    assert!(after.full, "another incarnation: a full read, not a delta");
    assert_eq!(after.cursor.epoch.as_deref(), Some("epoch-b"));
    assert_eq!(
        after.updates,
        times(&[
            (&pool[1], T0_MS + 1),
            (&pool[2], T0_MS + 1),
            (&pool[3], T0_MS + 1)
        ])
    );
}

#[tokio::test]
async fn more_changes_than_the_delta_bound_are_read_in_full() {
    let world = World::new("feed-many:").await;
    let store = world.store().await;
    let first = read(&store, &FeedCursor::default(), T0_MS).await;
    let n = FEED_DELTA_MAX as usize + 1;
    let pool: Vec<String> = (0..n).map(|i| format!("M{i}")).collect();
    let batch: Vec<(&str, i64)> = pool.iter().map(|t| (t.as_str(), T0_MS + 1)).collect();
    store
        .record_updates(T0_MS + 1, &batch)
        .await
        .expect("record");
    let many = read(&store, &first.cursor, T0_MS + 1).await;
    assert!(many.full, "{n} changes exceed the delta bound");
    assert_eq!(many.updates.len(), n);
    assert_eq!(many.cursor.epoch, first.cursor.epoch, "same incarnation");
    assert_eq!(
        many.cursor.seq,
        n.div_ceil(WRITE_CHUNK_MEMBERS) as u64,
        "one sequence number per write chunk"
    );

    // One change fewer than the bound is still a delta.
    let batch: Vec<(&str, i64)> = pool[..n - 1]
        .iter()
        .map(|t| (t.as_str(), T0_MS + 2))
        .collect();
    store
        .record_updates(T0_MS + 2, &batch)
        .await
        .expect("record");
    let delta = read(&store, &many.cursor, T0_MS + 1).await;
    assert!(!delta.full);
    assert_eq!(delta.updates.len(), n - 1);
}

/// The typed error of a batch with `ticker` stamped `ts_ms`, recorded at `now_ms` with the
/// bound `max_future_ms`.
fn too_far_ahead(ticker: &str, ts_ms: i64, now_ms: i64, max_future_ms: i64) -> StoreError {
    StoreError::Input(InputError::FutureTimestamp {
        ticker: ticker.to_owned(),
        ts_ms,
        now_ms,
        max_future_ms,
    })
}

/// DESIGN §2.3: a stamp more than `max_future_ms` ahead of the writer's clock rejects the
/// whole batch, naming the ticker and the stamp, and writes nothing — on Redis and on the
/// model alike. Exactly at the bound is accepted.
#[tokio::test]
async fn a_stamp_too_far_ahead_rejects_the_batch_and_writes_nothing() {
    let world = World::new("feed-future:").await;
    let store = world.store().await;
    let model = ModelStore::new(DEFAULT_MAX_UNIVERSE);
    let bound = DEFAULT_MAX_FUTURE_MS;
    let (now, far) = (T0_MS, T0_MS + bound + 1);
    let batch = [("A", now), ("B", far), ("C", now - MINUTE_MS)];
    let want = too_far_ahead("B", far, now, bound);
    let got = store.record_updates(now, &batch).await.unwrap_err();
    assert_eq!(got.to_string(), want.to_string());
    assert!(
        matches!(&got, StoreError::Input(e) if *e == InputError::FutureTimestamp {
            ticker: "B".into(), ts_ms: far, now_ms: now, max_future_ms: bound
        }),
        "{got:?}"
    );
    assert!(got.to_string().contains(&format!("{far}")) && got.to_string().contains("\"B\""));
    let got = model.record_updates(now, &batch).await.unwrap_err();
    assert_eq!(got.to_string(), want.to_string());
    assert_eq!(
        store.tracked_tickers().await.expect("zcard"),
        0,
        "nothing written"
    );
    assert_eq!(model.tracked_tickers().await.expect("count"), 0);
    let read = read(&store, &FeedCursor::default(), 0).await;
    assert!(read.updates.is_empty() && read.cursor.seq == 0, "{read:?}");

    // At the bound: accepted by both.
    let at_bound = [("A", now), ("B", now + bound)];
    store.record_updates(now, &at_bound).await.expect("record");
    model.record_updates(now, &at_bound).await.expect("record");
    assert_eq!(store.tracked_tickers().await.expect("zcard"), 2);

    // The configured bound, not the default, is what the store applies.
    let mut config = world.store_config();
    config.max_future_ms = MINUTE_MS;
    let strict = world.store_with(&config).await;
    let ahead = now + MINUTE_MS + 1;
    let got = strict
        .record_updates(now, &[("D", ahead)])
        .await
        .unwrap_err();
    assert_eq!(
        got.to_string(),
        too_far_ahead("D", ahead, now, MINUTE_MS).to_string()
    );
    let model = ModelStore::new(DEFAULT_MAX_UNIVERSE).with_max_future_ms(MINUTE_MS);
    let got = model
        .record_updates(now, &[("D", ahead)])
        .await
        .unwrap_err();
    assert_eq!(
        got.to_string(),
        too_far_ahead("D", ahead, now, MINUTE_MS).to_string()
    );
}

/// A batch that spans a minute boundary — a writer that batches, or one catching up after
/// an outage — keeps, beside each ticker's latest time, its latest time in an earlier minute
/// from the same batch: the closing pass of the bucket that ended between them needs it.
/// Both stores alike.
#[tokio::test]
async fn a_batch_across_a_minute_keeps_the_earlier_minute_for_the_closing_pass() {
    let world = World::new("feed-batch:").await;
    let redis = world.store().await;
    let model = ModelStore::new(DEFAULT_MAX_UNIVERSE);
    let pool = ticker_pool(2);
    let (a, b) = (pool[0].as_str(), pool[1].as_str());
    let minute_start = T0_MS - T0_MS.rem_euclid(MINUTE_MS);
    // `a`: 5 s before a minute boundary and twice after it; `b`: twice in one minute.
    let batch = [
        (a, minute_start - 5_000),
        (b, minute_start + 1_000),
        (a, minute_start + 2_000),
        (b, minute_start + 3_000),
        (a, minute_start + 4_000),
    ];
    let now = minute_start + 10_000;
    let since = T0_MS - 60 * MINUTE_MS;
    redis.record_updates(now, &batch).await.expect("record");
    model.record_updates(now, &batch).await.expect("record");
    let cursor = FeedCursor::default();
    let reads = [
        redis.read_updates(&cursor, since, NO_RECENT_MS, "e").await,
        model.read_updates(&cursor, since, NO_RECENT_MS, "e").await,
    ];
    for read in reads {
        let read = read.expect("read");
        assert_eq!(
            read.updates,
            times(&[
                (&pool[0], minute_start + 4_000),
                (&pool[1], minute_start + 3_000)
            ])
        );
        assert_eq!(
            read.before,
            times(&[(&pool[0], minute_start - 5_000)]),
            "the earlier minute's update of the batch is kept"
        );
    }
}
