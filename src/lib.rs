//! `tickgate-suite`: the root package. It owns the cross-crate integration tests in `tests/`
//! (one binary, `tests/main.rs`) and the criterion benches in `benches/`; this is the test
//! support they share (ripgrep's `tests/util.rs`).
//!
//! - [`World`]: a real Redis for one test and everything built on it under one key
//!   namespace — store handles, the catalog (written through [`CatalogEntry`]), engines and
//!   their settings, the full-evaluation oracle.
//! - [`Worker`]: the test worker: takes every job, answers it, fails or discovers some.
//! - [`ObservedClock`]: a [`ManualClock`] that tells a test when the service waits, so shutdown
//!   tests synchronise on what the service does, never on sleeps.
//! - [`python`]: the Python reference worker (`examples/worker.py`) as a child process.
//! - [`schema`]: a checker for the JSON Schemas under `docs/schemas/`.
//! - [`tls`]: a TLS-only `redis-server` with a throwaway CA (the `openssl` CLI).
//! - Fixtures: [`T0_MS`], [`Rng`], [`ticker_pool`], [`random_catalog`], [`market_updates`].
//! - [`http_get`]: a hand-written HTTP/1.1 GET, to scrape the engine's endpoints.

pub mod binary;
pub mod python;
pub mod schema;
pub mod tls;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tickgate::config::EngineConfig;
use tickgate::core::catalog::CatalogEntry;
use tickgate::core::jobs::{Job, JobMode};
use tickgate::core::time::{MINUTE_MS, SECOND_MS};
use tickgate::runtime::clock::Sleep;
use tickgate::runtime::{Clock, Engine, ManualClock, StepReport};
use tickgate::store::{Catalog, KeySpace, RedisStore, RedisStoreConfig, WorkerSide};
use tickgate::{StrategyId, Ticker};
use tickgate_sim::RedisServer;
use tickgate_sim::oracle::{Dispatch, Oracle};
use tickgate_sim::world::scenario::WorkerSpec;
use tickgate_sim::world::worker::{Answer, Worker as SimWorker};

/// 2024-06-03T13:30:00Z, a Monday market open: the origin of every test's time.
pub const T0_MS: i64 = 1_717_421_400_000;
/// The engines' tick interval in tests (the seed's 10 s).
pub const TICK_MS: i64 = 10 * SECOND_MS;
/// Universes above this size take the Lua path in tests: small, so both paths run.
pub const TEST_LUA_THRESHOLD: usize = 20;

/// Bound on a test's direct Redis calls: a hang guard, generous because a 2-core machine
/// runs tests in parallel (a full `SLOWLOG GET` or `XRANGE` may wait behind a million-entry
/// write of another test).
const DIRECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A real Redis as the environment asks (`TICKGATE_REDIS`, see the README; the bench uses
/// it too). Panics with the provisioning error, which names every way to get one.
pub async fn redis() -> RedisServer {
    RedisServer::from_env()
        .await
        .unwrap_or_else(|e| panic!("no Redis for this test: {e}"))
}

/// A Redis this test owns (for faults: pause, restart): the environment's, unless that is
/// a shared `REDIS_URL` server, in which case a local `redis-server` process.
async fn dedicated_redis() -> RedisServer {
    let server = redis().await;
    if server.is_dedicated() {
        return server;
    }
    let path = tickgate_sim::provision::find_redis_server()
        .expect("fault tests need a Redis of their own: Docker or redis-server on PATH");
    RedisServer::start_plan(tickgate_sim::provision::Plan::Process(path))
        .await
        .unwrap_or_else(|e| panic!("no dedicated Redis: {e}"))
}

/// A single-threaded runtime for synchronous property tests. Enter it (`rt.enter()`)
/// before provisioning, so a container's removal on drop finds the runtime even while a
/// failing case unwinds.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// One test's Redis, with every key under `server.key_prefix() + namespace`, so tests (and
/// property-test cases) sharing a server never see each other's keys.
pub struct World {
    server: RedisServer,
    namespace: String,
    /// The platform's handle: writes the catalog and the updates, reads as the workers do.
    market: RedisStore,
    /// The catalog as written (id → JSON).
    catalog: BTreeMap<StrategyId, String>,
}

/// How a [`World`] is made: `World::builder("ns:").dedicated().catalog(..).build().await`.
pub struct WorldBuilder {
    namespace: String,
    dedicated: bool,
    catalog: BTreeMap<StrategyId, CatalogEntry>,
}

impl WorldBuilder {
    /// A Redis of the test's own, for faults (pause, restart).
    pub fn dedicated(mut self) -> WorldBuilder {
        self.dedicated = true;
        self
    }

    /// Catalog entries written when the world is built.
    pub fn catalog(mut self, entries: impl IntoIterator<Item = CatalogEntry>) -> WorldBuilder {
        self.catalog.extend(entries.into_iter().map(|e| (e.id, e)));
        self
    }

    /// Provisions the Redis, connects the market's handle and writes the catalog.
    pub async fn build(self) -> World {
        let server = if self.dedicated {
            dedicated_redis().await
        } else {
            redis().await
        };
        let config = namespaced(&server, &self.namespace);
        let market = connect(&config).await;
        let mut catalog = BTreeMap::new();
        for (id, entry) in self.catalog {
            let json = entry.to_json();
            market
                .catalog_write(id, Some(&json), None)
                .await
                .expect("catalog write");
            catalog.insert(id, json);
        }
        World {
            server,
            namespace: self.namespace,
            market,
            catalog,
        }
    }
}

impl World {
    /// A world with keys under `namespace` (e.g. `"e2e:"`).
    pub fn builder(namespace: &str) -> WorldBuilder {
        WorldBuilder {
            namespace: namespace.to_owned(),
            dedicated: false,
            catalog: BTreeMap::new(),
        }
    }

    /// A world on the environment's Redis with nothing written yet.
    pub async fn new(namespace: &str) -> World {
        World::builder(namespace).build().await
    }

    /// The Redis under test.
    pub fn server(&self) -> &RedisServer {
        &self.server
    }

    /// The Redis under test, handed over (e.g. to the simulator's fault injector).
    pub fn into_server(self) -> RedisServer {
        self.server
    }

    /// The Redis under test, for a restart.
    pub fn server_mut(&mut self) -> &mut RedisServer {
        &mut self.server
    }

    /// Store settings for this world's namespace (change timeouts, then [`World::store_with`]).
    pub fn store_config(&self) -> RedisStoreConfig {
        namespaced(&self.server, &self.namespace)
    }

    /// A new connection, as another process (engine instance, worker) would have.
    pub async fn store(&self) -> RedisStore {
        connect(&self.store_config()).await
    }

    /// A new connection with keys under `sub`, inside this world's namespace (one per
    /// property-test case, so cases never see each other's keys).
    pub async fn store_under(&self, sub: &str) -> RedisStore {
        connect(&namespaced(
            &self.server,
            &format!("{}{sub}", self.namespace),
        ))
        .await
    }

    /// A new connection with other settings.
    pub async fn store_with(&self, config: &RedisStoreConfig) -> RedisStore {
        connect(config).await
    }

    /// The market's (platform's) handle: catalog, updates, and the workers' reads.
    pub fn market(&self) -> &RedisStore {
        &self.market
    }

    /// The key names of this world.
    pub fn keys(&self) -> &KeySpace {
        self.market.keys()
    }

    /// A plain connection, for direct reads and the seed's script.
    pub async fn connection(&self) -> MultiplexedConnection {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(DIRECT_TIMEOUT))
            .set_response_timeout(Some(DIRECT_TIMEOUT));
        redis::Client::open(self.server.url())
            .expect("a valid URL")
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.server.source()))
    }

    /// The catalog written at build (id → JSON).
    pub fn catalog(&self) -> &BTreeMap<StrategyId, String> {
        &self.catalog
    }

    /// The full-evaluation oracle over this world's catalog.
    pub fn oracle(&self, per_ticker: bool) -> Oracle {
        Oracle::new(per_ticker, &self.catalog)
    }

    /// An engine on a connection of its own, stepped by the test.
    pub async fn engine(&self, config: EngineConfig) -> Engine<RedisStore> {
        Engine::new(Arc::new(self.store().await), config)
    }
}

fn namespaced(server: &RedisServer, namespace: &str) -> RedisStoreConfig {
    let mut config = RedisStoreConfig::new(server.url());
    config.keys = KeySpace::new(&format!("{}{namespace}", server.key_prefix()), false);
    config
}

async fn connect(config: &RedisStoreConfig) -> RedisStore {
    RedisStore::connect(config)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

/// Engine settings of the tests: a 10 s tick, a small Lua threshold, `consumer` as the
/// results-stream consumer (one per instance), and no clock-skew check: the tests' clocks
/// run in 2024 while Redis's runs now (the check's own test turns it on).
pub fn engine_config(consumer: &str) -> EngineConfig {
    EngineConfig {
        tick_interval_ms: TICK_MS,
        lua_threshold: TEST_LUA_THRESHOLD,
        consumer: consumer.to_owned(),
        max_clock_skew_ms: None,
        ..EngineConfig::default()
    }
}

/// Steps every engine at `now_ms`, concurrently (a task each, as separate processes would
/// run), and returns their reports in order.
pub async fn step_all(engines: &mut Vec<Engine<RedisStore>>, now_ms: i64) -> Vec<StepReport> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut engine) in std::mem::take(engines).into_iter().enumerate() {
        tasks.spawn(async move {
            let report = engine.step(now_ms).await;
            (i, engine, report)
        });
    }
    let mut done: Vec<_> = tasks.join_all().await;
    done.sort_by_key(|(i, ..)| *i);
    let mut reports = Vec::with_capacity(done.len());
    for (_, engine, report) in done {
        engines.push(engine);
        reports.push(report);
    }
    reports
}

/// Persists what an engine discovered, once (what the service's persister task does).
pub async fn persist(engine: &Engine<RedisStore>) {
    engine
        .persister()
        .pass(&**engine.store(), engine.metrics())
        .await;
}

/// SplitMix64: tiny, portable, good enough to generate test traffic.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of `items` (not empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// `n` distinct valid tickers, cycling through the shapes of real symbols, including the
/// separators `:` `.` `/` that must survive Redis and Lua untouched.
pub fn ticker_pool(n: usize) -> Vec<Ticker> {
    (0..n)
        .map(|i| {
            let raw = match i % 5 {
                0 => format!("T{i}"),
                1 => format!("X:C{i}USD"),
                2 => format!("BRK{i}.B"),
                3 => format!("O:AAPL{i:06}C00200000"),
                _ => format!("FX/{i}"),
            };
            Ticker::parse(&raw).expect("pool tickers are valid")
        })
        .collect()
}

/// The names of [`ticker_pool`]`(n)`.
pub fn ticker_names(n: usize) -> Vec<String> {
    ticker_pool(n)
        .into_iter()
        .map(|t| t.as_str().to_owned())
        .collect()
}

/// A catalog of strategies `1..=n` over `pool`, deterministic from `rng`: timeframes from
/// 1m to 1d, every tenth strategy global, mostly small universes and every seventh one above
/// [`TEST_LUA_THRESHOLD`].
pub fn random_catalog(rng: &mut Rng, n: u64, pool: &[String]) -> Vec<CatalogEntry> {
    const TIMEFRAMES: [&str; 5] = ["1m", "5m", "15m", "1h", "1d"];
    (1..=n)
        .map(|id| {
            let timeframe = *rng.pick(&TIMEFRAMES);
            let universe = (id % 10 != 0).then(|| {
                let size = if id % 7 == 0 {
                    25 + rng.below(20)
                } else {
                    1 + rng.below(12)
                };
                (0..size).map(|_| rng.pick(pool).clone()).collect()
            });
            CatalogEntry::new(id, 1000 + id, &format!("s{id}"), timeframe, universe)
        })
        .collect()
}

/// Market updates for the tick at `now`: fresh ones inside the last interval, and one in
/// ten a late arrival stamped up to ten minutes back.
pub fn market_updates(rng: &mut Rng, pool: &[String], now: i64, count: u64) -> Vec<(String, i64)> {
    (0..count)
        .map(|_| {
            let ticker = rng.pick(pool).clone();
            let back = if rng.chance(10) {
                rng.below(10 * MINUTE_MS as u64) as i64
            } else {
                rng.below(TICK_MS as u64) as i64
            };
            (ticker, now - 1 - back)
        })
        .collect()
}

/// The test worker: the simulator's worker ([`tickgate_sim::world::worker::Worker`]) with no
/// latency, failing and discovering by percentages, seeded from the test's [`Rng`].
pub struct Worker {
    pub fail_percent: u64,
    pub discover_percent: u64,
}

/// What a worker did in one round.
#[derive(Default)]
pub struct Round {
    pub dispatched: BTreeSet<Dispatch>,
    pub failed: Vec<Job>,
    pub discovered: Vec<(StrategyId, Vec<String>)>,
    /// (strategy, bucket, symbol) of every per-ticker job, with repeats, to find duplicates.
    pub per_ticker: Vec<(StrategyId, i64, String)>,
}

impl Worker {
    /// A worker that never fails and never discovers.
    pub const PERFECT: Worker = Worker {
        fail_percent: 0,
        discover_percent: 0,
    };

    /// Takes every queued job and answers it at once. `pool` is where `used_symbols` come
    /// from.
    pub async fn round<S: WorkerSide>(&self, store: &S, rng: &mut Rng, pool: &[String]) -> Round {
        let spec = WorkerSpec {
            latency_ms: 0,
            failure_rate: self.fail_percent as f64 / 100.0,
            used_symbols_rate: self.discover_percent as f64 / 100.0,
            ..WorkerSpec::default()
        };
        let mut worker = SimWorker::new(&spec, rng.next_u64());
        let answered = worker
            .round(store, T0_MS, |n| {
                (0..n).map(|_| rng.pick(pool).clone()).collect()
            })
            .await
            .expect("worker round")
            .answered;
        let mut round = Round::default();
        answered.iter().for_each(|a| round.record(a));
        round
    }
}

impl Round {
    /// Records an answered job, checking the contract: its symbols are sorted.
    fn record(&mut self, answer: &Answer) {
        let job = &answer.job;
        let listed = job.symbols.as_deref().unwrap_or_default();
        assert!(
            listed.is_sorted(),
            "job {}: symbols not sorted: {listed:?}",
            job.job_id
        );
        let symbols: BTreeSet<String> = listed.iter().cloned().collect();
        if job.mode == JobMode::PerTicker {
            let of_job = |t: &String| (job.strategy_id, job.bucket_start_ms, t.clone());
            self.per_ticker.extend(symbols.iter().map(of_job));
        }
        self.dispatched
            .insert((job.strategy_id, job.bucket_start_ms, job.mode, symbols));
        if let Some(used) = &answer.used_symbols {
            self.discovered.push((job.strategy_id, used.clone()));
        }
        if !answer.success {
            self.failed.push(job.clone());
        }
    }
}

/// What an [`ObservedClock`] has seen of its sleepers.
#[derive(Debug, Default)]
struct Sleepers {
    /// Deadlines ever waited for.
    requested: BTreeSet<i64>,
    /// Deadlines a sleeper reached (it woke).
    woken: BTreeSet<i64>,
    /// Sleepers alive now (waiting, not yet dropped).
    alive: usize,
}

/// A [`ManualClock`] that reports who sleeps on it. The service's engine loop sleeps until
/// the next step after each step, so "someone waits for `next`" means "the step before it
/// finished", and "the sleep for `t` woke" means "the step at `t` has begun": a test awaits
/// those (no polling, no sleeping). Clones share one clock.
#[derive(Clone)]
pub struct ObservedClock {
    clock: ManualClock,
    sleepers: Arc<tokio::sync::watch::Sender<Sleepers>>,
}

impl ObservedClock {
    /// A clock stopped at `start_ms`.
    pub fn new(start_ms: i64) -> ObservedClock {
        ObservedClock {
            clock: ManualClock::new(start_ms),
            sleepers: Arc::new(tokio::sync::watch::Sender::new(Sleepers::default())),
        }
    }

    /// Moves the clock to `to_ms` (never backwards), waking the sleepers it passes.
    pub fn advance_to(&self, to_ms: i64) {
        self.clock.advance_to(to_ms);
    }

    /// Completes once some task has waited for `deadline_ms`.
    pub async fn requested(&self, deadline_ms: i64) {
        let mut rx = self.sleepers.subscribe();
        rx.wait_for(|s| s.requested.contains(&deadline_ms))
            .await
            .expect("the clock is alive");
    }

    /// Completes once a sleep for `deadline_ms` has woken.
    pub async fn woken(&self, deadline_ms: i64) {
        let mut rx = self.sleepers.subscribe();
        rx.wait_for(|s| s.woken.contains(&deadline_ms))
            .await
            .expect("the clock is alive");
    }

    /// Whether any task waited for `deadline_ms`.
    pub fn was_requested(&self, deadline_ms: i64) -> bool {
        self.sleepers.borrow().requested.contains(&deadline_ms)
    }

    /// Tasks sleeping on this clock now.
    pub fn sleepers(&self) -> usize {
        self.sleepers.borrow().alive
    }
}

/// Counts a sleeper as alive until it is dropped (finished or cancelled).
struct Alive(Arc<tokio::sync::watch::Sender<Sleepers>>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.send_modify(|s| s.alive -= 1);
    }
}

impl Clock for ObservedClock {
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn sleep_until(&self, deadline_ms: i64) -> Sleep<'_> {
        self.sleepers.send_modify(|s| {
            s.requested.insert(deadline_ms);
            s.alive += 1;
        });
        let alive = Alive(self.sleepers.clone());
        Box::pin(async move {
            self.clock.sleep_until(deadline_ms).await;
            alive.0.send_modify(|s| {
                s.woken.insert(deadline_ms);
            });
        })
    }
}

/// What [`http_get`] received.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    /// The response head (status line and headers).
    pub head: String,
    pub body: String,
}

/// GETs `path` from `addr`: a hand-written HTTP/1.1 request, read until the server closes
/// (the engine's server serves one request per connection). Enough for `/metrics`,
/// `/healthz` and `/readyz` without a client dependency.
pub async fn http_get(addr: SocketAddr, path: &str) -> HttpReply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await?;
        Ok::<_, std::io::Error>(reply)
    };
    let reply = tokio::time::timeout(DIRECT_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("GET {path}: no answer within {DIRECT_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let reply = String::from_utf8(reply).expect("an HTTP reply in UTF-8");
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: no status line in {head:?}"));
    HttpReply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}
