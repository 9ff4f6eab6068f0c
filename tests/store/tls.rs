//! `rediss://` (TLS) is built in: the client gets as far as the TLS handshake, which fails
//! against a server that does not speak TLS as a connection error naming TLS, with the
//! URL's password redacted — not "the feature is not enabled", not an invalid URL.

use std::time::Duration;

use tickgate::store::{RedisStore, RedisStoreConfig, StoreError};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

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
