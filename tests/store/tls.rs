//! `rediss://` (TLS, rustls) against a real `redis-server` started with TLS only and a
//! throwaway CA made in the test ([`tickgate_suite::tls`]): an engine steps over it when
//! `tls_ca_file` names that CA, and not without it; mutual TLS with `tls_cert_file` and
//! `tls_key_file`; an unusable TLS file is an error naming it. And against a server that
//! does not speak TLS: a connection error naming TLS, with the URL's password redacted.
//!
//! These tests start their own `redis-server` processes whatever `TICKGATE_REDIS` says
//! (also `container` in CI): a container's Redis is not started with TLS.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tickgate::core::catalog::CatalogEntry;
use tickgate::runtime::Engine;
use tickgate::store::{Catalog, RedisStore, RedisStoreConfig, StoreError, Updates};
use tickgate_suite::tls::{ClientAuth, TlsRedis};
use tickgate_suite::{Rng, T0_MS, Worker, engine_config};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// Settings for `server` that trust its throwaway CA.
fn trusting(server: &TlsRedis) -> RedisStoreConfig {
    let mut config = RedisStoreConfig::new(server.url());
    config.tls_ca_file = Some(server.ca_file());
    config
}

async fn connect_error(config: &RedisStoreConfig) -> StoreError {
    match RedisStore::connect(config).await {
        Ok(_) => panic!("connected with {config:?}"),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_steps_over_tls_trusting_the_configured_ca_only() {
    let server = TlsRedis::start(ClientAuth::No).await;
    let config = trusting(&server);
    let market = RedisStore::connect(&config)
        .await
        .expect("connect over TLS");
    let entry = CatalogEntry::new(1, 7, "tls", "1m", Some(vec!["AAPL".to_owned()]));
    market
        .catalog_write(1, Some(&entry.to_json()), None)
        .await
        .expect("catalog write");
    let mut engine = Engine::new(
        Arc::new(RedisStore::connect(&config).await.expect("connect")),
        engine_config("tls-1"),
    );
    let now = T0_MS + 10_000;
    market
        .record_updates(now, &[("AAPL", now - 1)])
        .await
        .expect("record");
    let report = engine.step(now).await;
    assert!(report.ready, "the engine is not ready over TLS");
    assert_eq!(report.jobs_enqueued, 1);
    let round = Worker::PERFECT.round(&market, &mut Rng(3), &[]).await;
    assert_eq!(round.dispatched.len(), 1, "{:?}", round.dispatched);

    // The system's root store does not hold the throwaway CA: the handshake fails.
    let mut untrusting = config.clone();
    untrusting.tls_ca_file = None;
    let error = connect_error(&untrusting).await;
    let StoreError::Connection { reason, .. } = &error else {
        panic!("not a connection error: {error:?}");
    };
    assert!(
        reason.contains("certificate") || reason.contains("UnknownIssuer"),
        "not a certificate failure: {error}"
    );
}

#[tokio::test]
async fn mutual_tls_presents_the_configured_client_certificate() {
    let server = TlsRedis::start(ClientAuth::Yes).await;
    let mut config = trusting(&server);
    let error = connect_error(&config).await;
    assert!(
        matches!(error, StoreError::Connection { .. }),
        "a server requiring a client certificate accepted none: {error:?}"
    );
    let (cert, key) = server.client_files();
    config.tls_cert_file = Some(cert);
    config.tls_key_file = Some(key);
    let store = RedisStore::connect(&config).await.expect("mutual TLS");
    let pong: String = redis::cmd("PING")
        .query_async(&mut store.connection())
        .await
        .expect("PING");
    assert_eq!(pong, "PONG");
}

#[tokio::test]
async fn an_unusable_tls_file_is_an_error_naming_it() {
    let server = TlsRedis::start(ClientAuth::No).await;
    let garbage = server.dir().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let missing = server.dir().join("missing.pem");
    let (cert, key) = server.client_files();
    let set = |ca: Option<&PathBuf>, cert: Option<&PathBuf>, key: Option<&PathBuf>| {
        let mut config = trusting(&server);
        config.tls_ca_file = ca.cloned();
        config.tls_cert_file = cert.cloned();
        config.tls_key_file = key.cloned();
        config
    };
    let cases = [
        (set(Some(&missing), None, None), &missing, "No such file"),
        (
            set(Some(&garbage), None, None),
            &garbage,
            "holds no PEM certificate",
        ),
        (
            set(None, Some(&garbage), Some(&key)),
            &garbage,
            "holds no PEM certificate",
        ),
        // A certificate where the key belongs.
        (
            set(None, Some(&cert), Some(&cert)),
            &cert,
            "holds no PEM private key",
        ),
        (set(None, Some(&cert), None), &cert, "go together"),
    ];
    for (config, path, why) in cases {
        let error = connect_error(&config).await;
        let StoreError::TlsFile { path: named, .. } = &error else {
            panic!("not a TLS file error: {error:?}");
        };
        assert_eq!(named, path);
        let text = error.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains(why), "{why} missing in: {text}");
    }
    // TLS files with a plain-text URL: the operator meant TLS and would not get it.
    let mut plain = trusting(&server);
    plain.url = format!("redis://localhost:{}", server.port());
    let error = connect_error(&plain).await;
    assert!(
        matches!(&error, StoreError::TlsFile { reason, .. } if reason.contains("rediss://")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_rediss_url_reaches_the_tls_handshake_and_is_redacted() {
    // A plain-text server on loopback: it answers whatever comes with a Redis error line
    // and hangs up, as a plain redis-server would on a TLS ClientHello it cannot parse.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        socket
            .write_all(b"-ERR Protocol error: not TLS\r\n")
            .await
            .expect("write");
        socket.shutdown().await.expect("shutdown");
    });
    let mut config = RedisStoreConfig::new(format!("rediss://tickgate:s3cret-pass@{address}"));
    // A hang guard only: the handshake fails as soon as the reply arrives.
    config.connect_timeout = Duration::from_secs(30);
    config.reconnect_retries = 0;
    let error = match RedisStore::connect(&config).await {
        Ok(_) => panic!("a TLS handshake with a plain-text server succeeded"),
        Err(e) => e,
    };
    // Without TLS built in, the client fails before it connects: never wait for it.
    server.abort();
    let StoreError::Connection { url, reason } = &error else {
        panic!("not a connection error: {error:?}");
    };
    let text = error.to_string();
    assert!(
        !text.contains("s3cret-pass"),
        "password in the error: {text}"
    );
    assert!(url.starts_with("rediss://"), "{url}");
    assert!(
        !reason.contains("not enabled") && !reason.contains("did not parse"),
        "TLS is not built in: {reason}"
    );
    assert!(
        reason.contains("corrupt message") || reason.to_lowercase().contains("tls"),
        "not a TLS handshake failure: {reason}"
    );
}
