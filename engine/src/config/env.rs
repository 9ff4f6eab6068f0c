//! Environment overrides: `TICKGATE_<SECTION>_<KEY>` for every key of `tickgate.toml`, plus
//! the seed's `PER_TICKER_THROTTLE` and `REDIS_URL`.
//!
//! Precedence, lowest first: the file, the seed's names, the `TICKGATE_` names. An override
//! is typed by its key ([`Kind`]) and goes into the table before the keys are checked, so it
//! meets the same range rules as the file; a problem with it names the variable.
//!
//! [`KEYS`] lists every key; `fixtures/tickgate.example.toml` documents the same keys, and
//! the tests check that the two agree and that the readers in `config.rs` read each one (a
//! new key goes into all three).

use std::collections::BTreeMap;

use super::reader::Problem;

/// How an environment value becomes a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Integer,
    Boolean,
    Text,
}

/// One overridable key: its section, its name, its type and its variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvKey {
    pub section: &'static str,
    pub key: &'static str,
    pub kind: Kind,
    /// `TICKGATE_<SECTION>_<KEY>`, upper case.
    pub var: &'static str,
}

const fn k(section: &'static str, key: &'static str, kind: Kind, var: &'static str) -> EnvKey {
    EnvKey {
        section,
        key,
        kind,
        var,
    }
}

use Kind::{Boolean, Integer, Text};

/// Every key of `tickgate.toml`, in the example file's order.
pub const KEYS: &[EnvKey] = &[
    k("redis", "url", Text, "TICKGATE_REDIS_URL"),
    k("redis", "key_prefix", Text, "TICKGATE_REDIS_KEY_PREFIX"),
    k("redis", "cluster", Boolean, "TICKGATE_REDIS_CLUSTER"),
    k(
        "redis",
        "connect_timeout_ms",
        Integer,
        "TICKGATE_REDIS_CONNECT_TIMEOUT_MS",
    ),
    k(
        "redis",
        "response_timeout_ms",
        Integer,
        "TICKGATE_REDIS_RESPONSE_TIMEOUT_MS",
    ),
    k(
        "redis",
        "reconnect_retries",
        Integer,
        "TICKGATE_REDIS_RECONNECT_RETRIES",
    ),
    k(
        "redis",
        "trigger_grace_ms",
        Integer,
        "TICKGATE_REDIS_TRIGGER_GRACE_MS",
    ),
    k("redis", "tls_ca_file", Text, "TICKGATE_REDIS_TLS_CA_FILE"),
    k(
        "redis",
        "tls_cert_file",
        Text,
        "TICKGATE_REDIS_TLS_CERT_FILE",
    ),
    k("redis", "tls_key_file", Text, "TICKGATE_REDIS_TLS_KEY_FILE"),
    k(
        "engine",
        "tick_interval_ms",
        Integer,
        "TICKGATE_ENGINE_TICK_INTERVAL_MS",
    ),
    k(
        "engine",
        "per_ticker_throttle",
        Boolean,
        "TICKGATE_ENGINE_PER_TICKER_THROTTLE",
    ),
    k(
        "engine",
        "lua_threshold",
        Integer,
        "TICKGATE_ENGINE_LUA_THRESHOLD",
    ),
    k(
        "engine",
        "max_universe",
        Integer,
        "TICKGATE_ENGINE_MAX_UNIVERSE",
    ),
    k(
        "engine",
        "max_future_ms",
        Integer,
        "TICKGATE_ENGINE_MAX_FUTURE_MS",
    ),
    k(
        "engine",
        "direct_write_lag_ms",
        Integer,
        "TICKGATE_ENGINE_DIRECT_WRITE_LAG_MS",
    ),
    k(
        "engine",
        "max_clock_skew_ms",
        Integer,
        "TICKGATE_ENGINE_MAX_CLOCK_SKEW_MS",
    ),
    k(
        "engine",
        "retention_ms",
        Integer,
        "TICKGATE_ENGINE_RETENTION_MS",
    ),
    k(
        "engine",
        "cleanup_initial_delay_ms",
        Integer,
        "TICKGATE_ENGINE_CLEANUP_INITIAL_DELAY_MS",
    ),
    k(
        "engine",
        "cleanup_interval_ms",
        Integer,
        "TICKGATE_ENGINE_CLEANUP_INTERVAL_MS",
    ),
    k(
        "engine",
        "metrics_log_interval_ms",
        Integer,
        "TICKGATE_ENGINE_METRICS_LOG_INTERVAL_MS",
    ),
    k(
        "engine",
        "catalog_resync_ms",
        Integer,
        "TICKGATE_ENGINE_CATALOG_RESYNC_MS",
    ),
    k(
        "engine",
        "results_batch",
        Integer,
        "TICKGATE_ENGINE_RESULTS_BATCH",
    ),
    k(
        "engine",
        "max_results_per_tick",
        Integer,
        "TICKGATE_ENGINE_MAX_RESULTS_PER_TICK",
    ),
    k(
        "engine",
        "discovery_queue_capacity",
        Integer,
        "TICKGATE_ENGINE_DISCOVERY_QUEUE_CAPACITY",
    ),
    k(
        "engine",
        "discovery_attempts",
        Integer,
        "TICKGATE_ENGINE_DISCOVERY_ATTEMPTS",
    ),
    k(
        "engine",
        "discovery_backoff_ms",
        Integer,
        "TICKGATE_ENGINE_DISCOVERY_BACKOFF_MS",
    ),
    k(
        "engine",
        "job_visibility_ms",
        Integer,
        "TICKGATE_ENGINE_JOB_VISIBILITY_MS",
    ),
    k(
        "engine",
        "result_takeover_ms",
        Integer,
        "TICKGATE_ENGINE_RESULT_TAKEOVER_MS",
    ),
    k(
        "engine",
        "max_deliveries",
        Integer,
        "TICKGATE_ENGINE_MAX_DELIVERIES",
    ),
    k(
        "engine",
        "max_pending_checked",
        Integer,
        "TICKGATE_ENGINE_MAX_PENDING_CHECKED",
    ),
    k(
        "engine",
        "jobs_stream_max",
        Integer,
        "TICKGATE_ENGINE_JOBS_STREAM_MAX",
    ),
    k(
        "engine",
        "shutdown_deadline_ms",
        Integer,
        "TICKGATE_ENGINE_SHUTDOWN_DEADLINE_MS",
    ),
    k("engine", "consumer", Text, "TICKGATE_ENGINE_CONSUMER"),
    k("http", "listen_addr", Text, "TICKGATE_HTTP_LISTEN_ADDR"),
];

/// The seed's variables and the key each one overrides (below the `TICKGATE_` names).
pub const SEED_VARS: [(&str, &str, &str); 2] = [
    ("PER_TICKER_THROTTLE", "engine", "per_ticker_throttle"),
    ("REDIS_URL", "redis", "url"),
];

/// Every variable read: the seed's, then the `TICKGATE_` ones.
pub fn variables() -> impl Iterator<Item = &'static str> {
    SEED_VARS
        .iter()
        .map(|(var, _, _)| *var)
        .chain(KEYS.iter().map(|k| k.var))
}

/// Puts the overrides of `env` into `table`, lowest precedence first; returns the variable
/// that set each overridden `section.key`. Values that do not fit their key's type are
/// problems and leave the key as the file has it.
pub fn overlay(
    table: &mut toml::Table,
    env: &BTreeMap<&'static str, String>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, &'static str> {
    let mut sources = BTreeMap::new();
    let seed = SEED_VARS.iter().map(|(var, section, key)| {
        let kind = KEYS
            .iter()
            .find(|k| k.section == *section && k.key == *key)
            .map_or(Text, |k| k.kind);
        (*var, *section, *key, kind)
    });
    let ours = KEYS.iter().map(|k| (k.var, k.section, k.key, k.kind));
    for (var, section, key, kind) in seed.chain(ours) {
        let Some(raw) = env.get(var) else { continue };
        // The seed treats an empty REDIS_URL as unset; so does every variable here.
        if raw.is_empty() {
            continue;
        }
        let value = match convert(kind, raw) {
            Ok(value) => value,
            Err(rule) => {
                problems.push(Problem::Env {
                    name: var.to_owned(),
                    value: raw.clone(),
                    rule,
                });
                continue;
            }
        };
        let entry = table
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        // A section that is not a table is reported by the readers; the override waits.
        if let toml::Value::Table(section_table) = entry {
            section_table.insert(key.to_owned(), value);
            sources.insert(format!("{section}.{key}"), var);
        }
    }
    sources
}

fn convert(kind: Kind, raw: &str) -> Result<toml::Value, &'static str> {
    let trimmed = raw.trim();
    match kind {
        Text => Ok(toml::Value::String(raw.to_owned())),
        Integer => trimmed
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| "must be an integer"),
        Boolean => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(toml::Value::Boolean(false)),
            _ => Err("must be true or false"),
        },
    }
}

/// Names the variable in a problem about a key it set.
pub fn attribute(problem: Problem, sources: &BTreeMap<String, &'static str>) -> Problem {
    let from = |path: String| match sources.get(&path) {
        Some(var) => format!("{path} (from {var})"),
        None => path,
    };
    match problem {
        Problem::WrongType { path, expected } => Problem::WrongType {
            path: from(path),
            expected,
        },
        Problem::OutOfRange { path, value, rule } => Problem::OutOfRange {
            path: from(path),
            value,
            rule,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_is_named_after_its_section_and_key() {
        for k in KEYS {
            let want = format!("TICKGATE_{}_{}", k.section, k.key).to_ascii_uppercase();
            assert_eq!(k.var, want);
        }
    }

    #[test]
    fn values_are_typed_by_their_key() {
        assert_eq!(convert(Integer, " 42 "), Ok(toml::Value::Integer(42)));
        assert_eq!(convert(Boolean, "OFF"), Ok(toml::Value::Boolean(false)));
        assert_eq!(convert(Text, "12"), Ok(toml::Value::String("12".into())));
        assert_eq!(convert(Integer, "10s"), Err("must be an integer"));
        assert_eq!(convert(Boolean, "maybe"), Err("must be true or false"));
    }
}
