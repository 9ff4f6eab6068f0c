//! The operators' endpoints over real HTTP while an `AlertService` runs on a real Redis:
//! `/metrics` holds every series of DESIGN §2.9 with exactly the values of the service's
//! counters; `/readyz` is 503 until the catalog is loaded and while Redis is gone; the
//! shutdown future stops the server; the legacy shims' calls are on `/metrics`; every
//! metric name of `deploy/grafana-dashboard.json` is a series `/metrics` serves.
//!
//! The service runs on an [`ObservedClock`]: between two steps it waits on the clock, so a
//! scrape there reads counters nothing is changing (the test worker never discovers, so the
//! persister is idle too).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tickgate::config::{Config, EngineConfig, HttpConfig};
use tickgate::http::{HttpState, serve};
use tickgate::runtime::metrics::TICK_MS_BUCKETS;
use tickgate::runtime::{AlertService, Health, Metrics};
use tickgate::store::{RedisStore, Store, Updates, WorkerSide};
use tickgate_suite::{
    ObservedClock, Rng, T0_MS, TICK_MS, Worker, World, engine_config, http_get, market_updates,
    random_catalog, ticker_names,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A hang guard for the server's exit, not a measure.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// The server on a free loopback port: its address, the shutdown trigger, the task.
async fn start_server(state: HttpState) -> (SocketAddr, oneshot::Sender<()>, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async {
        stopped.await.unwrap_or(());
    }));
    (addr, stop, server)
}

/// `/metrics` as series (`name{labels}`) → value; comments and `# EOF` skipped.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let value = value
                .parse()
                .unwrap_or_else(|_| panic!("value of {line:?}"));
            (series.to_owned(), value)
        })
        .collect()
}

/// Scrapes `/metrics`.
async fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let reply = http_get(addr, "/metrics").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.head.contains("application/openmetrics-text"));
    assert!(reply.body.ends_with("# EOF\n"), "{}", reply.body);
    parse(&reply.body)
}

/// Every series of `Metrics`, named as the README lists them, with the value it must show.
/// Written out field by field (no `..`): a counter added to `Metrics` fails to compile
/// here until the test knows its series.
#[allow(clippy::too_many_lines, reason = "a table: one row per series")]
fn expected(m: &Metrics) -> BTreeMap<String, f64> {
    let Metrics {
        ticker_updates,
        universe_updates,
        strategy_runs,
        skipped_no_update,
        skipped_bucket_dup,
        skipped_invalid_timeframe,
        skipped_oversized_universe,
        skipped_damaged_key,
        missing_universe_fallbacks,
        future_stamps,
        cleanup_operations,
        cleanup_removed,
        lua_intersections,
        lua_fallbacks,
        universe_discoveries,
        discovery_invalid_symbols,
        discovery_rejected,
        discovery_persist_failures,
        deprecated_calls,
        jobs_enqueued,
        results_ok,
        results_failed,
        claims_released,
        claims_written_back,
        dead_letters,
        results_late,
        dead_letter_failures,
        backpressure_steps,
        stream_entries_trimmed,
        jobs_redelivered,
        results_taken_over,
        catalog_sweep_reapplied,
        catalog_errors,
        tick_errors,
        clock_skew_ms,
        clock_skew_skips,
        tracked_tickers,
        universe_size_buckets,
        universe_size_total,
        active_strategies,
        jobs_pending,
        jobs_lag,
        results_pending,
        results_lag,
        tick_ms_histogram,
        tick_ms_sum,
        ticks,
    } = m;
    let g = |c| Metrics::get(c) as f64;
    let mut want: BTreeMap<String, f64> = [
        ("ticker_updates_total", ticker_updates),
        ("universe_updates_total", universe_updates),
        ("strategy_runs_total", strategy_runs),
        ("skipped_total{reason=\"no_update\"}", skipped_no_update),
        ("skipped_total{reason=\"bucket_dup\"}", skipped_bucket_dup),
        (
            "skipped_total{reason=\"invalid_timeframe\"}",
            skipped_invalid_timeframe,
        ),
        (
            "skipped_total{reason=\"oversized_universe\"}",
            skipped_oversized_universe,
        ),
        ("skipped_total{reason=\"damaged_key\"}", skipped_damaged_key),
        ("skipped_total{reason=\"invalid_entry\"}", catalog_errors),
        (
            "missing_universe_fallbacks_total",
            missing_universe_fallbacks,
        ),
        ("future_stamps_total", future_stamps),
        ("cleanup_operations_total", cleanup_operations),
        ("cleanup_removed_total", cleanup_removed),
        ("lua_intersections_total", lua_intersections),
        ("lua_fallbacks_total", lua_fallbacks),
        ("universe_discoveries_total", universe_discoveries),
        ("discovery_invalid_symbols_total", discovery_invalid_symbols),
        ("discovery_rejected_total", discovery_rejected),
        (
            "discovery_persist_failures_total",
            discovery_persist_failures,
        ),
        ("deprecated_calls_total", deprecated_calls),
        ("jobs_enqueued_total", jobs_enqueued),
        ("results_ok_total", results_ok),
        ("results_failed_total", results_failed),
        ("claims_released_total", claims_released),
        ("claims_written_back_total", claims_written_back),
        ("dead_letters_total", dead_letters),
        ("results_late_total", results_late),
        ("dead_letter_failures_total", dead_letter_failures),
        ("backpressure_steps_total", backpressure_steps),
        ("stream_entries_trimmed_total", stream_entries_trimmed),
        ("jobs_redelivered_total", jobs_redelivered),
        ("results_taken_over_total", results_taken_over),
        ("catalog_sweep_reapplied_total", catalog_sweep_reapplied),
        ("tick_errors_total", tick_errors),
        ("clock_skew_skips_total", clock_skew_skips),
        ("tracked_tickers", tracked_tickers),
        ("active_strategies", active_strategies),
        ("universe_members", universe_size_total),
        ("jobs_pending", jobs_pending),
        ("jobs_lag", jobs_lag),
        ("results_pending", results_pending),
        ("results_lag", results_lag),
        ("tick_duration_seconds_count", ticks),
    ]
    .into_iter()
    .map(|(name, counter)| (format!("tickgate_{name}"), g(counter)))
    .collect();
    let sizes = ["small", "medium", "large", "xlarge"];
    for (size, gauge) in sizes.iter().zip(universe_size_buckets) {
        let series = format!("tickgate_strategies_by_universe_size{{size=\"{size}\"}}");
        want.insert(series, g(gauge));
    }
    let skew_ms = clock_skew_ms.load(std::sync::atomic::Ordering::Relaxed);
    want.insert(
        "tickgate_clock_skew_seconds".into(),
        skew_ms as f64 / 1000.0,
    );
    // Over the strategies with an explicit universe (the size classes), not every active one.
    let with_universe: f64 = universe_size_buckets.iter().map(g).sum();
    let average = g(universe_size_total) / with_universe.max(1.0);
    want.insert("tickgate_universe_size_average".into(), average);
    let sum = g(tick_ms_sum) / 1000.0;
    want.insert("tickgate_tick_duration_seconds_sum".into(), sum);
    let mut cumulative = 0.0;
    for (i, count) in tick_ms_histogram.iter().enumerate() {
        cumulative += g(count);
        let le = TICK_MS_BUCKETS
            .get(i)
            .map_or("+Inf".to_owned(), |ms| format!("{:?}", *ms as f64 / 1000.0));
        let series = format!("tickgate_tick_duration_seconds_bucket{{le=\"{le}\"}}");
        want.insert(series, cumulative);
    }
    want
}

/// The readiness and store series of a ready service whose last step was at `last_ms`.
fn expected_health(
    service: &AlertService<RedisStore, ObservedClock>,
    last_ms: i64,
) -> BTreeMap<String, f64> {
    let counters = service.store().counters();
    let g = |c| Metrics::get(c) as f64;
    [
        ("ready", 1.0),
        ("running", 1.0),
        ("redis_reachable", 1.0),
        ("catalog_loaded", 1.0),
        ("backpressure", 0.0),
        ("clock_skewed", 0.0),
        ("last_ok_step_timestamp_seconds", last_ms as f64 / 1000.0),
        ("redis_round_trips_total", g(&counters.round_trips)),
        (
            "invalid_stored_members_total",
            g(&counters.invalid_stored_members),
        ),
        ("invalid_scores_total", g(&counters.invalid_scores)),
    ]
    .into_iter()
    .map(|(name, value)| (format!("tickgate_{name}"), value))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_holds_every_series_with_the_counters_values() {
    let mut rng = Rng(11);
    let pool = ticker_names(40);
    let entries = random_catalog(&mut rng, 30, &pool);
    let world = World::builder("http:").catalog(entries).build().await;
    let clock = ObservedClock::new(T0_MS - 1);
    // Gauges refreshed at every step, as the metrics log does every 5 minutes.
    let config = EngineConfig {
        metrics_log_interval_ms: TICK_MS,
        ..engine_config("http-1")
    };
    let service = AlertService::new(world.store().await, clock.clone(), config);
    let (addr, stop, server) = start_server(HttpState::of_service(&service)).await;
    service.start();
    let worker = Worker {
        fail_percent: 20,
        discover_percent: 0,
    };
    const STEPS: i64 = 6;
    let mut last = T0_MS;
    for k in 0..STEPS {
        last = T0_MS + k * TICK_MS;
        let batch = market_updates(&mut rng, &pool, last, 12);
        world
            .market()
            .record_updates(last, &batch)
            .await
            .expect("record");
        clock.advance_to(last);
        clock.requested(last + TICK_MS).await; // the step at `last` is done
        if k < STEPS - 2 {
            worker.round(world.market(), &mut rng, &pool).await;
        } else if k == STEPS - 2 {
            // Before the last step, a worker takes 3 jobs and answers none: the last step
            // finds them pending, and the rest not delivered yet (lag).
            let taken = world.market().take_jobs("slow", 3).await.expect("take");
            assert_eq!(taken.len(), 3, "jobs to take");
        }
    }

    let scraped = scrape(addr).await;
    let metrics = service.metrics();
    let mut want = expected(&metrics);
    want.extend(expected_health(&service, last));
    let missing: Vec<&String> = want.keys().filter(|k| !scraped.contains_key(*k)).collect();
    let unknown: Vec<&String> = scraped.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "missing {missing:?}, unknown {unknown:?}"
    );
    for (series, value) in &want {
        assert_eq!(scraped[series], *value, "{series}");
    }
    // The run did what the series show: something of each kind happened.
    let get = |name: &str| scraped[&format!("tickgate_{name}")];
    for name in [
        "jobs_enqueued_total",
        "results_ok_total",
        "results_failed_total",
        "claims_released_total",
        "lua_intersections_total",
        "skipped_total{reason=\"no_update\"}",
        "tracked_tickers",
        "active_strategies",
        "jobs_lag",
        "redis_round_trips_total",
    ] {
        assert!(get(name) > 0.0, "{name} is 0: the test drove nothing there");
    }
    assert_eq!(get("jobs_pending"), 3.0, "the slow worker's jobs");
    assert_eq!(get("tick_duration_seconds_count"), STEPS as f64);
    assert_eq!(
        get("tick_duration_seconds_bucket{le=\"+Inf\"}"),
        STEPS as f64
    );
    dashboard_names_are_served(&scraped);

    service.stop().await;
    stop.send(()).expect("server listens");
    shut_down(addr, server).await;
}

/// Every `tickgate_…` name in the Grafana dashboard (expressions, variables) is a series
/// that `/metrics` serves: a renamed series cannot leave a panel silently empty.
fn dashboard_names_are_served(scraped: &BTreeMap<String, f64>) {
    fn strings<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match value {
            serde_json::Value::String(s) => out.push(s),
            serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana-dashboard.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut texts = Vec::new();
    strings(&json, &mut texts);
    let is_name = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    let used: std::collections::BTreeSet<&str> = texts
        .iter()
        .flat_map(|s| s.match_indices("tickgate_").map(move |(i, _)| &s[i..]))
        .map(|rest| rest.split(|c| !is_name(c)).next().unwrap_or(rest))
        .collect();
    let served: std::collections::BTreeSet<&str> = scraped
        .keys()
        .map(|series| series.split('{').next().unwrap_or(series))
        .collect();
    let unknown: Vec<&&str> = used.iter().filter(|n| !served.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard names series /metrics lacks: {unknown:?}"
    );
    assert!(
        used.len() >= 40,
        "only {} names found in the dashboard",
        used.len()
    );
}

/// The server returns after its shutdown future completes, and the port is closed.
async fn shut_down(addr: SocketAddr, server: JoinHandle<()>) {
    tokio::time::timeout(HANG_GUARD, server)
        .await
        .expect("serve returned after its shutdown future")
        .expect("no panic");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still listening after shutdown"
    );
}

/// `/readyz`: its status and body.
async fn readyz(addr: SocketAddr) -> (u16, String) {
    let reply = http_get(addr, "/readyz").await;
    (reply.status, reply.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_until_the_catalog_loads_and_while_redis_is_gone() {
    let world = World::builder("")
        .dedicated()
        .catalog(random_catalog(&mut Rng(3), 5, &ticker_names(10)))
        .build()
        .await;
    let mut store_config = world.store_config();
    // Short timeouts: a step on the paused Redis fails quickly.
    store_config.response_timeout = Duration::from_millis(300);
    store_config.connect_timeout = Duration::from_millis(300);
    store_config.reconnect_retries = 1;
    let clock = ObservedClock::new(T0_MS - 1);
    let store = world.store_with(&store_config).await;
    let service = AlertService::new(store, clock.clone(), engine_config("readyz-1"));
    let (addr, stop, server) = start_server(HttpState::of_service(&service)).await;

    let (status, body) = readyz(addr).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("not running") && body.contains("catalog is not loaded"),
        "{body}"
    );
    service.start();
    let (status, body) = readyz(addr).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        !body.contains("not running") && body.contains("catalog is not loaded"),
        "{body}"
    );

    clock.advance_to(T0_MS);
    clock.requested(T0_MS + TICK_MS).await;
    let (status, body) = readyz(addr).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with("ready\n") && body.contains("(1717421400000 ms)"),
        "{body}"
    );

    world.server().pause().await.expect("pause");
    let down = T0_MS + TICK_MS;
    clock.advance_to(down);
    clock.requested(down + TICK_MS).await; // the step on the paused Redis failed
    let (status, body) = readyz(addr).await;
    let health = http_get(addr, "/healthz").await.status;
    let scraped = scrape(addr).await;
    world.server().resume().await.expect("resume");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("Redis was not reachable"), "{body}");
    assert!(
        !body.contains("catalog"),
        "the catalog stays loaded: {body}"
    );
    assert_eq!(health, 200, "the process is alive");
    assert_eq!(scraped["tickgate_redis_reachable"], 0.0);
    assert_eq!(scraped["tickgate_ready"], 0.0);
    assert!(scraped["tickgate_tick_errors_total"] > 0.0);
    let last_ok = scraped["tickgate_last_ok_step_timestamp_seconds"];
    assert_eq!(
        last_ok,
        T0_MS as f64 / 1000.0,
        "the last step that reached Redis"
    );

    let back = down + TICK_MS;
    clock.advance_to(back);
    clock.requested(back + TICK_MS).await;
    let (status, body) = readyz(addr).await;
    assert_eq!(status, 200, "ready again once Redis answers: {body}");

    service.stop().await;
    let (status, body) = readyz(addr).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not running"), "{body}");
    stop.send(()).expect("server listens");
    shut_down(addr, server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(deprecated, reason = "the legacy shims are under test")]
async fn legacy_calls_are_counted_on_metrics() {
    use tickgate::legacy::{self, start_alert_loop, stop_alert_loop};
    let world = World::new("http-legacy:").await;
    let state = HttpState::new(legacy::metrics(), Arc::new(Health::default()), None);
    let (addr, stop, server) = start_server(state).await;
    let calls = |m: &BTreeMap<String, f64>| m["tickgate_deprecated_calls_total"];
    let before = calls(&scrape(addr).await);
    assert_eq!(before, legacy::deprecated_calls() as f64);

    stop_alert_loop().await; // nothing started: forwards to nothing, still counted
    assert_eq!(calls(&scrape(addr).await), before + 1.0);
    let config = Config {
        redis: world.store_config(),
        engine: EngineConfig {
            // The legacy service runs on the system clock: the shortest tick allowed.
            tick_interval_ms: 100,
            ..engine_config("legacy-1")
        },
        http: HttpConfig::default(),
    };
    start_alert_loop(&config).await.expect("start");
    let scraped = scrape(addr).await;
    assert_eq!(calls(&scraped), before + 2.0);
    // The global service counts into the same `Metrics`: its steps show up here.
    let metrics = legacy::metrics();
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    while Metrics::get(&metrics.ticks) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the legacy service never stepped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_alert_loop().await;
    let scraped = scrape(addr).await;
    assert_eq!(calls(&scraped), before + 3.0);
    assert!(scraped["tickgate_tick_duration_seconds_count"] > 0.0);
    stop.send(()).expect("server listens");
    shut_down(addr, server).await;
}
