//! The incremental update read (`read_updates`): deltas hold exactly the tickers written
//! since the cursor, with their current times, and every case where a delta could be wrong
//! falls back to a full read.

use std::collections::BTreeMap;

use tickgate::Ticker;
use tickgate::core::time::MINUTE_MS;
use tickgate::limits::{FEED_DELTA_MAX, WRITE_CHUNK_MEMBERS};
use tickgate::store::{FeedCursor, FeedRead, RedisStore, Updates};
use tickgate_suite::{T0_MS, World, ticker_pool};

fn times(pairs: &[(&Ticker, i64)]) -> BTreeMap<Ticker, i64> {
    pairs.iter().map(|(t, ts)| ((*t).clone(), *ts)).collect()
}

async fn read(store: &RedisStore, cursor: &FeedCursor, since_ms: i64) -> FeedRead {
    store
        .read_updates(cursor, since_ms, "epoch-a")
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
        .record_updates(&[recorded(0, T0_MS), recorded(1, T0_MS - 10 * MINUTE_MS)])
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
        .record_updates(&[recorded(0, T0_MS + 5), recorded(1, T0_MS - 20 * MINUTE_MS)])
        .await
        .expect("record");
    store
        .record_updates(&[recorded(2, T0_MS + 1), recorded(0, T0_MS + 9)])
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
        .record_updates(&[(pool[0].as_str(), T0_MS)])
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
            .record_updates(&[(t.as_str(), T0_MS + 1)])
            .await
            .expect("record");
    }
    let after = store
        .read_updates(&before.cursor, T0_MS, "epoch-b")
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
    store.record_updates(&batch).await.expect("record");
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
    store.record_updates(&batch).await.expect("record");
    let delta = read(&store, &many.cursor, T0_MS + 1).await;
    assert!(!delta.full);
    assert_eq!(delta.updates.len(), n - 1);
}
