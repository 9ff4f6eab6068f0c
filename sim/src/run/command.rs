//! `tickgate-sim run`: the seed first, then a Redis (or the in-memory store when asked),
//! the run, the report (also for a failed run) and the summary. Every way it can end is an
//! [`Exit`], which `main` maps to an exit code.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tickgate::core::time::DAY_MS;
use tickgate::store::{KeySpace, ModelStore, RedisStore, RedisStoreConfig, StoreError};

use super::paths;
use super::report::{self, ReportContext};
use super::server::{Provided, RedisChoice, provide};
use super::{Checks, Failure, RunOptions, RunStats, SIM_REDIS_TIMEOUT, Sabotage, Violation, run};
use crate::redis::provision::RedisServer;
use crate::redis::{NoFaults, RedisFaults};
use crate::world::scenario::Scenario;

/// Commands of `INFO commandstats` the output and the report show.
const TOP_COMMANDS: usize = 8;

/// The arguments of `tickgate-sim run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Scenario: a file, or the name of a bundled one (below). Relative paths are found
    /// from the current directory, else from the workspace root.
    #[arg(long, default_value = "default")]
    pub scenario: PathBuf,
    /// Seed of every random choice; a random one is drawn (and printed) if absent.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where Redis comes from. A named way is used or the run fails (exit 1); only auto
    /// falls back, and says so.
    #[arg(long, value_enum, default_value_t = RedisChoice::Auto, ignore_case = true)]
    pub redis: RedisChoice,
    /// Report path [default: <target dir>/tickgate-sim/sim-<scenario>.md, which leaves the
    /// repository clean]. Charts are written beside it.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Breaks the run on purpose to show the checks fail (exit 3, 4, 5).
    #[arg(long, value_enum)]
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
    let scenario_path = paths::scenario(&args.scenario);
    let scenario = Scenario::load(&scenario_path).map_err(|e| Exit::Usage(e.to_string()))?;
    let report_path = match &args.report {
        Some(path) => paths::resolve(path, false),
        None => paths::default_report(&scenario.name),
    };
    let command = regenerate(&args, seed, &scenario_path, &report_path);
    let provided = provide(args.redis).await?;
    let redis = provided.describe();
    let options = RunOptions {
        sabotage: args.sabotage,
        checks: args.checks,
    };
    let (outcome, commands) = match provided {
        Provided { server: None } => (run_in_memory(&scenario, seed, options).await?, vec![]),
        Provided {
            server: Some(server),
        } => run_on_redis(&scenario, seed, server, options).await?,
    };
    let (stats, violation, stopped) = match outcome {
        Ok(stats) => (stats, None, None),
        Err(Failure {
            violation,
            stopped,
            stats,
        }) => (*stats, Some(violation), stopped),
    };
    let ctx = ReportContext {
        command: &command,
        scenario: &scenario,
        seed,
        redis: &redis,
        verdict: violation.as_ref(),
        stopped: stopped.as_ref(),
        commands: &commands,
    };
    let charts = report::write(&report_path, &ctx, &stats)
        .map_err(|e| Exit::Crash(format!("writing {}: {e}", report_path.display())))?;
    match violation {
        None => summary(&stats),
        Some(_) => failure_summary(&stats),
    }
    println!("Redis time by command: {}", top_commands(&commands));
    println!("wall time by phase: {}", phases(&stats));
    println!(
        "report: {} (charts: {})",
        report_path.display(),
        charts.join(", ")
    );
    violation.map_or(Ok(()), |v| Err(Exit::Violation(v)))
}

/// The command that repeats this run and rewrites this report: the same build profile,
/// the seed, the scenario and report paths from the workspace root where they are inside
/// it, every flag that changes the run.
fn regenerate(args: &RunArgs, seed: u64, scenario: &Path, report: &Path) -> String {
    let profile = if cfg!(debug_assertions) {
        "cargo run -p tickgate-sim"
    } else {
        "cargo run --release -p tickgate-sim"
    };
    let shown = |p: &Path| {
        let root = paths::workspace_root();
        let absolute = std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
        let relative = root.and_then(|r| absolute.strip_prefix(r).ok().map(Path::to_owned));
        relative.unwrap_or(absolute).display().to_string()
    };
    let mut command = format!(
        "{profile} -- run --scenario {} --seed {seed}",
        shown(scenario)
    );
    if args.redis != RedisChoice::Auto {
        command.push_str(&format!(" --redis {}", args.redis.name()));
    }
    if args.checks != Checks::All {
        command.push_str(" --checks independent");
    }
    if let Some(sabotage) = args.sabotage {
        command.push_str(&format!(" --sabotage {}", sabotage.name()));
    }
    if args.report.is_some() {
        command.push_str(&format!(" --report {}", shown(report)));
    }
    command
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
}

/// A run's stats, or its failure.
type Outcome = Result<RunStats, Failure>;

async fn run_in_memory(
    scenario: &Scenario,
    seed: u64,
    options: RunOptions,
) -> Result<Outcome, Exit> {
    let store = ModelStore::new(tickgate::limits::DEFAULT_MAX_UNIVERSE);
    let stores = || {
        let s = store.clone();
        async move { Ok::<_, StoreError>(s) }
    };
    let progress = progress_reporter(scenario);
    run(scenario, seed, stores, &mut NoFaults, options, progress)
        .await
        .map_err(crash)
}

async fn run_on_redis(
    scenario: &Scenario,
    seed: u64,
    server: RedisServer,
    options: RunOptions,
) -> Result<(Outcome, Vec<(String, u64, u64)>), Exit> {
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
    Ok((outcome, faults.top_commands(TOP_COMMANDS).await))
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
}

/// `evalsha 12034 calls 812.4 ms, hmget …`, the most time first.
fn top_commands(rows: &[(String, u64, u64)]) -> String {
    if rows.is_empty() {
        return "none (no Redis)".to_owned();
    }
    let rows: Vec<String> = rows
        .iter()
        .map(|(name, calls, us)| format!("{name} {calls} calls {:.1} ms", *us as f64 / 1000.0))
        .collect();
    rows.join(", ")
}

/// `engine 66100 ms (48%), …`, the most time first.
fn phases(stats: &RunStats) -> String {
    let total: u64 = stats.phase_ms.values().sum();
    let mut rows: Vec<(&&str, &u64)> = stats.phase_ms.iter().collect();
    rows.sort_by_key(|(_, ms)| std::cmp::Reverse(**ms));
    let rows: Vec<String> = rows
        .into_iter()
        .map(|(phase, ms)| {
            let share = 100.0 * *ms as f64 / total.max(1) as f64;
            format!("{phase} {ms} ms ({share:.0}%)")
        })
        .collect();
    rows.join(", ")
}

/// Lines of progress a run prints when stderr is not a terminal (a CI log): one per this
/// share of the ticks, enough to see it move, few enough for a log.
const PROGRESS_LINES: u64 = 20;

/// Progress on stderr: a bar with the time left on a terminal, else a line every
/// 1/[`PROGRESS_LINES`] of the run with the simulated day and the time left.
fn progress_reporter(scenario: &Scenario) -> impl FnMut(i64, &RunStats) + use<> {
    let total = (scenario.duration_ms / scenario.tick_interval_ms).max(1) as u64 + 1;
    let start = scenario.start_ms;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} ticks, {msg} [{elapsed_precise}, about {eta} left]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let started = Instant::now();
    let every = total.div_ceil(PROGRESS_LINES);
    move |now, stats| {
        let day = (now - start) / DAY_MS;
        match &bar {
            Some(bar) => {
                bar.set_position(stats.ticks);
                bar.set_message(format!("day {day}, {} jobs", stats.jobs));
            }
            None if stats.ticks % every == 0 && stats.ticks > 0 => {
                let done = stats.ticks as f64 / total as f64;
                let left = started.elapsed().as_secs_f64() * (1.0 - done) / done;
                eprintln!(
                    "{:.0}%: {} of {total} ticks (day {day}), {} jobs, about {left:.0} s left",
                    done * 100.0,
                    stats.ticks,
                    stats.jobs
                );
            }
            None => {}
        }
    }
}
