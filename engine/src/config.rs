//! `tickgate.toml`: every setting, checked at once. Unknown keys, wrong types and values out
//! of range are all collected and reported together (an operator fixes a file in one go),
//! each naming its `section.key` and the rule it broke. Environment overrides:
//! `PER_TICKER_THROTTLE` (rollback is a restart) and `REDIS_URL`.
//!
//! ```toml
//! [redis]
//! url = "redis://127.0.0.1:6379"
//! key_prefix = ""
//! cluster = false
//! connect_timeout_ms = 2000
//! response_timeout_ms = 2000
//!
//! [engine]
//! tick_interval_ms = 10000
//! per_ticker_throttle = true
//! lua_threshold = 1000
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use crate::redact::redact_url;
use crate::service::ServiceConfig;
use crate::store::{KeySpace, RedisStoreConfig};

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub redis: RedisStoreConfig,
    pub engine: ServiceConfig,
}

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Syntax {
        reason: String,
    },
    UnknownKey {
        path: String,
    },
    WrongType {
        path: String,
        expected: &'static str,
    },
    OutOfRange {
        path: String,
        value: String,
        rule: &'static str,
    },
    Env {
        name: &'static str,
        value: String,
        rule: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Syntax { reason } => write!(f, "not valid TOML: {reason}"),
            ConfigError::UnknownKey { path } => write!(f, "{path}: unknown setting"),
            ConfigError::WrongType { path, expected } => write!(f, "{path}: expected {expected}"),
            ConfigError::OutOfRange { path, value, rule } => write!(f, "{path} = {value}: {rule}"),
            ConfigError::Env { name, value, rule } => {
                write!(f, "environment {name}={value:?}: {rule}")
            }
        }
    }
}

/// Every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} problem(s) in the configuration:", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

/// Reads the keys of one section, recording what it saw and every problem.
struct Section<'a> {
    name: &'static str,
    table: Option<&'a toml::Table>,
    seen: BTreeSet<&'static str>,
    errors: &'a mut Vec<ConfigError>,
}

impl Section<'_> {
    fn path(&self, key: &str) -> String {
        format!("{}.{key}", self.name)
    }

    fn value(&mut self, key: &'static str) -> Option<&toml::Value> {
        self.seen.insert(key);
        self.table?.get(key)
    }

    fn int(&mut self, key: &'static str, target: &mut i64, min: i64, max: i64, rule: &'static str) {
        let path = self.path(key);
        match self.value(key).map(toml::Value::as_integer) {
            None => {}
            Some(Some(v)) if (min..=max).contains(&v) => *target = v,
            Some(Some(v)) => self.errors.push(ConfigError::OutOfRange {
                path,
                value: v.to_string(),
                rule,
            }),
            Some(None) => self.errors.push(ConfigError::WrongType {
                path,
                expected: "an integer",
            }),
        }
    }

    fn uint<T: TryFrom<i64>>(
        &mut self,
        key: &'static str,
        target: &mut T,
        min: i64,
        max: i64,
        rule: &'static str,
    ) {
        let mut v = i64::MIN;
        self.int(key, &mut v, min, max, rule);
        if let Ok(v) = T::try_from(v) {
            *target = v;
        }
    }

    fn boolean(&mut self, key: &'static str, target: &mut bool) {
        let path = self.path(key);
        match self.value(key).map(toml::Value::as_bool) {
            None => {}
            Some(Some(v)) => *target = v,
            Some(None) => self.errors.push(ConfigError::WrongType {
                path,
                expected: "true or false",
            }),
        }
    }

    fn string(&mut self, key: &'static str, target: &mut String) {
        let path = self.path(key);
        match self.value(key).map(|v| v.as_str().map(str::to_owned)) {
            None => {}
            Some(Some(v)) => *target = v,
            Some(None) => self.errors.push(ConfigError::WrongType {
                path,
                expected: "a string",
            }),
        }
    }

    fn finish(self) {
        let Some(table) = self.table else { return };
        for key in table.keys() {
            if !self.seen.contains(key.as_str()) {
                self.errors.push(ConfigError::UnknownKey {
                    path: format!("{}.{key}", self.name),
                });
            }
        }
    }
}

const DAY_MS: i64 = 86_400_000;

impl Config {
    /// Parses `text`, then applies `env` overrides (`PER_TICKER_THROTTLE`, `REDIS_URL`).
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigErrors(vec![ConfigError::Syntax {
                reason: e.to_string(),
            }])
        })?;
        let mut errors = Vec::new();
        for key in table.keys() {
            if !["redis", "engine"].contains(&key.as_str()) {
                errors.push(ConfigError::UnknownKey { path: key.clone() });
            }
        }
        let sub = |name: &str, errors: &mut Vec<ConfigError>| match table.get(name) {
            None => None,
            Some(toml::Value::Table(t)) => Some(t),
            Some(_) => {
                errors.push(ConfigError::WrongType {
                    path: name.to_owned(),
                    expected: "a table",
                });
                None
            }
        };
        let redis_table = sub("redis", &mut errors);
        let engine_table = sub("engine", &mut errors);

        let mut redis = RedisStoreConfig::new("redis://127.0.0.1:6379");
        let (mut prefix, mut cluster) = (String::new(), false);
        let (mut connect_ms, mut response_ms) = (2_000i64, 2_000i64);
        {
            let mut s = Section {
                name: "redis",
                table: redis_table,
                seen: BTreeSet::new(),
                errors: &mut errors,
            };
            s.string("url", &mut redis.url);
            s.string("key_prefix", &mut prefix);
            s.boolean("cluster", &mut cluster);
            s.int(
                "connect_timeout_ms",
                &mut connect_ms,
                1,
                600_000,
                "must be 1..=600000 ms",
            );
            s.int(
                "response_timeout_ms",
                &mut response_ms,
                1,
                600_000,
                "must be 1..=600000 ms (redis-rs would default to 500)",
            );
            s.uint(
                "reconnect_retries",
                &mut redis.reconnect_retries,
                0,
                100,
                "must be 0..=100",
            );
            s.uint(
                "max_universe",
                &mut redis.max_universe,
                1,
                10_000_000,
                "must be 1..=10000000",
            );
            s.int(
                "trigger_grace_ms",
                &mut redis.trigger_grace_ms,
                0,
                7 * DAY_MS,
                "must be 0..=7 days",
            );
            s.finish();
        }
        redis.keys = KeySpace::new(&prefix, cluster);
        redis.connect_timeout = Duration::from_millis(connect_ms as u64);
        redis.response_timeout = Duration::from_millis(response_ms as u64);

        let mut e = ServiceConfig::default();
        {
            let mut s = Section {
                name: "engine",
                table: engine_table,
                seen: BTreeSet::new(),
                errors: &mut errors,
            };
            s.int(
                "tick_interval_ms",
                &mut e.tick_interval_ms,
                100,
                DAY_MS,
                "must be 100 ms..=1 day",
            );
            s.boolean("per_ticker_throttle", &mut e.per_ticker_throttle);
            s.uint(
                "lua_threshold",
                &mut e.lua_threshold,
                0,
                10_000_000,
                "must be 0..=10000000",
            );
            s.int(
                "retention_ms",
                &mut e.retention_ms,
                0,
                3_650 * DAY_MS,
                "must be 0..=10 years",
            );
            s.int(
                "cleanup_initial_delay_ms",
                &mut e.cleanup_initial_delay_ms,
                0,
                30 * DAY_MS,
                "must be 0..=30 days",
            );
            s.int(
                "cleanup_interval_ms",
                &mut e.cleanup_interval_ms,
                60_000,
                30 * DAY_MS,
                "must be 1 min..=30 days",
            );
            s.int(
                "metrics_log_interval_ms",
                &mut e.metrics_log_interval_ms,
                1_000,
                DAY_MS,
                "must be 1 s..=1 day",
            );
            s.int(
                "catalog_resync_ms",
                &mut e.catalog_resync_ms,
                1_000,
                DAY_MS,
                "must be 1 s..=1 day",
            );
            s.uint(
                "results_batch",
                &mut e.results_batch,
                1,
                10_000,
                "must be 1..=10000",
            );
            s.uint(
                "max_results_per_tick",
                &mut e.max_results_per_tick,
                1,
                1_000_000,
                "must be 1..=1000000",
            );
            s.uint(
                "max_universe",
                &mut e.max_universe,
                1,
                10_000_000,
                "must be 1..=10000000",
            );
            s.uint(
                "discovery_queue_capacity",
                &mut e.discovery_queue_capacity,
                1,
                10_000_000,
                "must be 1..=10000000",
            );
            s.uint(
                "discovery_attempts",
                &mut e.discovery_attempts,
                1,
                100,
                "must be 1..=100",
            );
            s.int(
                "discovery_backoff_ms",
                &mut e.discovery_backoff_ms,
                1,
                600_000,
                "must be 1..=600000 ms",
            );
            s.int(
                "job_visibility_ms",
                &mut e.job_visibility_ms,
                1_000,
                DAY_MS,
                "must be 1 s..=1 day",
            );
            s.uint(
                "max_deliveries",
                &mut e.max_deliveries,
                1,
                1_000,
                "must be 1..=1000",
            );
            s.uint(
                "max_pending_checked",
                &mut e.max_pending_checked,
                1,
                100_000,
                "must be 1..=100000",
            );
            s.uint(
                "shutdown_deadline_ms",
                &mut e.shutdown_deadline_ms,
                1,
                600_000,
                "must be 1..=600000 ms",
            );
            s.string("consumer", &mut e.consumer);
            s.finish();
        }
        if e.consumer.is_empty() {
            errors.push(ConfigError::OutOfRange {
                path: "engine.consumer".into(),
                value: "\"\"".into(),
                rule: "must not be empty",
            });
        }
        if let Some(v) = env("PER_TICKER_THROTTLE") {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => e.per_ticker_throttle = true,
                "false" | "0" | "no" | "off" => e.per_ticker_throttle = false,
                _ => errors.push(ConfigError::Env {
                    name: "PER_TICKER_THROTTLE",
                    value: v,
                    rule: "must be true or false",
                }),
            }
        }
        if let Some(url) = env("REDIS_URL").filter(|u| !u.is_empty()) {
            redis.url = url;
        }
        if !(redis.url.starts_with("redis://") || redis.url.starts_with("rediss://")) {
            errors.push(ConfigError::OutOfRange {
                path: "redis.url".into(),
                value: redact_url(&redis.url),
                rule: "must start with redis:// or rediss://",
            });
        }
        if errors.is_empty() {
            Ok(Config { redis, engine: e })
        } else {
            Err(ConfigErrors(errors))
        }
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
            "engine.tick_interval_ms = 0",
            "engine.per_ticker_throttle: expected true or false",
            "engine.lua_treshold: unknown",
            "redis.url = http://u:***@host",
        ] {
            assert!(text.contains(needle), "{needle} missing in:\n{text}");
        }
        assert!(!text.contains("secret"));
        assert_eq!(errors.0.len(), 6, "{text}");
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
}
