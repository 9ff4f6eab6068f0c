//! Streams never lose unread work (DESIGN §2.8): the jobs and results streams are trimmed
//! only below the oldest entry some consumer group still needs — pending, or not yet
//! delivered — and the workers' backlog is reported for backpressure.

use std::collections::BTreeSet;

use redis::aio::MultiplexedConnection;
use tickgate::core::calendar::Timeframe;
use tickgate::store::{
    Ack, Dispatch, RedisStore, Settlement, StreamsReport, TickerDispatch, WorkerSide,
};
use tickgate_suite::{T0_MS, World, ticker_pool};

/// Jobs dispatched: several stream nodes' worth (nodes are set to [`NODE_ENTRIES`]).
const JOBS: usize = 300;
/// Entries per stream node on this test's Redis: `XTRIM MINID ~` removes whole nodes only,
/// so small nodes make what trimming can remove predictable.
const NODE_ENTRIES: usize = 10;
/// A second group on the jobs stream (an auditor), created from the start.
const AUDIT: &str = "audit";

/// Every entry id of `stream`, in order.
async fn ids(con: &mut MultiplexedConnection, stream: &str) -> Vec<String> {
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(con)
        .await
        .expect("XRANGE");
    entries.into_iter().map(|(id, _)| id).collect()
}

/// The auditor reads `n` new entries; returns their ids.
async fn audit_read(con: &mut MultiplexedConnection, stream: &str, n: usize) -> Vec<String> {
    let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(AUDIT)
        .arg("auditor")
        .arg("COUNT")
        .arg(n)
        .arg("STREAMS")
        .arg(stream)
        .arg(">")
        .query_async(con)
        .await
        .expect("XREADGROUP");
    reply
        .keys
        .into_iter()
        .flat_map(|k| k.ids)
        .map(|e| e.id)
        .collect()
}

async fn audit_ack(con: &mut MultiplexedConnection, stream: &str, ids: &[String]) {
    let _: u64 = redis::cmd("XACK")
        .arg(stream)
        .arg(AUDIT)
        .arg(ids)
        .query_async(con)
        .await
        .expect("XACK");
}

/// Asserts every id of `needed` is still in the stream.
async fn kept(con: &mut MultiplexedConnection, stream: &str, needed: &[String], when: &str) {
    let present: BTreeSet<String> = ids(con, stream).await.into_iter().collect();
    let lost: Vec<&String> = needed.iter().filter(|id| !present.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{when}: entries still needed were trimmed: {lost:?}"
    );
}

/// One job per strategy, `JOBS` strategies, in one call.
async fn dispatch_jobs(store: &RedisStore) {
    let five: Timeframe = "5m".parse().expect("valid");
    let bucket = five.bucket(T0_MS).expect("ok");
    let requests: Vec<TickerDispatch> = (0..JOBS as u64)
        .map(|id| TickerDispatch {
            strategy: id,
            user_id: 1,
            bucket,
            tickers: ticker_pool(1),
        })
        .collect();
    store
        .dispatch_tickers(T0_MS, &requests)
        .await
        .expect("dispatch");
}

/// A report of nothing trimmed: [backlog, pending] of the jobs and of the results.
fn streams(jobs: [u64; 2], results: [u64; 2]) -> StreamsReport {
    StreamsReport {
        jobs_backlog: jobs[0],
        jobs_pending: jobs[1],
        results_backlog: results[0],
        results_pending: results[1],
        trimmed: 0,
    }
}

/// The workers take every job and answer it (acknowledging it).
async fn work_all(store: &RedisStore) {
    let taken = store.take_jobs("w", JOBS).await.expect("take");
    assert_eq!(taken.len(), JOBS);
    // Taken, not yet answered: the whole backlog is pending, none lags.
    let report = store.trim_streams().await.expect("trim");
    let pending = (report.jobs_backlog, report.jobs_pending);
    assert_eq!(pending, (JOBS as u64, JOBS as u64), "jobs taken, unacked");
    let answers: Vec<(String, String)> = taken
        .iter()
        .map(|e| {
            (
                e.id.clone(),
                r#"{"job_id":"x","strategy_id":0,"success":true}"#.to_owned(),
            )
        })
        .collect();
    store.finish_jobs(&answers).await.expect("finish");
}

#[tokio::test]
async fn streams_are_trimmed_only_below_what_every_group_has_acknowledged() {
    let world = World::builder("trim:").dedicated().build().await;
    let store = world.store().await;
    let mut con = world.connection().await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("stream-node-max-entries")
        .arg(NODE_ENTRIES)
        .query_async(&mut con)
        .await
        .expect("CONFIG SET");
    let (jobs, results) = (world.keys().jobs(), world.keys().results());
    store.ensure_groups().await.expect("groups");
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&jobs)
        .arg(AUDIT)
        .arg("0")
        .query_async(&mut con)
        .await
        .expect("XGROUP CREATE");
    dispatch_jobs(&store).await;
    let all = ids(&mut con, &jobs).await;
    assert_eq!(all.len(), JOBS);

    // Unread by the workers (lagging): nothing trimmed, all of it their backlog.
    let report = store.trim_streams().await.expect("trim");
    assert_eq!(report, streams([JOBS as u64, 0], [0, 0]));
    kept(&mut con, &jobs, &all, "workers lagging").await;

    // The workers acknowledge everything, but the auditor has read nothing; and the
    // results are unread by the engines.
    work_all(&store).await;
    let report = store.trim_streams().await.expect("trim");
    assert_eq!(report, streams([0, 0], [JOBS as u64, 0]));
    kept(&mut con, &jobs, &all, "auditor lagging").await;
    assert_eq!(
        ids(&mut con, &results).await.len(),
        JOBS,
        "unread results trimmed"
    );

    // The auditor reads 200 and acknowledges the first 100: from the 101st on, it still
    // needs every entry (pending, or not yet delivered).
    let read = audit_read(&mut con, &jobs, 200).await;
    audit_ack(&mut con, &jobs, &read[..100]).await;
    let report = store.trim_streams().await.expect("trim");
    kept(&mut con, &jobs, &all[100..], "auditor pending").await;
    let left = ids(&mut con, &jobs).await.len();
    assert!(
        left <= JOBS - 100 + NODE_ENTRIES,
        "{left} left: acknowledged kept"
    );
    assert_eq!(report.trimmed as usize, JOBS - left);

    // Everything acknowledged by every group: all but the last node may go.
    audit_ack(&mut con, &jobs, &read[100..]).await;
    let rest = audit_read(&mut con, &jobs, JOBS).await;
    audit_ack(&mut con, &jobs, &rest).await;
    let entries = store.read_results("e", JOBS, false).await.expect("read");
    // Read and not yet acknowledged: every result is pending (the engines' backlog).
    let report = store.trim_streams().await.expect("trim");
    let pending = (report.results_backlog, report.results_pending);
    assert_eq!(pending, (JOBS as u64, JOBS as u64), "results read, unacked");
    let acks: Vec<Ack> = entries
        .into_iter()
        .map(|entry| Ack {
            entry,
            dead_reason: None,
        })
        .collect();
    store.ack_results(&acks).await.expect("ack");
    store.trim_streams().await.expect("trim");
    for stream in [&jobs, &results] {
        let left = ids(&mut con, stream).await.len();
        assert!(
            left <= NODE_ENTRIES,
            "{stream}: {left} acknowledged entries kept"
        );
    }
}
