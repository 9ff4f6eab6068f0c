//! The `tickgate` command line (mini-redis style: the binary only parses, runs and maps
//! errors to exit codes; everything a command does is here).
//!
//! - [`args`]: the `clap` definitions, with each subcommand's help.
//! - [`error`]: [`CliError`], every way a command fails (`main` maps it to an exit code).
//! - `service`: `tickgate run` (the production service) with its signals, and `lease`, the
//!   hold on the consumer name that refuses a second live instance with the same name.
//! - `strategy`, `stats`, `cleanup`: the operator's commands against Redis.
//! - `human`: instants in New York time beside their epoch ms, grouped digits.
//!
//! Every command reads the configuration the same way ([`load_config`]) and talks to Redis
//! only through [`RedisStore`] and its key names, so a prefix or cluster mode applies
//! everywhere.

pub mod args;
mod cleanup;
pub mod error;
mod human;
mod lease;
mod service;
mod stats;
mod strategy;

use std::path::Path;

pub use self::args::{Cli, Command, LogFormat, StrategyCommand};
pub use self::error::{CliError, StrategyFileError};
use crate::config::Config;
use crate::core::calendar::Timeframe;
use crate::core::ticker::{Ticker, check_timestamp};
use crate::redact::redact_url;
use crate::runtime::{Clock, SystemClock};
use crate::store::{RedisStore, Updates};

/// Runs one parsed command line; returns what to print on stdout.
pub async fn execute(cli: Cli) -> Result<String, CliError> {
    let env = |name: &str| std::env::var(name).ok();
    let config = || load_config(cli.config.as_deref(), env);
    match cli.command {
        Command::CheckConfig { file } => check_config(&file, env),
        Command::Bucket {
            timeframe,
            ts_ms,
            plain,
        } => bucket(&timeframe, ts_ms.as_deref(), plain),
        Command::Run => service::run(config()?).await.map(|()| String::new()),
        Command::Cleanup { dry_run } => cleanup::run(&config()?, dry_run).await,
        Command::Strategy(sub) => strategy::run(&config()?, sub).await,
        Command::Update { ticker, ts_ms } => update(&config()?, &ticker, ts_ms).await,
        Command::Stats { json } => stats::run(&config()?, json).await,
    }
}

/// Installs the log subscriber on stderr: `filter` in `RUST_LOG` syntax (default: the
/// `RUST_LOG` variable, else `info`).
pub fn init_logging(format: LogFormat, filter: Option<&str>) -> Result<(), CliError> {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::try_new(f),
        None => EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new("info")),
    }
    .map_err(|e| CliError::Usage(format!("--log-filter: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let installed = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| CliError::Usage(format!("log subscriber: {e}")))
}

/// The configuration: the file if one is given, else the defaults, with the environment's
/// overrides either way.
pub fn load_config(
    path: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, CliError> {
    Ok(match path {
        Some(path) => Config::load(path, env)?,
        None => Config::parse("", env)?,
    })
}

fn check_config(path: &Path, env: impl Fn(&str) -> Option<String>) -> Result<String, CliError> {
    let config = Config::load(path, env)?;
    Ok(format!(
        "{}: valid. Redis {} (key prefix {:?}{}), consumer {}, tick every {}, metrics on {}",
        path.display(),
        redact_url(&config.redis.url),
        key_prefix_of(&config),
        if config
            .redis
            .keys
            .updates()
            .contains(crate::store::CLUSTER_HASH_TAG)
        {
            ", cluster"
        } else {
            ""
        },
        config.engine.consumer,
        human::duration(config.engine.tick_interval_ms),
        config.http.listen_addr,
    ))
}

/// The key prefix as the operator wrote it (the key names show it, hash tag included).
fn key_prefix_of(config: &Config) -> String {
    let updates = config.redis.keys.updates();
    updates
        .strip_suffix("TICK:UPD")
        .unwrap_or_default()
        .replace(crate::store::CLUSTER_HASH_TAG, "")
}

/// Parses an epoch-ms argument, or now when absent.
fn ts_argument(name: &'static str, raw: Option<&str>) -> Result<i64, CliError> {
    let Some(raw) = raw else {
        return Ok(SystemClock.now_ms());
    };
    let ts_ms = raw.trim().parse().map_err(|_| CliError::Argument {
        name,
        value: raw.to_owned(),
        rule: "must be an integer: UTC epoch milliseconds",
    })?;
    Ok(check_timestamp(ts_ms)?)
}

fn bucket(timeframe: &str, ts: Option<&str>, plain: bool) -> Result<String, CliError> {
    let timeframe: Timeframe = timeframe.parse()?;
    let ts_ms = ts_argument("TS_MS", ts)?;
    let bucket = timeframe.bucket(ts_ms)?;
    if plain {
        return Ok(format!(
            "{timeframe} {} {} max_bucket_ms={}",
            bucket.start_ms,
            bucket.end_ms,
            timeframe.max_bucket_ms()
        ));
    }
    Ok(format!(
        "{timeframe} bucket of {}\n  start {}\n  end   {} (exclusive)\n  length {}; longest {timeframe} bucket {}",
        human::instant(ts_ms),
        human::instant(bucket.start_ms),
        human::instant(bucket.end_ms),
        human::duration(bucket.len_ms()),
        human::duration(timeframe.max_bucket_ms()),
    ))
}

async fn update(config: &Config, ticker: &str, ts: Option<String>) -> Result<String, CliError> {
    // Checked before connecting: bad input is reported even with Redis down.
    let parsed = Ticker::parse(ticker)?;
    let ts_ms = ts_argument("TS_MS", ts.as_deref())?;
    let store = RedisStore::connect(&config.redis).await?;
    store
        .record_updates(SystemClock.now_ms(), &[(parsed.as_str(), ts_ms)])
        .await?;
    let stored: Option<f64> = redis::cmd("ZSCORE")
        .arg(store.keys().updates())
        .arg(parsed.as_str())
        .query_async(&mut store.connection())
        .await
        .map_err(|e| crate::store::StoreError::Redis {
            op: "ZSCORE",
            reason: e.to_string(),
        })?;
    let mut out = format!("recorded {parsed} at {}", human::instant(ts_ms));
    if let Some(stored) = stored.map(|s| s as i64).filter(|s| *s > ts_ms) {
        out.push_str(&format!(
            "; it keeps its later update time {} (times never move back)",
            human::instant(stored)
        ));
    }
    Ok(out)
}
