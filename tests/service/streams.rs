//! Jobs and results over Redis Streams: a job a worker never acknowledges is re-delivered
//! after the visibility timeout and dead-lettered after `max_deliveries`; malformed results
//! go to the dead-letter stream, counted, and the consumer carries on.

use tickgate::clock::ManualClock;
use tickgate::jobs::Job;
use tickgate::metrics::Metrics;
use tickgate::service::{AlertService, ServiceConfig};
use tickgate::store::{RedisStore, Store};

use crate::e2e::{T0_MS, TICK_MS, config};

async fn one_strategy(namespace: &str, server: &tickgate_sim::RedisServer) -> RedisStore {
    let market = tickgate_suite::store(server, namespace).await;
    let entry = r#"{"id":1,"user_id":9,"timeframe":"1h","universe":["AAPL","X:BTCUSD"]}"#;
    market
        .catalog_write(1, Some(entry), None)
        .await
        .expect("catalog");
    market
        .record_updates(&[("AAPL", T0_MS - 5), ("X:BTCUSD", T0_MS - 3)])
        .await
        .expect("record");
    market
}

async fn dead_letters(store: &RedisStore) -> Vec<(String, Vec<(String, String)>)> {
    redis::cmd("XRANGE")
        .arg(store.keys().dead())
        .arg("-")
        .arg("+")
        .query_async(&mut store.connection())
        .await
        .expect("XRANGE dead")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_jobs_are_redelivered_then_dead_lettered() {
    let server = tickgate_suite::redis().await;
    let market = one_strategy("reap:", &server).await;
    let clock = ManualClock::new(T0_MS - 1);
    let config = ServiceConfig {
        job_visibility_ms: 30_000,
        max_deliveries: 2,
        ..config("reap-1")
    };
    let service = AlertService::new(
        tickgate_suite::store(&server, "reap:").await,
        clock.clone(),
        config,
    );
    service.start();
    let step = |k: i64| {
        let now = T0_MS + k * TICK_MS;
        clock.advance_to(now);
        service.wait_for_step(now)
    };
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
    assert_eq!(Metrics::get(&service.metrics().jobs_redelivered), 1);

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
    let dead = dead_letters(&market).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let fields: std::collections::BTreeMap<_, _> = dead[0].1.iter().cloned().collect();
    assert_eq!(fields.get("job"), first[0].payload.as_ref());
    assert!(fields["reason"].contains("2 deliveries"), "{fields:?}");
    assert!(market.pending_jobs(10).await.expect("pending").is_empty());
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_results_are_dead_lettered_and_the_consumer_continues() {
    let server = tickgate_suite::redis().await;
    let market = one_strategy("poison:", &server).await;
    let clock = ManualClock::new(T0_MS - 1);
    let service = AlertService::new(
        tickgate_suite::store(&server, "poison:").await,
        clock.clone(),
        config("poison-1"),
    );
    service.start();
    clock.advance_to(T0_MS);
    service.wait_for_step(T0_MS).await;
    let jobs = market.take_jobs("w", 10).await.expect("take");
    let job: Job = serde_json::from_str(jobs[0].payload.as_deref().expect("job")).expect("json");

    let mut con = market.connection();
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
            .arg(market.keys().results())
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
        .finish_job(&jobs[0].id, &failed)
        .await
        .expect("result");

    clock.advance_to(T0_MS + TICK_MS);
    service.wait_for_step(T0_MS + TICK_MS).await;
    assert!(service.is_ready());
    let m = service.metrics();
    assert_eq!(Metrics::get(&m.dead_letters), 4);
    assert_eq!(Metrics::get(&m.results_failed), 1);
    assert_eq!(Metrics::get(&m.claims_released), 2);
    let dead = dead_letters(&market).await;
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
    service.stop().await;
}
