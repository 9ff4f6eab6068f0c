//! The Python reference worker (`examples/worker.py`, written from the README's contract
//! alone) end to end against the `tickgate` binary (`run --config`, stopped by SIGTERM) on
//! the real clock, with a key prefix and cluster hash tags: the worker starts first and
//! creates its group, jobs flow,
//! a success keeps its claims, a failure is released and re-dispatched as a new job, a
//! malformed result lands in the dead-letter stream, `used_symbols` replaces a universe,
//! and every job and result matches the schemas under `docs/schemas/`.
//!
//! Nothing here sleeps to synchronise: each wait polls Redis with a bound.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use serde_json::Value;
use tickgate::core::catalog::CatalogEntry;
use tickgate::core::jobs::{Job, JobMode};
use tickgate::runtime::{Clock, SystemClock};
use tickgate::store::{Catalog, KeySpace, RedisStoreConfig, Updates, WORKER_GROUP};
use tickgate_suite::binary::EngineProcess;
use tickgate_suite::python::PythonWorker;
use tickgate_suite::{World, schema};

/// Succeeds: its claims are kept.
const SUCCEEDS: u64 = 1;
/// Its first job fails (`--fail-once`): released, then re-dispatched as a new job.
const FAILS_ONCE: u64 = 2;
/// Answered with a result lacking `strategy_id` (`--malformed`): dead-lettered.
const MALFORMED: u64 = 3;
/// A global strategy: one `-run` job without symbols.
const GLOBAL: u64 = 4;
/// Reports `used_symbols` (`--used-symbols`): its universe is replaced.
const DISCOVERS: u64 = 5;

/// The shortest tick the config allows, so the engine reacts within a fraction of a second.
const REAL_TICK_MS: i64 = 100;
/// Bound on each wait: generous, because a 2-core machine runs many tests at once and the
/// Python interpreter takes a while to start.
const WAIT_BOUND: Duration = Duration::from_secs(60);
/// How often a wait re-reads Redis.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long the worker may take to stop after SIGTERM: one `--block-ms` read and a job.
const STOP_BOUND: Duration = Duration::from_secs(10);

/// Starts the engine under test as an operator does: the `tickgate` binary, `run --config`
/// with a file naming `store`'s Redis and keys (prefix, cluster hash tags), a real-clock
/// tick of `tick_interval_ms`, and its endpoints on a port the OS picks.
fn start_engine(store: &RedisStoreConfig, prefix: &str, tick_interval_ms: i64) -> EngineProcess {
    let config = format!(
        "[redis]\nurl = {url:?}\nkey_prefix = {prefix:?}\ncluster = true\n\n\
         [engine]\ntick_interval_ms = {tick_interval_ms}\nconsumer = \"py-engine-1\"\n\n\
         [http]\nlisten_addr = \"127.0.0.1:0\"\n",
        url = store.url,
    );
    EngineProcess::start("py-engine", &config)
}

/// Polls `check` until it answers `Ok`, at most [`WAIT_BOUND`]; panics with its last
/// answer and the worker's log.
async fn wait_for<F, Fut>(what: &str, worker: &mut PythonWorker, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + WAIT_BOUND;
    loop {
        let last = match check().await {
            Ok(()) => return,
            Err(why) => why,
        };
        if let Some(status) = worker.exited() {
            panic!(
                "{what}: the worker exited ({status}); log:\n{}",
                worker.log()
            );
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: not within {WAIT_BOUND:?}: {last}; worker log:\n{}",
                worker.log()
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// What Redis holds for the test, read in one pass.
struct Seen {
    jobs: Vec<Job>,
    /// Raw `job` payloads, in stream order.
    raw_jobs: Vec<String>,
    /// Raw `result` payloads, in stream order.
    results: Vec<String>,
    /// `result` payloads of dead letters.
    dead_results: Vec<String>,
    triggers: BTreeMap<u64, BTreeMap<String, String>>,
    universe_discovered: BTreeSet<String>,
    global_run: Option<String>,
    /// Results not yet read or not yet acknowledged by the engines' group.
    results_unsettled: usize,
}

async fn entries(con: &mut MultiplexedConnection, stream: &str, field: &str) -> Vec<String> {
    let raw: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(con)
        .await
        .unwrap_or_default();
    raw.into_iter()
        .flat_map(|(_, fields)| fields)
        .filter(|(name, _)| name == field)
        .map(|(_, value)| value)
        .collect()
}

async fn unsettled_results(con: &mut MultiplexedConnection, keys: &KeySpace) -> usize {
    let groups: redis::RedisResult<redis::streams::StreamInfoGroupsReply> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(keys.results())
        .query_async(con)
        .await;
    // No stream or no group yet: nothing was read, so count one result as unsettled.
    match groups {
        Ok(g) if !g.groups.is_empty() => g
            .groups
            .iter()
            .map(|g| g.pending + g.lag.unwrap_or(1))
            .sum(),
        _ => 1,
    }
}

async fn seen(con: &mut MultiplexedConnection, keys: &KeySpace) -> Seen {
    let jobs = entries(con, &keys.jobs(), "job").await;
    let mut triggers = BTreeMap::new();
    for id in [SUCCEEDS, FAILS_ONCE, MALFORMED] {
        let hash: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(keys.triggers(id))
            .query_async(con)
            .await
            .unwrap_or_default();
        triggers.insert(id, hash);
    }
    Seen {
        jobs: jobs
            .iter()
            .map(|j| serde_json::from_str(j).unwrap_or_else(|e| panic!("job {j}: {e}")))
            .collect(),
        raw_jobs: jobs,
        results: entries(con, &keys.results(), "result").await,
        dead_results: entries(con, &keys.dead(), "result").await,
        triggers,
        universe_discovered: redis::cmd("SMEMBERS")
            .arg(keys.universe(DISCOVERS))
            .query_async(con)
            .await
            .unwrap_or_default(),
        global_run: redis::cmd("GET")
            .arg(keys.strategy_run(GLOBAL))
            .query_async(con)
            .await
            .unwrap_or_default(),
        results_unsettled: unsettled_results(con, keys).await,
    }
}

impl Seen {
    fn jobs_of(&self, strategy: u64) -> Vec<&Job> {
        self.jobs
            .iter()
            .filter(|j| j.strategy_id == strategy)
            .collect()
    }

    /// Open job records (`# job …` fields) of a strategy's trigger hash.
    fn open_jobs(&self, strategy: u64) -> Vec<&String> {
        self.triggers[&strategy]
            .keys()
            .filter(|f| f.starts_with("# job "))
            .collect()
    }

    /// Everything the scenario owes has happened, or what has not yet.
    fn settled(&self) -> Result<(), String> {
        let claimed = |id: u64, ticker: &str| self.triggers[&id].contains_key(ticker);
        let checks = [
            (
                claimed(SUCCEEDS, "AAPL") && claimed(SUCCEEDS, "MSFT"),
                "strategy 1 claims kept",
            ),
            (
                self.open_jobs(SUCCEEDS).is_empty(),
                "strategy 1 job settled",
            ),
            (
                self.jobs_of(FAILS_ONCE).len() >= 2,
                "strategy 2 re-dispatched",
            ),
            (claimed(FAILS_ONCE, "FAIL1"), "strategy 2 retry claimed"),
            (
                self.open_jobs(FAILS_ONCE).is_empty(),
                "strategy 2 retry settled",
            ),
            (!self.dead_results.is_empty(), "a dead-lettered result"),
            (self.global_run.is_some(), "global strategy run"),
            (
                self.universe_discovered.contains("GOOG"),
                "strategy 5 universe replaced",
            ),
            (
                self.results_unsettled == 0,
                "every result read and acknowledged",
            ),
        ];
        let missing: Vec<&str> = checks
            .iter()
            .filter(|(ok, _)| !ok)
            .map(|(_, w)| *w)
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("still waiting for: {}", missing.join(", ")))
        }
    }
}

fn catalog() -> Vec<CatalogEntry> {
    let day = |id, name: &str, universe: Option<&[&str]>| {
        let universe = universe.map(|u| u.iter().map(|t| (*t).to_owned()).collect());
        CatalogEntry::new(id, 7, name, "1d", universe)
    };
    vec![
        day(SUCCEEDS, "succeeds", Some(&["AAPL", "MSFT"])),
        day(FAILS_ONCE, "fails once", Some(&["FAIL1"])),
        day(MALFORMED, "malformed answer", Some(&["AMZN"])),
        day(GLOBAL, "global", None),
        day(DISCOVERS, "discovers", Some(&["TSLA"])),
    ]
}

/// Starts the Python worker before any engine and waits until it has created its group.
async fn start_worker_first(
    world: &World,
    prefix: &str,
    keys: &KeySpace,
    con: &MultiplexedConnection,
) -> PythonWorker {
    let args: Vec<String> = vec![
        "--prefix".into(),
        prefix.to_owned(),
        "--cluster".into(),
        "--consumer".into(),
        "py-worker-1".into(),
        "--block-ms".into(),
        "100".into(),
        "--fail-once".into(),
        FAILS_ONCE.to_string(),
        "--malformed".into(),
        MALFORMED.to_string(),
        "--used-symbols".into(),
        format!("{DISCOVERS}=TSLA,GOOG"),
    ];
    let mut worker = PythonWorker::spawn(world.server().url(), &args);
    wait_for("the worker's group", &mut worker, || {
        let mut con = con.clone();
        let jobs = keys.jobs();
        async move {
            let groups: redis::RedisResult<redis::streams::StreamInfoGroupsReply> =
                redis::cmd("XINFO")
                    .arg("GROUPS")
                    .arg(&jobs)
                    .query_async(&mut con)
                    .await;
            match groups {
                Ok(g) if g.groups.iter().any(|g| g.name == WORKER_GROUP) => Ok(()),
                other => Err(format!("no group `workers` on {jobs} yet: {other:?}")),
            }
        }
    })
    .await;
    assert!(
        worker.log().contains("created"),
        "the worker made the group:\n{}",
        worker.log()
    );
    worker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_reference_worker_runs_end_to_end_against_the_engine() {
    let world = World::new("py:").await;
    let prefix = format!("{}py:", world.server().key_prefix());
    let mut store = world.store_config();
    store.keys = KeySpace::new(&prefix, true);
    let keys = store.keys.clone();
    let platform = world.store_with(&store).await;
    let mut con = world.connection().await;

    // The worker first: no engine has made any group yet.
    let mut worker = start_worker_first(&world, &prefix, &keys, &con).await;
    for entry in catalog() {
        platform
            .catalog_write(entry.id, Some(&entry.to_json()), None)
            .await
            .expect("catalog write");
    }
    let now = SystemClock.now_ms();
    let updates: Vec<(String, i64)> = ["AAPL", "MSFT", "FAIL1", "AMZN", "TSLA"]
        .iter()
        .map(|t| ((*t).to_owned(), now))
        .collect();
    platform
        .record_updates(now, &updates)
        .await
        .expect("record");
    let mut engine = start_engine(&store, &prefix, REAL_TICK_MS);

    wait_for("the scenario to settle", &mut worker, || {
        let mut con = con.clone();
        let keys = keys.clone();
        async move { seen(&mut con, &keys).await.settled() }
    })
    .await;
    let state = seen(&mut con, &keys).await;
    let stopped = engine.terminate(STOP_BOUND).await;
    assert!(
        matches!(stopped, Some(s) if s.success()),
        "tickgate run stops cleanly on SIGTERM: {stopped:?}\n{}",
        engine.log()
    );
    let status = worker.terminate(STOP_BOUND).await;
    assert!(
        matches!(status, Some(s) if s.success()),
        "the worker stops cleanly on SIGTERM: {status:?}\n{}",
        worker.log()
    );
    assert_what_ran(&state, &worker.log());
    assert_schemas_hold(&state);
}

/// Each strategy got exactly the jobs its answers call for.
fn assert_what_ran(state: &Seen, log: &str) {
    let ids = |strategy| -> Vec<String> {
        state
            .jobs_of(strategy)
            .iter()
            .map(|j| j.job_id.clone())
            .collect()
    };
    let succeeded = state.jobs_of(SUCCEEDS);
    assert_eq!(succeeded.len(), 1, "{:?}", ids(SUCCEEDS));
    assert_eq!(succeeded[0].mode, JobMode::PerTicker);
    assert_eq!(
        succeeded[0].symbols.as_deref(),
        Some(&["AAPL".to_owned(), "MSFT".to_owned()][..])
    );
    // The failure released FAIL1; the retry is a new job (next number), not a re-delivery.
    let retried = ids(FAILS_ONCE);
    assert_eq!(retried.len(), 2, "{retried:?}");
    assert_ne!(retried[0], retried[1]);
    assert!(retried[1].ends_with("-2"), "{retried:?}");
    // The malformed answer changed nothing: the job stays claimed and open.
    assert_eq!(ids(MALFORMED).len(), 1);
    assert_eq!(
        state.open_jobs(MALFORMED).len(),
        1,
        "{:?}",
        state.triggers[&MALFORMED]
    );
    assert!(
        state
            .dead_results
            .iter()
            .all(|r| r.contains(&format!("\"job_id\": \"{MALFORMED}-"))),
        "{:?}",
        state.dead_results
    );
    let global = state.jobs_of(GLOBAL);
    assert_eq!(global.len(), 1);
    assert!(
        global[0].job_id.ends_with("-run") && global[0].symbols.is_none(),
        "{:?}",
        global[0]
    );
    assert_eq!(
        state.global_run.as_deref(),
        Some(global[0].bucket_start_ms.to_string().as_str())
    );
    let want: BTreeSet<String> = ["GOOG", "TSLA"].iter().map(|t| (*t).to_owned()).collect();
    assert_eq!(state.universe_discovered, want);
    for word in ["failed", "malformed", "ok"] {
        assert!(
            log.contains(&format!(": {word}")),
            "no `{word}` answer in the log:\n{log}"
        );
    }
}

/// Every job the engine wrote matches the job schema; every result the worker wrote
/// matches the result schema, except the deliberately malformed one, which the schema
/// rejects as the engine did.
fn assert_schemas_hold(state: &Seen) {
    let job_schema = schema::load("job");
    let result_schema = schema::load("result");
    for raw in &state.raw_jobs {
        let value: Value = serde_json::from_str(raw).expect("the engine writes JSON");
        let broken = schema::violations(&job_schema, &value);
        assert!(broken.is_empty(), "{raw}: {broken:?}");
    }
    for raw in &state.results {
        let value: Value = serde_json::from_str(raw).expect("the worker writes JSON");
        let broken = schema::violations(&result_schema, &value);
        let malformed = state.dead_results.contains(raw);
        assert_eq!(broken.is_empty(), !malformed, "{raw}: {broken:?}");
    }
}
