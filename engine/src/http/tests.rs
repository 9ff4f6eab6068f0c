//! The server's bounds and the exposition format, with short limits (the suite's
//! `tests/runtime/http.rs` scrapes a running service against Redis).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{HttpState, Limits, serve_with};
use crate::runtime::{Health, Metrics};

/// A hang guard, not a measure: every wait here ends far sooner.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// Short bounds, so a test sees them act.
const SHORT: Limits = Limits {
    connections: 4,
    connection_timeout: Duration::from_millis(300),
    drain: Duration::from_millis(300),
};

fn state(metrics: Arc<Metrics>) -> HttpState {
    HttpState::new(metrics, Arc::new(Health::default()), None)
}

/// Sends `request` as is and reads until the server closes: the status code and the text.
async fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut reply = Vec::new();
    tokio::time::timeout(HANG_GUARD, stream.read_to_end(&mut reply))
        .await
        .expect("the server answers and closes")
        .expect("read");
    let reply = String::from_utf8(reply).expect("UTF-8");
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, reply)
}

/// A server on a free loopback port, stopped when the returned sender is dropped.
async fn start(
    state: HttpState,
    limits: Limits,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_with(listener, state, limits, async {
        stopped.await.unwrap_or(());
    }));
    (addr, stop, server)
}

#[test]
fn the_text_follows_prometheus_conventions() {
    let metrics = Arc::new(Metrics::default());
    Metrics::add(&metrics.results_ok, 3);
    metrics.skipped(crate::core::rule::SkipReason::BucketDup, 2);
    metrics.observe_tick_ms(3); // the 5 ms bucket
    metrics.observe_tick_ms(20_000); // above every bound
    let text = state(metrics).metrics_text();
    for line in [
        "# TYPE tickgate_results_ok counter",
        "tickgate_results_ok_total 3",
        "tickgate_skipped_total{reason=\"bucket_dup\"} 2",
        "tickgate_skipped_total{reason=\"invalid_entry\"} 0",
        "# TYPE tickgate_tick_duration_seconds histogram",
        "tickgate_tick_duration_seconds_bucket{le=\"0.002\"} 0",
        "tickgate_tick_duration_seconds_bucket{le=\"0.005\"} 1",
        "tickgate_tick_duration_seconds_bucket{le=\"10.0\"} 1",
        "tickgate_tick_duration_seconds_bucket{le=\"+Inf\"} 2",
        "tickgate_tick_duration_seconds_count 2",
        "tickgate_tick_duration_seconds_sum 20.003",
        "tickgate_strategies_by_universe_size{size=\"xlarge\"} 0",
        "tickgate_ready 0",
        "# EOF",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing in:\n{text}"
        );
    }
}

#[tokio::test]
async fn routes_methods_and_an_oversized_head_get_their_status() {
    let (addr, stop, server) = start(state(Arc::default()), SHORT).await;
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let (status, text) = exchange(addr, get("/metrics").as_bytes()).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("application/openmetrics-text") && text.contains("# EOF"));
    assert_eq!(exchange(addr, get("/healthz").as_bytes()).await.0, 200);
    let (status, text) = exchange(addr, get("/readyz").as_bytes()).await;
    assert_eq!(status, 503, "a service that never ran is not ready");
    assert!(text.contains("not running") && text.contains("no step has reached Redis yet"));
    assert_eq!(exchange(addr, get("/nothing").as_bytes()).await.0, 404);
    let post = b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
    let (status, text) = exchange(addr, post).await;
    assert_eq!(status, 405);
    assert!(text.to_ascii_lowercase().contains("allow: get, head"));
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(crate::limits::HTTP_MAX_HEADER_BYTES)
    );
    assert_eq!(exchange(addr, huge.as_bytes()).await.0, 431);
    drop(stop);
    tokio::time::timeout(HANG_GUARD, server)
        .await
        .expect("serve returned")
        .expect("no panic");
}

#[tokio::test]
async fn a_silent_client_is_cut_and_does_not_hold_shutdown() {
    let (addr, stop, server) = start(state(Arc::default()), SHORT).await;
    // Says nothing: the server closes the connection at its time limit (no answer).
    let (status, text) = exchange(addr, b"").await;
    assert_eq!((status, text.as_str()), (0, ""), "cut without an answer");

    // Another silent client is connected when shutdown comes: serve still returns (the
    // drain cuts it), and the port no longer accepts.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    drop(stop);
    tokio::time::timeout(HANG_GUARD, server)
        .await
        .expect("serve returned despite the silent client")
        .expect("no panic");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(HANG_GUARD, silent.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the silent client's connection was closed");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed after shutdown"
    );
}
