//! Jobs and results over Redis Streams: a job a worker never acknowledges is re-delivered
//! after the visibility timeout and dead-lettered after `max_deliveries` (its claims
//! released); malformed results and results of jobs never issued go to the dead-letter
//! stream, counted, and the consumer carries on; a dead letter that cannot be written
//! leaves its result pending; lagging workers pause dispatch (backpressure).

use tickgate::config::EngineConfig;
use tickgate::core::catalog::CatalogEntry;
use tickgate::core::jobs::Job;
use tickgate::core::time::{HOUR_MS, SECOND_MS};
use tickgate::runtime::Metrics;
use tickgate::store::{Settlement, TRIGGER_BUCKET_FIELD, Universes, Updates, WorkerSide};
use tickgate_suite::{T0_MS, TICK_MS, World, engine_config};

/// A world with one strategy whose two tickers were updated just before T0.
async fn one_strategy(namespace: &str) -> World {
    let universe = Some(vec!["AAPL".into(), "X:BTCUSD".into()]);
    let world = World::builder(namespace)
        .catalog([CatalogEntry::new(1, 9, "one", "1h", universe)])
        .build()
        .await;
    world
        .market()
        .record_updates(T0_MS, &[("AAPL", T0_MS - 5), ("X:BTCUSD", T0_MS - 3)])
        .await
        .expect("record");
    world
}

async fn dead_letters(world: &World) -> Vec<(String, Vec<(String, String)>)> {
    redis::cmd("XRANGE")
        .arg(world.keys().dead())
        .arg("-")
        .arg("+")
        .query_async(&mut world.connection().await)
        .await
        .expect("XRANGE dead")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_jobs_are_redelivered_then_dead_lettered() {
    let world = one_strategy("reap:").await;
    let market = world.market();
    let config = EngineConfig {
        job_visibility_ms: 30 * SECOND_MS,
        max_deliveries: 2,
        ..engine_config("reap-1")
    };
    let mut engine = world.engine(config).await;
    let metrics = engine.metrics().clone();
    let mut step = async |k: i64| assert!(engine.step(T0_MS + k * TICK_MS).await.ready);
    step(0).await;
    // A worker takes the job and crashes: no acknowledgement, no result.
    let first = market.take_jobs("crashing-worker", 10).await.expect("take");
    assert_eq!(first.len(), 1);
    let job: Job = serde_json::from_str(first[0].payload.as_deref().expect("job")).expect("json");
    assert_eq!(
        job.symbols.as_deref(),
        Some(&["AAPL".to_owned(), "X:BTCUSD".to_owned()][..])
    );

    // Seen pending at tick 1; re-delivered once 30 s of logical time have passed (tick 4).
    for k in 1..=3 {
        step(k).await;
        assert!(
            market
                .take_jobs("other-worker", 10)
                .await
                .expect("take")
                .is_empty(),
            "tick {k}: too early"
        );
    }
    step(4).await;
    let again = market.take_jobs("other-worker", 10).await.expect("take");
    assert_eq!(again.len(), 1, "re-delivered after the visibility timeout");
    assert_eq!(
        again[0].payload, first[0].payload,
        "the same job, unchanged"
    );
    assert_eq!(Metrics::get(&metrics.jobs_redelivered), 1);

    // Taken again and never acknowledged: the second delivery is the last.
    for k in 5..=8 {
        step(k).await;
    }
    let dead = dead_letters(&world).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let fields: std::collections::BTreeMap<_, _> = dead[0].1.iter().cloned().collect();
    assert_eq!(fields.get("job"), first[0].payload.as_ref());
    assert!(fields["reason"].contains("2 deliveries"), "{fields:?}");
    assert!(market.pending_jobs(10).await.expect("pending").is_empty());
    // No third delivery, but its claims were released (DESIGN §2.8): the same tick
    // dispatched its tickers again, as a new job of the same bucket.
    assert_eq!(Metrics::get(&metrics.claims_released), 2);
    let retried = market.take_jobs("other-worker", 10).await.expect("take");
    assert_eq!(
        retried.len(),
        1,
        "the dead job's tickers are dispatched again"
    );
    let retried: Job =
        serde_json::from_str(retried[0].payload.as_deref().expect("job")).expect("json");
    assert_ne!(
        retried.job_id, job.job_id,
        "a new job, not a third delivery"
    );
    assert_eq!(
        (retried.bucket_start_ms, retried.symbols),
        (job.bucket_start_ms, job.symbols)
    );
}

async fn post_result(world: &World, result: &str) {
    let _: String = redis::cmd("XADD")
        .arg(world.keys().results())
        .arg("*")
        .arg("result")
        .arg(result)
        .query_async(&mut world.connection().await)
        .await
        .expect("XADD");
}

/// B9 (DESIGN §2.8): results naming a job the strategy never issued are dead-lettered and
/// change nothing — their `used_symbols` least of all — while a duplicate of a real result
/// is acknowledged as late, not dead-lettered, and changes nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_of_jobs_never_issued_change_nothing() {
    let world = one_strategy("never-issued:").await;
    let market = world.market();
    let mut engine = world.engine(engine_config("never-1")).await;
    assert!(engine.step(T0_MS).await.ready);
    let taken = market.take_jobs("w", 10).await.expect("take");
    let job: Job = serde_json::from_str(taken[0].payload.as_deref().expect("job")).expect("json");
    let result = |job_id: &str, used: &str| {
        format!(
            r#"{{"job_id":"{job_id}","strategy_id":1,"success":true,"used_symbols":["{used}"]}}"#
        )
    };
    let real = format!(
        r#"{{"job_id":"{}","strategy_id":1,"success":true}}"#,
        job.job_id
    );
    market
        .finish_jobs(&[(taken[0].id.clone(), real)])
        .await
        .expect("result");
    let start = job.bucket_start_ms;
    let next_bucket = start + 3_600_000;
    // A number above every job issued in the bucket, a bucket never claimed, a duplicate.
    post_result(&world, &result(&format!("1-{start}-2"), "EVIL")).await;
    post_result(&world, &result(&format!("1-{next_bucket}-1"), "EVIL")).await;
    post_result(&world, &result(&job.job_id, "LATE")).await;

    assert!(engine.step(T0_MS + TICK_MS).await.ready);
    let m = engine.metrics();
    assert_eq!(Metrics::get(&m.dead_letters), 2);
    assert_eq!(
        Metrics::get(&m.results_ok),
        2,
        "the real result and its duplicate"
    );
    assert_eq!(Metrics::get(&m.results_late), 1);
    assert_eq!(Metrics::get(&m.universe_discoveries), 0);
    let universe = market.universes(&[1]).await.expect("universe").remove(0);
    let universe = universe.expect("not damaged");
    let names: Vec<&str> = universe.iter().flatten().map(|t| t.as_str()).collect();
    assert_eq!(names, ["AAPL", "X:BTCUSD"], "a result changed the universe");
    let dead = dead_letters(&world).await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    for (_, fields) in &dead {
        assert!(
            fields
                .iter()
                .any(|(k, v)| k == "reason" && v.contains("never issued")),
            "{fields:?}"
        );
    }
}

/// Results delivered to the engines and not acknowledged.
async fn pending_results(world: &World) -> usize {
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(world.keys().results())
        .arg(tickgate::store::ENGINE_GROUP)
        .arg("-")
        .arg("+")
        .arg(10)
        .query_async(&mut world.connection().await)
        .await
        .expect("XPENDING");
    pending.len()
}

/// B4: a dead letter that cannot be written (the dead-letter key holds a string) leaves its
/// result pending — never acknowledged unrecorded — and the engine carries on: the error is
/// counted, the tick still runs, and once the key is repaired the letter is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_that_cannot_be_written_leaves_its_result_pending() {
    let world = one_strategy("dead-key:").await;
    let mut engine = world.engine(engine_config("dead-key-1")).await;
    let mut con = world.connection().await;
    let _: () = redis::cmd("SET")
        .arg(world.keys().dead())
        .arg("not a stream")
        .query_async(&mut con)
        .await
        .expect("SET");
    post_result(&world, "poison").await;
    let report = engine.step(T0_MS).await;
    assert!(report.ready && report.jobs_enqueued == 1, "{report:?}");
    assert_eq!(Metrics::get(&engine.metrics().dead_letter_failures), 1);
    assert_eq!(pending_results(&world).await, 1);
    let _: () = redis::cmd("DEL")
        .arg(world.keys().dead())
        .query_async(&mut con)
        .await
        .expect("DEL");
    assert!(engine.step(T0_MS + TICK_MS).await.ready);
    assert_eq!(pending_results(&world).await, 0);
    let dead = dead_letters(&world).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_results_are_dead_lettered_and_the_consumer_continues() {
    let world = one_strategy("poison:").await;
    let market = world.market();
    let mut engine = world.engine(engine_config("poison-1")).await;
    assert!(engine.step(T0_MS).await.ready);
    let jobs = market.take_jobs("w", 10).await.expect("take");
    let job: Job = serde_json::from_str(jobs[0].payload.as_deref().expect("job")).expect("json");

    let mut con = world.connection().await;
    for (field, value) in [
        ("result", "not json at all".to_owned()),
        ("something_else", "{}".to_owned()),
        (
            "result",
            r#"{"job_id":"nonsense","strategy_id":1,"success":true}"#.to_owned(),
        ),
        (
            "result",
            format!(
                r#"{{"job_id":"{}","strategy_id":2,"success":true}}"#,
                job.job_id
            ),
        ),
    ] {
        let _: String = redis::cmd("XADD")
            .arg(world.keys().results())
            .arg("*")
            .arg(field)
            .arg(value)
            .query_async(&mut con)
            .await
            .expect("XADD");
    }
    // After the poison, a valid failure: its claims must still be released.
    let failed = format!(
        r#"{{"job_id":"{}","strategy_id":1,"success":false,"error":{{"type":"X","message":"boom"}}}}"#,
        job.job_id
    );
    market
        .finish_jobs(&[(jobs[0].id.clone(), failed)])
        .await
        .expect("result");

    let report = engine.step(T0_MS + TICK_MS).await;
    assert!(report.ready);
    assert_eq!(
        report.results_settled, 1,
        "only the valid result settles a job"
    );
    let m = engine.metrics();
    assert_eq!(Metrics::get(&m.dead_letters), 4);
    assert_eq!(Metrics::get(&m.results_failed), 1);
    assert_eq!(Metrics::get(&m.claims_released), 2);
    let dead = dead_letters(&world).await;
    assert_eq!(dead.len(), 4);
    let reasons: Vec<String> = dead
        .iter()
        .map(|(_, f)| {
            f.iter()
                .find(|(k, _)| k == "reason")
                .expect("reason")
                .1
                .clone()
        })
        .collect();
    assert!(
        reasons[0].contains("not valid JSON") && reasons[1].contains("no `result` field"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].contains("not a job id") && reasons[3].contains("does not match"),
        "{reasons:?}"
    );
    // The released tickers were dispatched again in the same tick that settled the failure.
    let retried = market.take_jobs("w", 10).await.expect("take");
    assert_eq!(retried.len(), 1, "the failed run is retried");
    let retried: Job =
        serde_json::from_str(retried[0].payload.as_deref().expect("job")).expect("json");
    assert_eq!(retried.symbols, job.symbols);
    assert_ne!(retried.job_id, job.job_id);
}

/// Backpressure (DESIGN §2.8): while the workers leave more than `jobs_stream_max` jobs
/// unacknowledged, the engine claims and enqueues nothing and is not ready; once they catch
/// up, the next step dispatches what changed meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_workers_pause_dispatch_and_nothing_is_lost() {
    let entry = |id, ticker: &str| CatalogEntry::new(id, 9, "s", "1h", Some(vec![ticker.into()]));
    let world = World::builder("backpressure:")
        .catalog([entry(1, "AAPL"), entry(2, "MSFT")])
        .build()
        .await;
    let market = world.market();
    let record = async |ts: i64| {
        market
            .record_updates(ts, &[("AAPL", ts), ("MSFT", ts)])
            .await
            .expect("record")
    };
    let config = EngineConfig {
        jobs_stream_max: 1,
        ..engine_config("backpressure-1")
    };
    let mut engine = world.engine(config).await;
    record(T0_MS - 5).await;
    let first = engine.step(T0_MS).await;
    assert!(first.ready && first.jobs_enqueued == 2, "{first:?}");

    // The next bucket: two jobs unacknowledged, one allowed.
    let next = T0_MS + HOUR_MS;
    record(next + 1).await;
    let held = engine.step(next + TICK_MS).await;
    assert!(!held.ready && held.backpressure, "{held:?}");
    assert_eq!(held.jobs_enqueued, 0);
    assert_eq!(Metrics::get(&engine.metrics().backpressure_steps), 1);
    let newest: Option<i64> = redis::cmd("HGET")
        .arg(world.keys().triggers(1))
        .arg(TRIGGER_BUCKET_FIELD)
        .query_async(&mut world.connection().await)
        .await
        .expect("HGET");
    assert_eq!(
        newest,
        Some(T0_MS - T0_MS.rem_euclid(HOUR_MS)),
        "claimed under backpressure"
    );

    // The workers catch up: the changes made meanwhile are dispatched.
    let taken = market.take_jobs("w", 10).await.expect("take");
    let answers: Vec<(String, String)> = taken
        .iter()
        .map(|e| {
            let job: Job = serde_json::from_str(e.payload.as_deref().expect("job")).expect("json");
            let result = format!(
                r#"{{"job_id":"{}","strategy_id":{},"success":true}}"#,
                job.job_id, job.strategy_id
            );
            (e.id.clone(), result)
        })
        .collect();
    market.finish_jobs(&answers).await.expect("finish");
    let resumed = engine.step(next + 2 * TICK_MS).await;
    assert!(resumed.ready && !resumed.backpressure, "{resumed:?}");
    assert_eq!(resumed.jobs_enqueued, 2);
    let jobs = market.take_jobs("w", 10).await.expect("take");
    for e in &jobs {
        let job: Job = serde_json::from_str(e.payload.as_deref().expect("job")).expect("json");
        assert_eq!(job.bucket_start_ms, next - next.rem_euclid(HOUR_MS));
    }
}

/// A result later than the next bucket's claim still settles its own job: its claims are
/// gone (nothing to release), but it was issued, so its `used_symbols` replace the universe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_later_than_the_next_bucket_still_counts_its_discovery() {
    let world = one_strategy("late-discovery:").await;
    let market = world.market();
    let mut engine = world.engine(engine_config("late-1")).await;
    assert!(engine.step(T0_MS).await.ready);
    let taken = market.take_jobs("slow-worker", 10).await.expect("take");
    let job: Job = serde_json::from_str(taken[0].payload.as_deref().expect("job")).expect("json");
    // The next bucket is claimed while the worker is still running b1's job.
    let next = T0_MS + HOUR_MS;
    market
        .record_updates(next + 1, &[("AAPL", next + 1)])
        .await
        .expect("record");
    assert_eq!(engine.step(next + TICK_MS).await.jobs_enqueued, 1);
    let result = format!(
        r#"{{"job_id":"{}","strategy_id":1,"success":true,"used_symbols":["AAPL","MSFT"]}}"#,
        job.job_id
    );
    market
        .finish_jobs(&[(taken[0].id.clone(), result)])
        .await
        .expect("result");
    assert!(engine.step(next + 2 * TICK_MS).await.ready);
    let m = engine.metrics();
    assert_eq!(Metrics::get(&m.dead_letters), 0);
    assert_eq!(Metrics::get(&m.results_late), 0, "its job was still open");
    assert_eq!(Metrics::get(&m.universe_discoveries), 1);
    let universe = market.universes(&[1]).await.expect("universe").remove(0);
    let universe = universe.expect("not damaged");
    let names: Vec<&str> = universe.iter().flatten().map(|t| t.as_str()).collect();
    assert_eq!(names, ["AAPL", "MSFT"]);
}
