//! State-machine property test: random sequences of every store operation — updates and
//! their reads, universes, intersections, cleanup, dispatch (per ticker and whole), job
//! settlement (both verdicts, for jobs never issued, from older buckets, repeated), the
//! workers' side, results read, acknowledged and dead-lettered, the engine's whole
//! settlement of a batch, catalog writes and change-log reads — applied to Redis and to the
//! model give identical results, and identical stored state (streams and consumer groups
//! included) after every step.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tickgate::core::calendar::Timeframe;
use tickgate::core::catalog::CatalogEntry;
use tickgate::core::jobs::{Job, JobMode, JobRef, parse_result};
use tickgate::core::time::{DAY_MS, MINUTE_MS};
use tickgate::limits::DEFAULT_MAX_UNIVERSE;
use tickgate::store::{
    Ack, Catalog, Dispatch, FeedCursor, Intersection, Maintenance, ModelStore, Settlement,
    StoreError, StrategyDispatch, StreamEntry, TickerDispatch, Universes, Updates, Verdict,
    WorkerSide,
};
use tickgate::{StrategyId, Ticker};
use tickgate_suite::{T0_MS, World, ticker_pool};

use super::state::{comparable, redis_state};

/// Cases (each a fresh key namespace on one server) and the longest sequence per case.
/// 256 × up to 40 steps covers every pair of operations many times over; a step plus the
/// state comparison is about a dozen round trips, so the test takes seconds.
const CASES: u32 = 256;
const MAX_STEPS: usize = 40;
/// Strategy ids drawn: few, so operations collide on the same keys.
const STRATEGIES: u64 = 3;
const TICKERS: usize = 12;
const TIMEFRAMES: [&str; 7] = ["1m", "5m", "1h", "1d", "1w", "1q", "1y"];
/// Inputs that must be rejected identically by both stores.
const BAD_TICKERS: [&str; 3] = ["", "BAD TICKER", "caf\u{e9}"];
/// Engine instances reading results: two, so pending entries belong to someone.
const CONSUMERS: [&str; 2] = ["engine-a", "engine-b"];

/// How a test worker answers a job.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Succeeded,
    Failed,
    /// Not JSON: dead-lettered by the engine.
    Garbage,
    /// A result naming another strategy than its job id: dead-lettered.
    WrongStrategy,
}

#[derive(Debug, Clone)]
enum Op {
    /// Updates recorded at the latest of their stamps (the feed's clock).
    Record(Vec<(usize, i64)>),
    /// Updates recorded at a given time: stamps more than `max_future_ms` after it reject
    /// the batch.
    RecordAt(i64, Vec<(usize, i64)>),
    RecordWithBadTicker(Vec<(usize, i64)>, usize),
    RecordBadTimestamp(usize, i64),
    Replace(StrategyId, Vec<usize>),
    ReplaceWithBadTicker(StrategyId, Vec<usize>, usize),
    Cleanup(i64, i64, Vec<usize>),
    Intersect(StrategyId, i64, Intersection),
    /// A full read of the update set (no cursor) from `since`.
    FullRead(i64),
    /// An incremental read from a cursor: epoch (none, the one every read here proposes,
    /// another), sequence number, `since`.
    ReadUpdates(Option<bool>, u64, i64),
    Dispatch(i64, Vec<(StrategyId, usize, Vec<usize>)>),
    /// Per-ticker dispatches in the bucket before the one the last dispatch's time falls in
    /// (a closing pass after a newer bucket's claim: the replaced trigger hash).
    DispatchPrevious(Vec<(StrategyId, usize, Vec<usize>)>),
    DispatchStrategies(i64, Vec<(StrategyId, usize, bool, Vec<usize>)>),
    /// Settles jobs named by (strategy, timeframe, instant, job number, success): mostly
    /// jobs never issued.
    CompleteJobs(Vec<(StrategyId, usize, i64, Option<u64>, bool)>),
    /// Settles jobs this case dispatched, picked by index (mod their count): repeats, and
    /// jobs of buckets older than the strategy's newest.
    CompleteDispatched(Vec<(usize, bool)>),
    /// A worker takes up to n jobs and answers each.
    Work(usize, Vec<Answer>),
    /// A consumer reads results (up to n; its pending ones, or new ones).
    ReadResults(usize, usize, bool),
    /// Acknowledges results read earlier, picked by index, some into the dead letters.
    Ack(Vec<(usize, bool)>),
    /// A consumer takes over up to n results pending with the others (with `true`, as seen
    /// one delivery earlier, so none may be taken), forgetting those left empty.
    TakeOver(usize, usize, bool),
    /// What the engine does with a batch of results: read, settle the jobs, acknowledge
    /// (malformed ones dead-lettered).
    Settle(usize, usize),
    CatalogWrite(StrategyId, Option<u8>),
    ChangesSince(u64),
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

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        4 => Just(Answer::Succeeded),
        3 => Just(Answer::Failed),
        1 => Just(Answer::Garbage),
        1 => Just(Answer::WrongStrategy),
    ]
}

/// Operations on updates, universes, cleanup and the catalog.
fn data_op() -> impl Strategy<Value = Op> {
    let id = 0..STRATEGIES;
    let tickers = || prop::collection::vec(0..TICKERS, 0..8);
    let updates = || prop::collection::vec((0..TICKERS, instant()), 0..8);
    let bad = 0..BAD_TICKERS.len();
    prop_oneof![
        4 => updates().prop_map(Op::Record),
        1 => (instant(), updates()).prop_map(|(now, u)| Op::RecordAt(now, u)),
        1 => (updates(), bad.clone()).prop_map(|(u, b)| Op::RecordWithBadTicker(u, b)),
        1 => (0..TICKERS, prop_oneof![Just(-1i64), Just(i64::MAX), Just(i64::MIN)])
            .prop_map(|(t, ts)| Op::RecordBadTimestamp(t, ts)),
        3 => (id.clone(), tickers()).prop_map(|(i, t)| Op::Replace(i, t)),
        1 => (id.clone(), tickers(), bad).prop_map(|(i, t, b)| Op::ReplaceWithBadTicker(i, t, b)),
        1 => (instant(), 0i64..30 * DAY_MS, prop::collection::vec(0..TIMEFRAMES.len(), 0..3))
            .prop_map(|(t, r, f)| Op::Cleanup(t, r, f)),
        3 => (id.clone(), instant(), prop::sample::select(vec![
                Intersection::ClientSide, Intersection::AdaptiveLua,
            ])).prop_map(|(i, s, m)| Op::Intersect(i, s, m)),
        1 => instant().prop_map(Op::FullRead),
        3 => (prop::option::of(any::<bool>()), 0u64..20, instant())
            .prop_map(|(e, n, s)| Op::ReadUpdates(e, n, s)),
        1 => (id.clone(), prop::option::of(0u8..3)).prop_map(|(i, j)| Op::CatalogWrite(i, j)),
        1 => (0u64..12).prop_map(Op::ChangesSince),
        1 => id.prop_map(Op::Reads),
    ]
}

/// Operations on dispatch, the workers' side and settlement.
fn stream_op() -> impl Strategy<Value = Op> {
    let id = 0..STRATEGIES;
    let tf = 0..TIMEFRAMES.len();
    let tickers = || prop::collection::vec(0..TICKERS, 0..8);
    let consumer = 0..CONSUMERS.len();
    prop_oneof![
        5 => (instant(), prop::collection::vec((id.clone(), tf.clone(), tickers()), 0..4))
            .prop_map(|(t, r)| Op::Dispatch(t, r)),
        2 => prop::collection::vec((id.clone(), tf.clone(), tickers()), 1..3)
            .prop_map(Op::DispatchPrevious),
        2 => (instant(), prop::collection::vec((id.clone(), tf.clone(), any::<bool>(), tickers()), 0..3))
            .prop_map(|(t, r)| Op::DispatchStrategies(t, r)),
        1 => prop::collection::vec((id, tf, instant(), prop::option::of(1u64..4), any::<bool>()), 1..3)
            .prop_map(Op::CompleteJobs),
        3 => prop::collection::vec((any::<usize>(), any::<bool>()), 1..4)
            .prop_map(Op::CompleteDispatched),
        3 => (1usize..6, prop::collection::vec(answer(), 6)).prop_map(|(n, a)| Op::Work(n, a)),
        2 => (consumer.clone(), 1usize..5, any::<bool>())
            .prop_map(|(c, n, p)| Op::ReadResults(c, n, p)),
        2 => prop::collection::vec((any::<usize>(), any::<bool>()), 1..3).prop_map(Op::Ack),
        2 => (consumer.clone(), 1usize..5).prop_map(|(c, n)| Op::Settle(c, n)),
        2 => (consumer, 1usize..5, prop::bool::weighted(0.2))
            .prop_map(|(c, n, stale)| Op::TakeOver(c, n, stale)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![data_op(), stream_op()]
}

/// What one store handed out so far, for operations that refer back to it: the jobs it
/// dispatched and the result entries it delivered (entry ids are the store's own).
struct Seen {
    jobs: Vec<JobRef>,
    results: Vec<StreamEntry>,
    /// The time of the last per-ticker dispatch (T0 before any).
    dispatched_at_ms: i64,
}

impl Seen {
    fn new() -> Seen {
        Seen {
            jobs: Vec::new(),
            results: Vec::new(),
            dispatched_at_ms: T0_MS,
        }
    }
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

fn timeframe(i: usize) -> Timeframe {
    TIMEFRAMES[i].parse().expect("valid")
}

fn bucket(i: usize, t: i64) -> tickgate::Bucket {
    timeframe(i).bucket(t).expect("in range")
}

fn pick(pool: &[Ticker], ix: &[usize]) -> Vec<Ticker> {
    let mut tickers: Vec<Ticker> = ix.iter().map(|&i| pool[i].clone()).collect();
    tickers.sort();
    tickers.dedup();
    tickers
}

fn names(pool: &[Ticker], ix: &[usize]) -> Vec<String> {
    ix.iter().map(|&i| pool[i].as_str().to_owned()).collect()
}

trait TestStore:
    Updates + Universes + Dispatch + Settlement + Catalog + Maintenance + WorkerSide
{
}
impl<S: Updates + Universes + Dispatch + Settlement + Catalog + Maintenance + WorkerSide> TestStore
    for S
{
}

async fn apply<S: TestStore>(store: &S, pool: &[Ticker], seen: &mut Seen, op: &Op) -> String {
    match op {
        Op::Dispatch(..) | Op::DispatchPrevious(..) | Op::DispatchStrategies(..) => {
            dispatch(store, pool, seen, op).await
        }
        Op::CompleteJobs(..)
        | Op::CompleteDispatched(..)
        | Op::Work(..)
        | Op::ReadResults(..)
        | Op::Ack(..)
        | Op::TakeOver(..)
        | Op::Settle(..) => settle(store, seen, op).await,
        _ => data(store, pool, op).await,
    }
}

async fn data<S: TestStore>(store: &S, pool: &[Ticker], op: &Op) -> String {
    let batch = |u: &[(usize, i64)]| -> Vec<(&str, i64)> {
        u.iter().map(|&(i, ts)| (pool[i].as_str(), ts)).collect()
    };
    match op {
        Op::Record(u) => {
            let now = u.iter().map(|(_, ts)| *ts).max().unwrap_or(T0_MS);
            outcome(store.record_updates(now, &batch(u)).await)
        }
        Op::RecordAt(now, u) => outcome(store.record_updates(*now, &batch(u)).await),
        Op::RecordWithBadTicker(u, bad) => {
            let mut batch = batch(u);
            batch.insert(batch.len() / 2, (BAD_TICKERS[*bad], T0_MS));
            let now = batch.iter().map(|(_, ts)| *ts).max().unwrap_or(T0_MS);
            outcome(store.record_updates(now, &batch).await)
        }
        Op::RecordBadTimestamp(t, ts) => outcome(
            store
                .record_updates(T0_MS, &[(pool[*t].as_str(), *ts)])
                .await,
        ),
        Op::Replace(id, t) => outcome(store.replace_universe(*id, &names(pool, t)).await),
        Op::ReplaceWithBadTicker(id, t, bad) => {
            let mut list = names(pool, t);
            list.push(BAD_TICKERS[*bad].to_owned());
            outcome(store.replace_universe(*id, &list).await)
        }
        Op::Cleanup(now, retention, fs) => {
            let active: Vec<Timeframe> = fs.iter().map(|&i| timeframe(i)).collect();
            outcome(store.cleanup(*now, *retention, &active).await)
        }
        Op::Intersect(id, since, method) => outcome(store.intersect(*id, *since, *method).await),
        Op::FullRead(since) => outcome(
            store
                .read_updates(&FeedCursor::default(), *since, *since, "ours")
                .await,
        ),
        Op::ReadUpdates(epoch, seq, since) => {
            let cursor = FeedCursor {
                epoch: epoch.map(|ours| if ours { "ours" } else { "other" }.to_owned()),
                seq: *seq,
            };
            // The recent window from the same time: deltas hold both parts.
            outcome(store.read_updates(&cursor, *since, *since, "ours").await)
        }
        Op::CatalogWrite(id, json) => {
            let entry = |id, tf: &str| CatalogEntry::new(id, 0, "", tf, None).to_json();
            let json = json.map(|v| entry(*id, &format!("{}m", v + 1)));
            // Even ids write only over exactly this entry (compare and swap).
            let expected = (id % 2 == 0).then(|| entry(0, "1m"));
            outcome(
                store
                    .catalog_write(*id, json.as_deref(), expected.as_deref())
                    .await,
            )
        }
        Op::ChangesSince(version) => outcome(store.changes_since(*version).await),
        Op::Reads(id) => {
            let u = outcome(store.universes(&[*id, (id + 1) % STRATEGIES]).await);
            let z = outcome(store.tracked_tickers().await);
            let all = outcome(store.catalog_all().await);
            let get = outcome(store.catalog_get(&[*id]).await);
            format!("{u} / {z} / {all} / {get}")
        }
        other => unreachable!("not a data operation: {other:?}"),
    }
}

async fn dispatch<S: TestStore>(store: &S, pool: &[Ticker], seen: &mut Seen, op: &Op) -> String {
    match op {
        Op::Dispatch(..) | Op::DispatchPrevious(..) => {
            let (now, requests, back) = match op {
                Op::Dispatch(now, requests) => (*now, requests, false),
                Op::DispatchPrevious(requests) => (seen.dispatched_at_ms, requests, true),
                _ => unreachable!(),
            };
            let requests: Vec<TickerDispatch> = requests
                .iter()
                .map(|(id, f, t)| {
                    let current = bucket(*f, now);
                    TickerDispatch {
                        strategy: *id,
                        user_id: 100 + id,
                        bucket: if back {
                            bucket(*f, current.start_ms - 1)
                        } else {
                            current
                        },
                        tickers: pick(pool, t),
                    }
                })
                .collect();
            seen.dispatched_at_ms = now;
            let answer = store.dispatch_tickers(now, &requests).await;
            if let Ok(dispatched) = &answer {
                seen.jobs
                    .extend(dispatched.iter().flatten().flatten().map(|d| d.job));
            }
            outcome(answer)
        }
        Op::DispatchStrategies(now, requests) => {
            let requests: Vec<StrategyDispatch> = requests
                .iter()
                .map(|(id, f, global, t)| StrategyDispatch {
                    strategy: *id,
                    user_id: 7,
                    bucket: bucket(*f, *now),
                    mode: if *global {
                        JobMode::Global
                    } else {
                        JobMode::Strategy
                    },
                    symbols: if *global { Vec::new() } else { pick(pool, t) },
                })
                .collect();
            let answer = store.dispatch_strategies(*now, &requests).await;
            if let Ok(jobs) = &answer {
                seen.jobs.extend(jobs.iter().flatten().flatten().copied());
            }
            outcome(answer)
        }
        other => unreachable!("not a dispatch: {other:?}"),
    }
}

async fn settle<S: TestStore>(store: &S, seen: &mut Seen, op: &Op) -> String {
    match op {
        Op::CompleteJobs(jobs) => {
            let jobs: Vec<(JobRef, Verdict)> = jobs
                .iter()
                .map(|&(strategy, f, now, seq, ok)| {
                    let bucket_start_ms = bucket(f, now).start_ms;
                    let job = JobRef {
                        strategy,
                        bucket_start_ms,
                        seq,
                    };
                    (job, Verdict::from_success(ok))
                })
                .collect();
            outcome(store.complete_jobs(&jobs).await)
        }
        Op::CompleteDispatched(picks) if !seen.jobs.is_empty() => {
            let n = seen.jobs.len();
            let jobs: Vec<(JobRef, Verdict)> = picks
                .iter()
                .map(|&(i, ok)| (seen.jobs[i % n], Verdict::from_success(ok)))
                .collect();
            outcome(store.complete_jobs(&jobs).await)
        }
        Op::Work(max, answers) => work(store, *max, answers).await,
        Op::ReadResults(c, max, pending) => {
            let answer = store.read_results(CONSUMERS[*c], *max, *pending).await;
            let payloads = answer.map(|entries| {
                let payloads: Vec<Option<String>> =
                    entries.iter().map(|e| e.payload.clone()).collect();
                seen.results.extend(entries);
                payloads
            });
            outcome(payloads)
        }
        Op::Ack(picks) if !seen.results.is_empty() => {
            let n = seen.results.len();
            let acks: Vec<Ack> = picks
                .iter()
                .map(|&(i, dead)| Ack {
                    entry: seen.results[i % n].clone(),
                    dead_reason: dead.then(|| format!("test dead letter {i}")),
                })
                .collect();
            outcome(store.ack_results(&acks).await)
        }
        Op::Settle(c, max) => settle_batch(store, CONSUMERS[*c], *max).await,
        Op::TakeOver(c, max, stale) => {
            let me = CONSUMERS[*c];
            let mut pending = match store.pending_results(me, *max).await {
                Ok(pending) => pending,
                Err(e) => return format!("Err({e})"),
            };
            for p in &mut pending {
                p.deliveries -= u64::from(*stale);
            }
            // Entry ids are each store's own: compare owners, deliveries and payloads.
            let owners: Vec<(String, u64)> = pending
                .iter()
                .map(|p| (p.consumer.clone(), p.deliveries))
                .collect();
            let taken = store.take_results(me, &pending, &[]).await.map(|t| {
                let payloads: Vec<Option<String>> =
                    t.entries.iter().map(|e| e.payload.clone()).collect();
                (owners, payloads, t.forgotten)
            });
            outcome(taken)
        }
        _ => "nothing to refer to yet".to_owned(),
    }
}

/// A worker's turn: takes up to `max` jobs and answers them as `answers` says.
async fn work<S: TestStore>(store: &S, max: usize, answers: &[Answer]) -> String {
    let taken = match store.take_jobs("worker", max).await {
        Ok(taken) => taken,
        Err(e) => return outcome::<()>(Err(e)),
    };
    let results: Vec<(String, String)> = taken
        .iter()
        .zip(answers.iter().cycle())
        .map(|(entry, answer)| {
            let job: Job =
                serde_json::from_str(entry.payload.as_deref().expect("a job")).expect("job JSON");
            let (strategy, success) = match answer {
                Answer::Succeeded => (job.strategy_id, true),
                Answer::Failed => (job.strategy_id, false),
                Answer::WrongStrategy => (job.strategy_id + 1, true),
                Answer::Garbage => {
                    return (entry.id.clone(), format!("garbage for {}", job.job_id));
                }
            };
            let result = serde_json::json!({
                "job_id": job.job_id, "strategy_id": strategy, "success": success,
            });
            (entry.id.clone(), result.to_string())
        })
        .collect();
    let payloads: Vec<&Option<String>> = taken.iter().map(|e| &e.payload).collect();
    let finished = outcome(store.finish_jobs(&results).await);
    format!("took {payloads:?}; {finished}")
}

/// The engine's settlement of one batch (`settle_batch`): the verdicts of well-formed
/// results settle their jobs, malformed ones go to the dead letters, all are acknowledged.
async fn settle_batch<S: TestStore>(store: &S, consumer: &str, max: usize) -> String {
    let entries = match store.read_results(consumer, max, false).await {
        Ok(entries) => entries,
        Err(e) => return outcome::<()>(Err(e)),
    };
    let mut verdicts = Vec::new();
    let mut acks = Vec::new();
    for entry in entries {
        let dead_reason = match parse_result(entry.payload.as_deref()) {
            Ok((job, result)) => {
                verdicts.push((job, Verdict::from_success(result.success)));
                None
            }
            Err(e) => Some(e.to_string()),
        };
        acks.push(Ack { entry, dead_reason });
    }
    let released = outcome(store.complete_jobs(&verdicts).await);
    let acked = outcome(store.ack_results(&acks).await);
    format!("{verdicts:?} released {released}; {acked}")
}

#[test]
fn redis_store_behaves_like_the_model_after_every_step() {
    let rt = tickgate_suite::runtime();
    let _ctx = rt.enter();
    let world = rt.block_on(World::new("model:"));
    let pool = ticker_pool(TICKERS);
    let case = std::cell::Cell::new(0u64);
    let mut runner = TestRunner::new(Config::with_cases(CASES));
    let result = runner.run(&prop::collection::vec(op(), 1..MAX_STEPS), |ops| {
        case.set(case.get() + 1);
        rt.block_on(async {
            let redis = world.store_under(&format!("{}:", case.get())).await;
            let model = ModelStore::new(DEFAULT_MAX_UNIVERSE);
            // As every engine does on start: the consumer groups exist before any job.
            redis.ensure_groups().await.expect("groups");
            model.ensure_groups().await.expect("groups");
            let (mut seen_redis, mut seen_model) = (Seen::new(), Seen::new());
            let mut con = world.connection().await;
            for (step, op) in ops.iter().enumerate() {
                let got = apply(&redis, &pool, &mut seen_redis, op).await;
                let want = apply(&model, &pool, &mut seen_model, op).await;
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
