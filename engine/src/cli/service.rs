//! `tickgate run`: the production service. The Redis store from the configuration,
//! [`AlertService`] on the [`SystemClock`], the hold on the consumer name, and the signals
//! that stop it: on SIGTERM or SIGINT no new step starts, the step in progress finishes,
//! the discovery queue is flushed, and the process exits 0, all within
//! `shutdown_deadline_ms` (whatever is left then is aborted; every claim is atomic with its
//! job, so nothing is half-done).

use std::time::{Duration, Instant};

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::error::CliError;
use super::lease::Lease;
use crate::config::Config;
use crate::http::{self, HttpState};
use crate::redact::redact_url;
use crate::runtime::{AlertService, Metrics, SystemClock};
use crate::store::RedisStore;

/// The signals that stop the service, installed before anything else so that an early
/// SIGTERM is a graceful stop, not the default kill.
struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    fn install() -> Result<Signals, CliError> {
        let install = |kind| {
            signal(kind).map_err(|e| CliError::System {
                what: "installing the SIGTERM/SIGINT handlers",
                reason: e.to_string(),
            })
        };
        Ok(Signals {
            term: install(SignalKind::terminate())?,
            int: install(SignalKind::interrupt())?,
        })
    }

    /// The name of the next signal received.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Why the service stopped.
enum Cause {
    Signal(&'static str),
    ConsumerLost,
}

/// Runs the service until a signal (`Ok`) or until another instance took the consumer name.
pub async fn run(config: Config) -> Result<(), CliError> {
    let mut signals = Signals::install()?;
    let consumer = config.engine.consumer.clone();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        redis = %redact_url(&config.redis.url),
        consumer = %consumer,
        tick_interval_ms = config.engine.tick_interval_ms,
        per_ticker_throttle = config.engine.per_ticker_throttle,
        "tickgate starting"
    );
    let store = RedisStore::connect(&config.redis).await?;
    let lease = Lease::acquire(&store, &consumer).await?;
    // Bound before the service starts: an address in use is an error, not a silent gap.
    let listener = http::bind(config.http.listen_addr).await?;
    let deadline = Duration::from_millis(config.engine.shutdown_deadline_ms);
    let service = AlertService::new(store, SystemClock, config.engine.clone());
    service.start();
    tracing::info!(
        consumer = %consumer,
        http = %config.http.listen_addr,
        "tickgate running (/metrics, /healthz, /readyz); SIGTERM or SIGINT stops it"
    );

    let stop = CancellationToken::new();
    let lost = CancellationToken::new();
    let stopping = async {
        let cause = tokio::select! {
            name = signals.next() => Cause::Signal(name),
            () = lost.cancelled() => Cause::ConsumerLost,
        };
        if let Cause::Signal(name) = cause {
            tracing::info!(
                signal = name,
                deadline_ms = deadline.as_millis() as u64,
                "stopping: no new step; finishing the step in progress"
            );
        }
        let began = Instant::now();
        service.stop().await;
        drain_discoveries(&service, deadline.saturating_sub(began.elapsed())).await;
        if let Cause::Signal(_) = cause {
            // Not after losing the name: the consumer is the other instance's now.
            leave_group(&service, deadline.saturating_sub(began.elapsed())).await;
        }
        stop.cancel();
        (cause, began)
    };
    // The endpoints serve until the service has stopped (`/readyz` says so meanwhile).
    let endpoints = http::serve(listener, HttpState::of_service(&service), stop.cancelled());
    let ((cause, began), (), ()) = tokio::join!(stopping, lease.keep(&stop, &lost), endpoints);
    // The hold lapses by itself; deleting it lets a restart take the name at once.
    let left = deadline.saturating_sub(began.elapsed());
    if tokio::time::timeout(left, lease.release()).await.is_err() {
        tracing::warn!(consumer = %consumer, "consumer name not released within the deadline; it lapses by itself");
    }
    log_stopped(&service, began);
    match cause {
        Cause::Signal(_) => Ok(()),
        Cause::ConsumerLost => Err(CliError::ConsumerLost { consumer }),
    }
}

/// Persists the discovered universes still queued, within `left`.
async fn drain_discoveries(service: &AlertService<RedisStore, SystemClock>, left: Duration) {
    let queued = service.discoveries_queued();
    if queued == 0 {
        return;
    }
    match tokio::time::timeout(left, service.flush_discoveries()).await {
        Ok(report) => tracing::info!(
            written = report.written,
            failed = report.retrying + report.given_up,
            "discovery queue flushed"
        ),
        Err(_) => tracing::warn!(
            queued,
            "discovery queue not flushed within the shutdown deadline; those universes stay in Redis only"
        ),
    }
}

/// Removes this instance's consumer from the results group if nothing is pending with it,
/// within what is left of the shutdown deadline; a failure only leaves it listed.
async fn leave_group(service: &AlertService<RedisStore, SystemClock>, left: Duration) {
    match tokio::time::timeout(left, service.leave_group()).await {
        Ok(Ok(true)) => tracing::info!("consumer removed from the results group"),
        Ok(Ok(false)) => tracing::warn!(
            "results still pending with this consumer: it stays in the group for whoever settles them"
        ),
        Ok(Err(e)) => tracing::warn!(error = %e, "consumer not removed from the results group"),
        Err(_) => tracing::warn!(
            "consumer not removed from the results group within the shutdown deadline"
        ),
    }
}

fn log_stopped(service: &AlertService<RedisStore, SystemClock>, began: Instant) {
    let m = service.metrics();
    let g = Metrics::get;
    tracing::info!(
        steps = g(&m.ticks),
        jobs_enqueued = g(&m.jobs_enqueued),
        results_settled = g(&m.results_ok) + g(&m.results_failed),
        stop_ms = began.elapsed().as_millis() as u64,
        "tickgate stopped"
    );
}
