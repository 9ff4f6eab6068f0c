//! The runtime: [`Engine`] (one instance's state and its [`Engine::step`]) and
//! [`AlertService`], the production driver — the one place that waits on a [`Clock`].
//!
//! - [`step`]: the engine and its step; `catalog_sync.rs`, `settle.rs` and `tick.rs` are the
//!   step's phases, in that order; `isolation.rs` sets aside a strategy whose entry or keys
//!   are bad, so that it alone is skipped.
//! - [`persister`]: discovered universes on their way to the catalog.
//! - [`clock`]: the one source of time (system, or manual for tests); [`skew`]: the check
//!   that it agrees with Redis's before each step of the service.
//! - [`metrics`]: every counter of DESIGN §2.9.
//! - [`health`]: what `/readyz` reports, as the last step found it.
//!
//! The service runs two tasks: the engine loop (a step at every multiple of
//! `tick_interval_ms`, in which results, ticks, cleanup and the metrics log all happen, so
//! their order is a function of the time alone), and the persister loop. Shutdown is a
//! future passed to [`AlertService::run`], or [`AlertService::stop`]: tasks stop at their
//! next wait; a step in progress finishes (each claim is atomic with its job, so a step cut
//! short by the deadline leaves nothing half-done) or is aborted at the deadline.

mod catalog_sync;
pub mod clock;
pub mod health;
mod isolation;
pub mod metrics;
pub mod persister;
mod settle;
pub mod skew;
pub mod step;
mod tick;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use self::clock::{Clock, ManualClock, SystemClock};
pub use self::health::{Health, Readiness};
pub use self::metrics::Metrics;
pub use self::persister::{PassReport, Persister};
pub use self::step::{Engine, StepReport, next_multiple};
use crate::config::EngineConfig;
use crate::store::{Store, StoreError};

/// Longest backoff between failing persister passes: long enough not to hammer a Redis
/// that is down, short enough that the catalog catches up within a minute of its return.
const PERSIST_BACKOFF_MAX_MS: i64 = 30_000;

struct Running {
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

/// The engine service. `start`/`stop` are idempotent.
pub struct AlertService<S, C> {
    engine: Arc<Mutex<Engine<S>>>,
    store: Arc<S>,
    metrics: Arc<Metrics>,
    persister: Arc<Persister>,
    clock: Arc<C>,
    config: EngineConfig,
    /// Readiness as the last step found it (`/readyz`).
    health: Arc<Health>,
    running: std::sync::Mutex<Option<Running>>,
}

impl<S: Store + 'static, C: Clock> AlertService<S, C> {
    /// A stopped service.
    pub fn new(store: S, clock: C, config: EngineConfig) -> AlertService<S, C> {
        AlertService::with_metrics(store, clock, config, Arc::default())
    }

    /// A stopped service counting into `metrics` (see [`Engine::with_metrics`]).
    pub fn with_metrics(
        store: S,
        clock: C,
        config: EngineConfig,
        metrics: Arc<Metrics>,
    ) -> AlertService<S, C> {
        let store = Arc::new(store);
        let engine = Engine::with_metrics(store.clone(), config.clone(), metrics);
        AlertService {
            metrics: engine.metrics().clone(),
            persister: engine.persister().clone(),
            engine: Arc::new(Mutex::new(engine)),
            store,
            clock: Arc::new(clock),
            config,
            health: Arc::default(),
            running: std::sync::Mutex::new(None),
        }
    }

    /// The counters (DESIGN §2.9).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The store the service runs on.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, shared (the HTTP server reads its counters).
    pub fn shared_store(&self) -> Arc<S> {
        self.store.clone()
    }

    /// Readiness as the last step found it, shared (the HTTP server reads it).
    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// Whether the service does its work: running, the last step reached Redis, the
    /// catalog is loaded, no backpressure (`/readyz`).
    pub fn is_ready(&self) -> bool {
        self.health.readiness().is_ready()
    }

    /// Whether the tasks are running.
    pub fn is_running(&self) -> bool {
        self.running.lock().map(|r| r.is_some()).unwrap_or(false)
    }

    /// Starts the tasks; does nothing if they run. Needs a tokio runtime.
    pub fn start(&self) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        if running.is_some() {
            return;
        }
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        tasks.spawn(engine_loop(
            self.engine.clone(),
            self.clock.clone(),
            self.health.clone(),
            &self.config,
            cancel.clone(),
        ));
        tasks.spawn(persist_loop(
            self.persister.clone(),
            self.store.clone(),
            self.metrics.clone(),
            self.clock.clone(),
            self.config.discovery_backoff_ms,
            cancel.clone(),
        ));
        self.health.started();
        *running = Some(Running { cancel, tasks });
    }

    /// Stops the tasks: they finish their current step and exit; whatever has not exited
    /// by `shutdown_deadline_ms` (real time) is aborted. Does nothing if stopped.
    pub async fn stop(&self) {
        let Some(mut running) = self.running.lock().ok().and_then(|mut r| r.take()) else {
            return;
        };
        running.cancel.cancel();
        let deadline = Duration::from_millis(self.config.shutdown_deadline_ms);
        let drained = tokio::time::timeout(deadline, async {
            while running.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                ?deadline,
                "shutdown deadline passed; aborting unfinished tasks"
            );
            running.tasks.shutdown().await;
        }
        self.health.stopped();
    }

    /// Persists the discovered universes still queued, in one pass (a shutdown calls it
    /// after [`AlertService::stop`], so the catalog keeps what the last results taught).
    pub async fn flush_discoveries(&self) -> PassReport {
        self.persister.pass(&*self.store, &self.metrics).await
    }

    /// Removes this instance's consumer from the engines' group on the results stream if
    /// nothing is pending with it (a shutdown calls it after [`AlertService::stop`]): every
    /// start under a new name (the default holds the pid) would otherwise leave one more
    /// consumer listed. With results pending, the consumer stays for a restart under the
    /// same name, or another instance, to settle them. Returns whether it was removed.
    pub async fn leave_group(&self) -> Result<bool, StoreError> {
        let consumer = self.config.consumer.as_str();
        let taken = self.store.take_results(consumer, &[], &[consumer]).await?;
        Ok(taken.forgotten > 0)
    }

    /// Discovered universes waiting to be persisted.
    pub fn discoveries_queued(&self) -> usize {
        self.persister.len()
    }

    /// Runs until `shutdown` completes, then stops (mini-redis style).
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        self.start();
        shutdown.await;
        self.stop().await;
    }
}

/// A step at every multiple of the tick interval, starting with the first one not before
/// the clock's time; none while the clock disagrees with Redis's by more than
/// `max_clock_skew_ms` ([`skew`]).
fn engine_loop<S: Store + 'static, C: Clock>(
    engine: Arc<Mutex<Engine<S>>>,
    clock: Arc<C>,
    health: Arc<Health>,
    config: &EngineConfig,
    cancel: CancellationToken,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (interval_ms, max_skew_ms) = (config.tick_interval_ms, config.max_clock_skew_ms);
    async move {
        let mut next = next_multiple(clock.now_ms(), interval_ms);
        loop {
            tokio::select! {
                // Shutdown first: once asked to stop, no new step starts.
                biased;
                _ = cancel.cancelled() => return,
                _ = clock.sleep_until(next) => {}
            }
            let now = clock.now_ms();
            let mut engine = engine.lock().await;
            if let Some(max_ms) = max_skew_ms {
                let found = skew::check(&**engine.store(), &*clock, engine.metrics(), max_ms);
                if let skew::Skew::Beyond(_) = found.await {
                    health.clock_skewed();
                    next = next_multiple(now + 1, interval_ms);
                    continue;
                }
            }
            let report = engine.step(now).await;
            health.record(now, &report, engine.catalog_loaded());
            drop(engine);
            next = report.next_step_ms;
        }
    }
}

/// Persists discovered universes as they are queued; after a failing pass, waits a
/// doubling backoff (from `backoff_ms`, at most [`PERSIST_BACKOFF_MAX_MS`]) before the next.
async fn persist_loop<S: Store, C: Clock>(
    persister: Arc<Persister>,
    store: Arc<S>,
    metrics: Arc<Metrics>,
    clock: Arc<C>,
    backoff_ms: i64,
    cancel: CancellationToken,
) {
    let mut wait_ms = backoff_ms;
    loop {
        let report = persister.pass(&*store, &metrics).await;
        if report.retrying > 0 {
            let until = clock.now_ms() + wait_ms;
            wait_ms = (wait_ms * 2).min(PERSIST_BACKOFF_MAX_MS);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                _ = clock.sleep_until(until) => {}
            }
        } else {
            wait_ms = backoff_ms;
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                _ = persister.queued() => {}
            }
        }
    }
}
