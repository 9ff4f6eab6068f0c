//! Where the command line's Redis comes from (`--redis`), shared by `tickgate-sim run` and
//! `tickgate-sim redis`, so that the two always agree: a way the user named (`REDIS_URL`,
//! `TICKGATE_REDIS`, `--redis url|container|process`) is used or the command fails (exit 1)
//! naming what failed; `auto` falls back only between ways nobody named, and says so.

use std::time::{Duration, Instant};

use tickgate::redact::redact_url;

use super::command::Exit;
use crate::redis::provision::{ProvisionSettings, RedisMode, RedisServer};

/// Where Redis comes from (`--redis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RedisChoice {
    /// As tests do: `TICKGATE_REDIS`, else `REDIS_URL` if set, else a container if a Docker
    /// daemon answers (a local redis-server if the container does not start), else a local
    /// redis-server.
    Auto,
    /// The server at `REDIS_URL`.
    Url,
    /// A throw-away container of `TICKGATE_REDIS_IMAGE` (default redis:7).
    Container,
    /// A local `redis-server` from PATH on a free port.
    Process,
    /// The engine on the in-memory store; no Redis, no Redis faults.
    Memory,
}

impl RedisChoice {
    /// The provisioning mode the flag names, `None` for `auto` (the environment decides)
    /// and for the in-memory store.
    fn named_mode(self) -> Option<RedisMode> {
        match self {
            RedisChoice::Url => Some(RedisMode::Url),
            RedisChoice::Container => Some(RedisMode::Container),
            RedisChoice::Process => Some(RedisMode::Process),
            RedisChoice::Auto | RedisChoice::Memory => None,
        }
    }

    /// The value as typed on the command line.
    pub fn name(self) -> &'static str {
        match self {
            RedisChoice::Auto => "auto",
            RedisChoice::Url => "url",
            RedisChoice::Container => "container",
            RedisChoice::Process => "process",
            RedisChoice::Memory => "memory",
        }
    }
}

/// The Redis of a command: a server, or none for `--redis memory`.
pub struct Provided {
    pub server: Option<RedisServer>,
}

impl Provided {
    /// The line both commands print: where Redis comes from.
    pub fn describe(&self) -> String {
        match &self.server {
            Some(server) => server.source(),
            None => "none: the in-memory store (--redis memory), no Redis faults".to_owned(),
        }
    }
}

/// The Redis `choice` asks for. A flag naming a mode overrides `TICKGATE_REDIS`; a bad
/// `TICKGATE_REDIS` is a usage error (exit 2); a Redis that cannot be had is exit 1.
/// Prints where Redis comes from, and `auto`'s fallback if it took one.
pub async fn provide(choice: RedisChoice) -> Result<Provided, Exit> {
    if choice == RedisChoice::Memory {
        let provided = Provided { server: None };
        println!("redis: {}", provided.describe());
        return Ok(provided);
    }
    let settings = ProvisionSettings::from_env_as(choice.named_mode())
        .map_err(|e| Exit::Usage(e.to_string()))?;
    let server = RedisServer::start(&settings)
        .await
        .map_err(|e| Exit::Crash(format!("no Redis: {e}")))?;
    if let Some(why) = server.fallback() {
        println!("notice: auto: {why}");
    }
    let provided = Provided {
        server: Some(server),
    };
    println!("redis: {}", provided.describe());
    Ok(provided)
}

/// Bound on the `PING` of `tickgate-sim redis` once the server is up: it answered a
/// readiness check a moment ago, so a second is only a hang guard.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// `tickgate-sim redis`: provisions the Redis `run` would use, connects with a real client
/// and sends `PING`, then removes what it started.
pub async fn check(choice: RedisChoice) -> Result<(), Exit> {
    let provided = provide(choice).await?;
    let Some(server) = provided.server else {
        return Ok(());
    };
    let started = Instant::now();
    ping(server.url()).await.map_err(|e| {
        Exit::Crash(format!(
            "no Redis: {} did not answer PING: {e}",
            redact_url(server.url())
        ))
    })?;
    println!(
        "PING answered by {} in {:.1} ms",
        redact_url(server.url()),
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

async fn ping(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(PING_TIMEOUT))
        .set_response_timeout(Some(PING_TIMEOUT));
    let mut con = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| e.to_string())?;
    let reply: String = redis::cmd("PING")
        .query_async(&mut con)
        .await
        .map_err(|e| e.to_string())?;
    (reply == "PONG")
        .then_some(())
        .ok_or_else(|| format!("unexpected reply {reply:?}"))
}
