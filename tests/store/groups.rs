//! Consumer groups are created idempotently by whichever side comes first (DESIGN §2.8):
//! a worker runs the README's `XGROUP CREATE <jobs> workers 0 MKSTREAM` before any engine
//! exists, engines and workers race the same command, and a job written before any group
//! existed is still delivered.

use redis::aio::MultiplexedConnection;
use tickgate::core::catalog::CatalogEntry;
use tickgate::store::{ENGINE_GROUP, Settlement, Updates, WORKER_GROUP, WorkerSide};
use tickgate_suite::{T0_MS, World, engine_config};

/// Concurrent creators in the race: engines and workers, half each.
const RACERS: usize = 8;

/// What a worker does first (README, "Writing a worker", step 1): `Ok(true)` if it created
/// the group, `Ok(false)` on `BUSYGROUP` (someone came first), any other error as is.
async fn worker_creates_group(
    con: &mut MultiplexedConnection,
    jobs: &str,
) -> redis::RedisResult<bool> {
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(jobs)
        .arg(WORKER_GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(con)
        .await;
    match created {
        Ok(()) => Ok(true),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(false),
        Err(e) => Err(e),
    }
}

/// The groups of `stream` by name.
async fn group_names(con: &mut MultiplexedConnection, stream: &str) -> Vec<String> {
    let groups: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(con)
        .await
        .expect("XINFO GROUPS");
    groups.groups.into_iter().map(|g| g.name).collect()
}

#[tokio::test]
async fn a_worker_that_creates_the_jobs_group_before_the_engine_gets_its_jobs() {
    let entry = CatalogEntry::new(1, 7, "early worker", "5m", Some(vec!["AAPL".into()]));
    let world = World::builder("early:").catalog([entry]).build().await;
    let mut con = world.connection().await;
    let jobs = world.keys().jobs();
    assert!(
        worker_creates_group(&mut con, &jobs).await.expect("XGROUP"),
        "the worker came first, so it created the group"
    );
    // Before any engine: the read succeeds and is empty (no NOGROUP).
    let none = world
        .market()
        .take_jobs("early-worker", 10)
        .await
        .expect("read");
    assert!(none.is_empty(), "{none:?}");

    world
        .market()
        .record_updates(T0_MS, &[("AAPL".to_owned(), T0_MS)])
        .await
        .expect("record");
    let mut engine = world.engine(engine_config("early-engine")).await;
    let report = engine.step(T0_MS).await;
    assert!(report.ready && report.jobs_enqueued == 1, "{report:?}");
    let taken = world
        .market()
        .take_jobs("early-worker", 10)
        .await
        .expect("read");
    assert_eq!(taken.len(), 1, "{taken:?}");
    let job = taken[0].payload.as_deref().unwrap_or_default();
    assert!(job.contains("\"symbols\":[\"AAPL\"]"), "{job}");
    // The worker's command again, after the engine: BUSYGROUP, which it tolerates.
    assert!(!worker_creates_group(&mut con, &jobs).await.expect("XGROUP"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engines_and_workers_racing_group_creation_all_succeed_with_one_group_each() {
    let world = World::new("race-groups:").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..RACERS {
        let store = world.store().await;
        let mut con = world.connection().await;
        let jobs = world.keys().jobs();
        tasks.spawn(async move {
            if i % 2 == 0 {
                store.ensure_groups().await.map_err(|e| e.to_string())
            } else {
                worker_creates_group(&mut con, &jobs)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        });
    }
    for outcome in tasks.join_all().await {
        outcome.expect("every creator succeeds, BUSYGROUP tolerated");
    }
    let mut con = world.connection().await;
    assert_eq!(
        group_names(&mut con, &world.keys().jobs()).await,
        [WORKER_GROUP]
    );
    assert_eq!(
        group_names(&mut con, &world.keys().results()).await,
        [ENGINE_GROUP]
    );
}

/// A job that reached the stream before its group existed (Redis lost its state between an
/// instance's reload and its dispatch): the group, created from `0` by either side, still
/// delivers it. From `$` it would be skipped and its claims held until the bucket ends.
#[tokio::test]
async fn a_job_written_before_any_group_exists_is_delivered() {
    let world = World::new("pregroup:").await;
    let mut con = world.connection().await;
    let job = r#"{"job_id":"1-1717421400000-1","strategy_id":1,"user_id":7,"bucket_start_ms":1717421400000,"mode":"per_ticker","symbols":["AAPL"]}"#;
    let _: String = redis::cmd("XADD")
        .arg(world.keys().jobs())
        .arg("*")
        .arg("job")
        .arg(job)
        .query_async(&mut con)
        .await
        .expect("XADD");
    world.store().await.ensure_groups().await.expect("groups");
    let taken = world
        .market()
        .take_jobs("late-worker", 10)
        .await
        .expect("read");
    let payloads: Vec<_> = taken.iter().map(|e| e.payload.as_deref()).collect();
    assert_eq!(payloads, [Some(job)]);
}
