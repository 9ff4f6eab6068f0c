//! `tickgate-sim run`: the seed first, then a Redis (or the in-memory store), the run, the
//! report and a one-line summary. Every way it can end is an [`Exit`], which `main` maps to
//! an exit code.

use std::io::IsTerminal;
use std::path::PathBuf;

use tickgate::core::time::DAY_MS;
use tickgate::store::{KeySpace, ModelStore, RedisStore, RedisStoreConfig, StoreError};

use super::report::{self, ReportContext};
use super::{Checks, Failure, RunOptions, RunStats, SIM_REDIS_TIMEOUT, Sabotage, Violation, run};
use crate::redis::provision::{self, ProvisionSettings, RedisMode, RedisServer};
use crate::redis::{NoFaults, RedisFaults};
use crate::world::scenario::Scenario;

/// Where Redis comes from (`--redis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RedisChoice {
    /// As tests do: `TICKGATE_REDIS` / `REDIS_URL`, else a container, else a process.
    Auto,
    /// The server at `REDIS_URL`.
    Url,
    /// A throw-away container.
    Container,
    /// A local `redis-server` on a free port.
    Process,
    /// The engine on the in-memory store; no Redis faults.
    Memory,
}

impl RedisChoice {
    /// The provisioning mode, `None` for the in-memory store.
    pub fn mode(self) -> Option<RedisMode> {
        match self {
            RedisChoice::Auto => Some(RedisMode::Auto),
            RedisChoice::Url => Some(RedisMode::Url),
            RedisChoice::Container => Some(RedisMode::Container),
            RedisChoice::Process => Some(RedisMode::Process),
            RedisChoice::Memory => None,
        }
    }

    /// The value as typed on the command line.
    pub fn name(self) -> &'static str {
        match self {
            RedisChoice::Auto => "auto",
            RedisChoice::Url => "url",
            RedisChoice::Container => "container",
            RedisChoice::Process => "process",
            RedisChoice::Memory => "memory",
        }
    }
}

/// The arguments of `tickgate-sim run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Scenario file (TOML).
    #[arg(long, default_value = "fixtures/scenarios/default.toml")]
    pub scenario: PathBuf,
    /// Seed of every random choice; a random one is drawn (and printed) if absent.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where Redis comes from: auto, url (REDIS_URL), container, process, or memory
    /// (the engine on the in-memory store; no Redis faults).
    #[arg(long, value_enum, default_value_t = RedisChoice::Auto, ignore_case = true)]
    pub redis: RedisChoice,
    /// Report path (default: reports/sim-<scenario>.md).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Breaks the run on purpose to show the checks fail: skip-claims, drop-updates or
    /// hide-job.
    #[arg(long, value_enum, hide = true)]
    pub sabotage: Option<Sabotage>,
    /// Which checkers judge the run: all (the independent guarantee checker, the oracle,
    /// the fred reader, the memory bound), or the independent guarantee checker alone.
    #[arg(long, value_enum, default_value_t = Checks::All, ignore_case = true)]
    pub checks: Checks,
}

/// Every way the program can end, mapped to an exit code in `main`.
#[derive(Debug)]
pub enum Exit {
    Usage(String),
    Crash(String),
    Violation(Violation),
}

/// Runs a scenario as `args` say and writes its report.
pub async fn simulate(args: RunArgs) -> Result<(), Exit> {
    let seed = args.seed.unwrap_or_else(|| {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(std::process::id())
    });
    // The seed first: whatever happens next, the run can be repeated.
    println!("seed {seed}");
    let scenario = Scenario::load(&args.scenario).map_err(|e| Exit::Usage(e.to_string()))?;
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("reports/sim-{}.md", scenario.name)));
    let mut command = format!(
        "cargo run --release -p tickgate-sim -- run --scenario {} --seed {seed}",
        args.scenario.display()
    );
    if args.redis != RedisChoice::Auto {
        command.push_str(&format!(" --redis {}", args.redis.name()));
    }
    if args.checks != Checks::All {
        command.push_str(" --checks independent");
    }
    let server = match args.redis.mode() {
        None => None,
        Some(mode) => provision_redis(mode).await?,
    };
    let options = RunOptions {
        sabotage: args.sabotage,
        checks: args.checks,
    };
    let (outcome, redis_source) = match server {
        None => run_in_memory(&scenario, seed, options).await?,
        Some(server) => run_on_redis(&scenario, seed, server, options).await?,
    };
    let (stats, violation) = match outcome {
        Ok(stats) => (stats, None),
        Err(Failure {
            violation, stats, ..
        }) => (*stats, Some(violation)),
    };
    let verdict = violation.as_ref().map(|v| v.to_string());
    let ctx = ReportContext {
        command: &command,
        scenario: &scenario,
        seed,
        redis: &redis_source,
        verdict: verdict.as_deref(),
    };
    report::write(&report_path, &ctx, &stats)
        .map_err(|e| Exit::Crash(format!("writing {}: {e}", report_path.display())))?;
    match violation {
        None => summary(&stats),
        Some(_) => failure_summary(&stats),
    }
    println!("report: {}", report_path.display());
    violation.map_or(Ok(()), |v| Err(Exit::Violation(v)))
}

/// A Redis as `mode` asks; `auto` leaves the choice to `TICKGATE_REDIS` / `REDIS_URL`, as
/// tests do, and falls back to a local `redis-server`, then to the in-memory store
/// (`None`).
async fn provision_redis(mode: RedisMode) -> Result<Option<RedisServer>, Exit> {
    let mut settings = ProvisionSettings::from_env().map_err(|e| Exit::Usage(e.to_string()))?;
    if mode != RedisMode::Auto {
        settings.mode = mode;
    }
    let e = match RedisServer::start(&settings).await {
        Ok(server) => return Ok(Some(server)),
        Err(e) if settings.mode == RedisMode::Auto => e,
        Err(e) => return Err(Exit::Crash(e.to_string())),
    };
    // A Docker without the image (no registry here) should not end the run when a local
    // redis-server can serve.
    let Some(plan) = provision::find_redis_server().map(provision::Plan::Process) else {
        println!("notice: no Redis could be had ({e}); running on the in-memory store");
        return Ok(None);
    };
    match RedisServer::start_plan(plan).await {
        Ok(server) => {
            println!("notice: {e}; using a local redis-server instead");
            Ok(Some(server))
        }
        Err(e2) => {
            println!("notice: no Redis could be had ({e}; {e2}); running on the in-memory store");
            Ok(None)
        }
    }
}

fn crash(e: StoreError) -> Exit {
    Exit::Crash(e.to_string())
}

/// What a failed run shows before its verdict: the independent checker's summary line and
/// its examples (their counts are what a failing run most needs to show).
fn failure_summary(stats: &RunStats) {
    println!("{}", stats.guarantee.line());
    for finding in &stats.guarantee.examples {
        println!("  {finding}");
    }
    println!("wall time by phase (ms): {:?}", stats.phase_ms);
}

/// A run's stats, or its failure.
type Outcome = Result<RunStats, Failure>;

async fn run_in_memory(
    scenario: &Scenario,
    seed: u64,
    options: RunOptions,
) -> Result<(Outcome, String), Exit> {
    let store = ModelStore::new(tickgate::limits::DEFAULT_MAX_UNIVERSE);
    let stores = || {
        let s = store.clone();
        async move { Ok::<_, StoreError>(s) }
    };
    let progress = progress_reporter(scenario);
    let outcome = run(scenario, seed, stores, &mut NoFaults, options, progress)
        .await
        .map_err(crash)?;
    Ok((outcome, "in-memory store (no Redis)".to_owned()))
}

async fn run_on_redis(
    scenario: &Scenario,
    seed: u64,
    server: RedisServer,
    options: RunOptions,
) -> Result<(Outcome, String), Exit> {
    let source = server.source();
    let mut config = RedisStoreConfig::new(server.url());
    config.keys = KeySpace::new(server.key_prefix(), false);
    config.response_timeout = SIM_REDIS_TIMEOUT;
    config.connect_timeout = SIM_REDIS_TIMEOUT;
    config.reconnect_retries = 1;
    let admin = RedisStore::connect(&config).await.map_err(crash)?;
    let mut faults = RedisFaults::new(server, admin);
    let stores = || {
        let c = config.clone();
        async move { RedisStore::connect(&c).await }
    };
    let progress = progress_reporter(scenario);
    let outcome = run(scenario, seed, stores, &mut faults, options, progress)
        .await
        .map_err(crash)?;
    println!(
        "Redis time by command (name, calls, µs): {:?}",
        faults.top_commands(8).await
    );
    Ok((outcome, source))
}

/// The summary lines after a run that passed every check.
fn summary(stats: &RunStats) {
    let per_tick = |n: u64| n as f64 / stats.ticks.max(1) as f64;
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "ok: {} ticks, {} jobs ({} run-everything), {:.1} round trips/tick (seed-faithful {:.1}), p99 tick {:.2} ms, digest {}",
        stats.ticks,
        stats.jobs,
        stats.run_everything,
        per_tick(stats.round_trips),
        per_tick(stats.seed_round_trips),
        ms(stats.tick_us.value_at_quantile(0.99)),
        stats.digest
    );
    if !stats.seed_tick_us.is_empty() {
        println!(
            "seed-faithful tick p50/p99 {:.2}/{:.2} ms vs tickgate {:.2}/{:.2} ms on the same {} ticks",
            ms(stats.seed_tick_us.value_at_quantile(0.5)),
            ms(stats.seed_tick_us.value_at_quantile(0.99)),
            ms(stats.sampled_tick_us.value_at_quantile(0.5)),
            ms(stats.sampled_tick_us.value_at_quantile(0.99)),
            stats.seed_tick_us.len()
        );
    }
    println!("{}", stats.guarantee.line());
    println!("wall time by phase (ms): {:?}", stats.phase_ms);
}

/// Progress on stderr: a bar on a terminal, else a line per simulated day.
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
        let day = (now - start) / DAY_MS;
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
