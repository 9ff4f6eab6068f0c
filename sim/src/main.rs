//! `tickgate-sim`: replays a synthetic market against a real Redis with the real engine and
//! checks it every tick. Exit codes (here, and `Violation::exit_code` for the checks): 0 ok,
//! 1 crash (setup, Redis, I/O), 2 usage, 3 safety violation, 4 liveness violation (from the
//! independent guarantee checker or from the oracle), 5 divergence from the oracle (or the
//! independent reader disagreeing), 6 Redis memory above the scenario's bound.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tickgate_sim::RedisServer;
use tickgate_sim::run::command::{Exit, RunArgs, simulate};

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
    Run(RunArgs),
    /// Provisions a Redis as tests do, reports where it came from, and removes it.
    Redis,
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
        Command::Run(args) => simulate(args).await,
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
            ExitCode::from(v.exit_code())
        }
    }
}
