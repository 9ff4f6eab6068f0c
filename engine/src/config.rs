//! `tickgate.toml`: every setting, checked at once.
//!
//! Two stages (ripgrep's low-level → high-level arguments): [`RawConfig`] is what the
//! operator said — the file's TOML table and the environment overrides — and [`Config`] is
//! the validated result. Unknown keys, wrong types and values out of range are all collected
//! and reported together (an operator fixes a file in one go), each naming its
//! `section.key`, the value and the rule it broke. serde's `deny_unknown_fields` would stop
//! at the first problem, so the table is walked key by key with a [`Reader`], which the
//! simulator's scenario files use too.
//!
//! Environment overrides (see [`env`]): `TICKGATE_<SECTION>_<KEY>` for every key, and the
//! seed's `PER_TICKER_THROTTLE` (rollback is a restart) and `REDIS_URL`. Every key, its
//! default and why that number: `fixtures/tickgate.example.toml`.
//!
//! ```toml
//! [redis]
//! url = "redis://127.0.0.1:6379"
//! key_prefix = ""
//! cluster = false
//! connect_timeout_ms = 2000
//! response_timeout_ms = 2000
//! # rediss:// only: a private CA (PEM); a client certificate and key for mutual TLS.
//! tls_ca_file = "/etc/tickgate/redis-ca.pem"
//! tls_cert_file = "/etc/tickgate/client.pem"
//! tls_key_file = "/etc/tickgate/client.key"
//!
//! [engine]
//! tick_interval_ms = 10000
//! per_ticker_throttle = true
//! lua_threshold = 1000
//! max_universe = 50000
//! max_future_ms = 300000
//!
//! [http]
//! listen_addr = "127.0.0.1:9464"
//! ```

pub mod env;
mod http;
mod reader;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use self::http::HttpConfig;
pub use self::reader::{Problem, Problems, Reader, human_ms};
use crate::core::time::{DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS};
use crate::limits::*;
use crate::redact::redact_url;
use crate::store::{KeySpace, RedisStoreConfig};

/// Settings of the engine (the `[engine]` section); every field has a default.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Time between ticks (the seed's 10 s).
    pub tick_interval_ms: i64,
    /// Per-ticker throttling (true) or strategy-level for everyone (rollback switch).
    pub per_ticker_throttle: bool,
    /// Universes above this size are intersected server-side (Lua) when fully evaluated.
    pub lua_threshold: usize,
    /// Largest universe accepted, from the catalog or from discovery (DESIGN §2.7); the
    /// Redis store is given the same value.
    pub max_universe: usize,
    /// Update times further ahead of the engine's clock are rejected at recording and
    /// ignored (counted) when found in Redis (DESIGN §2.3); the Redis store is given the
    /// same value.
    pub max_future_ms: i64,
    /// Configured retention of update times (raised to the longest active bucket).
    pub retention_ms: i64,
    /// First cleanup this long after start.
    pub cleanup_initial_delay_ms: i64,
    /// Then every this long.
    pub cleanup_interval_ms: i64,
    /// Metrics log period.
    pub metrics_log_interval_ms: i64,
    /// Period of the catalog sweep: each step re-reads its share of the catalog, so every
    /// entry is read again within this; catches writers that bypass the change log.
    pub catalog_resync_ms: i64,
    /// Results read per call.
    pub results_batch: usize,
    /// Results settled per tick, at most.
    pub max_results_per_tick: usize,
    /// Strategies with a discovered universe waiting to be persisted, at most.
    pub discovery_queue_capacity: usize,
    /// Attempts to persist one discovered universe.
    pub discovery_attempts: u32,
    /// First backoff between those attempts (doubling).
    pub discovery_backoff_ms: i64,
    /// A job unacknowledged this long (logical time) is re-delivered.
    pub job_visibility_ms: i64,
    /// A result pending this long (logical time) with another instance's consumer is taken
    /// over and settled by this one; see [`DEFAULT_RESULT_TAKEOVER_MS`].
    pub result_takeover_ms: i64,
    /// Deliveries after which an unacknowledged job is dead-lettered instead.
    pub max_deliveries: u64,
    /// Unacknowledged jobs examined per step.
    pub max_pending_checked: usize,
    /// Jobs the workers may leave unacknowledged before the engine stops dispatching.
    pub jobs_stream_max: u64,
    /// Real-time bound on `stop()`.
    pub shutdown_deadline_ms: u64,
    /// A direct writer's update (plain `ZADD TICK:UPD`) written up to this long after its
    /// stamp is seen at the next tick; see [`DEFAULT_DIRECT_WRITE_LAG_MS`].
    pub direct_write_lag_ms: i64,
    /// How far the clock may be from Redis's (`TIME`) before the service stops stepping and
    /// reports not ready (gauge `clock_skew_ms`); at most half of `trigger_grace_ms`.
    /// `None`: no check, for drivers whose clock is logical rather than wall time (the
    /// simulator, tests); the config file cannot turn it off.
    pub max_clock_skew_ms: Option<i64>,
    /// This instance's consumer name on the results stream (unique per instance). From a
    /// file, unset means [`default_consumer`] (host and pid); `tickgate run` refuses to
    /// start while another live instance holds the name.
    pub consumer: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            tick_interval_ms: DEFAULT_TICK_INTERVAL_MS,
            per_ticker_throttle: true,
            lua_threshold: DEFAULT_LUA_THRESHOLD,
            max_universe: DEFAULT_MAX_UNIVERSE,
            max_future_ms: DEFAULT_MAX_FUTURE_MS,
            retention_ms: DEFAULT_RETENTION_MS,
            cleanup_initial_delay_ms: DEFAULT_CLEANUP_INITIAL_DELAY_MS,
            cleanup_interval_ms: DEFAULT_CLEANUP_INTERVAL_MS,
            metrics_log_interval_ms: DEFAULT_METRICS_LOG_INTERVAL_MS,
            catalog_resync_ms: DEFAULT_CATALOG_RESYNC_MS,
            results_batch: DEFAULT_RESULTS_BATCH,
            max_results_per_tick: DEFAULT_MAX_RESULTS_PER_TICK,
            discovery_queue_capacity: DEFAULT_DISCOVERY_QUEUE_CAPACITY,
            discovery_attempts: DEFAULT_DISCOVERY_ATTEMPTS,
            discovery_backoff_ms: DEFAULT_DISCOVERY_BACKOFF_MS,
            job_visibility_ms: DEFAULT_JOB_VISIBILITY_MS,
            result_takeover_ms: DEFAULT_RESULT_TAKEOVER_MS,
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            max_pending_checked: DEFAULT_MAX_PENDING_CHECKED,
            jobs_stream_max: DEFAULT_JOBS_STREAM_MAX,
            shutdown_deadline_ms: DEFAULT_SHUTDOWN_DEADLINE_MS,
            max_clock_skew_ms: Some(DEFAULT_MAX_CLOCK_SKEW_MS),
            direct_write_lag_ms: DEFAULT_DIRECT_WRITE_LAG_MS,
            consumer: "tickgate-1".to_owned(),
        }
    }
}

/// The consumer name of an instance whose file names none: `tickgate-<host>-<pid>`, unique
/// among live processes, so that instances started from one file never share a name.
pub fn default_consumer() -> String {
    // Linux names the host here; elsewhere the shell's HOSTNAME, else a placeholder (the
    // pid still tells processes of one host apart).
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("tickgate-{host}-{}", std::process::id())
}

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub redis: RedisStoreConfig,
    pub engine: EngineConfig,
    pub http: HttpConfig,
}

/// Why a configuration file could not be used; both name the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read configuration file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("configuration file {path}: {problems}")]
    Invalid { path: PathBuf, problems: Problems },
}

/// What the operator said: the file's table and the environment overrides, not yet checked.
#[derive(Debug, Clone)]
pub struct RawConfig {
    pub table: toml::Table,
    pub env: BTreeMap<&'static str, String>,
}

impl RawConfig {
    /// Parses `text` (syntax only) and picks the overrides from `env`.
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<RawConfig, Problems> {
        let table = reader::parse_table(text, "configuration")?;
        let env = env::variables()
            .filter_map(|name| Some((name, env(name)?)))
            .collect();
        Ok(RawConfig { table, env })
    }
}

impl Config {
    /// Parses and validates `text` with `env` overrides (see [`env`]).
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config, Problems> {
        Config::validate(&RawConfig::parse(text, env)?)
    }

    /// Reads and validates the file at `path` with `env` overrides; errors name the file.
    pub fn load(
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigFileError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Config::parse(&text, env).map_err(|problems| ConfigFileError::Invalid {
            path: path.to_owned(),
            problems,
        })
    }

    /// Checks every key of `raw`, the environment's overrides in place; every problem is
    /// reported at once.
    pub fn validate(raw: &RawConfig) -> Result<Config, Problems> {
        let mut problems = Vec::new();
        let mut table = raw.table.clone();
        let sources = env::overlay(&mut table, &raw.env, &mut problems);
        let mut top = Reader::new(String::new(), Some(&table), &mut problems);
        let redis_table = top.table("redis");
        let engine_table = top.table("engine");
        let http_table = top.table("http");
        top.finish();
        let redis = read_redis(Reader::new("redis".into(), redis_table, &mut problems));
        let engine = read_engine(Reader::new("engine".into(), engine_table, &mut problems));
        let http = http::read_http(Reader::new("http".into(), http_table, &mut problems));
        let mut config = Config {
            redis,
            engine,
            http,
        };
        check_url(&config.redis, &mut problems);
        check_clock_skew(&config.redis, &config.engine, &mut problems);
        config.redis.max_universe = config.engine.max_universe;
        config.redis.max_future_ms = config.engine.max_future_ms;
        if problems.is_empty() {
            Ok(config)
        } else {
            let problems = problems
                .into_iter()
                .map(|p| env::attribute(p, &sources))
                .collect();
            Err(Problems::new("configuration", problems))
        }
    }
}

fn read_redis(mut r: Reader<'_, '_>) -> RedisStoreConfig {
    let mut redis = RedisStoreConfig::new("redis://127.0.0.1:6379");
    let (mut prefix, mut cluster) = (String::new(), false);
    let mut connect_ms = DEFAULT_CONNECT_TIMEOUT_MS as i64;
    let mut response_ms = DEFAULT_RESPONSE_TIMEOUT_MS as i64;
    r.string("url", &mut redis.url);
    r.string("key_prefix", &mut prefix);
    r.boolean("cluster", &mut cluster);
    r.ms("connect_timeout_ms", &mut connect_ms, 1, 10 * MINUTE_MS);
    // redis-rs would default to 500 ms.
    r.ms("response_timeout_ms", &mut response_ms, 1, 10 * MINUTE_MS);
    r.count("reconnect_retries", &mut redis.reconnect_retries, 0, 100);
    r.ms(
        "trigger_grace_ms",
        &mut redis.trigger_grace_ms,
        0,
        7 * DAY_MS,
    );
    read_tls(&mut r, &mut redis);
    r.finish();
    redis.keys = KeySpace::new(&prefix, cluster);
    redis.connect_timeout = Duration::from_millis(connect_ms as u64);
    redis.response_timeout = Duration::from_millis(response_ms as u64);
    redis
}

/// The TLS file paths (read and parsed when connecting, see
/// [`RedisStoreConfig::tls_certificates`]): an empty string is no file.
fn read_tls(r: &mut Reader<'_, '_>, redis: &mut RedisStoreConfig) {
    let mut path = |key: &str| {
        let mut value = String::new();
        r.string(key, &mut value);
        (!value.is_empty()).then(|| value.into())
    };
    redis.tls_ca_file = path("tls_ca_file");
    redis.tls_cert_file = path("tls_cert_file");
    redis.tls_key_file = path("tls_key_file");
    if redis.tls_cert_file.is_some() != redis.tls_key_file.is_some() {
        let (set, unset) = if redis.tls_cert_file.is_some() {
            ("tls_cert_file", "tls_key_file")
        } else {
            ("tls_key_file", "tls_cert_file")
        };
        r.out_of_range(set, "set", format!("needs {unset} too (mutual TLS)"));
    }
}

fn read_engine(mut r: Reader<'_, '_>) -> EngineConfig {
    let mut e = EngineConfig::default();
    let mut shutdown_ms = e.shutdown_deadline_ms as i64;
    r.ms("tick_interval_ms", &mut e.tick_interval_ms, 100, DAY_MS);
    r.boolean("per_ticker_throttle", &mut e.per_ticker_throttle);
    r.count("lua_threshold", &mut e.lua_threshold, 0, 10_000_000);
    r.count("max_universe", &mut e.max_universe, 1, 10_000_000);
    // At least a second: a smaller bound would reject ordinary clock skew between the
    // feed's hosts and the engine; at most a day: further ahead a stamp pins a ticker
    // for longer than most buckets.
    r.ms("max_future_ms", &mut e.max_future_ms, SECOND_MS, DAY_MS);
    // At most an hour: the window is read at every tick.
    r.ms(
        "direct_write_lag_ms",
        &mut e.direct_write_lag_ms,
        0,
        HOUR_MS,
    );
    let mut skew_ms = DEFAULT_MAX_CLOCK_SKEW_MS;
    r.ms("max_clock_skew_ms", &mut skew_ms, MIN_CLOCK_SKEW_MS, DAY_MS);
    e.max_clock_skew_ms = Some(skew_ms);
    r.ms("retention_ms", &mut e.retention_ms, 0, 3_650 * DAY_MS);
    let delay = &mut e.cleanup_initial_delay_ms;
    r.ms("cleanup_initial_delay_ms", delay, 0, 30 * DAY_MS);
    let interval = &mut e.cleanup_interval_ms;
    r.ms("cleanup_interval_ms", interval, MINUTE_MS, 30 * DAY_MS);
    let log = &mut e.metrics_log_interval_ms;
    r.ms("metrics_log_interval_ms", log, SECOND_MS, DAY_MS);
    r.ms(
        "catalog_resync_ms",
        &mut e.catalog_resync_ms,
        SECOND_MS,
        DAY_MS,
    );
    r.count("results_batch", &mut e.results_batch, 1, 10_000);
    r.count(
        "max_results_per_tick",
        &mut e.max_results_per_tick,
        1,
        1_000_000,
    );
    let capacity = &mut e.discovery_queue_capacity;
    r.count("discovery_queue_capacity", capacity, 1, 10_000_000);
    r.count("discovery_attempts", &mut e.discovery_attempts, 1, 100);
    r.ms(
        "discovery_backoff_ms",
        &mut e.discovery_backoff_ms,
        1,
        10 * MINUTE_MS,
    );
    r.ms(
        "job_visibility_ms",
        &mut e.job_visibility_ms,
        SECOND_MS,
        DAY_MS,
    );
    r.ms(
        "result_takeover_ms",
        &mut e.result_takeover_ms,
        SECOND_MS,
        DAY_MS,
    );
    r.count("max_deliveries", &mut e.max_deliveries, 1, 1_000);
    r.count(
        "max_pending_checked",
        &mut e.max_pending_checked,
        1,
        100_000,
    );
    let jobs_max = &mut e.jobs_stream_max;
    r.count("jobs_stream_max", jobs_max, 1, 100_000_000);
    r.ms("shutdown_deadline_ms", &mut shutdown_ms, 1, 10 * MINUTE_MS);
    e.consumer = default_consumer();
    r.string("consumer", &mut e.consumer);
    if e.consumer.is_empty() {
        r.out_of_range("consumer", "\"\"", "must not be empty".into());
    }
    r.finish();
    e.shutdown_deadline_ms = shutdown_ms as u64;
    e
}

/// An instance ahead of Redis by X lets its trigger hashes expire X before `trigger_grace_ms`
/// after their bucket: the skew tolerated must leave at least half the grace.
fn check_clock_skew(redis: &RedisStoreConfig, engine: &EngineConfig, problems: &mut Vec<Problem>) {
    let Some(skew_ms) = engine.max_clock_skew_ms else {
        return;
    };
    if skew_ms > redis.trigger_grace_ms / 2 {
        problems.push(Problem::OutOfRange {
            path: "engine.max_clock_skew_ms".into(),
            value: skew_ms.to_string(),
            rule: format!(
                "must be at most half of redis.trigger_grace_ms ({}), or a trigger hash of an instance that far ahead of Redis expires before its bucket is safely over",
                redis.trigger_grace_ms
            ),
        });
    }
}

fn check_url(redis: &RedisStoreConfig, problems: &mut Vec<Problem>) {
    if !(redis.url.starts_with("redis://") || redis.url.starts_with("rediss://")) {
        problems.push(Problem::OutOfRange {
            path: "redis.url".into(),
            value: redact_url(&redis.url),
            rule: "must start with redis:// or rediss://".into(),
        });
    }
    let tls_files = [&redis.tls_ca_file, &redis.tls_cert_file]
        .into_iter()
        .flatten();
    if tls_files.count() > 0 && redis.url.starts_with("redis://") {
        problems.push(Problem::OutOfRange {
            path: "redis.url".into(),
            value: redact_url(&redis.url),
            rule: "must start with rediss:// when redis.tls_ca_file or redis.tls_cert_file is set"
                .into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
            color = "blue"
            [redis]
            url = "http://u:secret@host"
            response_timeout_ms = "fast"
            max_universe = 10
            [engine]
            tick_interval_ms = 0
            per_ticker_throttle = "yes"
            lua_treshold = 5
        "#;
        let errors = Config::parse(text, |_| None).unwrap_err();
        let text = errors.to_string();
        for needle in [
            "color: unknown",
            "redis.response_timeout_ms: expected an integer",
            "redis.max_universe: unknown",
            "engine.tick_interval_ms = 0: must be 100 ms..=1 day",
            "engine.per_ticker_throttle: expected true or false",
            "engine.lua_treshold: unknown",
            "redis.url = http://u:***@host",
        ] {
            assert!(text.contains(needle), "{needle} missing in:\n{text}");
        }
        assert!(!text.contains("secret"));
        assert_eq!(errors.0.len(), 7, "{text}");
    }

    #[test]
    fn defaults_and_environment_overrides() {
        let config = Config::parse("", |_| None).expect("empty is valid");
        assert!(config.engine.per_ticker_throttle);
        assert_eq!(config.engine.tick_interval_ms, 10_000);
        assert_eq!(config.redis.response_timeout, Duration::from_secs(2));
        let env = |k: &str| match k {
            "PER_TICKER_THROTTLE" => Some("false".to_owned()),
            "REDIS_URL" => Some("redis://10.0.0.9:6380".to_owned()),
            _ => None,
        };
        let config = Config::parse("[engine]\nper_ticker_throttle = true\n", env).expect("valid");
        assert!(
            !config.engine.per_ticker_throttle,
            "the environment wins: rollback is a restart"
        );
        assert_eq!(config.redis.url, "redis://10.0.0.9:6380");
        let bad = Config::parse("", |k| {
            (k == "PER_TICKER_THROTTLE").then(|| "maybe".to_owned())
        });
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("PER_TICKER_THROTTLE=\"maybe\"")
        );
    }

    #[test]
    fn the_clock_skew_tolerated_leaves_half_the_trigger_grace() {
        let config = Config::parse("", |_| None).expect("valid");
        assert_eq!(
            config.engine.max_clock_skew_ms,
            Some(DEFAULT_MAX_CLOCK_SKEW_MS)
        );
        let text = "[redis]\ntrigger_grace_ms = 60000\n[engine]\nmax_clock_skew_ms = 30000\n";
        let config = Config::parse(text, |_| None).expect("valid");
        assert_eq!(config.engine.max_clock_skew_ms, Some(30_000));
        let text = "[redis]\ntrigger_grace_ms = 60000\n[engine]\nmax_clock_skew_ms = 30001\n";
        let error = Config::parse(text, |_| None).unwrap_err().to_string();
        let needle = "engine.max_clock_skew_ms = 30001: must be at most half of redis.trigger_grace_ms (60000)";
        assert!(error.contains(needle), "{needle} missing in:\n{error}");
        let text = "[engine]\nmax_clock_skew_ms = 99\n";
        let error = Config::parse(text, |_| None).unwrap_err().to_string();
        assert!(
            error.contains("engine.max_clock_skew_ms = 99: must be"),
            "{error}"
        );
    }

    #[test]
    fn tls_files_are_paths_for_a_rediss_url() {
        let config = Config::parse("", |_| None).expect("valid");
        assert_eq!(config.redis.tls_ca_file, None, "the system's root store");
        let text = r#"
            [redis]
            url = "rediss://u:pw@redis.internal:6380"
            tls_ca_file = "/etc/ca.pem"
            tls_cert_file = "/etc/client.pem"
            tls_key_file = "/etc/client.key"
        "#;
        let config = Config::parse(text, |_| None).expect("valid");
        assert_eq!(config.redis.tls_ca_file, Some("/etc/ca.pem".into()));
        assert_eq!(config.redis.tls_cert_file, Some("/etc/client.pem".into()));
        assert_eq!(config.redis.tls_key_file, Some("/etc/client.key".into()));
        let text = r#"
            [redis]
            url = "redis://u:pw@host"
            tls_ca_file = "/etc/ca.pem"
            tls_cert_file = "/etc/client.pem"
        "#;
        let error = Config::parse(text, |_| None).unwrap_err().to_string();
        for needle in [
            "redis.tls_cert_file = set: needs tls_key_file too",
            "redis.url = redis://u:***@host: must start with rediss:// when",
        ] {
            assert!(error.contains(needle), "{needle} missing in:\n{error}");
        }
    }

    #[test]
    fn one_max_universe_for_engine_and_store() {
        let config = Config::parse("[engine]\nmax_universe = 7\n", |_| None).expect("valid");
        assert_eq!(
            (config.engine.max_universe, config.redis.max_universe),
            (7, 7)
        );
    }

    #[test]
    fn one_max_future_ms_for_engine_and_store_within_its_range() {
        let config = Config::parse("", |_| None).expect("valid");
        assert_eq!(config.engine.max_future_ms, DEFAULT_MAX_FUTURE_MS);
        let text = "[engine]\nmax_future_ms = 60000\n";
        let config = Config::parse(text, |_| None).expect("valid");
        assert_eq!(
            (config.engine.max_future_ms, config.redis.max_future_ms),
            (60_000, 60_000)
        );
        for (value, rule) in [("999", "1 s..=1 day"), ("86400001", "1 s..=1 day")] {
            let text = format!("[engine]\nmax_future_ms = {value}\n");
            let error = Config::parse(&text, |_| None).unwrap_err().to_string();
            let needle = format!("engine.max_future_ms = {value}: must be {rule}");
            assert!(error.contains(&needle), "{needle} missing in:\n{error}");
        }
    }

    /// The example file, which documents every key (see `config/env.rs`).
    const EXAMPLE: &str = include_str!("../../fixtures/tickgate.example.toml");

    #[test]
    fn the_example_file_sets_every_key_to_its_default() {
        let table: toml::Table = EXAMPLE.parse().expect("the example is TOML");
        for k in env::KEYS {
            let in_file = table
                .get(k.section)
                .and_then(|s| s.as_table())
                .is_some_and(|s| s.contains_key(k.key));
            // The consumer's default is per process: the file shows it commented out.
            let documented = in_file || EXAMPLE.contains(&format!("# {} = ", k.key));
            assert!(
                documented,
                "{}.{} missing from the example",
                k.section, k.key
            );
        }
        let example = Config::parse(EXAMPLE, |_| None).expect("the example is valid");
        let default = Config::parse("", |_| None).expect("defaults");
        assert_eq!(format!("{example:?}"), format!("{default:?}"));
    }

    #[test]
    fn every_listed_key_is_read() {
        // Every key set to a table: each one the readers read is reported as the wrong
        // type, one the readers ignore would be reported unknown (or not at all).
        let mut text = String::new();
        for section in ["redis", "engine", "http"] {
            text.push_str(&format!("[{section}]\n"));
            for k in env::KEYS.iter().filter(|k| k.section == section) {
                text.push_str(&format!("{} = {{}}\n", k.key));
            }
        }
        let problems = Config::parse(&text, |_| None).unwrap_err();
        for k in env::KEYS {
            let path = format!("{}.{}", k.section, k.key);
            let read = problems
                .0
                .iter()
                .any(|p| matches!(p, Problem::WrongType { path: q, .. } if *q == path));
            assert!(read, "{path} is not read:\n{problems}");
        }
    }

    #[test]
    fn tickgate_variables_override_every_layer_and_are_named_in_problems() {
        let env = |k: &str| match k {
            "TICKGATE_ENGINE_TICK_INTERVAL_MS" => Some("5000".to_owned()),
            "TICKGATE_REDIS_URL" => Some("redis://ours:6379".to_owned()),
            "REDIS_URL" => Some("redis://seed:6379".to_owned()),
            "TICKGATE_HTTP_LISTEN_ADDR" => Some("0.0.0.0:9000".to_owned()),
            "TICKGATE_ENGINE_CONSUMER" => Some("blue".to_owned()),
            _ => None,
        };
        let text = "[engine]\ntick_interval_ms = 20000\n";
        let config = Config::parse(text, env).expect("valid");
        assert_eq!(config.engine.tick_interval_ms, 5_000);
        assert_eq!(config.redis.url, "redis://ours:6379");
        assert_eq!(config.http.listen_addr.to_string(), "0.0.0.0:9000");
        assert_eq!(config.engine.consumer, "blue");
        let env = |k: &str| match k {
            "TICKGATE_ENGINE_TICK_INTERVAL_MS" => Some("5".to_owned()),
            "TICKGATE_REDIS_CLUSTER" => Some("perhaps".to_owned()),
            _ => None,
        };
        let text = Config::parse("", env).unwrap_err().to_string();
        for needle in [
            "engine.tick_interval_ms (from TICKGATE_ENGINE_TICK_INTERVAL_MS) = 5: must be 100 ms..=1 day",
            "environment TICKGATE_REDIS_CLUSTER=\"perhaps\": must be true or false",
        ] {
            assert!(text.contains(needle), "{needle} missing in:\n{text}");
        }
    }

    #[test]
    fn a_file_is_named_in_its_errors() {
        let missing = std::path::Path::new("/nonexistent/tickgate.toml");
        let error = Config::load(missing, |_| None).unwrap_err().to_string();
        assert!(error.contains("/nonexistent/tickgate.toml"), "{error}");
        let dir = std::env::temp_dir().join(format!("tickgate-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("bad.toml");
        std::fs::write(&path, "[engine]\ncolour = 1\n").expect("write");
        let error = Config::load(&path, |_| None).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert!(
            error.contains("bad.toml") && error.contains("engine.colour: unknown"),
            "{error}"
        );
    }

    #[test]
    fn the_default_consumer_names_this_process() {
        let config = Config::parse("", |_| None).expect("defaults");
        let pid = format!("-{}", std::process::id());
        assert!(config.engine.consumer.starts_with("tickgate-"));
        assert!(
            config.engine.consumer.ends_with(&pid),
            "{}",
            config.engine.consumer
        );
    }
}
