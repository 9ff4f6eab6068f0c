//! Every way a command fails. `main` maps each to its exit code, in one `match`.

use std::path::PathBuf;

use crate::config::{ConfigFileError, Problems};
use crate::core::calendar::{BucketError, TimeframeError};
use crate::core::ticker::InputError;
use crate::store::StoreError;

/// A failed command: what went wrong, naming the value and the rule.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line itself (a bad `--log-filter`).
    #[error("{0}")]
    Usage(String),
    /// The configuration file cannot be read or is invalid.
    #[error(transparent)]
    ConfigFile(#[from] ConfigFileError),
    /// The defaults with the environment's overrides are invalid (no file given).
    #[error("environment: {0}")]
    ConfigEnv(#[from] Problems),
    /// A bad argument: nothing was written.
    #[error("{name} {value:?} is invalid: {rule}")]
    Argument {
        name: &'static str,
        value: String,
        rule: &'static str,
    },
    /// A bad ticker or timestamp: nothing was written.
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Timeframe(#[from] TimeframeError),
    #[error(transparent)]
    Bucket(#[from] BucketError),
    /// A strategy file that cannot be written: nothing was written.
    #[error(transparent)]
    StrategyFile(#[from] StrategyFileError),
    /// Redis failed (unreachable, timed out, rejected a command).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another live instance holds this consumer name.
    #[error(
        "consumer name {consumer:?} is held by another live instance ({holder}); its hold lapses {ttl_ms} ms after it stops renewing it. Give this instance another name (engine.consumer, TICKGATE_ENGINE_CONSUMER) or stop the other"
    )]
    ConsumerTaken {
        consumer: String,
        holder: String,
        ttl_ms: i64,
    },
    /// The hold on the consumer name was taken over while running (it lapsed, e.g. during
    /// a long Redis outage, and another instance took the name): this one stopped.
    #[error("consumer name {consumer:?} was taken by another instance while this one ran; stopped")]
    ConsumerLost { consumer: String },
    /// The operating system refused something (signal handlers).
    #[error("{what}: {reason}")]
    System { what: &'static str, reason: String },
    /// The HTTP endpoints' address cannot be bound (in use, not ours).
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
}

/// Why a strategy file cannot be written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum StrategyFileError {
    #[error("cannot read strategy file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("strategy file {path} is not {expected}: {reason}")]
    Json {
        path: PathBuf,
        expected: &'static str,
        reason: String,
    },
    #[error("strategy file {path}: {} problem(s), nothing written:{}", problems.len(), bullet(problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

fn bullet(problems: &[String]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}
