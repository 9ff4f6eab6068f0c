//! A real Redis for every test, bench and simulation run (DESIGN §4), chosen by
//! `TICKGATE_REDIS=auto|url|container|process`:
//!
//! - `url`: the server at `REDIS_URL` (shared: each handle gets its own key prefix);
//! - `container`: a throw-away container of `TICKGATE_REDIS_IMAGE` (default [`DEFAULT_IMAGE`])
//!   through `testcontainers`, ready when it logs [`READY_LINE`], on a mapped port;
//! - `process`: a `redis-server` from `PATH` on a free loopback port, persistence off;
//! - `auto` (default): url if `REDIS_URL` is set, else container if a Docker daemon answers,
//!   else process if `redis-server` is on `PATH`, else [`ProvisionError::NoRedis`].
//!
//! A way the user named is used or fails with an error naming it: `REDIS_URL` (also under
//! `auto`), or an explicit mode. `auto` falls back only between ways nobody named: when the
//! container it chose does not start (Docker answers but the image cannot be had), it
//! starts a local `redis-server` and says so in [`RedisServer::fallback`].
//!
//! Containers and processes belong to the [`RedisServer`] handle and are removed when it
//! drops — also while a panicking test unwinds. Every wait is bounded, so a missing image
//! or a dead daemon is a prompt error, never a hang.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use testcontainers::{ContainerAsync, GenericImage};
use tickgate::redact::redact_url;

mod container;
mod probe;
mod process;
mod ready;

use self::container::start_container;
use self::probe::url_socket_addr;
pub use self::probe::{docker_answers, find_redis_server};
use self::process::{ProcessGuard, signal, spawn_redis, start_process};
use self::ready::{not_ready, ping_url, wait_ready};

/// Image used in container mode when `TICKGATE_REDIS_IMAGE` is unset.
pub const DEFAULT_IMAGE: &str = "redis:7";

/// The line Redis logs once it accepts connections.
pub const READY_LINE: &str = "Ready to accept connections";

/// Bound on a whole container start (image check or pull, create, start, ready line).
/// A local image starts in about a second; a minute covers a slow pull and still fails a
/// dead registry long before CI's limit.
pub const CONTAINER_START_TIMEOUT: Duration = Duration::from_secs(60);

/// Bound on a `redis-server` process becoming ready: it starts in milliseconds.
pub const PROCESS_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many free ports a process start tries: another process can take the port between
/// our probe and Redis's bind, which is rare, so a few attempts suffice.
pub const PROCESS_START_ATTEMPTS: u32 = 5;

/// Bound on the Docker daemon's answer to `GET /_ping`: a live local daemon answers in
/// milliseconds, and `auto` must not stall when Docker is installed but not running.
pub const DOCKER_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Bound on a server named by `REDIS_URL` answering `PING` (retried meanwhile): a server a
/// CI job has just started answers within a few seconds, and a wrong address must not hold
/// a run up for long before it fails.
pub const URL_READY_TIMEOUT: Duration = Duration::from_secs(3);

/// How the caller asked for a Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisMode {
    Auto,
    Url,
    Container,
    Process,
}

impl RedisMode {
    /// Parses a `TICKGATE_REDIS` value.
    pub fn parse(value: &str) -> Result<Self, ProvisionError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(RedisMode::Auto),
            "url" => Ok(RedisMode::Url),
            "container" => Ok(RedisMode::Container),
            "process" => Ok(RedisMode::Process),
            _ => Err(ProvisionError::InvalidMode {
                value: value.to_owned(),
            }),
        }
    }
}

/// The settings provisioning reads, gathered in one place so that the choice is a pure
/// function of them (and testable without touching the process environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionSettings {
    /// `TICKGATE_REDIS`.
    pub mode: RedisMode,
    /// `REDIS_URL`, if set and non-empty.
    pub redis_url: Option<String>,
    /// `TICKGATE_REDIS_IMAGE`, or [`DEFAULT_IMAGE`].
    pub image: String,
}

impl ProvisionSettings {
    /// Reads `TICKGATE_REDIS`, `REDIS_URL` and `TICKGATE_REDIS_IMAGE`.
    pub fn from_env() -> Result<Self, ProvisionError> {
        Self::from_env_as(None)
    }

    /// As [`ProvisionSettings::from_env`], but with `mode`, when given, in place of
    /// `TICKGATE_REDIS` (not read then: a command-line flag overrides it).
    pub fn from_env_as(mode: Option<RedisMode>) -> Result<Self, ProvisionError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mode = match mode {
            Some(mode) => mode,
            None => RedisMode::parse(&var("TICKGATE_REDIS").unwrap_or_default())?,
        };
        Ok(ProvisionSettings {
            mode,
            redis_url: var("REDIS_URL"),
            image: var("TICKGATE_REDIS_IMAGE").unwrap_or_else(|| DEFAULT_IMAGE.to_owned()),
        })
    }
}

/// Where the Redis for this run will come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Url(String),
    Container(String),
    Process(PathBuf),
}

/// Why no Redis could be had. URLs in messages are redacted.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("TICKGATE_REDIS={value:?} is not one of auto, url, container, process")]
    InvalidMode { value: String },
    #[error(
        "url mode asks for the Redis at REDIS_URL, but REDIS_URL is not set (e.g. REDIS_URL=redis://127.0.0.1:6379)"
    )]
    UrlMissing,
    #[error("REDIS_URL={url:?} is not a Redis URL: {reason} (e.g. redis://127.0.0.1:6379)")]
    BadUrl { url: String, reason: String },
    #[error("the Redis named by REDIS_URL ({url}) did not answer PING within {waited:?}: {reason}")]
    UrlUnreachable {
        url: String,
        waited: Duration,
        reason: String,
    },
    #[error(
        "container mode, but no Docker daemon answers at {endpoint} within {DOCKER_PING_TIMEOUT:?}; start dockerd, or use process mode (a local redis-server)"
    )]
    DockerUnavailable { endpoint: String },
    #[error(
        "container of image {image:?} did not start: {reason}. If the image is missing and no registry is reachable, build one with scripts/redis-image.sh and set TICKGATE_REDIS_IMAGE"
    )]
    Container { image: String, reason: String },
    #[error("no redis-server found on PATH; install it (apt-get install redis-server)")]
    RedisServerNotFound,
    #[error("redis-server {path:?} did not start: {reason}")]
    Process { path: PathBuf, reason: String },
    #[error("Redis at {url} did not answer PING within {waited:?}: {reason}")]
    NotReady {
        url: String,
        waited: Duration,
        reason: String,
    },
    #[error("{op} needs a server this handle owns (container or process), not a shared REDIS_URL")]
    NotDedicated { op: &'static str },
    #[error("{op} failed: {reason}")]
    Fault { op: &'static str, reason: String },
    #[error(
        "no Redis available. Get one in any of three ways: set REDIS_URL=redis://host:port; \
         or run a Docker daemon (image from TICKGATE_REDIS_IMAGE, default {DEFAULT_IMAGE}; \
         build a local one with scripts/redis-image.sh); or install redis-server on PATH"
    )]
    NoRedis,
    #[error("{first}; and auto's fallback, a local redis-server, did not start either: {then}")]
    FallbackFailed {
        first: Box<ProvisionError>,
        then: Box<ProvisionError>,
    },
}

/// Chooses where Redis comes from. `docker_answers` and `find_redis_server` are only
/// consulted when the mode needs them (so `url` never probes Docker).
pub fn choose(
    settings: &ProvisionSettings,
    docker_answers: impl FnOnce() -> bool,
    find_redis_server: impl FnOnce() -> Option<PathBuf>,
) -> Result<Plan, ProvisionError> {
    match settings.mode {
        RedisMode::Url => settings
            .redis_url
            .clone()
            .map(Plan::Url)
            .ok_or(ProvisionError::UrlMissing),
        RedisMode::Container => Ok(Plan::Container(settings.image.clone())),
        RedisMode::Process => find_redis_server()
            .map(Plan::Process)
            .ok_or(ProvisionError::RedisServerNotFound),
        RedisMode::Auto => {
            if let Some(url) = &settings.redis_url {
                Ok(Plan::Url(url.clone()))
            } else if docker_answers() {
                Ok(Plan::Container(settings.image.clone()))
            } else {
                find_redis_server()
                    .map(Plan::Process)
                    .ok_or(ProvisionError::NoRedis)
            }
        }
    }
}

/// A Redis server for one test, bench or simulation; dropping it removes the container or
/// kills the process it owns.
pub struct RedisServer {
    url: String,
    key_prefix: String,
    backend: Backend,
    /// Why `auto` is not using the way it chose first, if it is not.
    fallback: Option<String>,
}

enum Backend {
    /// A server we do not own (`REDIS_URL`).
    External,
    /// Kept for its `Drop`, which removes the container.
    Container {
        _container: Box<ContainerAsync<GenericImage>>,
        image: String,
    },
    Process(ProcessGuard),
}

impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("url", &redact_url(&self.url))
            .field("source", &self.source())
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

impl RedisServer {
    /// Provisions a Redis as the environment asks (see the module docs).
    pub async fn from_env() -> Result<Self, ProvisionError> {
        Self::start(&ProvisionSettings::from_env()?).await
    }

    /// Provisions a Redis for explicit settings. Under `auto` without `REDIS_URL`, a
    /// container that does not start is replaced by a local `redis-server` if there is one
    /// ([`RedisServer::fallback`] says why); every other failure is returned as is.
    pub async fn start(settings: &ProvisionSettings) -> Result<Self, ProvisionError> {
        let plan = choose(settings, docker_answers, find_redis_server)?;
        let chose_container = matches!(plan, Plan::Container(_));
        let first = match Self::start_plan(plan).await {
            Ok(server) => return Ok(server),
            Err(e) if settings.mode == RedisMode::Auto && chose_container => e,
            Err(e) => return Err(e),
        };
        let Some(path) = find_redis_server() else {
            return Err(first);
        };
        match start_process(path).await {
            Ok(mut server) => {
                server.fallback = Some(format!("{first}; using a local redis-server instead"));
                Ok(server)
            }
            Err(then) => Err(ProvisionError::FallbackFailed {
                first: Box::new(first),
                then: Box::new(then),
            }),
        }
    }

    /// A handle on a server at `url` with its backend (no fallback).
    fn new(url: String, key_prefix: String, backend: Backend) -> RedisServer {
        RedisServer {
            url,
            key_prefix,
            backend,
            fallback: None,
        }
    }

    /// Carries out a plan made by [`choose`]. A URL is checked with a real client's `PING`
    /// (DNS, TLS and credentials as the engine will use them).
    pub async fn start_plan(plan: Plan) -> Result<Self, ProvisionError> {
        match plan {
            Plan::Url(url) => {
                ping_url(&url).await?;
                Ok(RedisServer::new(url, unique_prefix(), Backend::External))
            }
            Plan::Container(image) => start_container(image).await,
            Plan::Process(path) => start_process(path).await,
        }
    }

    /// `redis://host:port` of the server (may carry credentials in `url` mode: never log
    /// it raw, use [`tickgate::redact::redact_url`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Prefix every key of this handle must start with. Empty for servers this handle owns;
    /// unique per handle on a shared `REDIS_URL` server, so that concurrent tests never see
    /// each other's keys.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// Whether this handle owns its server (container or process), so that server-wide
    /// commands (`FLUSHALL`, `SCRIPT FLUSH`, `DEBUG SLEEP`) touch nobody else.
    pub fn is_dedicated(&self) -> bool {
        !matches!(self.backend, Backend::External)
    }

    /// Freezes the server (container pause, or SIGSTOP): connections stay open, nothing is
    /// answered — the way a stalled Redis looks to clients.
    pub async fn pause(&self) -> Result<(), ProvisionError> {
        let fault = |reason: String| ProvisionError::Fault {
            op: "pause",
            reason,
        };
        match &self.backend {
            Backend::External => Err(ProvisionError::NotDedicated { op: "pause" }),
            Backend::Container { _container: c, .. } => {
                c.pause().await.map_err(|e| fault(e.to_string()))
            }
            Backend::Process(p) => signal(p.child.id(), "-STOP").map_err(fault),
        }
    }

    /// Undoes [`RedisServer::pause`].
    pub async fn resume(&self) -> Result<(), ProvisionError> {
        let fault = |reason: String| ProvisionError::Fault {
            op: "resume",
            reason,
        };
        match &self.backend {
            Backend::External => Err(ProvisionError::NotDedicated { op: "resume" }),
            Backend::Container { _container: c, .. } => {
                c.unpause().await.map_err(|e| fault(e.to_string()))
            }
            Backend::Process(p) => signal(p.child.id(), "-CONT").map_err(fault),
        }
    }

    /// Kills the server (no save) and starts it again, empty, at the same address.
    /// `while_down` runs between the two, so a test can observe the outage.
    pub async fn restart_empty<F: std::future::Future<Output = ()>>(
        &mut self,
        while_down: F,
    ) -> Result<(), ProvisionError> {
        let fault = |reason: String| ProvisionError::Fault {
            op: "restart",
            reason,
        };
        let addr = url_socket_addr(&self.url).ok_or_else(|| fault("no address".into()))?;
        match &mut self.backend {
            Backend::External => return Err(ProvisionError::NotDedicated { op: "restart" }),
            Backend::Container { _container: c, .. } => {
                // SIGKILL at once: Redis gets no chance to save, so it restarts empty.
                c.stop_with_timeout(Some(0))
                    .await
                    .map_err(|e| fault(e.to_string()))?;
                while_down.await;
                c.start().await.map_err(|e| fault(e.to_string()))?;
            }
            Backend::Process(p) => {
                let _ = p.child.kill();
                let _ = p.child.wait();
                while_down.await;
                p.child = spawn_redis(&p.path, p.port).map_err(|e| fault(e.to_string()))?;
            }
        }
        wait_ready(addr, PROCESS_READY_TIMEOUT, || true)
            .await
            .map_err(|reason| not_ready(&self.url, reason))
    }

    /// Why `auto` fell back to a local `redis-server` (the way it tried first and how that
    /// failed), if it did: callers that talk to people print it.
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// One line saying where this Redis came from, e.g. `container tickgate/redis:local`.
    pub fn source(&self) -> String {
        match &self.backend {
            Backend::External => format!("url {}", redact_url(&self.url)),
            Backend::Container { image, .. } => format!("container {image}"),
            Backend::Process(p) => format!("process {} (pid {})", p.path.display(), p.child.id()),
        }
    }
}

/// A prefix unique to this handle: process id, a per-process counter and a per-process
/// random salt (so a recycled pid cannot collide with keys a crashed run left behind).
fn unique_prefix() -> String {
    use std::hash::{BuildHasher, RandomState};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let salt = RandomState::new().hash_one(std::process::id());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("tgtest:{}:{salt:x}:{n}:", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::container::split_image;

    #[test]
    fn image_names_split_at_the_tag_colon_only() {
        assert_eq!(split_image("redis:7"), ("redis", "7"));
        assert_eq!(
            split_image("tickgate/redis:local"),
            ("tickgate/redis", "local")
        );
        assert_eq!(
            split_image("host:5000/redis"),
            ("host:5000/redis", "latest")
        );
        assert_eq!(split_image("redis"), ("redis", "latest"));
    }

    #[test]
    fn url_addresses_are_found_without_dns() {
        let a = |s: &str| url_socket_addr(s).map(|a| a.to_string());
        assert_eq!(
            a("redis://127.0.0.1:7000/0").as_deref(),
            Some("127.0.0.1:7000")
        );
        assert_eq!(
            a("redis://u:p@localhost").as_deref(),
            Some("127.0.0.1:6379")
        );
        assert_eq!(a("redis://redis.internal:6379"), None);
    }

    #[test]
    fn unique_prefixes_differ() {
        assert_ne!(unique_prefix(), unique_prefix());
    }
}
