//! Jobs and results over Redis Streams: a job a worker never acknowledges is re-delivered
//! after the visibility timeout and dead-lettered after `max_deliveries`; malformed results
//! go to the dead-letter stream, counted, and the consumer carries on.

use tickgate::config::EngineConfig;
use tickgate::core::catalog::CatalogEntry;
use tickgate::core::jobs::Job;
use tickgate::core::time::SECOND_MS;
use tickgate::runtime::Metrics;
use tickgate::store::{Settlement, Updates, WorkerSide};
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
        .record_updates(&[("AAPL", T0_MS - 5), ("X:BTCUSD", T0_MS - 3)])
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
    assert!(
        market
            .take_jobs("other-worker", 10)
            .await
            .expect("take")
            .is_empty(),
        "no third delivery"
    );
    let dead = dead_letters(&world).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let fields: std::collections::BTreeMap<_, _> = dead[0].1.iter().cloned().collect();
    assert_eq!(fields.get("job"), first[0].payload.as_ref());
    assert!(fields["reason"].contains("2 deliveries"), "{fields:?}");
    assert!(market.pending_jobs(10).await.expect("pending").is_empty());
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
