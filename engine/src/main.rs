//! `tickgate`: the engine's command line. Today it only answers bucket questions; the
//! service (`tickgate run --config tickgate.toml`) lands with the service issue.

use std::process::ExitCode;

use tickgate::Timeframe;

const USAGE: &str = "usage: tickgate bucket TIMEFRAME TS_MS\n\
    prints the calendar-aligned bucket [start_ms, end_ms) of TS_MS (UTC epoch ms)";

/// Errors of the command line, mapped to exit codes in one place (`main`).
enum CliError {
    Usage(String),
    Input(String),
}

fn run(args: &[String]) -> Result<String, CliError> {
    match args {
        [cmd, tf, ts] if cmd == "bucket" => {
            let timeframe: Timeframe = tf.parse().map_err(|e| CliError::Input(format!("{e}")))?;
            let ts_ms: i64 = ts
                .parse()
                .map_err(|e| CliError::Input(format!("TS_MS {ts:?} is not an integer: {e}")))?;
            let bucket = timeframe
                .bucket(ts_ms)
                .map_err(|e| CliError::Input(e.to_string()))?;
            Ok(format!(
                "{timeframe} {} {} max_bucket_ms={}",
                bucket.start_ms,
                bucket.end_ms,
                timeframe.max_bucket_ms()
            ))
        }
        _ => Err(CliError::Usage(USAGE.to_owned())),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(CliError::Usage(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(2)
        }
        Err(CliError::Input(msg)) => {
            eprintln!("tickgate: {msg}");
            ExitCode::from(1)
        }
    }
}
