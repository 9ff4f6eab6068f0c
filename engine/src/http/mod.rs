//! The operators' HTTP endpoints: `/metrics` (Prometheus/OpenMetrics text, every counter,
//! gauge and histogram of DESIGN §2.9), `/healthz` (the process answers) and `/readyz`
//! (the engine does its work: running, Redis reachable at the last step, catalog loaded,
//! no backpressure).
//!
//! [`serve`] takes a bound listener, an [`HttpState`] and a shutdown future (mini-redis
//! style), so the binary and the tests drive it alike. Everything is bounded: connections
//! at once ([`HTTP_MAX_CONNECTIONS`]), the request head ([`HTTP_MAX_HEADER_BYTES`]), the
//! time of a connection ([`HTTP_CONNECTION_TIMEOUT_MS`]), one request per connection (no
//! keep-alive, so an idle client holds nothing), and the drain after shutdown
//! ([`HTTP_SHUTDOWN_DRAIN_MS`]). A request never waits for the engine or for Redis: every
//! answer is built from atomics the engine loop updated at its last step.

mod exposition;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

pub use self::exposition::StoreCountersSource;
use crate::limits::{
    HTTP_ACCEPT_BACKOFF_MS, HTTP_CONNECTION_TIMEOUT_MS, HTTP_MAX_CONNECTIONS,
    HTTP_MAX_HEADER_BYTES, HTTP_SHUTDOWN_DRAIN_MS,
};
use crate::runtime::{AlertService, Clock, Health, Metrics};
use crate::store::Store;

// hyper panics on a read buffer below 8 KiB.
const _: () = assert!(HTTP_MAX_HEADER_BYTES >= 8 * 1024);

/// The OpenMetrics text format, which `prometheus-client` writes (Prometheus negotiates it).
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PLAIN: &str = "text/plain; charset=utf-8";

/// Failures of the HTTP server's set-up.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on {addr} for /metrics, /healthz and /readyz: {reason}")]
    Bind { addr: SocketAddr, reason: String },
}

/// Binds `addr` (see [`crate::limits::DEFAULT_HTTP_LISTEN_ADDR`]).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpError> {
    TcpListener::bind(addr).await.map_err(|e| HttpError::Bind {
        addr,
        reason: e.to_string(),
    })
}

/// What the endpoints read: the counters (through the Prometheus registry) and the
/// readiness. Cheap to clone.
#[derive(Clone)]
pub struct HttpState(Arc<StateInner>);

struct StateInner {
    registry: Registry,
    health: Arc<Health>,
}

impl HttpState {
    /// The endpoints of a running service: its counters, its store's and its readiness.
    pub fn of_service<S: Store + 'static, C: Clock>(service: &AlertService<S, C>) -> HttpState {
        let store: Arc<dyn StoreCountersSource> = service.shared_store();
        HttpState::new(service.metrics(), service.health(), Some(store))
    }

    /// Endpoints over these counters and this readiness (and the store's counters, if
    /// given).
    pub fn new(
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        store: Option<Arc<dyn StoreCountersSource>>,
    ) -> HttpState {
        let mut registry = Registry::with_prefix("tickgate");
        registry.register_collector(Box::new(exposition::Exposition {
            metrics,
            health: health.clone(),
            store,
        }));
        HttpState(Arc::new(StateInner { registry, health }))
    }

    /// The `/metrics` text.
    pub fn metrics_text(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail; the collector's own values always encode.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.0.registry) {
            tracing::error!(error = %e, "encoding /metrics failed");
        }
        text
    }
}

/// The bounds of a server; [`serve`] uses the constants, unit tests shorter ones.
#[derive(Debug, Clone, Copy)]
struct Limits {
    connections: usize,
    connection_timeout: Duration,
    drain: Duration,
}

const LIMITS: Limits = Limits {
    connections: HTTP_MAX_CONNECTIONS,
    connection_timeout: Duration::from_millis(HTTP_CONNECTION_TIMEOUT_MS),
    drain: Duration::from_millis(HTTP_SHUTDOWN_DRAIN_MS),
};

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until `shutdown` completes;
/// then stops accepting, lets requests in progress finish for at most
/// [`HTTP_SHUTDOWN_DRAIN_MS`], cuts the rest, and returns (the listener is closed).
pub async fn serve(listener: TcpListener, state: HttpState, shutdown: impl Future<Output = ()>) {
    serve_with(listener, state, LIMITS, shutdown).await;
}

async fn serve_with(
    listener: TcpListener,
    state: HttpState,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.connections));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            // Shutdown first: once asked to stop, no new connection is taken.
            biased;
            () = &mut shutdown => break,
            // Finished connections are joined as they end, so the set stays bounded.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            (stream, permit) = accept(&listener, &permits) => {
                let state = state.clone();
                let timeout = limits.connection_timeout;
                connections.spawn(connection(stream, state, timeout, permit));
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(limits.drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!("HTTP requests still in progress at shutdown were cut");
        connections.shutdown().await;
    }
}

/// The next connection, once fewer than the limit are open. A failed `accept` is logged
/// and retried after [`HTTP_ACCEPT_BACKOFF_MS`]. Cancel-safe: a permit taken for a
/// connection not yet accepted is simply returned.
async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> (TcpStream, OwnedSemaphorePermit) {
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            // The semaphore is never closed; were it, no connection could be served:
            // wait for shutdown.
            return std::future::pending().await;
        };
        match listener.accept().await {
            Ok((stream, _peer)) => return (stream, permit),
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed; retrying");
                drop(permit);
                tokio::time::sleep(Duration::from_millis(HTTP_ACCEPT_BACKOFF_MS)).await;
            }
        }
    }
}

/// One connection, one request, bounded in time; holds its permit until it ends.
async fn connection(
    stream: TcpStream,
    state: HttpState,
    timeout: Duration,
    _permit: OwnedSemaphorePermit,
) {
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let response = respond(&state, &request);
        async move { Ok::<_, Infallible>(response) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .max_buf_size(HTTP_MAX_HEADER_BYTES)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(timeout, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "HTTP connection failed"),
        Err(_) => tracing::debug!(?timeout, "HTTP connection cut at its time limit"),
    }
}

/// The answer to one request (the body, if any, is never read).
fn respond<B>(state: &HttpState, request: &Request<B>) -> Response<Full<Bytes>> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, PLAIN, "only GET and HEAD\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match request.uri().path() {
        "/metrics" => text(StatusCode::OK, OPENMETRICS, state.metrics_text()),
        "/healthz" => text(StatusCode::OK, PLAIN, "ok\n"),
        "/readyz" => readyz(&state.0.health),
        _ => text(
            StatusCode::NOT_FOUND,
            PLAIN,
            "not found: the endpoints are /metrics, /healthz and /readyz\n",
        ),
    }
}

/// `200 ready` or `503 not ready: <every reason>`, with the last step that reached Redis.
fn readyz(health: &Health) -> Response<Full<Bytes>> {
    let readiness = health.readiness();
    let last = match readiness.last_ok_step_ms {
        Some(ms) => format!("last step that reached Redis: {} ({ms} ms)", human_time(ms)),
        None => "no step has reached Redis yet".to_owned(),
    };
    if readiness.is_ready() {
        text(StatusCode::OK, PLAIN, format!("ready\n{last}\n"))
    } else {
        let problems = readiness.problems().join("; ");
        let body = format!("not ready: {problems}\n{last}\n");
        text(StatusCode::SERVICE_UNAVAILABLE, PLAIN, body)
    }
}

/// An instant for a person: UTC, to the millisecond.
fn human_time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
        Err(_) => "an instant out of range".to_owned(),
    }
}

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests;
