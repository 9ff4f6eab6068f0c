//! Settlement on both stores: a result settles only the job it names however late it
//! arrives, job numbers never repeat, results of jobs never issued are told apart from late
//! ones, a dead letter that cannot be written leaves its result pending, and a job
//! dead-lettered after its last delivery releases its claims.

use tickgate::core::calendar::{Bucket, Timeframe};
use tickgate::core::jobs::{JobMode, JobRef};
use tickgate::core::time::HOUR_MS;
use tickgate::limits::DEFAULT_MAX_UNIVERSE;
use tickgate::store::{
    Ack, Dispatch, Dispatched, JobStatus, ModelStore, Reaped, Settled, Settlement, StoreError,
    StrategyDispatch, StreamEntry, TickerDispatch, Verdict, WorkerSide,
};
use tickgate::{StrategyId, Ticker};
use tickgate_suite::{T0_MS, World, ticker_pool};

fn tf(s: &str) -> Timeframe {
    s.parse().expect("valid")
}

/// Dispatches `tickers` of strategy `id` in `b`; what it newly claimed and its job.
async fn dispatch<S: Dispatch>(
    store: &S,
    id: StrategyId,
    b: Bucket,
    tickers: &[Ticker],
) -> Option<Dispatched> {
    let request = TickerDispatch {
        strategy: id,
        user_id: 1,
        bucket: b,
        tickers: tickers.to_vec(),
    };
    store
        .dispatch_tickers(b.start_ms, &[request])
        .await
        .expect("dispatch")
        .remove(0)
        .expect("a trigger hash")
}

/// A whole-strategy run of strategy `id` in `b`.
async fn run<S: Dispatch>(store: &S, id: StrategyId, b: Bucket) -> Option<JobRef> {
    let request = StrategyDispatch {
        strategy: id,
        user_id: 1,
        bucket: b,
        mode: JobMode::Global,
        symbols: Vec::new(),
    };
    store
        .dispatch_strategies(b.start_ms, &[request])
        .await
        .expect("dispatch")
        .remove(0)
        .expect("no damaged key")
}

async fn settle<S: Settlement>(store: &S, job: JobRef, verdict: Verdict) -> Settled {
    store
        .complete_jobs(&[(job, verdict)])
        .await
        .expect("complete")
        .remove(0)
        .expect("no damaged key")
}

fn settled(status: JobStatus, released: u64) -> Settled {
    Settled { status, released }
}

/// B1: bucket b1's job reports (either verdict) after b2's job of the same strategy was
/// issued; it must settle nothing of b2, so b2's failure still releases b2's claims.
async fn late_result_of_the_previous_bucket<S: Dispatch + Settlement>(store: &S) {
    let five = tf("5m");
    let t = ticker_pool(2);
    let b1 = five.bucket(T0_MS).expect("ok");
    let b2 = five.bucket(b1.end_ms).expect("ok");
    for (id, late) in [(7, Verdict::Failed), (8, Verdict::Succeeded)] {
        let j1 = dispatch(store, id, b1, &t).await.expect("b1 job").job;
        let j2 = dispatch(store, id, b2, &t).await.expect("b2 job");
        assert_ne!(j2.job.id(), j1.id());
        assert_eq!(
            settle(store, j1, late).await,
            settled(JobStatus::Open, 0),
            "b1's late {late:?} result: its job was issued, and its claims are gone"
        );
        assert_eq!(
            settle(store, j2.job, Verdict::Failed).await,
            settled(JobStatus::Open, 2),
            "b2's failure must release b2's claims after b1's late {late:?} result"
        );
        let again = dispatch(store, id, b2, &t).await.expect("re-dispatchable");
        assert_eq!(again.tickers, t, "b2's tickers are retried in b2");
    }
}

/// The records of open jobs outlive a newer bucket's claim (a late result still finds its
/// job, so its `used_symbols` count), but only for the bucket dropped or within the trigger
/// grace: records of results that never come cannot keep a live hash growing.
async fn records_outlive_the_drop_for_a_while<S: Dispatch + Settlement>(store: &S) {
    let minute = tf("1m");
    let t = ticker_pool(1);
    let b1 = minute.bucket(T0_MS).expect("ok");
    let b2 = minute.bucket(b1.end_ms).expect("ok");
    let later = minute.bucket(b1.start_ms + 2 * HOUR_MS).expect("ok");
    let (id, other) = (14, 15);
    let j1 = dispatch(store, id, b1, &t).await.expect("b1").job;
    let k1 = dispatch(store, other, b1, &t).await.expect("b1").job;
    dispatch(store, id, b2, &t).await.expect("b2");
    dispatch(store, other, b2, &t).await.expect("b2");
    let open = settled(JobStatus::Open, 0);
    assert_eq!(
        settle(store, j1, Verdict::Succeeded).await,
        open,
        "one bucket late"
    );
    // Two hours on, a claim drops k1's record: older than the dropped bucket and the grace.
    dispatch(store, other, later, &t).await.expect("later");
    let gone = settled(JobStatus::Gone, 0);
    assert_eq!(
        settle(store, k1, Verdict::Succeeded).await,
        gone,
        "records pruned"
    );
}

/// A claim for a newer bucket drops the hash, even when it claims nothing; an older bucket
/// still open (the timeframe got longer) may then share a start with a job issued before
/// the drop. Its job must get another number, so the old job's late failure cannot settle it.
async fn numbers_survive_the_drop<S: Dispatch + Settlement>(store: &S) {
    let t = ticker_pool(2);
    // T0 is a Monday: its day bucket and its week bucket start at the same midnight.
    let day = tf("1d").bucket(T0_MS).expect("ok");
    let week = tf("1w").bucket(T0_MS).expect("ok");
    assert_eq!(day.start_ms, week.start_ms);
    let five = tf("5m").bucket(T0_MS).expect("ok");
    let old = dispatch(store, 9, day, &t).await.expect("day job").job;
    assert!(
        dispatch(store, 9, five, &[]).await.is_none(),
        "drops the day"
    );
    let weekly = dispatch(store, 9, week, &t).await.expect("week job").job;
    assert_ne!(weekly.id(), old.id(), "a job number was issued twice");
    assert_eq!(settle(store, old, Verdict::Failed).await.released, 0);
    assert!(
        dispatch(store, 9, week, &t).await.is_none(),
        "the day job's late failure released the week's claims"
    );
}

/// B9 at the store: what the strategy's trigger state proves never issued, against
/// duplicates and late results of jobs that were.
async fn never_issued_or_late<S: Dispatch + Settlement>(store: &S) {
    let five = tf("5m");
    let t = ticker_pool(2);
    let b1 = five.bucket(T0_MS).expect("ok");
    let b2 = five.bucket(b1.end_ms).expect("ok");
    let b3 = five.bucket(b2.end_ms).expect("ok");
    let id = 10;
    let j1 = dispatch(store, id, b1, &t).await.expect("b1").job;
    let j2 = dispatch(store, id, b2, &t).await.expect("b2").job;
    let job = |start: Bucket, seq| JobRef {
        strategy: id,
        bucket_start_ms: start.start_ms,
        seq,
    };
    let failed = Verdict::Failed;
    let never = settled(JobStatus::NeverIssued, 0);
    let gone = settled(JobStatus::Gone, 0);
    assert_eq!(
        settle(store, job(b3, Some(1)), failed).await,
        never,
        "newer bucket"
    );
    let beyond = Some(j2.seq.expect("per ticker") + 1);
    assert_eq!(
        settle(store, job(b2, beyond), failed).await,
        never,
        "beyond # jobs"
    );
    let open = settled(JobStatus::Open, 0);
    assert_eq!(settle(store, j1, failed).await, open, "late: claims gone");
    assert_eq!(settle(store, j1, failed).await, gone, "late and repeated");
    let unknown = JobRef {
        seq: Some(99),
        ..j1
    };
    assert_eq!(
        settle(store, unknown, failed).await,
        gone,
        "an older bucket"
    );
    let other = JobRef { strategy: 11, ..j2 };
    assert_eq!(settle(store, other, failed).await, gone, "no trigger state");
    assert_eq!(settle(store, j2, failed).await, settled(JobStatus::Open, 2));
    assert_eq!(settle(store, j2, failed).await, gone, "a duplicate");
    // Whole-strategy runs: the run key holds the start of the last run.
    let r1 = run(store, id, b1).await.expect("run b1");
    let r2 = run(store, id, b2).await.expect("run b2");
    let later = JobRef {
        bucket_start_ms: b3.start_ms,
        ..r2
    };
    assert_eq!(
        settle(store, later, failed).await,
        never,
        "run: newer bucket"
    );
    assert_eq!(settle(store, r1, failed).await, gone, "run: older bucket");
    let ok = settle(store, r2, Verdict::Succeeded).await;
    assert_eq!(ok, settled(JobStatus::Open, 0));
    assert_eq!(settle(store, r2, failed).await, settled(JobStatus::Open, 1));
    assert_eq!(settle(store, r2, failed).await, gone, "run: a duplicate");
}

#[tokio::test]
async fn a_result_settles_only_the_job_it_names_however_late() {
    let world = World::new("late:").await;
    let redis = world.store().await;
    let model = ModelStore::new(DEFAULT_MAX_UNIVERSE);
    late_result_of_the_previous_bucket(&redis).await;
    late_result_of_the_previous_bucket(&model).await;
    numbers_survive_the_drop(&redis).await;
    numbers_survive_the_drop(&model).await;
    records_outlive_the_drop_for_a_while(&redis).await;
    records_outlive_the_drop_for_a_while(&model).await;
}

#[tokio::test]
async fn jobs_never_issued_are_told_apart_from_late_and_duplicate_ones() {
    let world = World::new("never:").await;
    never_issued_or_late(&world.store().await).await;
    never_issued_or_late(&ModelStore::new(DEFAULT_MAX_UNIVERSE)).await;
}

/// B4: a dead letter that cannot be written (the dead-letter key holds a string) leaves its
/// result pending, while the other results of the call are acknowledged.
#[tokio::test]
async fn a_result_is_acknowledged_only_once_its_dead_letter_is_written() {
    let world = World::new("deadkey:").await;
    let store = world.store().await;
    store.ensure_groups().await.expect("groups");
    let mut con = world.connection().await;
    for payload in [
        "garbage",
        r#"{"job_id":"1-60000-1","strategy_id":1,"success":true}"#,
    ] {
        let _: String = redis::cmd("XADD")
            .arg(world.keys().results())
            .arg("*")
            .arg("result")
            .arg(payload)
            .query_async(&mut con)
            .await
            .expect("XADD");
    }
    let _: () = redis::cmd("SET")
        .arg(world.keys().dead())
        .arg("not a stream")
        .query_async(&mut con)
        .await
        .expect("SET");
    let entries = store.read_results("e", 10, false).await.expect("read");
    let acks = |entries: &[StreamEntry]| -> Vec<Ack> {
        vec![
            Ack {
                entry: entries[0].clone(),
                dead_reason: Some("not JSON".to_owned()),
            },
            Ack {
                entry: entries[1].clone(),
                dead_reason: None,
            },
        ]
    };
    let answer = store.ack_results(&acks(&entries)).await;
    match &answer {
        Err(StoreError::DeadLetters {
            count, result_id, ..
        }) => assert_eq!((*count, result_id), (1, &entries[0].id)),
        other => panic!("expected the dead letter's failure, got {other:?}"),
    }
    let pending = store.read_results("e", 10, true).await.expect("pending");
    assert_eq!(
        pending,
        entries[..1],
        "only the unrecorded one stays pending"
    );
    let _: () = redis::cmd("DEL")
        .arg(world.keys().dead())
        .query_async(&mut con)
        .await
        .expect("DEL");
    store.ack_results(&acks(&entries)[..1]).await.expect("ack");
    assert!(
        store
            .read_results("e", 10, true)
            .await
            .expect("read")
            .is_empty()
    );
    let dead: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(world.keys().dead())
        .arg("-")
        .arg("+")
        .query_async(&mut con)
        .await
        .expect("XRANGE");
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .1
            .contains(&("result_id".to_owned(), entries[0].id.clone()))
    );
}

/// Takes every job and reaps each pending one with `max` deliveries, `rounds` times.
async fn take_and_reap<S: Settlement + WorkerSide>(
    store: &S,
    max: u64,
    rounds: usize,
) -> Vec<Reaped> {
    let mut outcomes = Vec::new();
    for _ in 0..rounds {
        store.take_jobs("crashing-worker", 10).await.expect("take");
        for job in store.pending_jobs(10).await.expect("pending") {
            outcomes.push(store.reap_job(&job, max).await.expect("reap"));
        }
    }
    outcomes
}

/// DESIGN §2.8: a job dead-lettered after its last delivery releases its claims, as a
/// failed result would, so its tickers are claimable again in the same bucket.
async fn dead_jobs_release_their_claims<S: Dispatch + Settlement + WorkerSide>(store: &S) {
    store.ensure_groups().await.expect("groups");
    let b = tf("5m").bucket(T0_MS).expect("ok");
    let t = ticker_pool(2);
    let job = dispatch(store, 12, b, &t).await.expect("job").job;
    let outcomes = take_and_reap(store, 2, 2).await;
    let dead = Reaped::Dead {
        job: Some(job),
        released: 2,
    };
    assert_eq!(outcomes, [Reaped::Redelivered, dead]);
    let again = dispatch(store, 12, b, &t).await.expect("claimable again");
    assert_eq!(again.tickers, t);
    // The whole-strategy form: the run is released.
    let whole = run(store, 13, b).await.expect("run");
    let outcomes = take_and_reap(store, 1, 1).await;
    let pending = store.pending_jobs(10).await.expect("pending");
    assert!(pending.is_empty(), "{pending:?}");
    assert!(outcomes.contains(&Reaped::Dead {
        job: Some(whole),
        released: 1
    }));
    assert!(
        run(store, 13, b).await.is_some(),
        "the run is retried in its bucket"
    );
}

#[tokio::test]
async fn jobs_dead_lettered_after_their_last_delivery_release_their_claims() {
    let world = World::new("deadjob:").await;
    dead_jobs_release_their_claims(&world.store().await).await;
    dead_jobs_release_their_claims(&ModelStore::new(DEFAULT_MAX_UNIVERSE)).await;
}

/// A job reaped after its last delivery whose trigger key someone overwrote with another
/// type (status 3 of `lib/settle.lua`): dead-lettered all the same, releasing nothing, and
/// the foreign key is left as it was. Redis only: the model's keys are typed.
#[tokio::test]
async fn a_dead_job_whose_trigger_key_was_overwritten_is_dead_lettered_releasing_nothing() {
    let world = World::new("deaddamaged:").await;
    let store = world.store().await;
    store.ensure_groups().await.expect("groups");
    let b = tf("5m").bucket(T0_MS).expect("ok");
    let job = dispatch(&store, 14, b, &ticker_pool(2))
        .await
        .expect("job")
        .job;
    let mut con = world.connection().await;
    let key = world.keys().triggers(14);
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("someone else's")
        .query_async(&mut con)
        .await
        .expect("SET");
    let outcomes = take_and_reap(&store, 1, 1).await;
    let dead = Reaped::Dead {
        job: Some(job),
        released: 0,
    };
    assert_eq!(outcomes, [dead]);
    let dead_letters: u64 = redis::cmd("XLEN")
        .arg(world.keys().dead())
        .query_async(&mut con)
        .await
        .expect("XLEN");
    assert_eq!(dead_letters, 1);
    let kept: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut con)
        .await
        .expect("GET");
    assert_eq!(kept, "someone else's");
    assert!(store.pending_jobs(10).await.expect("pending").is_empty());
}

/// A run that succeeded keeps its claims: the same tickers are never dispatched again in
/// its bucket. Only a failure releases.
async fn success_keeps_the_claims<S: Dispatch + Settlement>(store: &S) {
    let t = ticker_pool(2);
    let b = tf("5m").bucket(T0_MS).expect("ok");
    let job = dispatch(store, 21, b, &t).await.expect("job").job;
    assert_eq!(
        settle(store, job, Verdict::Succeeded).await,
        settled(JobStatus::Open, 0)
    );
    assert!(
        dispatch(store, 21, b, &t).await.is_none(),
        "a succeeded run's tickers were claimable again in its bucket"
    );
}

#[tokio::test]
async fn a_succeeded_run_keeps_its_claims() {
    let world = World::new("success:").await;
    success_keeps_the_claims(&world.store().await).await;
    success_keeps_the_claims(&ModelStore::new(DEFAULT_MAX_UNIVERSE)).await;
}
