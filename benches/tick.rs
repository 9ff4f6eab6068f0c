//! A whole tick at W-100k (DESIGN §6, §8) against a real Redis, in seed-faithful mode and
//! tickgate mode, on the same workload and the same server in the same run, so
//! the speed-up is a measured ratio.
//!
//! `TICKGATE_REDIS=process cargo bench --bench tick` (any `TICKGATE_REDIS` mode works; see
//! the README). `TICKGATE_BENCH_STRATEGIES=N` runs a scaled W-100k with N strategies (same
//! tickers and size distribution) instead, for a quick look.
//!
//! **The seed-faithful tick is measured on a slice of W-100k.** One seed-faithful tick over
//! all 100,000 strategies takes 50–70 s on the 2-core reference machine (383,544 awaited
//! round trips, and every strategy fetches and decodes the whole updated set, ≈2,800
//! members), and criterion needs at least ten samples plus a warm-up: over ten minutes. So Redis holds the *whole*
//! W-100k, but `seed_faithful` evaluates only the first quarter of the strategies
//! ([`SEED_FAITHFUL_DIVISOR`]; ids are a uniform sample: sizes are shuffled, timeframes
//! drawn per strategy). Its cost is linear in the strategies evaluated — each one issues
//! its own commands against the same state, over a pool that stays saturated — so a full
//! tick is 4 × the measured time (checked with single ticks of 12,500, 25,000, 50,000 and
//! 100,000 strategies: 0.49, 0.54, 0.48 and 0.50 ms per strategy). Each function declares the strategies it evaluates as its throughput,
//! so criterion's strategies/s are directly comparable between the two modes.
//! `TICKGATE_BENCH_SEED_FAITHFUL_STRATEGIES=N` evaluates N strategies instead (all of
//! them: `=100000`, about thirteen minutes).
//!
//! State: every measured tick starts from the same Redis state — universes populated, one
//! minute of updates ending at [`NOW_MS`], and no trigger state — because the trigger
//! hashes and run markers are deleted before each tick, outside the timed section
//! (`iter_custom`). Each tick therefore does the full work of the first tick of a bucket.

use std::hint::black_box;
use std::time::{Duration, Instant};

use std::sync::atomic::Ordering;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use std::sync::Arc;

use tickgate::config::EngineConfig;
use tickgate::runtime::{Engine, Metrics};
use tickgate::store::{KeySpace, RedisStore, RedisStoreConfig, Store};
use tickgate_sim::baseline::{Baseline, default_pool_size};
use tickgate_sim::workload::{
    Workload, WorkloadSpec, clear_trigger_state, populate, seeded_rng, write_updates,
};

/// Seed of the benchmarked workload: fixed, so every run measures the same market.
const SEED: u64 = 20_240_715;

/// Logical "now": 2024-07-15 14:30:20 UTC (10:30:20 New York, the market open), twenty
/// seconds into its minute, so a `1m` strategy sees only the last 20 s of updates while
/// every longer timeframe sees the whole minute.
const NOW_MS: i64 = 1_721_053_820_000;

/// The engine's tick interval (the seed's 10 s).
const TICK_MS: i64 = 10_000;

/// Catalog entries per pipelined `HSET`: large universes make entries big, so a thousand
/// keeps each round trip to a few megabytes.
const CATALOG_BATCH: usize = 1_000;

/// The updates written before the bench: the minute ending at [`NOW_MS`].
const UPDATE_WINDOW_MS: i64 = 60_000;

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

fn spec() -> WorkloadSpec {
    env_count("TICKGATE_BENCH_STRATEGIES").map_or_else(WorkloadSpec::w100k, WorkloadSpec::scaled)
}

async fn setup_connection(url: &str) -> MultiplexedConnection {
    let config = AsyncConnectionConfig::new().set_response_timeout(Some(SETUP_RESPONSE_TIMEOUT));
    redis::Client::open(url)
        .expect("a valid Redis URL")
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("a setup connection")
}

fn tick_w100k(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let server = rt.block_on(tickgate_suite::redis());
    let keys = KeySpace::new(server.key_prefix(), false);
    let spec = spec();

    let started = Instant::now();
    let workload = Workload::generate(&spec, SEED).expect("a valid workload spec");
    let generated = started.elapsed();
    let mut con = rt.block_on(setup_connection(server.url()));
    let written = rt
        .block_on(populate(&mut con, &keys, &workload))
        .expect("universes written");
    let updates = workload
        .updates(NOW_MS - UPDATE_WINDOW_MS, NOW_MS, &mut seeded_rng(SEED + 1))
        .expect("a one-minute window");
    rt.block_on(write_updates(&mut con, &keys, &updates))
        .expect("updates written");
    eprintln!(
        "tick_w100k: {} strategies, {} universes with {} members, {} updates; \
         generated in {generated:.1?}, written in {:.1?} ({})",
        workload.strategies.len(),
        written.universes,
        written.members,
        updates.len(),
        started.elapsed() - generated,
        server.source(),
    );

    let all = workload.strategies.len();
    let evaluated = env_count("TICKGATE_BENCH_SEED_FAITHFUL_STRATEGIES")
        .unwrap_or(all / SEED_FAITHFUL_DIVISOR)
        .clamp(1, all);
    let slice = &workload.strategies[..evaluated];
    let baseline = rt
        .block_on(Baseline::connect(
            server.url(),
            keys.clone(),
            default_pool_size(),
            slice,
        ))
        .expect("the baseline's connection pool");

    let mut group = c.benchmark_group("tick_w100k");
    // Flat sampling: one tick per iteration, the same count in every sample — a linear
    // ramp would need 55 ticks for ten samples.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(SAMPLES);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(1));

    group.throughput(Throughput::Elements(evaluated as u64));
    let mut reported = false;
    group.bench_function("seed_faithful", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                rt.block_on(clear_trigger_state(&mut con, &keys, &workload.strategies))
                    .expect("trigger state cleared");
                let start = Instant::now();
                let tick = rt.block_on(baseline.tick(NOW_MS)).expect("a baseline tick");
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

    // tickgate: the engine service on the same Redis and workload. Catalog entries are
    // written once; the engine loads them (and every universe) before anything is timed.
    rt.block_on(write_catalog(&mut con, &keys, &workload));
    rt.block_on(clear_trigger_state(&mut con, &keys, &workload.strategies))
        .expect("trigger state cleared");
    let config = EngineConfig {
        tick_interval_ms: TICK_MS,
        // No cleanup or metrics log inside the measured window.
        cleanup_initial_delay_ms: i64::MAX / 4,
        metrics_log_interval_ms: i64::MAX / 4,
        ..EngineConfig::default()
    };
    let mut store_config = RedisStoreConfig::new(server.url());
    store_config.keys = keys.clone();
    store_config.response_timeout = SETUP_RESPONSE_TIMEOUT;
    let store = rt
        .block_on(RedisStore::connect(&store_config))
        .expect("engine store");
    let mut engine = Engine::new(Arc::new(store), config);
    // The first step loads the catalog and the universes, then evaluates every strategy:
    // the cold start, measured once.
    let cold = Instant::now();
    let round_trips_of =
        |e: &Engine<RedisStore>| e.store().counters().round_trips.load(Ordering::Relaxed);
    let rt_before = round_trips_of(&engine);
    let report = rt.block_on(engine.step(NOW_MS));
    let m = engine.metrics().clone();
    eprintln!(
        "tick_w100k/tickgate cold start (catalog and universe load plus a full evaluation of \
         all {all} strategies): {:.2?}, {} round trips, {} jobs",
        cold.elapsed(),
        round_trips_of(&engine) - rt_before,
        Metrics::get(&m.jobs_enqueued),
    );
    assert!(report.ready, "the engine reached Redis");

    // Steady state: every iteration is the next tick, 10 s later, after 10 s of updates at
    // the workload's rate (written outside the timed section). One tick in six crosses a
    // minute, so `1m` buckets roll over inside the samples.
    let mut now = NOW_MS;
    let mut update_rng = seeded_rng(SEED + 2);
    let mut ticks = 0u64;
    let mut round_trips = 0u64;
    let mut ready = true;
    group.throughput(Throughput::Elements(all as u64));
    group.bench_function("tickgate", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let batch = workload
                    .updates(now, now + TICK_MS, &mut update_rng)
                    .expect("a ten-second window");
                rt.block_on(write_updates(&mut con, &keys, &batch))
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
    eprintln!(
        "tick_w100k/tickgate: {ticks} steady ticks, {:.1} round trips per tick, {} jobs in all, \
         ready = {}",
        round_trips as f64 / ticks.max(1) as f64,
        Metrics::get(&m.jobs_enqueued),
        ready,
    );

    group.finish();
    drop(con);
    // The server (a process or container) is removed here, after the last measurement.
    drop(server);
}

/// Writes every strategy as a catalog entry (DESIGN §2.8 JSON) for the engine to load.
async fn write_catalog(con: &mut MultiplexedConnection, keys: &KeySpace, workload: &Workload) {
    for chunk in workload.strategies.chunks(CATALOG_BATCH) {
        let mut pipe = redis::pipe();
        for s in chunk {
            let universe = match &s.universe {
                Some(list) => serde_json::json!(list),
                None => serde_json::json!("all"),
            };
            let entry = serde_json::json!({
                "id": s.id, "user_id": s.user_id, "name": s.name,
                "timeframe": s.timeframe, "universe": universe, "active": true,
            });
            pipe.cmd("HSET")
                .arg(keys.catalog())
                .arg(s.id)
                .arg(entry.to_string())
                .ignore();
        }
        let () = pipe.query_async(con).await.expect("catalog written");
    }
}

criterion_group!(benches, tick_w100k);
criterion_main!(benches);
