//! Redis provisioning: every mode starts (or finds) a real Redis that round-trips a
//! command, `auto` chooses as documented, failures are prompt and named, and servers are
//! gone after their handle drops — also when the test that owned them panicked.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tickgate_sim::provision::{
    self, CONTAINER_START_TIMEOUT, Plan, ProvisionError, ProvisionSettings, RedisMode, RedisServer,
};

/// Bound on one probe of a server that should (or should no longer) answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

fn settings(mode: RedisMode, redis_url: Option<&str>) -> ProvisionSettings {
    let env = ProvisionSettings::from_env().expect("valid TICKGATE_REDIS");
    ProvisionSettings {
        mode,
        redis_url: redis_url.map(str::to_owned),
        image: env.image,
    }
}

/// Whether the user forced a mode (CI sets TICKGATE_REDIS=container): then that mode's
/// test must really run, not report the mode unavailable.
fn forced(mode: RedisMode) -> bool {
    ProvisionSettings::from_env().ok().map(|s| s.mode) == Some(mode)
}

async fn connect(url: &str) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url)?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(PROBE_TIMEOUT))
        .set_response_timeout(Some(PROBE_TIMEOUT));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// SET then GET through a fresh connection; returns the value read back.
async fn round_trip(server: &RedisServer, key: &str, value: &str) -> String {
    let mut con = connect(server.url()).await.expect("connect");
    let key = format!("{}{key}", server.key_prefix());
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(value)
        .query_async(&mut con)
        .await
        .expect("SET");
    redis::cmd("GET")
        .arg(&key)
        .query_async(&mut con)
        .await
        .expect("GET")
}

async fn answers(url: &str) -> bool {
    match connect(url).await {
        Ok(mut con) => redis::cmd("PING")
            .query_async::<String>(&mut con)
            .await
            .is_ok(),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_mode_starts_a_real_redis_and_removes_it_on_drop() {
    let result = RedisServer::start(&settings(RedisMode::Container, None)).await;
    if !provision::docker_answers() && !forced(RedisMode::Container) {
        // No daemon (e.g. `TICKGATE_REDIS=process` with dockerd stopped): the requirement
        // is then a prompt, named error instead of a hang.
        assert!(
            matches!(result, Err(ProvisionError::DockerUnavailable { .. })),
            "{result:?}"
        );
        return;
    }
    // The error's own words (they name scripts/redis-image.sh for a missing image), not
    // its debug form.
    let server = result.unwrap_or_else(|e| panic!("container mode with a live Docker daemon: {e}"));
    assert!(
        server.source().starts_with("container "),
        "{}",
        server.source()
    );
    assert!(server.is_dedicated());
    assert_eq!(round_trip(&server, "k", "container").await, "container");
    let url = server.url().to_owned();
    drop(server);
    assert!(
        !answers(&url).await,
        "container still answers at {url} after drop"
    );
}

#[tokio::test]
async fn process_mode_starts_a_real_redis_and_kills_it_on_drop() {
    let result = RedisServer::start(&settings(RedisMode::Process, None)).await;
    if provision::find_redis_server().is_none() && !forced(RedisMode::Process) {
        assert!(
            matches!(result, Err(ProvisionError::RedisServerNotFound)),
            "{result:?}"
        );
        return;
    }
    let server = result.unwrap_or_else(|e| panic!("process mode with redis-server on PATH: {e}"));
    assert!(
        server.source().starts_with("process "),
        "{}",
        server.source()
    );
    assert_eq!(round_trip(&server, "k", "process").await, "process");
    let url = server.url().to_owned();
    drop(server);
    assert!(
        !answers(&url).await,
        "redis-server still answers at {url} after drop"
    );
}

#[tokio::test]
async fn url_mode_uses_the_given_server_with_a_private_key_prefix() {
    let owner = RedisServer::from_env()
        .await
        .expect("a Redis for this test");
    let a = RedisServer::start(&settings(RedisMode::Url, Some(owner.url())))
        .await
        .expect("url mode");
    let b = RedisServer::start(&settings(RedisMode::Url, Some(owner.url())))
        .await
        .expect("url mode");
    assert!(!a.is_dedicated());
    assert!(!a.key_prefix().is_empty());
    assert_ne!(a.key_prefix(), b.key_prefix());
    assert_eq!(round_trip(&a, "k", "via-url").await, "via-url");
    // The value is visible on the owner's server under the handle's prefix: same server.
    let mut con = connect(owner.url()).await.expect("connect owner");
    let key = format!("{}{}k", owner.key_prefix(), a.key_prefix());
    let seen: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut con)
        .await
        .expect("GET");
    assert_eq!(seen.as_deref(), Some("via-url"));
    // Dropping a url handle leaves the server alone: it is not ours.
    drop(a);
    assert!(answers(owner.url()).await);
}

#[test]
fn auto_prefers_url_then_container_then_process() {
    let auto = |url: Option<&str>| ProvisionSettings {
        mode: RedisMode::Auto,
        redis_url: url.map(str::to_owned),
        image: "img:tag".to_owned(),
    };
    let server = || Some(PathBuf::from("/usr/bin/redis-server"));

    // REDIS_URL wins without probing Docker or PATH.
    let plan = provision::choose(
        &auto(Some("redis://10.0.0.1:6379")),
        || panic!("probed docker"),
        || panic!("probed PATH"),
    );
    assert_eq!(plan.unwrap(), Plan::Url("redis://10.0.0.1:6379".into()));
    // Else a live daemon means a container, without looking at PATH.
    let plan = provision::choose(&auto(None), || true, || panic!("probed PATH"));
    assert_eq!(plan.unwrap(), Plan::Container("img:tag".into()));
    // Else a redis-server on PATH.
    let plan = provision::choose(&auto(None), || false, server);
    assert_eq!(plan.unwrap(), Plan::Process("/usr/bin/redis-server".into()));
    // Else one error naming all three ways.
    let err = provision::choose(&auto(None), || false, || None).unwrap_err();
    assert!(matches!(err, ProvisionError::NoRedis));
    let msg = err.to_string();
    for way in ["REDIS_URL", "Docker", "redis-server"] {
        assert!(msg.contains(way), "{msg} does not mention {way}");
    }
}

#[test]
fn explicit_modes_never_fall_back() {
    let explicit = |mode| ProvisionSettings {
        mode,
        redis_url: None,
        image: "img:tag".into(),
    };
    assert!(matches!(
        provision::choose(&explicit(RedisMode::Url), || true, || None),
        Err(ProvisionError::UrlMissing)
    ));
    assert!(matches!(
        provision::choose(&explicit(RedisMode::Process), || true, || None),
        Err(ProvisionError::RedisServerNotFound)
    ));
    assert_eq!(
        provision::choose(&explicit(RedisMode::Container), || false, || None).unwrap(),
        Plan::Container("img:tag".into())
    );
    assert!(
        matches!(RedisMode::parse("kubernetes"), Err(ProvisionError::InvalidMode { value }) if value == "kubernetes")
    );
    assert_eq!(RedisMode::parse("CONTAINER").unwrap(), RedisMode::Container);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_is_a_prompt_named_error() {
    let image = "tickgate-test/no-such-image:never";
    let started = Instant::now();
    let result = RedisServer::start_plan(Plan::Container(image.to_owned())).await;
    let err = result.expect_err("no such image exists");
    if provision::docker_answers() {
        let msg = err.to_string();
        assert!(matches!(err, ProvisionError::Container { .. }), "{err:?}");
        assert!(
            msg.contains(image) && msg.contains("scripts/redis-image.sh"),
            "{msg}"
        );
    } else {
        assert!(
            matches!(err, ProvisionError::DockerUnavailable { .. }),
            "{err:?}"
        );
    }
    // A hang guard, not a benchmark: the start is bounded by CONTAINER_START_TIMEOUT.
    assert!(
        started.elapsed() < CONTAINER_START_TIMEOUT,
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_test_still_removes_its_server() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let server = RedisServer::from_env()
            .await
            .expect("a Redis for this test");
        tx.send(server.url().to_owned()).expect("receiver alive");
        panic!("the test body fails while it owns a server");
    });
    let url = rx.await.expect("the task provisioned a server");
    assert!(task.await.expect_err("the task panicked").is_panic());
    // Servers the handle owns are gone; a shared REDIS_URL server must stay up.
    let dedicated = !matches!(
        ProvisionSettings::from_env().map(|s| s.redis_url),
        Ok(Some(_))
    );
    assert_eq!(answers(&url).await, !dedicated, "{url}");
}
