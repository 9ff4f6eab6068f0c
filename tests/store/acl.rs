//! Redis ACL users: the engine runs as a user with only the commands the README's Redis
//! contract lists, on keys under its prefix only, through every operation it has (catalog
//! sync, intersections both ways, dispatch, settlement with failures, discovery persisted,
//! re-delivery, dead letters, stream trimming, cleanup, the clock check), and Redis
//! denies it nothing (`ACL LOG` stays empty). A wrong password is a startup error that
//! names the user and never shows the password.
//!
//! A Redis of the test's own (`World::dedicated`: a container or a `redis-server` process,
//! whatever `TICKGATE_REDIS` says), since ACL users are server-wide. The platform's writes
//! and the workers go through the default user: only the engine is under test.

use std::sync::Arc;

use tickgate::config::EngineConfig;
use tickgate::core::time::{DAY_MS, MINUTE_MS};
use tickgate::runtime::{Engine, Metrics};
use tickgate::store::{Maintenance, RedisStore, RedisStoreConfig, Settlement, StoreError, Updates};
use tickgate_suite::{
    Rng, T0_MS, TICK_MS, Worker, World, engine_config, market_updates, persist, random_catalog,
    ticker_names,
};

/// The engine's commands, exactly as the README's Redis contract gives them to operators:
/// those it sends and those its Lua scripts call.
const ENGINE_COMMANDS: &str = "+time +type +exists +del +rename +pexpire +get +set +incr \
+hget +hmget +hset +hsetnx +hdel +hexists +hlen +hkeys +hscan +sadd +scard +smembers +smismember \
+zadd +zrem +zrange +zcard +zcount +zscore +zmscore +zremrangebyrank +xadd +xack +xclaim \
+xpending +xrange +xreadgroup +xlen +xtrim +xinfo|groups +xgroup|create +xgroup|delconsumer +evalsha +script|load";

const USER: &str = "tickgate";
const PASSWORD: &str = "acl-Pa55-s3cret";
/// The test's key namespace, which is the user's whole key space.
const NAMESPACE: &str = "acl:";
/// A strategy of the random catalog (with a universe) whose universe key the test breaks.
const DAMAGED: u64 = 3;
/// A strategy of the random catalog that a direct `HDEL` removes.
const DELETED: u64 = 5;

/// Creates the engine's ACL user on `world`'s server (through the default user).
async fn create_user(world: &World) {
    let mut admin = world.connection().await;
    let mut acl = redis::cmd("ACL");
    acl.arg("SETUSER").arg(USER).arg("reset").arg("on");
    acl.arg(format!(">{PASSWORD}"));
    acl.arg(format!("~{NAMESPACE}*")).arg("resetchannels");
    let commands = std::env::var("ACL_TRY").unwrap_or(ENGINE_COMMANDS.to_owned());
    acl.arg("-@all")
        .arg(commands.split_whitespace().collect::<Vec<_>>());
    let () = acl.query_async(&mut admin).await.expect("ACL SETUSER");
    let () = redis::cmd("ACL")
        .arg("LOG")
        .arg("RESET")
        .query_async(&mut admin)
        .await
        .expect("ACL LOG RESET");
}

/// `world`'s store settings, logged in as `user` with `password`.
fn as_user(world: &World, user: &str, password: &str) -> RedisStoreConfig {
    let mut config = world.store_config();
    let address = config
        .url
        .strip_prefix("redis://")
        .expect("a redis:// server")
        .to_owned();
    config.url = format!("redis://{user}:{password}@{address}");
    config
}

/// What Redis denied the engine, one line per kind: `reason context object`.
async fn denied(world: &World) -> Vec<String> {
    let log: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("ACL")
        .arg("LOG")
        .query_async(&mut world.connection().await)
        .await
        .expect("ACL LOG");
    let text = |entry: &std::collections::HashMap<String, redis::Value>, field: &str| match entry
        .get(field)
    {
        Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    };
    log.iter()
        .map(|e| {
            format!(
                "{} {} {}",
                text(e, "reason"),
                text(e, "context"),
                text(e, "object")
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_acl_runs_every_engine_operation() {
    let mut rng = Rng(7);
    let pool = ticker_names(40);
    let catalog = random_catalog(&mut rng, 30, &pool);
    let world = World::builder(NAMESPACE)
        .dedicated()
        .catalog(catalog)
        .build()
        .await;
    create_user(&world).await;
    let store = RedisStore::connect(&as_user(&world, USER, PASSWORD))
        .await
        .expect("connect as the ACL user");
    let config = EngineConfig {
        // Cleanup every minute, keeping the longest bucket (a day); re-delivery after a
        // minute.
        cleanup_initial_delay_ms: 0,
        cleanup_interval_ms: MINUTE_MS,
        retention_ms: 0,
        job_visibility_ms: MINUTE_MS,
        max_deliveries: 2,
        // The catalog sweep reads the whole (small) catalog every minute.
        catalog_resync_ms: MINUTE_MS,
        ..engine_config("acl-1")
    };
    let mut engine = Engine::new(Arc::new(store), config);
    let worker = Worker {
        fail_percent: 10,
        discover_percent: 10,
    };
    for k in 0..=(10 * MINUTE_MS / TICK_MS) {
        let now = T0_MS + k * TICK_MS;
        let batch = market_updates(&mut rng, &pool, now, 8);
        world
            .market()
            .record_updates(now, &batch)
            .await
            .expect("record");
        let report = engine.step(now).await;
        assert!(
            report.ready,
            "step {k}: not ready: {:?}",
            denied(&world).await
        );
        persist(&engine).await;
        disturb(&world, k, now).await;
        if k % 9 == 4 {
            // Jobs taken and never answered: re-delivered.
            tickgate::store::WorkerSide::take_jobs(world.market(), "silent", 5)
                .await
                .expect("take");
        } else {
            worker.round(world.market(), &mut rng, &pool).await;
        }
        if k == 6 {
            // Another engine instance reads the results and dies: taken over a minute later.
            let read = world.market().read_results("crashed", 100, false);
            assert!(
                !read.await.expect("read").is_empty(),
                "no results to orphan"
            );
        }
    }
    let time = engine.store().server_time_ms().await.expect("TIME");
    assert!(time.is_some());
    // Shutting down: the consumer leaves the group (nothing pending with it).
    let left = engine.store().take_results("acl-1", &[], &["acl-1"]).await;
    assert_eq!(left.expect("leave the group").forgotten, 1);
    let denied = denied(&world).await;
    assert!(denied.is_empty(), "Redis denied the engine: {denied:#?}");
    assert_every_operation_ran(engine.metrics());
}

/// What the platform and Redis do to the engine at step `k`: a stale update and a damaged
/// key (cleanup and isolation), a malformed result (a dead letter), a lost state (restore).
async fn disturb(world: &World, k: i64, now: i64) {
    if k == 0 {
        // An update older than any retention: cleanup removes it.
        let old = T0_MS - 3 * DAY_MS;
        world
            .market()
            .record_updates(now, &[("STALE", old)])
            .await
            .expect("record");
        // A universe key of the wrong type: that strategy is skipped.
        let () = redis::cmd("SET")
            .arg(world.keys().universe(DAMAGED))
            .arg("not a set")
            .query_async(&mut world.connection().await)
            .await
            .expect("SET");
    }
    if k == 2 {
        // An entry removed behind the change log's back: found by the catalog's ids.
        let () = redis::cmd("HDEL")
            .arg(world.keys().catalog())
            .arg(DELETED)
            .query_async(&mut world.connection().await)
            .await
            .expect("HDEL");
    }
    if k == 3 {
        // A malformed result: dead-lettered.
        let _: String = redis::cmd("XADD")
            .arg(world.keys().results())
            .arg("*")
            .arg("result")
            .arg("garbage")
            .query_async(&mut world.connection().await)
            .await
            .expect("XADD");
    }
    if k == 40 {
        // Redis loses its state: the engine writes back what it knew.
        let () = redis::cmd("FLUSHALL")
            .query_async(&mut world.connection().await)
            .await
            .expect("FLUSHALL");
    }
}

/// The run went through the operations whose commands the ACL must allow.
fn assert_every_operation_ran(m: &Metrics) {
    let get = Metrics::get;
    for (name, counter) in [
        ("jobs", &m.jobs_enqueued),
        ("lua intersections", &m.lua_intersections),
        ("released claims", &m.claims_released),
        ("claims written back", &m.claims_written_back),
        ("discoveries", &m.universe_discoveries),
        ("cleanups", &m.cleanup_operations),
        ("removed by cleanup", &m.cleanup_removed),
        ("damaged keys skipped", &m.skipped_damaged_key),
        (
            "strategies re-applied by the catalog sweep",
            &m.catalog_sweep_reapplied,
        ),
        ("re-deliveries", &m.jobs_redelivered),
        ("results taken over", &m.results_taken_over),
        ("dead letters", &m.dead_letters),
        ("trimmed stream entries", &m.stream_entries_trimmed),
    ] {
        assert!(get(counter) > 0, "no {name}");
    }
}

/// Operators copy the command set from the README: it must be the one tested here.
#[test]
fn the_readme_gives_operators_the_tested_command_set() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("README.md");
    let commands = ENGINE_COMMANDS
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let line = format!("resetchannels -@all {commands}\n");
    assert!(
        readme.contains(&line),
        "README.md lacks the ACL line ending {line:?}"
    );
}

#[tokio::test]
async fn a_wrong_password_names_the_user_and_never_the_password() {
    let world = World::builder(NAMESPACE).dedicated().build().await;
    create_user(&world).await;
    let wrong = "wrong-Pa55-for-acl";
    // Production's settings (reconnection retries included): the refusal is not retried
    // into a timeout.
    let config = as_user(&world, USER, wrong);
    let error = match RedisStore::connect(&config).await {
        Ok(_) => panic!("connected with a wrong password"),
        Err(e) => e,
    };
    let StoreError::Auth { user, url } = &error else {
        panic!("not an authentication error: {error}");
    };
    assert_eq!(user, USER);
    assert!(url.contains(&format!("{USER}:***@")), "{url}");
    let (display, debug) = (error.to_string(), format!("{error:?}"));
    println!("wrong password: {display}");
    for text in [&display, &debug] {
        assert!(text.contains(USER), "the user is not named: {text}");
        assert!(!text.contains(wrong), "the password is shown: {text}");
    }
    // The right password gets in: the error was the password, nothing else.
    RedisStore::connect(&as_user(&world, USER, PASSWORD))
        .await
        .expect("the right password");
}
