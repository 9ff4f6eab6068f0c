//! `tickgate`: parses the command line, runs it (`tickgate::cli`), and maps its errors to
//! exit codes — here and nowhere else. The README lists the codes.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use tickgate::cli::{self, Cli, CliError};
use tickgate::store::StoreError;

/// Success; also `--help`, `--version`, and `run` stopped by SIGTERM or SIGINT.
const OK: u8 = 0;
/// Redis failed: unreachable, timed out, or rejected a command.
const REDIS: u8 = 1;
/// The configuration (file or environment) cannot be read or is invalid.
const CONFIG: u8 = 2;
/// Bad input (ticker, timestamp, timeframe, strategy file or id): nothing was written.
const INPUT: u8 = 3;
/// Another live instance holds the consumer name (at start, or took it while running).
const CONSUMER_TAKEN: u8 = 4;
/// Usage: unknown subcommand or flag, missing argument, bad `--log-filter` (sysexits'
/// EX_USAGE, so that it is never mistaken for a configuration error).
const USAGE: u8 = 64;

fn exit_code(error: &CliError) -> u8 {
    match error {
        CliError::Usage(_) => USAGE,
        CliError::ConfigFile(_) | CliError::ConfigEnv(_) => CONFIG,
        CliError::Argument { .. }
        | CliError::Input(_)
        | CliError::Timeframe(_)
        | CliError::Bucket(_)
        | CliError::StrategyFile(_)
        | CliError::Store(StoreError::Input(_)) => INPUT,
        CliError::Store(_) | CliError::System { .. } | CliError::Http(_) => REDIS,
        CliError::ConsumerTaken { .. } | CliError::ConsumerLost { .. } => CONSUMER_TAKEN,
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => OK,
                _ => USAGE,
            };
            // Help and version go to stdout, errors to stderr (clap knows which).
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = cli::init_logging(cli.log_format, cli.log_filter.as_deref()).and_then(|()| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::System {
                what: "starting the async runtime",
                reason: e.to_string(),
            })?;
        runtime.block_on(cli::execute(cli))
    });
    match result {
        Ok(out) => {
            if !out.is_empty() {
                println!("{out}");
            }
            ExitCode::from(OK)
        }
        Err(e) => {
            eprintln!("tickgate: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}
