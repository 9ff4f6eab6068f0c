//! `tickgate-suite`: the root package. It exists to own the cross-crate integration and
//! property tests in `tests/` and the criterion benches in `benches/`; helpers they share
//! live here.

use tickgate::store::{KeySpace, RedisStore, RedisStoreConfig};
use tickgate_sim::RedisServer;

/// A real Redis as the environment asks (`TICKGATE_REDIS`, see the README). Panics with
/// the provisioning error, which names every way to get one.
pub async fn redis() -> RedisServer {
    match RedisServer::from_env().await {
        Ok(server) => server,
        Err(e) => panic!("no Redis for this test: {e}"),
    }
}

/// A Redis this test owns (for faults: pause, restart): the environment's, unless that is
/// a shared `REDIS_URL` server, in which case a local `redis-server` process.
pub async fn dedicated_redis() -> RedisServer {
    let server = redis().await;
    if server.is_dedicated() {
        return server;
    }
    let path = tickgate_sim::provision::find_redis_server()
        .expect("fault tests need a Redis of their own: Docker or redis-server on PATH");
    RedisServer::start_plan(tickgate_sim::provision::Plan::Process(path))
        .await
        .unwrap_or_else(|e| panic!("no dedicated Redis: {e}"))
}

/// Store settings for `server`, with all keys under `server.key_prefix() + namespace`, so
/// tests (and property-test cases) sharing a server never see each other's keys.
pub fn store_config(server: &RedisServer, namespace: &str) -> RedisStoreConfig {
    let mut config = RedisStoreConfig::new(server.url());
    config.keys = KeySpace::new(&format!("{}{namespace}", server.key_prefix()), false);
    config
}

/// A connected store on `server` under `namespace` (see [`store_config`]).
pub async fn store(server: &RedisServer, namespace: &str) -> RedisStore {
    RedisStore::connect(&store_config(server, namespace))
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", server.source()))
}

/// A single-threaded runtime for synchronous property tests. Enter it (`rt.enter()`)
/// before provisioning, so a container's removal on drop finds the runtime even while a
/// failing case unwinds.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}
