//! State-machine property test: random sequences of record / replace / claim / release /
//! strategy claims / cleanup / intersect / dispatch / job settlement / catalog writes /
//! change-log reads / incremental update reads, applied to Redis and to the model, give
//! identical results after every step, and identical stored state after every step.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tickgate::jobs::{JobMode, JobRef};
use tickgate::store::{
    FeedCursor, Intersection, MemoryStore, RedisStore, Store, StoreError, StrategyDispatch,
    TickerDispatch,
};
use tickgate::timeframe::Timeframe;
use tickgate::{StrategyId, Ticker};

use crate::common::{DAY_MS, MINUTE_MS, T0_MS, comparable, redis_state, ticker_pool};

/// Cases (each a fresh key namespace on one server) and the longest sequence per case.
/// 256 × up to 40 steps covers every pair of operations many times over; a step plus
/// the state comparison is ~6 round trips, so the test takes a few seconds.
const CASES: u32 = 256;
const MAX_STEPS: usize = 40;
/// Strategy ids drawn: few, so operations collide on the same keys.
const STRATEGIES: u64 = 3;
const TICKERS: usize = 12;
const TIMEFRAMES: [&str; 7] = ["1m", "5m", "1h", "1d", "1w", "1q", "1y"];
/// Inputs that must be rejected identically by both stores.
const BAD_TICKERS: [&str; 3] = ["", "BAD TICKER", "caf\u{e9}"];

#[derive(Debug, Clone)]
enum Op {
    Record(Vec<(usize, i64)>),
    RecordWithBadTicker(Vec<(usize, i64)>, usize),
    RecordBadTimestamp(usize, i64),
    Replace(StrategyId, Vec<usize>),
    ReplaceWithBadTicker(StrategyId, Vec<usize>, usize),
    Claim(StrategyId, usize, i64, Vec<usize>),
    Release(StrategyId, usize, i64, Vec<usize>),
    ClaimStrategy(StrategyId, usize, i64),
    ReleaseStrategy(StrategyId, usize, i64),
    Cleanup(i64, i64, Vec<usize>),
    Intersect(StrategyId, i64, Intersection),
    Dispatch(i64, Vec<(StrategyId, usize, Vec<usize>)>),
    DispatchStrategies(i64, Vec<(StrategyId, usize, bool, Vec<usize>)>),
    CompleteJob(StrategyId, usize, i64, Option<u64>, bool),
    CatalogWrite(StrategyId, Option<u8>),
    ChangesSince(u64),
    UpdatedSince(i64),
    /// An incremental read from a cursor: epoch (none, the one every read here proposes,
    /// another), sequence number, `since`.
    ReadUpdates(Option<bool>, u64, i64),
    Reads(StrategyId),
}

/// Instants over ~40 days from T0, on a minute grid half the time so that equal
/// timestamps and exact bucket edges occur often.
fn instant() -> impl Strategy<Value = i64> {
    prop_oneof![
        (0i64..40 * 24 * 60).prop_map(|m| T0_MS + m * MINUTE_MS),
        (0i64..40 * DAY_MS).prop_map(|ms| T0_MS + ms),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0..STRATEGIES;
    let tf = 0..TIMEFRAMES.len();
    let tickers = || prop::collection::vec(0..TICKERS, 0..8);
    let updates = || prop::collection::vec((0..TICKERS, instant()), 0..8);
    prop_oneof![
        4 => updates().prop_map(Op::Record),
        1 => (updates(), 0..BAD_TICKERS.len()).prop_map(|(u, b)| Op::RecordWithBadTicker(u, b)),
        1 => (0..TICKERS, prop_oneof![Just(-1i64), Just(i64::MAX), Just(i64::MIN)])
            .prop_map(|(t, ts)| Op::RecordBadTimestamp(t, ts)),
        3 => (id.clone(), tickers()).prop_map(|(i, t)| Op::Replace(i, t)),
        1 => (id.clone(), tickers(), 0..BAD_TICKERS.len()).prop_map(|(i, t, b)| Op::ReplaceWithBadTicker(i, t, b)),
        4 => (id.clone(), tf.clone(), instant(), tickers()).prop_map(|(i, f, t, x)| Op::Claim(i, f, t, x)),
        2 => (id.clone(), tf.clone(), instant(), tickers()).prop_map(|(i, f, t, x)| Op::Release(i, f, t, x)),
        2 => (id.clone(), tf.clone(), instant()).prop_map(|(i, f, t)| Op::ClaimStrategy(i, f, t)),
        1 => (id.clone(), tf.clone(), instant()).prop_map(|(i, f, t)| Op::ReleaseStrategy(i, f, t)),
        1 => (instant(), 0i64..30 * DAY_MS, prop::collection::vec(tf.clone(), 0..3))
            .prop_map(|(t, r, f)| Op::Cleanup(t, r, f)),
        3 => (id.clone(), instant(), prop::sample::select(vec![
                Intersection::ClientSide, Intersection::SeedLua, Intersection::AdaptiveLua,
            ])).prop_map(|(i, s, m)| Op::Intersect(i, s, m)),
        1 => instant().prop_map(Op::UpdatedSince),
        3 => (prop::option::of(any::<bool>()), 0u64..20, instant())
            .prop_map(|(e, n, s)| Op::ReadUpdates(e, n, s)),
        4 => (instant(), prop::collection::vec((id.clone(), tf.clone(), tickers()), 0..4))
            .prop_map(|(t, r)| Op::Dispatch(t, r)),
        2 => (instant(), prop::collection::vec((id.clone(), tf.clone(), any::<bool>(), tickers()), 0..3))
            .prop_map(|(t, r)| Op::DispatchStrategies(t, r)),
        3 => (id.clone(), tf.clone(), instant(), prop::option::of(1u64..4), any::<bool>())
            .prop_map(|(i, f, t, n, ok)| Op::CompleteJob(i, f, t, n, ok)),
        1 => (id.clone(), prop::option::of(0u8..3)).prop_map(|(i, j)| Op::CatalogWrite(i, j)),
        1 => (0u64..12).prop_map(Op::ChangesSince),
        1 => id.prop_map(Op::Reads),
    ]
}

/// What an operation returned, in a form both stores can be compared on. Errors compare by
/// message: both stores must reject the same input with the same words.
fn outcome<T: std::fmt::Debug>(r: Result<T, StoreError>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(StoreError::Input(e)) => format!("input error: {e}"),
        Err(e) => panic!("infrastructure error in a model comparison: {e}"),
    }
}

async fn apply<S: Store>(store: &S, pool: &[Ticker], op: &Op) -> String {
    let pick = |ix: &[usize]| ix.iter().map(|&i| pool[i].clone()).collect::<Vec<_>>();
    let raw = |ix: &[usize]| {
        ix.iter()
            .map(|&i| pool[i].as_str().to_owned())
            .collect::<Vec<_>>()
    };
    let tf = |i: usize| TIMEFRAMES[i].parse::<Timeframe>().expect("valid");
    let bucket = |i: usize, t: i64| tf(i).bucket(t).expect("in range");
    match op {
        Op::Record(u) => {
            let batch: Vec<(&str, i64)> = u.iter().map(|&(i, ts)| (pool[i].as_str(), ts)).collect();
            outcome(store.record_updates(&batch).await)
        }
        Op::RecordWithBadTicker(u, bad) => {
            let mut batch: Vec<(&str, i64)> =
                u.iter().map(|&(i, ts)| (pool[i].as_str(), ts)).collect();
            batch.insert(batch.len() / 2, (BAD_TICKERS[*bad], T0_MS));
            outcome(store.record_updates(&batch).await)
        }
        Op::RecordBadTimestamp(t, ts) => {
            outcome(store.record_updates(&[(pool[*t].as_str(), *ts)]).await)
        }
        Op::Replace(id, t) => outcome(store.replace_universe(*id, &raw(t)).await),
        Op::ReplaceWithBadTicker(id, t, bad) => {
            let mut list = raw(t);
            list.push(BAD_TICKERS[*bad].to_owned());
            outcome(store.replace_universe(*id, &list).await)
        }
        Op::Claim(id, f, now, t) => {
            outcome(store.claim(*id, bucket(*f, *now), *now, &pick(t)).await)
        }
        Op::Release(id, f, now, t) => outcome(store.release(*id, bucket(*f, *now), &pick(t)).await),
        Op::ClaimStrategy(id, f, now) => {
            outcome(store.claim_strategy(*id, bucket(*f, *now), *now).await)
        }
        Op::ReleaseStrategy(id, f, now) => {
            outcome(store.release_strategy(*id, bucket(*f, *now)).await)
        }
        Op::Cleanup(now, retention, fs) => {
            let active: Vec<Timeframe> = fs.iter().map(|&i| tf(i)).collect();
            outcome(store.cleanup(*now, *retention, &active).await)
        }
        Op::Intersect(id, since, method) => outcome(store.intersect(*id, *since, *method).await),
        Op::UpdatedSince(since) => outcome(store.updated_since(*since).await),
        Op::ReadUpdates(epoch, seq, since) => {
            let cursor = FeedCursor {
                epoch: epoch.map(|ours| if ours { "ours" } else { "other" }.to_owned()),
                seq: *seq,
            };
            outcome(store.read_updates(&cursor, *since, "ours").await)
        }
        Op::Dispatch(now, requests) => {
            let requests: Vec<TickerDispatch> = requests
                .iter()
                .map(|(id, f, t)| {
                    let mut tickers = pick(t);
                    tickers.sort();
                    tickers.dedup();
                    TickerDispatch {
                        strategy: *id,
                        user_id: 100 + id,
                        bucket: bucket(*f, *now),
                        tickers,
                    }
                })
                .collect();
            outcome(store.dispatch_tickers(*now, &requests).await)
        }
        Op::DispatchStrategies(now, requests) => {
            let requests: Vec<StrategyDispatch> = requests
                .iter()
                .map(|(id, f, global, t)| {
                    let mut symbols = if *global { Vec::new() } else { pick(t) };
                    symbols.sort();
                    symbols.dedup();
                    let mode = if *global {
                        JobMode::Global
                    } else {
                        JobMode::Strategy
                    };
                    StrategyDispatch {
                        strategy: *id,
                        user_id: 7,
                        bucket: bucket(*f, *now),
                        mode,
                        symbols,
                    }
                })
                .collect();
            outcome(store.dispatch_strategies(*now, &requests).await)
        }
        Op::CompleteJob(id, f, now, seq, success) => {
            let job = JobRef {
                strategy: *id,
                bucket_start_ms: bucket(*f, *now).start_ms,
                seq: *seq,
            };
            outcome(store.complete_job(job, *success).await)
        }
        Op::CatalogWrite(id, json) => {
            let json = json.map(|v| format!(r#"{{"id":{id},"timeframe":"{}m"}}"#, v + 1));
            let expected = if id % 2 == 0 {
                Some(r#"{"id":0,"timeframe":"1m"}"#)
            } else {
                None
            };
            outcome(store.catalog_write(*id, json.as_deref(), expected).await)
        }
        Op::ChangesSince(version) => outcome(store.changes_since(*version).await),
        Op::Reads(id) => {
            let u = outcome(store.universe(*id).await);
            let n = outcome(store.universe_size(*id).await);
            let z = outcome(store.tracked_tickers().await);
            format!("{u} / {n} / {z}")
        }
    }
}

#[test]
fn redis_store_behaves_like_the_model_after_every_step() {
    let rt = tickgate_suite::runtime();
    let _ctx = rt.enter();
    let server = rt.block_on(tickgate_suite::redis());
    let pool = ticker_pool(TICKERS);
    let case = std::cell::Cell::new(0u64);
    let mut runner = TestRunner::new(Config::with_cases(CASES));
    let result = runner.run(&prop::collection::vec(op(), 1..MAX_STEPS), |ops| {
        case.set(case.get() + 1);
        rt.block_on(async {
            let redis: RedisStore =
                tickgate_suite::store(&server, &format!("model{}:", case.get())).await;
            let model = MemoryStore::new(tickgate::store::DEFAULT_MAX_UNIVERSE);
            let mut con = redis.connection();
            for (step, op) in ops.iter().enumerate() {
                let got = apply(&redis, &pool, op).await;
                let want = apply(&model, &pool, op).await;
                prop_assert_eq!(&got, &want, "step {} {:?}", step, op);
                let stored = redis_state(&mut con, redis.keys(), 0..STRATEGIES).await;
                prop_assert_eq!(
                    stored,
                    comparable(model.snapshot()),
                    "state after step {} {:?}",
                    step,
                    op
                );
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
