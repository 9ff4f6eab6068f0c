//! `tickgate-sim`: replays a synthetic market against a real Redis with the real engine and
//! checks it every tick. Exit codes (one place, `main`): 0 ok, 1 crash (setup, Redis,
//! I/O), 2 usage, 3 safety violation, 4 liveness violation, 5 divergence from the oracle,
//! 6 Redis memory above the scenario's bound.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tickgate::store::{ModelStore, RedisStore, StoreError};
use tickgate_sim::faults::{NoFaults, RedisFaults};
use tickgate_sim::provision::{self, ProvisionSettings, RedisMode, RedisServer};
use tickgate_sim::report::{self, ReportContext};
use tickgate_sim::run::{RunStats, SIM_REDIS_TIMEOUT, Sabotage, Violation, run};
use tickgate_sim::scenario::Scenario;

#[derive(Parser)]
#[command(
    name = "tickgate-sim",
    about = "Deterministic simulation of tickgate against a real Redis"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a scenario and writes its report.
    Run {
        /// Scenario file (TOML).
        #[arg(long, default_value = "fixtures/scenarios/default.toml")]
        scenario: PathBuf,
        /// Seed of every random choice; a random one is drawn (and printed) if absent.
        #[arg(long)]
        seed: Option<u64>,
        /// Where Redis comes from: auto, url (REDIS_URL), container, process, or memory
        /// (the engine on the in-memory store; no Redis faults).
        #[arg(long, default_value = "auto")]
        redis: String,
        /// Report path (default: reports/sim-<scenario>.md).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Breaks the run on purpose to show the checks fail: skip-claims, drop-updates or hide-job.
        #[arg(long, hide = true)]
        sabotage: Option<String>,
    },
    /// Provisions a Redis as tests do, reports where it came from, and removes it.
    Redis,
}

/// Every way the program can end, mapped to an exit code in `main`.
enum Exit {
    Usage(String),
    Crash(String),
    Violation(Violation),
}

fn progress_reporter(scenario: &Scenario) -> impl FnMut(i64, &RunStats) + use<> {
    let total = (scenario.duration_ms / scenario.tick_interval_ms).max(1) as u64 + 1;
    let start = scenario.start_ms;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} ticks, {msg} [{elapsed}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut last_day = -1;
    move |now, stats| {
        let day = (now - start) / 86_400_000;
        match &bar {
            Some(bar) => {
                bar.set_position(stats.ticks);
                bar.set_message(format!("day {day}, {} jobs", stats.jobs));
            }
            None if day != last_day => {
                eprintln!("day {day}: {} ticks, {} jobs", stats.ticks, stats.jobs);
            }
            None => {}
        }
        last_day = day;
    }
}

async fn simulate(
    scenario_path: PathBuf,
    seed: Option<u64>,
    redis: String,
    report_path: Option<PathBuf>,
    sabotage: Option<String>,
) -> Result<(), Exit> {
    let seed = seed.unwrap_or_else(|| {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(std::process::id())
    });
    // The seed first: whatever happens next, the run can be repeated.
    println!("seed {seed}");
    let scenario = Scenario::load(&scenario_path).map_err(|e| Exit::Usage(e.to_string()))?;
    let sabotage = match sabotage.as_deref() {
        None => None,
        Some("skip-claims") => Some(Sabotage::SkipClaims),
        Some("drop-updates") => Some(Sabotage::DropUpdates),
        Some("hide-job") => Some(Sabotage::HideJob),
        Some(other) => {
            return Err(Exit::Usage(format!(
                "--sabotage {other:?}: expected skip-claims, drop-updates or hide-job"
            )));
        }
    };
    let report_path =
        report_path.unwrap_or_else(|| PathBuf::from(format!("reports/sim-{}.md", scenario.name)));
    let mut command = format!(
        "cargo run --release -p tickgate-sim -- run --scenario {} --seed {seed}",
        scenario_path.display()
    );
    if redis != "auto" {
        command.push_str(&format!(" --redis {redis}"));
    }
    let mode = redis.to_ascii_lowercase();
    let server = if mode == "memory" {
        None
    } else {
        // `--redis auto` (the default) leaves the choice to TICKGATE_REDIS / REDIS_URL, as
        // tests do; an explicit mode overrides them.
        let mut settings = ProvisionSettings::from_env().map_err(|e| Exit::Usage(e.to_string()))?;
        if mode != "auto" {
            settings.mode = RedisMode::parse(&mode).map_err(|e| Exit::Usage(e.to_string()))?;
        }
        match RedisServer::start(&settings).await {
            Ok(server) => Some(server),
            Err(e) if settings.mode == RedisMode::Auto => {
                // A Docker without the image (no registry here) should not end the run when
                // a local redis-server can serve.
                let process = provision::find_redis_server().map(provision::Plan::Process);
                match process {
                    Some(plan) => match RedisServer::start_plan(plan).await {
                        Ok(server) => {
                            println!("notice: {e}; using a local redis-server instead");
                            Some(server)
                        }
                        Err(e2) => {
                            println!(
                                "notice: no Redis could be had ({e}; {e2}); running on the in-memory store"
                            );
                            None
                        }
                    },
                    None => {
                        println!(
                            "notice: no Redis could be had ({e}); running on the in-memory store"
                        );
                        None
                    }
                }
            }
            Err(e) => return Err(Exit::Crash(e.to_string())),
        }
    };
    let crash = |e: StoreError| Exit::Crash(e.to_string());
    let (outcome, redis_source) = match server {
        None => {
            let store = ModelStore::new(tickgate::limits::DEFAULT_MAX_UNIVERSE);
            let stores = || {
                let s = store.clone();
                async move { Ok::<_, StoreError>(s) }
            };
            (
                run(
                    &scenario,
                    seed,
                    stores,
                    &mut NoFaults,
                    sabotage,
                    progress_reporter(&scenario),
                )
                .await
                .map_err(crash)?,
                "in-memory store (no Redis)".to_owned(),
            )
        }
        Some(server) => {
            let source = server.source();
            let mut config = tickgate::store::RedisStoreConfig::new(server.url());
            config.keys = tickgate::store::KeySpace::new(server.key_prefix(), false);
            config.response_timeout = SIM_REDIS_TIMEOUT;
            config.connect_timeout = SIM_REDIS_TIMEOUT;
            config.reconnect_retries = 1;
            let admin = RedisStore::connect(&config).await.map_err(crash)?;
            let mut faults = RedisFaults::new(server, admin);
            let stores = || {
                let c = config.clone();
                async move { RedisStore::connect(&c).await }
            };
            let outcome = run(
                &scenario,
                seed,
                stores,
                &mut faults,
                sabotage,
                progress_reporter(&scenario),
            )
            .await
            .map_err(crash)?;
            println!(
                "Redis time by command (name, calls, µs): {:?}",
                faults.top_commands(8).await
            );
            (outcome, source)
        }
    };
    let stats = outcome.map_err(Exit::Violation)?;
    let ctx = ReportContext {
        command: &command,
        scenario: &scenario,
        seed,
        redis: &redis_source,
    };
    report::write(&report_path, &ctx, &stats)
        .map_err(|e| Exit::Crash(format!("writing {}: {e}", report_path.display())))?;
    println!(
        "ok: {} ticks, {} jobs ({} run-everything), {:.1} round trips/tick (seed-faithful {:.1}), p99 tick {:.2} ms, digest {}",
        stats.ticks,
        stats.jobs,
        stats.run_everything,
        stats.round_trips as f64 / stats.ticks.max(1) as f64,
        stats.seed_round_trips as f64 / stats.ticks.max(1) as f64,
        stats.tick_us.value_at_quantile(0.99) as f64 / 1000.0,
        stats.digest
    );
    if !stats.seed_tick_us.is_empty() {
        println!(
            "seed-faithful tick p50/p99 {:.2}/{:.2} ms vs tickgate {:.2}/{:.2} ms on the same {} ticks",
            stats.seed_tick_us.value_at_quantile(0.5) as f64 / 1000.0,
            stats.seed_tick_us.value_at_quantile(0.99) as f64 / 1000.0,
            stats.sampled_tick_us.value_at_quantile(0.5) as f64 / 1000.0,
            stats.sampled_tick_us.value_at_quantile(0.99) as f64 / 1000.0,
            stats.seed_tick_us.len()
        );
    }
    println!("wall time by phase (ms): {:?}", stats.phase_ms);
    println!("report: {}", report_path.display());
    Ok(())
}

// One thread: the loop and the engine tasks take turns, so no round trip pays for a
// cross-thread wake-up; Redis has the other core to itself.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Run {
            scenario,
            seed,
            redis,
            report,
            sabotage,
        } => simulate(scenario, seed, redis, report, sabotage).await,
        Command::Redis => match RedisServer::from_env().await {
            Ok(server) => {
                println!("redis ready: {}", server.source());
                Ok(())
            }
            Err(e) => Err(Exit::Crash(e.to_string())),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Exit::Usage(msg)) => {
            eprintln!("tickgate-sim: {msg}");
            ExitCode::from(2)
        }
        Err(Exit::Crash(msg)) => {
            eprintln!("tickgate-sim: crash: {msg}");
            ExitCode::from(1)
        }
        Err(Exit::Violation(v)) => {
            eprintln!("tickgate-sim: {v}");
            ExitCode::from(match v {
                Violation::Safety { .. } => 3,
                Violation::Liveness { .. } => 4,
                Violation::Divergence { .. } | Violation::Checker { .. } => 5,
                Violation::Memory { .. } => 6,
            })
        }
    }
}
