//! Claims of the production dispatch script under concurrency, trigger-key expiry, the
//! claim lifecycle (repeated, released, next-bucket and stale claims) on both stores, and
//! bad input that must leave every stored value as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tickgate::core::calendar::{Bucket, Timeframe};
use tickgate::core::jobs::{Job, JobMode, JobRef};
use tickgate::core::ticker::MAX_TIMESTAMP_MS;
use tickgate::core::time::{HOUR_MS, MINUTE_MS, SECOND_MS};
use tickgate::limits::{DEFAULT_MAX_UNIVERSE, DEFAULT_TRIGGER_GRACE_MS};
use tickgate::store::{
    Dispatch, Dispatched, FeedCursor, JobStatus, Maintenance, ModelStore, RedisStore, Settled,
    Settlement, StoreError, StrategyDispatch, TickerDispatch, Universes, Updates, Verdict,
};
use tickgate::{InputError, StrategyId, Ticker};
use tickgate_suite::{T0_MS, World, ticker_pool};

use super::state::redis_state;

/// Concurrent dispatchers, as in the issue: more than the cores, so scripts really
/// interleave on the server.
const DISPATCHERS: usize = 8;
const ROUNDS: i64 = 20;
const TICKERS: usize = 500;
/// Strategies every dispatcher asks for in one call (one `dispatch.lua` group).
const STRATEGIES: StrategyId = 3;
/// Each dispatcher asks for a window of this many tickers, starting `WINDOW_STEP` after the
/// previous dispatcher's: neighbours overlap on most of their tickers, and together the
/// windows cover the pool.
const WINDOW: usize = 300;
const WINDOW_STEP: usize = 61;

fn tf(s: &str) -> Timeframe {
    s.parse().expect("valid")
}

/// Dispatcher `i`'s request for `strategy` in `bucket`: its window of the pool, sorted.
fn request(i: usize, strategy: StrategyId, bucket: Bucket, pool: &[Ticker]) -> TickerDispatch {
    let mut tickers: Vec<Ticker> = (0..WINDOW)
        .map(|k| pool[(i * WINDOW_STEP + k + strategy as usize * 7) % pool.len()].clone())
        .collect();
    tickers.sort();
    TickerDispatch {
        strategy,
        user_id: 1,
        bucket,
        tickers,
    }
}

/// Every job in the jobs stream, by job id.
async fn jobs_by_id(world: &World) -> BTreeMap<String, Job> {
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(world.keys().jobs())
        .arg("-")
        .arg("+")
        .query_async(&mut world.connection().await)
        .await
        .expect("XRANGE");
    let mut jobs = BTreeMap::new();
    for (_, fields) in entries {
        let job: Job = serde_json::from_str(&fields[0].1).expect("job JSON");
        assert!(
            jobs.insert(job.job_id.clone(), job).is_none(),
            "a job id twice"
        );
    }
    jobs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_dispatchers_claim_each_ticker_once_and_every_claim_has_its_job() {
    let world = World::new("race:").await;
    let pool = ticker_pool(TICKERS);
    // Separate connections, as separate engine instances would have.
    let mut stores = Vec::new();
    for _ in 0..DISPATCHERS {
        stores.push(Arc::new(world.store().await));
    }
    let five = tf("5m");
    let mut claims: Vec<Dispatched> = Vec::new();
    for round in 0..ROUNDS {
        // Two rounds per bucket: the second finds most tickers claimed already.
        let now = T0_MS + round * 150 * SECOND_MS;
        let bucket = five.bucket(now).expect("in range");
        let mut tasks = tokio::task::JoinSet::new();
        for (i, store) in stores.iter().enumerate() {
            let store = store.clone();
            let requests: Vec<TickerDispatch> = (0..STRATEGIES)
                .map(|s| request(i, s, bucket, &pool))
                .collect();
            tasks.spawn(async move { store.dispatch_tickers(now, &requests).await });
        }
        let mut claimed: BTreeMap<StrategyId, Vec<Ticker>> = BTreeMap::new();
        for answer in tasks.join_all().await {
            for d in answer.expect("dispatch").into_iter().flatten().flatten() {
                assert_eq!(d.job.bucket_start_ms, bucket.start_ms);
                claimed
                    .entry(d.job.strategy)
                    .or_default()
                    .extend(d.tickers.iter().cloned());
                claims.push(d);
            }
        }
        for s in 0..STRATEGIES {
            let got = claimed.remove(&s).unwrap_or_default();
            let unique: BTreeSet<&Ticker> = got.iter().collect();
            assert_eq!(
                got.len(),
                unique.len(),
                "round {round}: strategy {s} claimed a ticker twice"
            );
            if now == bucket.start_ms {
                let wanted: BTreeSet<Ticker> = (0..DISPATCHERS)
                    .flat_map(|i| request(i, s, bucket, &pool).tickers)
                    .collect();
                assert_eq!(
                    unique.len(),
                    wanted.len(),
                    "round {round}: a ticker was never claimed"
                );
            } else {
                assert!(
                    unique.is_empty(),
                    "round {round}: a ticker was claimed again in its bucket"
                );
            }
        }
    }
    // Every claim has exactly its job in the stream, and the stream holds nothing else.
    let jobs = jobs_by_id(&world).await;
    assert_eq!(jobs.len(), claims.len(), "one job per claim, no other job");
    for d in &claims {
        let job = &jobs[&d.job.id()];
        let symbols: Vec<&str> = d.tickers.iter().map(Ticker::as_str).collect();
        assert_eq!(job.mode, JobMode::PerTicker);
        assert_eq!(
            job.symbols.as_deref().unwrap_or_default(),
            symbols,
            "{}",
            job.job_id
        );
    }
    // Every (strategy, ticker, bucket) claimed once over the whole run.
    let all: BTreeSet<(StrategyId, i64, &Ticker)> = claims
        .iter()
        .flat_map(|d| {
            d.tickers
                .iter()
                .map(|t| (d.job.strategy, d.job.bucket_start_ms, t))
        })
        .collect();
    assert_eq!(
        all.len(),
        claims.iter().map(|d| d.tickers.len()).sum::<usize>()
    );
}

async fn pttl(world: &World, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut world.connection().await)
        .await
        .expect("PTTL")
}

fn one_ticker(id: StrategyId, bucket: Bucket) -> TickerDispatch {
    TickerDispatch {
        strategy: id,
        user_id: 1,
        bucket,
        tickers: ticker_pool(1),
    }
}

#[tokio::test]
async fn trigger_state_expires_after_its_bucket_plus_grace() {
    let world = World::new("ttl:").await;
    let store = world.store().await;
    let day = tf("1d");
    let now = T0_MS; // 09:30 ET
    let bucket = day.bucket(now).expect("in range");
    store
        .dispatch_tickers(now, &[one_ticker(1, bucket)])
        .await
        .expect("dispatch");
    let run = StrategyDispatch {
        strategy: 1,
        user_id: 1,
        bucket,
        mode: JobMode::Global,
        symbols: Vec::new(),
    };
    let job = store
        .dispatch_strategies(now, &[run])
        .await
        .expect("dispatch");
    assert!(matches!(job[0], Ok(Some(_))), "{job:?}");
    for key in [world.keys().triggers(1), world.keys().strategy_run(1)] {
        let pttl = pttl(&world, &key).await;
        let want = bucket.end_ms - now + DEFAULT_TRIGGER_GRACE_MS;
        // Redis counts down in real time between the dispatch and this read.
        assert!(
            (want - 5 * SECOND_MS..=want).contains(&pttl),
            "{key}: PTTL {pttl}, want ~{want}"
        );
    }
    // A claim for an older, still open bucket (the timeframe got longer) never shortens it.
    let week = tf("1w");
    let later = now + 6 * HOUR_MS;
    let requests = [
        one_ticker(1, day.bucket(later).expect("ok")),
        one_ticker(1, week.bucket(later).expect("ok")),
    ];
    for r in requests {
        store.dispatch_tickers(later, &[r]).await.expect("dispatch");
    }
    let pttl = pttl(&world, &world.keys().triggers(1)).await;
    let week_end = week.bucket(later).expect("ok").end_ms;
    assert!(
        pttl > week_end - later,
        "PTTL {pttl} shorter than the week bucket"
    );
}

/// Dispatches `tickers` of strategy 7 in `b`; returns what it newly claimed and its job.
async fn dispatch<S: Dispatch>(store: &S, b: Bucket, tickers: &[Ticker]) -> Option<Dispatched> {
    let request = TickerDispatch {
        strategy: 7,
        user_id: 1,
        bucket: b,
        tickers: tickers.to_vec(),
    };
    store
        .dispatch_tickers(b.start_ms, &[request])
        .await
        .expect("dispatch")
        .remove(0)
        .expect("no damaged key")
}

async fn fail<S: Settlement>(store: &S, job: JobRef) -> u64 {
    settle(store, job, Verdict::Failed).await.released
}

async fn settle<S: Settlement>(store: &S, job: JobRef, verdict: Verdict) -> Settled {
    store
        .complete_jobs(&[(job, verdict)])
        .await
        .expect("complete")
        .remove(0)
        .expect("no damaged key")
}

/// One per-ticker scenario, run on both stores: repeated, released, next-bucket and stale
/// claims; a failed job releases exactly its claims still held for its bucket.
async fn ticker_lifecycle<S: Dispatch + Settlement>(store: &S) {
    let five = tf("5m");
    let t = ticker_pool(3);
    let b1 = five.bucket(T0_MS).expect("ok");
    let b2 = five.bucket(b1.end_ms).expect("ok");
    let first = dispatch(store, b1, &t[..1]).await.expect("first claim");
    assert_eq!(first.tickers, t[..1], "first claim takes it");
    let rest = dispatch(store, b1, &t).await.expect("the others");
    assert_eq!(rest.tickers, t[1..], "already claimed tickers are dropped");
    assert!(
        dispatch(store, b1, &t).await.is_none(),
        "same bucket: nothing new, no job"
    );
    assert_eq!(
        fail(store, first.job).await,
        1,
        "a failed job releases its claim"
    );
    assert_eq!(
        fail(store, first.job).await,
        0,
        "settling twice releases nothing"
    );
    let again = dispatch(store, b1, &t).await.expect("released");
    assert_eq!(
        again.tickers,
        t[..1],
        "a released ticker is claimable again"
    );
    assert_ne!(again.job, first.job, "in a new job");
    let next = dispatch(store, b2, &t).await.expect("next bucket");
    assert_eq!(next.tickers, t, "the next bucket takes all");
    assert!(
        dispatch(store, b1, &t).await.is_none(),
        "a lagging claim for b1 is stale"
    );
    assert_eq!(
        fail(store, rest.job).await,
        0,
        "an old bucket's failure releases nothing newer"
    );
    assert_eq!(fail(store, next.job).await, 3);
}

/// The whole-strategy scenario, on both stores.
async fn whole_lifecycle<S: Dispatch + Settlement>(store: &S) {
    let five = tf("5m");
    let b1 = five.bucket(T0_MS).expect("ok");
    let b2 = five.bucket(b1.end_ms).expect("ok");
    let run = |b: Bucket| async move {
        let request = StrategyDispatch {
            strategy: 8,
            user_id: 1,
            bucket: b,
            mode: JobMode::Strategy,
            symbols: ticker_pool(2),
        };
        store
            .dispatch_strategies(b.start_ms, &[request])
            .await
            .expect("dispatch")
            .remove(0)
            .expect("no damaged key")
    };
    let job = run(b1).await.expect("first run");
    assert!(run(b1).await.is_none(), "once per bucket");
    assert_eq!(
        fail(store, job).await,
        1,
        "a failed run releases its bucket"
    );
    assert!(run(b1).await.is_some(), "and runs again");
    let next = run(b2).await.expect("next bucket");
    assert!(run(b1).await.is_none(), "stale");
    assert_eq!(
        fail(store, job).await,
        0,
        "an old bucket's failure releases nothing"
    );
    let ok = settle(store, next, Verdict::Succeeded).await;
    assert_eq!((ok.status, ok.released), (JobStatus::Open, 0));
    assert!(run(b2).await.is_none(), "a success keeps the bucket run");
}

#[tokio::test]
async fn stale_and_repeated_claims_claim_nothing_and_failures_reopen() {
    let world = World::new("stale:").await;
    let redis = world.store().await;
    ticker_lifecycle(&redis).await;
    whole_lifecycle(&redis).await;
    let model = ModelStore::new(DEFAULT_MAX_UNIVERSE);
    ticker_lifecycle(&model).await;
    whole_lifecycle(&model).await;
}

/// The input error of a rejected call; anything else fails the test.
fn input<T: std::fmt::Debug>(r: Result<T, StoreError>) -> InputError {
    match r {
        Err(StoreError::Input(e)) => e,
        other => panic!("expected an input error, got {other:?}"),
    }
}

/// A dispatch request of strategy 2 for the given bucket edges.
fn request_in(start_ms: i64, end_ms: i64) -> TickerDispatch {
    one_ticker(2, Bucket { start_ms, end_ms })
}

/// Every call with a bad ticker or timestamp, checked one by one.
async fn reject_everything_bad(store: &RedisStore) {
    let long = "L".repeat(65);
    for bad in ["", "  ", "BRK B", "caf\u{e9}", "A\nB", long.as_str()] {
        let e = input(
            store
                .record_updates(T0_MS, &[("MSFT", T0_MS), (bad, T0_MS)])
                .await,
        );
        assert!(matches!(e, InputError::Ticker { .. }), "{e}");
        let e = input(store.replace_universe(1, &["MSFT", bad]).await);
        assert!(matches!(e, InputError::Ticker { .. }), "{e}");
    }
    for ts in [-1, i64::MIN, i64::MAX, MAX_TIMESTAMP_MS] {
        let e = input(store.record_updates(T0_MS, &[("MSFT", ts)]).await);
        assert_eq!(e, InputError::Timestamp { ts_ms: ts });
        assert!(e.to_string().contains(&ts.to_string()));
        input(
            store
                .read_updates(&FeedCursor::default(), ts, T0_MS, "e")
                .await,
        );
        input(
            store
                .read_updates(&FeedCursor::default(), T0_MS, ts, "e")
                .await,
        );
        input(store.cleanup(ts, 0, &[]).await);
        input(
            store
                .dispatch_tickers(T0_MS, &[request_in(ts, T0_MS)])
                .await,
        );
        input(
            store
                .dispatch_tickers(ts, &[request_in(T0_MS, T0_MS + 1)])
                .await,
        );
    }
    let e = input(store.replace_universe(1, &[] as &[&str]).await);
    assert_eq!(e, InputError::EmptyUniverse { strategy: 1 });
    let oversized: Vec<String> = (0..=DEFAULT_MAX_UNIVERSE)
        .map(|i| format!("S{i}"))
        .collect();
    let e = input(store.replace_universe(1, &oversized).await);
    let size = DEFAULT_MAX_UNIVERSE + 1;
    let max = DEFAULT_MAX_UNIVERSE;
    assert_eq!(
        e,
        InputError::UniverseTooLarge {
            strategy: 1,
            size,
            max
        }
    );
    // An empty bucket, alone or behind a valid request: the whole batch is rejected.
    input(
        store
            .dispatch_tickers(T0_MS, &[request_in(T0_MS, T0_MS)])
            .await,
    );
    let batch = [
        request_in(T0_MS, T0_MS + MINUTE_MS),
        request_in(T0_MS, T0_MS),
    ];
    input(store.dispatch_tickers(T0_MS, &batch).await);
}

#[tokio::test]
async fn bad_input_is_a_typed_error_and_writes_nothing() {
    let world = World::new("bad:").await;
    let store = world.store().await;
    store
        .replace_universe(1, &["AAPL", "BRK.B", "X:BTCUSD"])
        .await
        .expect("universe");
    store
        .record_updates(T0_MS, &[("AAPL", T0_MS)])
        .await
        .expect("update");
    let b = tf("1d").bucket(T0_MS).expect("ok");
    store
        .dispatch_tickers(T0_MS, &[one_ticker(1, b)])
        .await
        .expect("dispatch");
    let mut con = world.connection().await;
    let before = redis_state(&mut con, world.keys(), [1, 2]).await;

    reject_everything_bad(&store).await;

    let after = redis_state(&mut con, world.keys(), [1, 2]).await;
    assert_eq!(after, before, "a rejected input changed Redis");
    // Exactly the maximum is allowed.
    let largest: Vec<String> = (0..DEFAULT_MAX_UNIVERSE).map(|i| format!("S{i}")).collect();
    let size = store.replace_universe(1, &largest).await.expect("max size");
    assert_eq!(size, DEFAULT_MAX_UNIVERSE);
}

/// Taking over from the original on the same Redis (DESIGN §3): its `STRAT:<id>:LAST`
/// hashes have no `# bucket` field, and a ticker it already dispatched in the open bucket
/// must not be dispatched again — also past the first HMGET's 998 tickers.
#[tokio::test]
async fn the_originals_trigger_hash_is_honoured_for_every_ticker() {
    let world = World::new("takeover:").await;
    let store = world.store().await;
    let bucket = tf("5m").bucket(T0_MS).expect("in range");
    let mut tickers = ticker_pool(1_200);
    tickers.sort();
    let mut written = redis::cmd("HSET");
    written.arg(world.keys().triggers(7));
    for t in &tickers {
        written.arg(t.as_str()).arg(bucket.start_ms);
    }
    let _: () = written
        .query_async(&mut world.connection().await)
        .await
        .expect("the original's HMSET");
    let got = dispatch(&store, bucket, &tickers).await;
    assert_eq!(
        got.map(|d| d.tickers.len()),
        None,
        "tickers the original already dispatched in this bucket were claimed again"
    );
    assert!(jobs_by_id(&world).await.is_empty(), "a job was enqueued");
}

/// A claim never exists without its job (DESIGN §2.3 step 5): when the job cannot be
/// enqueued (here the jobs stream's key is damaged), nothing is claimed either.
#[tokio::test]
async fn no_claim_is_written_when_its_job_cannot_be() {
    let world = World::new("nojob:").await;
    let store = world.store().await;
    let mut con = world.connection().await;
    let _: () = redis::cmd("SET")
        .arg(world.keys().jobs())
        .arg("not a stream")
        .query_async(&mut con)
        .await
        .expect("SET");
    let bucket = tf("5m").bucket(T0_MS).expect("in range");
    let request = TickerDispatch {
        strategy: 7,
        user_id: 1,
        bucket,
        tickers: ticker_pool(3)
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    let result = store.dispatch_tickers(T0_MS, &[request]).await;
    assert!(
        matches!(result, Err(StoreError::Script { .. })),
        "{result:?}"
    );
    let claims: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(world.keys().triggers(7))
        .query_async(&mut con)
        .await
        .expect("HGETALL");
    assert!(claims.is_empty(), "claims without a job: {claims:?}");
}
