//! Results another engine instance read and never acknowledged — it crashed between reading
//! and acknowledging, or restarted under a new name (the default consumer name holds the
//! pid) — are taken over after `result_takeover_ms` and settled: a failure's tickers are
//! retried in their bucket, the group holds nothing pending, the dead consumer is gone.

use tickgate::config::EngineConfig;
use tickgate::core::catalog::CatalogEntry;
use tickgate::core::jobs::Job;
use tickgate::core::time::SECOND_MS;
use tickgate::runtime::Metrics;
use tickgate::store::{PendingResult, Settlement, Updates, WorkerSide};
use tickgate_suite::{T0_MS, TICK_MS, World, engine_config};

/// The consumers of the engines' group on the results stream, with their pending counts.
async fn consumers(world: &World) -> Vec<(String, u64)> {
    let reply: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(world.keys().results())
        .arg(tickgate::store::ENGINE_GROUP)
        .query_async(&mut world.connection().await)
        .await
        .expect("XINFO CONSUMERS");
    reply
        .iter()
        .map(|c| {
            let name: String = redis::from_redis_value(c["name"].clone()).expect("name");
            let pending: u64 = redis::from_redis_value(c["pending"].clone()).expect("pending");
            (name, pending)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_a_dead_instance_left_pending_are_taken_over_and_settled() {
    let universe = Some(vec!["AAPL".into(), "X:BTCUSD".into()]);
    let world = World::builder("orphans:")
        .catalog([CatalogEntry::new(1, 9, "one", "1h", universe)])
        .build()
        .await;
    let market = world.market();
    market
        .record_updates(T0_MS, &[("AAPL", T0_MS - 5), ("X:BTCUSD", T0_MS - 3)])
        .await
        .expect("record");
    let config = EngineConfig {
        result_takeover_ms: 30 * SECOND_MS,
        ..engine_config("survivor")
    };
    let mut engine = world.engine(config).await;
    let metrics = engine.metrics().clone();
    assert!(engine.step(T0_MS).await.ready);

    // A worker runs the job and fails; another engine instance reads the result and dies.
    let taken = market.take_jobs("w", 10).await.expect("take");
    assert_eq!(taken.len(), 1);
    let job: Job = serde_json::from_str(taken[0].payload.as_deref().expect("job")).expect("json");
    let result = format!(
        r#"{{"job_id":"{}","strategy_id":1,"success":false}}"#,
        job.job_id
    );
    market
        .finish_jobs(&[(taken[0].id.clone(), result)])
        .await
        .expect("finish");
    let read = market.read_results("crashed", 10, false).await;
    assert_eq!(read.expect("read").len(), 1);

    // Pending with the dead consumer: nothing settled, nothing retried until it has stayed
    // so for 30 s of logical time (first seen at step 2, after step 1 found it pending).
    for k in 1..=4 {
        assert!(engine.step(T0_MS + k * TICK_MS).await.ready);
        assert!(
            market.take_jobs("w", 10).await.expect("take").is_empty(),
            "step {k}: retried too early"
        );
        assert_eq!(Metrics::get(&metrics.results_taken_over), 0, "step {k}");
    }
    assert!(engine.step(T0_MS + 5 * TICK_MS).await.ready);
    assert_eq!(Metrics::get(&metrics.results_taken_over), 1);
    assert_eq!(Metrics::get(&metrics.results_failed), 1);
    assert_eq!(Metrics::get(&metrics.claims_released), 2);
    // Settled as failed in the same step, before the tick: its tickers are dispatched again,
    // as a new job of the same bucket.
    let retried = market.take_jobs("w", 10).await.expect("take");
    assert_eq!(retried.len(), 1, "the failed job's tickers are retried");
    let retried: Job =
        serde_json::from_str(retried[0].payload.as_deref().expect("job")).expect("json");
    assert_ne!(retried.job_id, job.job_id);
    assert_eq!(
        (retried.bucket_start_ms, retried.symbols),
        (job.bucket_start_ms, job.symbols)
    );
    // Nothing holds back the trimming of the results stream, and the dead consumer is gone.
    assert_eq!(
        consumers(&world).await,
        vec![("survivor".to_owned(), 0)],
        "only the survivor is left, with nothing pending"
    );
}

/// Two instances that judged the same result orphaned: only the first takes it; a result
/// its owner acknowledged, or read again (it is alive after all), meanwhile is left alone; a
/// consumer with results still pending is not forgotten, one left empty is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphaned_result_is_taken_once_and_only_while_still_pending() {
    let world = World::new("orphans-race:").await;
    let market = world.market();
    market.ensure_groups().await.expect("groups");
    for n in 0..3 {
        let _: String = redis::cmd("XADD")
            .arg(world.keys().results())
            .arg("*")
            .arg("result")
            .arg(format!("r{n}"))
            .query_async(&mut world.connection().await)
            .await
            .expect("XADD");
    }
    let read = market.read_results("dead", 3, false).await.expect("read");
    assert_eq!(read.len(), 3);
    let orphans = market.pending_results("a", 10).await.expect("pending");
    assert_eq!(
        orphans,
        read.iter()
            .map(|e| PendingResult {
                id: e.id.clone(),
                consumer: "dead".into(),
                deliveries: 1,
            })
            .collect::<Vec<_>>()
    );
    assert!(
        market
            .pending_results("dead", 10)
            .await
            .expect("pending")
            .is_empty(),
        "a consumer's own results are not orphans"
    );
    // The owner acknowledges the last one before anyone takes it over.
    let ack = tickgate::store::Ack {
        entry: read[2].clone(),
        dead_reason: None,
    };
    market.ack_results(&[ack]).await.expect("ack");

    // ... and reads the first again, as a restart under the same name does: a delivery.
    let again = market.read_results("dead", 1, true).await.expect("re-read");
    assert_eq!(again, read[..1]);

    let first = market.take_results("a", &orphans, &[]).await.expect("a");
    let payloads: Vec<_> = first.entries.iter().map(|e| e.payload.clone()).collect();
    assert_eq!(payloads, vec![Some("r1".into())], "only the untouched one");
    assert_eq!(
        first.forgotten, 0,
        "the first is still pending with its owner"
    );
    let second = market.take_results("b", &orphans, &[]).await.expect("b");
    assert!(second.entries.is_empty(), "taken once: {second:?}");
    let mut listed = consumers(&world).await;
    listed.sort();
    assert_eq!(listed, vec![("a".into(), 1), ("dead".into(), 1)]);
    // A consumer keeps what it holds: leaving the group is refused while results are
    // pending; once they are acknowledged, it leaves.
    let left = market.take_results("a", &[], &["a"]).await.expect("leave");
    assert_eq!(left.forgotten, 0);
    let ack = tickgate::store::Ack {
        entry: first.entries[0].clone(),
        dead_reason: None,
    };
    market.ack_results(&[ack]).await.expect("ack");
    let left = market.take_results("a", &[], &["a"]).await.expect("leave");
    assert_eq!(left.forgotten, 1);
    assert_eq!(consumers(&world).await, vec![("dead".to_owned(), 1)]);
}
