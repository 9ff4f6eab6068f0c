//! A whole tick at W-100k (DESIGN §6, §8) against a real Redis, in seed-faithful mode and
//! tickgate mode, on the same workload and the same server in the same run, so
//! the speed-up is a measured ratio.
//!
//! `TICKGATE_REDIS=process cargo bench --bench tick` (any `TICKGATE_REDIS` mode works; see
//! the README). `TICKGATE_BENCH_STRATEGIES=N` runs a scaled W-100k with N strategies (same
//! tickers and size distribution) instead, for a quick look.
//!
//! **The workload** is the simulator's world generator on `fixtures/scenarios/w100k.toml`
//! (the one description of W-100k): its market at [`SEED`] lists the 10,000 tickers, its
//! catalog holds the 100,000 strategies, and its updates — 3,000 a minute, in session — are
//! what every tick writes. Redis starts with [`WARM_UP_MS`] of them, so the first tick is
//! twenty seconds into a minute: a `1m` strategy sees only the last 20 s of updates while
//! every longer timeframe sees all of them.
//!
//! **The seed-faithful tick is measured on a slice of W-100k.** One seed-faithful tick over
//! all 100,000 strategies takes 50–70 s on the 2-core reference machine (383,544 awaited
//! round trips, and every strategy fetches and decodes the whole updated set, ≈2,800
//! members), and criterion needs at least ten samples plus a warm-up: over ten minutes. So
//! Redis holds the *whole* W-100k, but `seed_faithful` evaluates only the first quarter of
//! the strategies ([`SEED_FAITHFUL_DIVISOR`]; ids are a uniform sample: sizes are drawn
//! independently per strategy, global ones at shuffled ids). Its cost is linear in the
//! strategies evaluated — each one issues its own commands against the same state, over a
//! pool that stays saturated — so a full tick is 4 × the measured time (checked with single
//! ticks of 12,500, 25,000, 50,000 and 100,000 strategies: 0.49, 0.54, 0.48 and 0.50 ms
//! per strategy; measured on the former W-100k generator, whose shape this one matches).
//! Each function declares the strategies it evaluates as its throughput, so criterion's
//! strategies/s are directly comparable between the two modes.
//! `TICKGATE_BENCH_SEED_FAITHFUL_STRATEGIES=N` evaluates N strategies instead (all of
//! them: `=100000`, about thirteen minutes).
//!
//! State: every measured seed-faithful tick starts from the same Redis state — universes
//! populated, the warm-up's updates, and no trigger state — because the trigger hashes and
//! run markers are deleted before each tick, outside the timed section (`iter_custom`).
//! Each tick therefore does the full work of the first tick of a bucket.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tokio::runtime::Runtime;

use tickgate::StrategyId;
use tickgate::config::EngineConfig;
use tickgate::core::catalog::Strategy;
use tickgate::core::time::SECOND_MS;
use tickgate::runtime::{Engine, Metrics};
use tickgate::store::{KeySpace, RedisStore, RedisStoreConfig, Store};
use tickgate_sim::RedisServer;
use tickgate_sim::redis::baseline::{Baseline, SeedStrategy, default_pool_size};
use tickgate_sim::redis::load::{clear_trigger_state, populate, write_catalog, write_updates};
use tickgate_sim::world::market::Market;
use tickgate_sim::world::scenario::Scenario;

/// Seed of the benchmarked workload: fixed, so every run measures the same market.
const SEED: u64 = 20_240_715;

/// W-100k, as the simulator's scenario file describes it.
const SCENARIO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/scenarios/w100k.toml");

/// Updates written before the first tick: one minute and twenty seconds of the session
/// (module docs).
const WARM_UP_MS: i64 = 80 * SECOND_MS;

/// The engine's tick interval (the seed's 10 s).
const TICK_MS: i64 = 10 * SECOND_MS;

/// Bound on each setup command's answer: a pipelined round trip of 50,000 members takes
/// tens of milliseconds; redis-rs's default of 500 ms would be close on a busy machine.
const SETUP_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Samples per function: criterion's minimum. With flat sampling that is ten measured
/// ticks plus one warm-up tick. Criterion warns that it cannot complete them in the
/// 1 s measurement time and suggests a longer one; that is expected: a longer target would
/// only make it run two ticks per sample.
const SAMPLES: usize = 10;

/// The seed-faithful tick evaluates 1 strategy in this many (module docs): a quarter of
/// W-100k takes 14–18 s per tick, so its 11 ticks (warm-up, ten samples) and the setup
/// (≈10 s) keep `cargo bench --bench tick` at about 3.5 minutes.
const SEED_FAITHFUL_DIVISOR: usize = 4;

/// A strategy count from the environment, if set.
fn env_count(name: &str) -> Option<usize> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a strategy count, not {value:?}")),
    )
}

/// The W-100k scenario, scaled to `TICKGATE_BENCH_STRATEGIES` strategies when set.
fn scenario() -> Scenario {
    let mut scenario = Scenario::load(Path::new(SCENARIO)).unwrap_or_else(|e| panic!("{e}"));
    if let Some(count) = env_count("TICKGATE_BENCH_STRATEGIES") {
        scenario.strategies.count = count;
    }
    scenario
}

async fn setup_connection(url: &str) -> MultiplexedConnection {
    let config = AsyncConnectionConfig::new().set_response_timeout(Some(SETUP_RESPONSE_TIMEOUT));
    redis::Client::open(url)
        .expect("a valid Redis URL")
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("a setup connection")
}

/// The workload in Redis, and what the benches need of it.
struct World {
    server: RedisServer,
    keys: KeySpace,
    con: MultiplexedConnection,
    market: Market,
    /// Every strategy as the seed-faithful baseline sees it, in id order.
    strategies: Vec<SeedStrategy>,
    ids: Vec<StrategyId>,
    /// The first tick's time.
    now_ms: i64,
}

/// Generates the workload and writes its universes, catalog and warm-up updates.
fn setup(rt: &Runtime) -> World {
    let server = rt.block_on(tickgate_suite::redis());
    let keys = KeySpace::new(server.key_prefix(), false);
    let scenario = scenario();
    let started = Instant::now();
    let mut market = Market::new(&scenario, SEED);
    let catalog = market.catalog();
    let parsed: Vec<Strategy> = catalog
        .iter()
        .map(|(id, json)| Strategy::from_catalog(*id, json).expect("a valid entry").0)
        .collect();
    let now_ms = scenario.start_ms + WARM_UP_MS;
    let updates = market.step(scenario.start_ms, now_ms).updates;
    let generated = started.elapsed();
    let mut con = rt.block_on(setup_connection(server.url()));
    let written = rt
        .block_on(populate(&mut con, &keys, &parsed))
        .expect("universes written");
    rt.block_on(write_updates(&mut con, &keys, &updates))
        .expect("updates written");
    rt.block_on(write_catalog(&mut con, &keys, &catalog))
        .expect("catalog written");
    eprintln!(
        "tick_w100k: {} strategies, {} universes with {} members, {} updates; \
         generated in {generated:.1?}, written in {:.1?} ({})",
        parsed.len(),
        written.universes,
        written.members,
        updates.len(),
        started.elapsed() - generated,
        server.source(),
    );
    World {
        strategies: parsed.iter().map(SeedStrategy::of).collect(),
        ids: parsed.iter().map(|s| s.id).collect(),
        server,
        keys,
        con,
        market,
        now_ms,
    }
}

/// The seed-faithful tick on a slice of the strategies (module docs).
fn seed_faithful(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, world: &mut World) {
    let all = world.strategies.len();
    let evaluated = env_count("TICKGATE_BENCH_SEED_FAITHFUL_STRATEGIES")
        .unwrap_or(all / SEED_FAITHFUL_DIVISOR)
        .clamp(1, all);
    let slice = &world.strategies[..evaluated];
    let url = world.server.url();
    let baseline = rt
        .block_on(Baseline::connect(
            url,
            world.keys.clone(),
            default_pool_size(),
            slice,
        ))
        .expect("the baseline's connection pool");
    group.throughput(Throughput::Elements(evaluated as u64));
    let mut reported = false;
    group.bench_function("seed_faithful", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                rt.block_on(clear_trigger_state(&mut world.con, &world.keys, &world.ids))
                    .expect("trigger state cleared");
                let start = Instant::now();
                let tick = rt
                    .block_on(baseline.tick(world.now_ms))
                    .expect("a baseline tick");
                let elapsed = start.elapsed();
                timed += elapsed;
                if !reported {
                    // Every measured tick starts from the same state, so the first one's
                    // counts are every tick's.
                    reported = true;
                    eprintln!(
                        "tick_w100k/seed_faithful: {evaluated} of {all} strategies, pool of {} \
                         connections: {} round trips per tick; {} runs, {} tickers dispatched, \
                         {} skipped no_update, {} skipped bucket_dup; first tick {elapsed:.2?} \
                         (a full tick is {all}/{evaluated} of that)",
                        baseline.pool_size(),
                        tick.round_trips,
                        tick.runs,
                        tick.dispatched_tickers,
                        tick.skipped_no_update,
                        tick.skipped_bucket_dup,
                    );
                }
                black_box(tick);
            }
            timed
        })
    });
}

fn round_trips_of(engine: &Engine<RedisStore>) -> u64 {
    engine
        .store()
        .counters()
        .round_trips
        .load(Ordering::Relaxed)
}

/// tickgate's engine on the same Redis and workload, after its cold start: the first step
/// loads the catalog and every universe, then evaluates every strategy, measured once.
fn start_engine(rt: &Runtime, world: &mut World) -> Engine<RedisStore> {
    rt.block_on(clear_trigger_state(&mut world.con, &world.keys, &world.ids))
        .expect("trigger state cleared");
    let config = EngineConfig {
        tick_interval_ms: TICK_MS,
        // No cleanup or metrics log inside the measured window.
        cleanup_initial_delay_ms: i64::MAX / 4,
        metrics_log_interval_ms: i64::MAX / 4,
        ..EngineConfig::default()
    };
    let mut store_config = RedisStoreConfig::new(world.server.url());
    store_config.keys = world.keys.clone();
    store_config.response_timeout = SETUP_RESPONSE_TIMEOUT;
    let store = rt
        .block_on(RedisStore::connect(&store_config))
        .expect("engine store");
    let mut engine = Engine::new(Arc::new(store), config);
    let cold = Instant::now();
    let report = rt.block_on(engine.step(world.now_ms));
    eprintln!(
        "tick_w100k/tickgate cold start (catalog and universe load plus a full evaluation of \
         all {} strategies): {:.2?}, {} round trips, {} jobs",
        world.ids.len(),
        cold.elapsed(),
        round_trips_of(&engine),
        Metrics::get(&engine.metrics().jobs_enqueued),
    );
    assert!(report.ready, "the engine reached Redis");
    engine
}

/// Redis's CPU time so far (`INFO cpu`: user plus system, the main thread and the rest),
/// in milliseconds.
async fn redis_cpu_ms(con: &mut MultiplexedConnection) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(con)
        .await
        .expect("INFO cpu");
    info.lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| *name == "used_cpu_sys" || *name == "used_cpu_user")
        .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
        .sum::<f64>()
        * 1_000.0
}

/// Redis calls slower than this are logged during the steady ticks (DESIGN §6: no call of
/// the engine may block Redis, and every other client, for longer).
const SLOW_CALL_US: u64 = 1_000;

/// Starts logging every Redis call slower than [`SLOW_CALL_US`], from an empty log.
async fn slowlog_reset(con: &mut MultiplexedConnection) {
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(SLOW_CALL_US)
        .arg("slowlog-max-len")
        .arg(1_000)
        .query_async(con)
        .await
        .expect("CONFIG SET slowlog");
    let () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query_async(con)
        .await
        .expect("SLOWLOG RESET");
}

/// The calls logged since [`slowlog_reset`]: how many, and the longest (µs, the command with
/// its first key — a script's first key names the script's role — and argument count).
async fn slow_calls(con: &mut MultiplexedConnection) -> (usize, Option<(u64, String)>) {
    let log: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(1_000)
        .query_async(con)
        .await
        .expect("SLOWLOG GET");
    let longest = log
        .iter()
        .filter_map(|entry| match entry {
            redis::Value::Array(fields) => {
                let us = redis::from_redis_value::<u64>(fields.get(2)?.clone()).ok()?;
                let name = match fields.get(3)? {
                    redis::Value::Array(args) => {
                        let arg = |i: usize| {
                            args.get(i)
                                .and_then(|a| redis::from_redis_value::<String>(a.clone()).ok())
                                .unwrap_or_default()
                        };
                        let command = arg(0);
                        // EVALSHA sha numkeys key…: the first key; else the command's key.
                        let key = if command.eq_ignore_ascii_case("evalsha") {
                            arg(3)
                        } else {
                            arg(1)
                        };
                        format!("{command} {key}, {} arguments", args.len())
                    }
                    _ => return None,
                };
                Some((us, name))
            }
            _ => None,
        })
        .max();
    (log.len(), longest)
}

/// Steady state: every iteration is the next tick, 10 s later, after the market's next
/// 10 s of updates (written outside the timed section). One tick in six crosses a minute,
/// so `1m` buckets roll over inside the samples. Redis CPU per tick and the calls over
/// [`SLOW_CALL_US`] are reported beside criterion's times (the updates' writes, outside the
/// timed section, are in the CPU figure too: a few milliseconds a tick).
fn tickgate(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, world: &mut World) {
    let mut engine = start_engine(rt, world);
    rt.block_on(slowlog_reset(&mut world.con));
    let cpu_before_ms = rt.block_on(redis_cpu_ms(&mut world.con));
    let mut now = world.now_ms;
    let (mut ticks, mut round_trips, mut ready) = (0u64, 0u64, true);
    group.throughput(Throughput::Elements(world.ids.len() as u64));
    group.bench_function("tickgate", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let batch = world.market.step(now, now + TICK_MS).updates;
                rt.block_on(write_updates(&mut world.con, &world.keys, &batch))
                    .expect("updates written");
                now += TICK_MS;
                let before = round_trips_of(&engine);
                let start = Instant::now();
                ready &= rt.block_on(engine.step(now)).ready;
                timed += start.elapsed();
                ticks += 1;
                round_trips += round_trips_of(&engine) - before;
            }
            timed
        })
    });
    let cpu_ms = rt.block_on(redis_cpu_ms(&mut world.con)) - cpu_before_ms;
    let (slow, longest) = rt.block_on(slow_calls(&mut world.con));
    let longest = longest.map_or("none".to_owned(), |(us, name)| format!("{us} µs ({name})"));
    eprintln!(
        "tick_w100k/tickgate: {ticks} steady ticks, {:.1} round trips per tick, {} jobs in all, \
         ready = {}; Redis CPU {:.0} ms per tick; {slow} Redis calls over {SLOW_CALL_US} µs, \
         longest {longest}",
        round_trips as f64 / ticks.max(1) as f64,
        Metrics::get(&engine.metrics().jobs_enqueued),
        ready,
        cpu_ms / ticks.max(1) as f64,
    );
}

fn tick_w100k(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut world = setup(&rt);
    let mut group = c.benchmark_group("tick_w100k");
    // Flat sampling: one tick per iteration, the same count in every sample — a linear
    // ramp would need 55 ticks for ten samples.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(SAMPLES);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(1));
    seed_faithful(&mut group, &rt, &mut world);
    tickgate(&mut group, &rt, &mut world);
    group.finish();
    // The server (a process or container) is removed here, after the last measurement.
    drop(world);
}

criterion_group!(benches, tick_w100k);
criterion_main!(benches);
