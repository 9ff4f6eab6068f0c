//! `tickgate-sim`: replays a synthetic market against a real Redis with the real engine and
//! checks it every tick. Exit codes (here, and `Violation::exit_code` for the checks): 0 ok,
//! 1 crash (no Redis, Redis, I/O), 2 usage, 3 safety violation, 4 liveness violation (from
//! the independent guarantee checker or from the oracle), 5 divergence from the oracle (or
//! the independent reader disagreeing), 6 Redis memory above the scenario's bound.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use tickgate_sim::run::command::{Exit, RunArgs, simulate};
use tickgate_sim::run::paths;
use tickgate_sim::run::server::{self, RedisChoice};

#[derive(Parser)]
#[command(
    name = "tickgate-sim",
    version,
    about = "Deterministic simulation of tickgate against a real Redis"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a scenario, checks it every tick, and writes its report.
    Run(RunArgs),
    /// Provisions the Redis `run` would use, PINGs it with a real client, and removes it.
    Redis {
        /// Where Redis comes from, as for `run`.
        #[arg(long, value_enum, default_value_t = RedisChoice::Auto, ignore_case = true)]
        redis: RedisChoice,
    },
}

/// The environment the commands read, for `--help`.
const ENVIRONMENT: &str = "\
Environment:
  REDIS_URL             a Redis to use (redis://, rediss://, user:password@); under auto,
                        set means used: unreachable is exit 1, never a fallback
  TICKGATE_REDIS        auto|url|container|process, as the tests read it; --redis other
                        than auto overrides it
  TICKGATE_REDIS_IMAGE  the container image (default redis:7; no registry? build one with
                        scripts/redis-image.sh)
  DOCKER_HOST           the Docker daemon (default unix:///var/run/docker.sock)
  PATH                  where redis-server is found for process mode
  CARGO_TARGET_DIR      where the default report goes (<target>/tickgate-sim/)";

/// The exit codes, for `--help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  every check passed
  1  crash: no Redis (a named one unreachable, none to be had), I/O, a Redis error
  2  usage: bad arguments, TICKGATE_REDIS or scenario file (every problem listed)
  3  safety: dispatched twice in a bucket without a failed run between
  4  liveness: an update inside a closed bucket never dispatched for it
  5  divergence from the oracle, or the two Redis clients read different jobs
  6  memory: Redis above the scenario's cleanup.max_redis_memory_mb";

/// `--help`'s epilogue: the bundled scenarios, the environment, the exit codes.
fn after_help() -> String {
    format!(
        "Scenarios (--scenario NAME, from {}):\n{}\n\n{ENVIRONMENT}\n\n{EXIT_CODES}",
        paths::SCENARIOS_DIR,
        paths::list_scenarios()
    )
}

// One thread: the loop and the engine tasks take turns, so no round trip pays for a
// cross-thread wake-up; Redis has the other core to itself.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let epilogue = after_help();
    let command = Cli::command()
        .after_help(epilogue.clone())
        .mut_subcommand("run", |c| c.after_help(epilogue.clone()))
        .mut_subcommand("redis", |c| {
            c.after_help(format!("{ENVIRONMENT}\n\n{EXIT_CODES}"))
        });
    let cli = match command
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Run(args) => simulate(args).await,
        Command::Redis { redis } => server::check(redis).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Exit::Usage(msg)) => {
            eprintln!("tickgate-sim: {msg}");
            ExitCode::from(2)
        }
        Err(Exit::Crash(msg)) => {
            eprintln!("tickgate-sim: {msg}");
            ExitCode::from(1)
        }
        Err(Exit::Violation(v)) => {
            eprintln!("tickgate-sim: {v}");
            ExitCode::from(v.exit_code())
        }
    }
}
