//! `AlertService`: the engine's tasks around one [`Store`] and one [`Clock`].
//!
//! - **engine loop**: at every tick interval, first settle the workers' results (releases,
//!   discoveries, dead letters), then reload changed strategies, read what the update set gained (a delta),
//!   plan incrementally and dispatch (claim + job, atomically, batched). Results and ticks
//!   share one loop so their order is a function of the clock alone (the simulator relies
//!   on that); neither ever waits on a worker.
//! - **cleanup**: first after `cleanup_initial_delay_ms`, then every `cleanup_interval_ms`;
//!   separate, because cleanup can never change a decision (DESIGN §2.6).
//! - **metrics log**: the seed's lines every `metrics_log_interval_ms`.
//! - **discovery persister**: writes discovered universes to the catalog (discovery.rs).
//!
//! Shutdown is a future passed to [`AlertService::run`], or [`AlertService::stop`]: tasks
//! stop at their next wait; a step in progress finishes (each claim is atomic with its job,
//! so a step cut short by the deadline leaves nothing half-done) or is aborted at the
//! deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::discovery::DiscoveryQueue;
use crate::engine::EngineState;
use crate::metrics::Metrics;
use crate::store::{DEFAULT_MAX_UNIVERSE, DEFAULT_RETENTION_MS, Store};

/// Settings of the service; every field has a default (`ServiceConfig::default()`).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Time between ticks (the seed's 10 s).
    pub tick_interval_ms: i64,
    /// Per-ticker throttling (true) or strategy-level for everyone (rollback switch).
    pub per_ticker_throttle: bool,
    /// Universes above this size are intersected server-side (Lua) when fully evaluated.
    pub lua_threshold: usize,
    /// Configured retention of update times (raised to the longest active bucket).
    pub retention_ms: i64,
    /// First cleanup this long after start (the seed's 1 h: avoids start-up congestion).
    pub cleanup_initial_delay_ms: i64,
    /// Then every this long (the seed's 24 h).
    pub cleanup_interval_ms: i64,
    /// Metrics log period (the seed's 5 min).
    pub metrics_log_interval_ms: i64,
    /// Full catalog reload period, which catches writers that bypass the change log.
    pub catalog_resync_ms: i64,
    /// Results read per call, and the most results settled per tick: a burst of results
    /// cannot delay a tick by more than one bounded batch.
    pub results_batch: usize,
    pub max_results_per_tick: usize,
    /// Largest universe accepted from discovery (DESIGN §2.7).
    pub max_universe: usize,
    /// Strategies with a discovered universe waiting to be persisted, at most.
    pub discovery_queue_capacity: usize,
    /// Attempts to persist one discovered universe, and the first backoff (doubling).
    pub discovery_attempts: u32,
    pub discovery_backoff_ms: i64,
    /// A job a worker took and has not acknowledged for this long (logical time) is
    /// re-delivered: the worker is presumed crashed.
    pub job_visibility_ms: i64,
    /// Deliveries after which an unacknowledged job goes to the dead-letter stream instead
    /// (a poison job must not crash workers forever).
    pub max_deliveries: u64,
    /// Unacknowledged jobs examined per step: bounds the step; the rest wait a tick.
    pub max_pending_checked: usize,
    /// Real-time bound on `stop()`.
    pub shutdown_deadline_ms: u64,
    /// This instance's consumer name on the results stream (unique per instance).
    pub consumer: String,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            tick_interval_ms: 10_000,
            per_ticker_throttle: true,
            lua_threshold: 1_000,
            retention_ms: DEFAULT_RETENTION_MS,
            cleanup_initial_delay_ms: 3_600_000,
            cleanup_interval_ms: 86_400_000,
            metrics_log_interval_ms: 300_000,
            catalog_resync_ms: 600_000,
            results_batch: 1_000,
            max_results_per_tick: 100_000,
            max_universe: DEFAULT_MAX_UNIVERSE,
            discovery_queue_capacity: 100_000,
            discovery_attempts: 5,
            discovery_backoff_ms: 100,
            job_visibility_ms: 300_000,
            max_deliveries: 3,
            max_pending_checked: 1_000,
            shutdown_deadline_ms: 5_000,
            consumer: "tickgate-1".to_owned(),
        }
    }
}

/// What the service's tasks share.
pub(crate) struct Shared<S, C> {
    pub store: S,
    pub clock: C,
    pub config: ServiceConfig,
    pub metrics: Arc<Metrics>,
    pub state: Mutex<EngineState>,
    pub discovery: DiscoveryQueue,
    /// Whether the last engine step reached Redis.
    pub ready: AtomicBool,
    /// Logical time of the last completed engine step (the simulator waits on it).
    pub progress: watch::Sender<i64>,
    /// Logical time of the last engine step that began.
    pub began: watch::Sender<i64>,
}

struct Running {
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

/// The engine service. `start`/`stop` are idempotent.
pub struct AlertService<S, C> {
    shared: Arc<Shared<S, C>>,
    running: std::sync::Mutex<Option<Running>>,
}

impl<S: Store + 'static, C: Clock> AlertService<S, C> {
    /// A stopped service.
    pub fn new(store: S, clock: C, config: ServiceConfig) -> AlertService<S, C> {
        let state = EngineState::new(&config);
        let discovery = DiscoveryQueue::new(config.discovery_queue_capacity);
        AlertService {
            shared: Arc::new(Shared {
                store,
                clock,
                config,
                metrics: Arc::new(Metrics::default()),
                state: Mutex::new(state),
                discovery,
                ready: AtomicBool::new(false),
                progress: watch::Sender::new(i64::MIN),
                began: watch::Sender::new(i64::MIN),
            }),
            running: std::sync::Mutex::new(None),
        }
    }

    /// The counters (DESIGN §2.9).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// The store the service runs on.
    pub fn store(&self) -> &S {
        &self.shared.store
    }

    /// Whether the last step reached Redis (`/readyz`).
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Relaxed)
    }

    /// Whether the tasks are running.
    pub fn is_running(&self) -> bool {
        self.running.lock().map(|r| r.is_some()).unwrap_or(false)
    }

    /// Waits until an engine step at logical time `now_ms` or later has completed.
    pub async fn wait_for_step(&self, now_ms: i64) {
        let mut rx = self.shared.progress.subscribe();
        // The sender lives in `shared`, which outlives this borrow.
        let _ = rx.wait_for(|done| *done >= now_ms).await;
    }

    /// Waits until an engine step at logical time `now_ms` or later has begun.
    pub async fn wait_for_step_start(&self, now_ms: i64) {
        let mut rx = self.shared.began.subscribe();
        let _ = rx.wait_for(|began| *began >= now_ms).await;
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
        tasks.spawn(crate::engine::engine_loop(
            self.shared.clone(),
            cancel.clone(),
        ));
        tasks.spawn(crate::engine::cleanup_loop(
            self.shared.clone(),
            cancel.clone(),
        ));
        tasks.spawn(crate::engine::metrics_loop(
            self.shared.clone(),
            cancel.clone(),
        ));
        tasks.spawn(crate::discovery::persist_loop(
            self.shared.clone(),
            cancel.clone(),
        ));
        *running = Some(Running { cancel, tasks });
    }

    /// Stops the tasks: they finish their current step and exit; whatever has not exited
    /// by `shutdown_deadline_ms` (real time) is aborted. Does nothing if stopped.
    pub async fn stop(&self) {
        let Some(mut running) = self.running.lock().ok().and_then(|mut r| r.take()) else {
            return;
        };
        running.cancel.cancel();
        let deadline = Duration::from_millis(self.shared.config.shutdown_deadline_ms);
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
        self.shared.ready.store(false, Ordering::Relaxed);
    }

    /// Runs until `shutdown` completes, then stops (mini-redis style).
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        self.start();
        shutdown.await;
        self.stop().await;
    }
}
