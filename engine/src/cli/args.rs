//! The command line as `clap` parses it: every subcommand, its arguments and its help.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Decides, one ticker at a time, when trading strategies must be re-run.
///
/// Every subcommand reads the configuration (`--config FILE`, else the defaults) with its
/// environment overrides (`TICKGATE_<SECTION>_<KEY>`, `REDIS_URL`, `PER_TICKER_THROTTLE`).
/// Exit codes: 0 success, 1 Redis failure, 2 invalid configuration, 3 bad input (nothing
/// written), 4 consumer name held by another live instance, 64 usage.
#[derive(Debug, Parser)]
#[command(name = "tickgate", version, propagate_version = true)]
pub struct Cli {
    /// Configuration file (TOML); see fixtures/tickgate.example.toml. Without it, every key
    /// has its default.
    #[arg(short, long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log line format (on stderr).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Which log lines to show, `RUST_LOG` syntax (e.g. `info`, `tickgate=debug,warn`).
    /// Default: `RUST_LOG` if set, else `info`.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_filter: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per event, for log collectors.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the engine service until SIGTERM or SIGINT (then finish the step in progress,
    /// flush the discovery queue and exit 0 within `shutdown_deadline_ms`).
    Run,
    /// Check a configuration file and its environment overrides; report every problem at
    /// once (exit 2).
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Retention cleanup by hand (what the engine does daily): remove update times older
    /// than the effective retention, counted by age.
    Cleanup {
        /// Report what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write or read the strategy catalog, through the change log the engine watches.
    #[command(subcommand)]
    Strategy(StrategyCommand),
    /// Record a ticker update (the record script the market-data side uses).
    Update {
        /// The ticker, e.g. AAPL.
        ticker: String,
        /// Its update time, UTC epoch milliseconds; default now.
        #[arg(allow_negative_numbers = true)]
        ts_ms: Option<String>,
    },
    /// What Redis holds: counters, tracked tickers, universe sizes, stream lengths and
    /// consumer lag, engine instances.
    Stats {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The calendar-aligned bucket of an instant, in epoch ms and in New York time.
    Bucket {
        /// e.g. 5m, 1h, 1d, 1w, 1q, 1y.
        timeframe: String,
        /// UTC epoch milliseconds (before 1970 is negative); default now.
        #[arg(allow_negative_numbers = true)]
        ts_ms: Option<String>,
        /// One line, `TIMEFRAME START_MS END_MS max_bucket_ms=N`, for scripts.
        #[arg(long)]
        plain: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum StrategyCommand {
    /// Write one strategy from a JSON file (`-` reads stdin): {"id": 123, "user_id": 7,
    /// "name": "gap up", "timeframe": "5m", "universe": ["AAPL"] | "all", "active": true}.
    Put {
        /// The JSON file.
        file: PathBuf,
    },
    /// Remove a strategy from the catalog.
    Rm {
        /// Its id.
        id: String,
    },
    /// List the catalog.
    List {
        /// A JSON array of the stored entries instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write every strategy of a JSON array file; all are checked first, and one bad entry
    /// writes nothing.
    Import {
        /// The JSON file (`-` reads stdin).
        file: PathBuf,
    },
}
