//! The production store over Redis (`redis-rs`, `ConnectionManager`), one file per role.
//!
//! Every read-then-write is a Lua script ([`super::scripts`]), so concurrent engine
//! instances cannot interleave inside one; scripts are loaded once and called by SHA,
//! reloaded on `NOSCRIPT`. Writes of many members are chunked
//! ([`crate::limits::WRITE_CHUNK_MEMBERS`]).

mod catalog;
mod dispatch;
mod maintenance;
mod settlement;
mod tls;
mod universes;
mod updates;
mod worker;

use std::path::PathBuf;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, RedisResult, ScriptInvocation, ServerErrorKind, Value};

use super::keys::KeySpace;
use super::scripts::{Lua, Scripts};
use super::{Store, StoreCounters, StoreError};
use crate::core::ticker::Ticker;
use crate::limits::{
    DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_MAX_FUTURE_MS, DEFAULT_MAX_UNIVERSE,
    DEFAULT_RECONNECT_RETRIES, DEFAULT_RESPONSE_TIMEOUT_MS, DEFAULT_TRIGGER_GRACE_MS,
};
use crate::redact::redact_url;

/// Connection and behaviour settings of [`RedisStore`].
#[derive(Clone)]
pub struct RedisStoreConfig {
    /// `redis://[user:password@]host:port[/db]` or `rediss://` for TLS. Never logged raw.
    pub url: String,
    /// Key names (prefix, cluster hash tag).
    pub keys: KeySpace,
    /// Bound on establishing a connection.
    pub connect_timeout: Duration,
    /// Bound on every command's answer. redis-rs defaults to 500 ms when unset; a cleanup
    /// chunk or a 50,000-member universe write can take longer on a busy server, so it is
    /// always set explicitly from config.
    pub response_timeout: Duration,
    /// Reconnection attempts per failed request before the error reaches the caller; the
    /// service retries on its next tick, so a few attempts are enough.
    pub reconnect_retries: usize,
    /// Largest universe accepted (DESIGN §2.7).
    pub max_universe: usize,
    /// How long trigger state outlives its bucket.
    pub trigger_grace_ms: i64,
    /// Update times further ahead of the recording caller's clock are rejected (DESIGN
    /// §2.3); the engine's `max_future_ms`.
    pub max_future_ms: i64,
    /// PEM file of the CA(s) that sign the server's certificate (`rediss://` only), for a
    /// private CA not installed in the system's root store; `None`: the system's root store.
    pub tls_ca_file: Option<PathBuf>,
    /// PEM client certificate chain, for a server that requires one (`tls-auth-clients yes`);
    /// always with `tls_key_file`.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
}

impl std::fmt::Debug for RedisStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStoreConfig")
            .field("url", &redact_url(&self.url))
            .field("keys", &self.keys)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("reconnect_retries", &self.reconnect_retries)
            .field("max_universe", &self.max_universe)
            .field("trigger_grace_ms", &self.trigger_grace_ms)
            .field("max_future_ms", &self.max_future_ms)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .finish()
    }
}

impl RedisStoreConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> RedisStoreConfig {
        RedisStoreConfig {
            url: url.into(),
            keys: KeySpace::default(),
            connect_timeout: Duration::from_millis(DEFAULT_CONNECT_TIMEOUT_MS),
            response_timeout: Duration::from_millis(DEFAULT_RESPONSE_TIMEOUT_MS),
            reconnect_retries: DEFAULT_RECONNECT_RETRIES,
            max_universe: DEFAULT_MAX_UNIVERSE,
            trigger_grace_ms: DEFAULT_TRIGGER_GRACE_MS,
            max_future_ms: DEFAULT_MAX_FUTURE_MS,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

/// The Redis store: one multiplexed, self-reconnecting connection shared by all calls.
pub struct RedisStore {
    con: ConnectionManager,
    keys: KeySpace,
    max_universe: usize,
    trigger_grace_ms: i64,
    max_future_ms: i64,
    scripts: Scripts,
    counters: StoreCounters,
}

impl RedisStore {
    /// Connects (bounded by `connect_timeout`) and returns a ready store. A refused
    /// password is [`StoreError::Auth`], an unusable TLS file [`StoreError::TlsFile`].
    pub async fn connect(config: &RedisStoreConfig) -> Result<RedisStore, StoreError> {
        let client = config.client()?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(config.reconnect_retries);
        let con = tokio::time::timeout(
            config.connect_timeout,
            ConnectionManager::new_with_config(client, manager_config),
        )
        .await
        .map_err(|_| config.timed_out())?
        .map_err(|e| config.connection_error(&e))?;
        Ok(RedisStore {
            con,
            keys: config.keys.clone(),
            max_universe: config.max_universe,
            trigger_grace_ms: config.trigger_grace_ms,
            max_future_ms: config.max_future_ms,
            scripts: Scripts::default(),
            counters: StoreCounters::default(),
        })
    }

    /// The key names this store uses.
    pub fn keys(&self) -> &KeySpace {
        &self.keys
    }

    /// A handle on the shared connection. Every store operation takes one per round trip,
    /// which is what `round_trips` counts (a script reload after `NOSCRIPT` is not counted).
    pub fn connection(&self) -> ConnectionManager {
        StoreCounters::bump(&self.counters.round_trips, 1);
        self.con.clone()
    }

    pub(super) fn scripts(&self) -> &Scripts {
        &self.scripts
    }

    /// Parses members read from Redis, skipping (and counting) any that are not valid
    /// tickers: someone else wrote them, and one bad member must not hide the rest.
    pub(super) fn parse_members(&self, members: Vec<String>) -> Vec<Ticker> {
        self.tickers(members).collect()
    }

    fn tickers(&self, members: Vec<String>) -> impl Iterator<Item = Ticker> + '_ {
        members.into_iter().filter_map(|m| match Ticker::parse(&m) {
            Ok(t) if t.as_str() == m => Some(t),
            _ => {
                StoreCounters::bump(&self.counters.invalid_stored_members, 1);
                None
            }
        })
    }
}

pub(super) fn command_error(op: &'static str, e: RedisError) -> StoreError {
    if e.is_timeout() {
        StoreError::Timeout { op }
    } else if e.is_connection_dropped() || e.is_io_error() || e.is_connection_refusal() {
        StoreError::Disconnected {
            op,
            reason: e.to_string(),
        }
    } else {
        StoreError::Redis {
            op,
            reason: e.to_string(),
        }
    }
}

/// Errors of a script call: transport failures keep their kind (the caller must not
/// "fall back" when Redis is down); everything the server reports is a script failure.
pub(super) fn script_error(script: &'static str, e: RedisError) -> StoreError {
    match command_error(script, e) {
        StoreError::Redis { reason, .. } => StoreError::Script { script, reason },
        other => other,
    }
}

impl Store for RedisStore {
    fn counters(&self) -> &StoreCounters {
        &self.counters
    }
}

/// Whether a script call failed only because Redis had not loaded the script (it did not
/// run, so retrying it is safe).
fn is_noscript(e: &RedisError) -> bool {
    e.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript)
}

/// Runs `calls` of `lua` in one pipeline that starts with `SCRIPT LOAD`, so the calls find
/// the script even right after a `SCRIPT FLUSH`. Calls that still hit `NOSCRIPT` did not
/// run and are retried one by one (which reloads).
async fn pipelined(
    store: &RedisStore,
    lua: &Lua,
    calls: &[ScriptInvocation<'_>],
) -> Result<Vec<Value>, StoreError> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    pipe.cmd("SCRIPT").arg("LOAD").arg(&lua.source);
    for call in calls {
        pipe.invoke_script(call);
    }
    let mut replies: Vec<RedisResult<Value>> = pipe
        .query_async(&mut store.connection())
        .await
        .map_err(|e| script_error(lua.name, e))?;
    if replies.len() != calls.len() + 1 {
        return Err(lua.error(format!(
            "{} replies for {} calls",
            replies.len(),
            calls.len() + 1
        )));
    }
    // The SCRIPT LOAD reply: if loading failed (e.g. an ACL without scripting), no call ran.
    replies.remove(0).map_err(|e| script_error(lua.name, e))?;
    let mut out = Vec::with_capacity(calls.len());
    for (call, reply) in calls.iter().zip(replies) {
        let value = match reply {
            Ok(v) => v,
            Err(e) if is_noscript(&e) => call
                .invoke_async(&mut store.connection())
                .await
                .map_err(|e| script_error(lua.name, e))?,
            Err(e) => return Err(script_error(lua.name, e)),
        };
        out.push(value);
    }
    Ok(out)
}

/// Runs one script call (reloading it on `NOSCRIPT`) and decodes its reply.
async fn invoke<T: redis::FromRedisValue>(
    store: &RedisStore,
    lua: &Lua,
    call: &ScriptInvocation<'_>,
) -> Result<T, StoreError> {
    let value: Value = call
        .invoke_async(&mut store.connection())
        .await
        .map_err(|e| script_error(lua.name, e))?;
    lua.decode(value)
}
