//! Universe discovery (DESIGN §2.7): a worker's `used_symbols` replaces the strategy's
//! universe at once (atomically in Redis, and in the planner for the next tick), and is
//! persisted to the durable catalog in the background through a bounded, coalescing queue:
//! the latest universe per strategy wins, each write is retried with backoff a bounded
//! number of times, and nothing is spawned per result.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::domain::{StrategyId, Ticker};
use crate::engine::EngineState;
use crate::metrics::Metrics;
use crate::service::Shared;
use crate::store::{Store, StoreError};
use crate::throttle::Universe;

/// Discovered universes waiting to be persisted: at most one per strategy.
pub struct DiscoveryQueue {
    pending: std::sync::Mutex<BTreeMap<StrategyId, Vec<Ticker>>>,
    capacity: usize,
    wake: Notify,
}

impl DiscoveryQueue {
    pub fn new(capacity: usize) -> DiscoveryQueue {
        DiscoveryQueue {
            pending: std::sync::Mutex::new(BTreeMap::new()),
            capacity,
            wake: Notify::new(),
        }
    }

    /// Queues `universe` for `id`, replacing any older one. False if the queue is full of
    /// other strategies (the Redis universe is already updated; the catalog catches up at
    /// the next discovery for that strategy).
    fn push(&self, id: StrategyId, universe: Vec<Ticker>) -> bool {
        let Ok(mut pending) = self.pending.lock() else {
            return false;
        };
        if pending.len() >= self.capacity && !pending.contains_key(&id) {
            return false;
        }
        pending.insert(id, universe);
        self.wake.notify_one();
        true
    }

    fn pop(&self) -> Option<(StrategyId, Vec<Ticker>)> {
        self.pending.lock().ok()?.pop_first()
    }
}

/// Applies a worker's `used_symbols` for strategy `id`.
pub(crate) async fn discover<S: Store, C: Clock>(
    shared: &Shared<S, C>,
    state: &mut EngineState,
    id: StrategyId,
    used_symbols: &[String],
) -> Result<(), StoreError> {
    let m = &shared.metrics;
    let Some(strategy) = state.planner.strategy(id).cloned() else {
        return Ok(()); // removed or inactive meanwhile: nothing to update
    };
    if !matches!(strategy.universe, Universe::Tickers(_) | Universe::Missing) {
        return Ok(()); // a global strategy stays global
    }
    let mut valid = BTreeSet::new();
    for raw in used_symbols {
        match Ticker::parse(raw) {
            Ok(t) => {
                valid.insert(t);
            }
            Err(e) => {
                Metrics::add(&m.discovery_invalid_symbols, 1);
                tracing::debug!(strategy = id, error = %e, "used_symbols entry dropped");
            }
        }
    }
    if valid.is_empty() || valid.len() > shared.config.max_universe {
        Metrics::add(&m.discovery_rejected, 1);
        tracing::warn!(
            strategy = id,
            size = valid.len(),
            "used_symbols rejected; the universe stays"
        );
        return Ok(());
    }
    if strategy.universe == Universe::Tickers(valid.clone()) {
        return Ok(());
    }
    let list: Vec<&str> = valid.iter().map(Ticker::as_str).collect();
    shared.store.replace_universe(id, &list).await?;
    Metrics::add(&m.universe_discoveries, 1);
    Metrics::add(&m.universe_updates, 1);
    let universe: Vec<Ticker> = valid.iter().cloned().collect();
    let mut updated = strategy;
    updated.universe = Universe::Tickers(valid);
    state.planner.upsert(id, Some(updated));
    if !shared.discovery.push(id, universe) {
        Metrics::add(&m.discovery_persist_failures, 1);
    }
    Ok(())
}

/// Writes queued universes into the catalog entry's `universe` field.
pub(crate) async fn persist_loop<S: Store, C: Clock>(
    shared: Arc<Shared<S, C>>,
    cancel: CancellationToken,
) {
    loop {
        while let Some((id, universe)) = shared.discovery.pop() {
            if !persist(&shared, &cancel, id, &universe).await {
                Metrics::add(&shared.metrics.discovery_persist_failures, 1);
            }
        }
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            _ = shared.discovery.wake.notified() => {}
        }
    }
}

async fn persist<S: Store, C: Clock>(
    shared: &Shared<S, C>,
    cancel: &CancellationToken,
    id: StrategyId,
    universe: &[Ticker],
) -> bool {
    let mut backoff_ms = shared.config.discovery_backoff_ms;
    for attempt in 1..=shared.config.discovery_attempts {
        match write_universe(&shared.store, id, universe).await {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(strategy = id, attempt, error = %e, "persisting a discovered universe failed")
            }
        }
        let until = shared.clock.now_ms() + backoff_ms;
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return false,
            _ = shared.clock.sleep_until(until) => {}
        }
        backoff_ms = backoff_ms.saturating_mul(2);
    }
    false
}

/// Compare-and-swap rounds for one catalog write: another writer changing the same entry
/// in between is rare, so a few rounds always suffice in practice.
const CAS_ROUNDS: usize = 5;

/// Replaces the `universe` field of the catalog entry, keeping every other field; a
/// compare-and-swap, so a concurrent edit of the entry is never overwritten.
async fn write_universe<S: Store>(
    store: &S,
    id: StrategyId,
    universe: &[Ticker],
) -> Result<(), StoreError> {
    for _ in 0..CAS_ROUNDS {
        let Some(Some(json)) = store.catalog_get(&[id]).await?.pop() else {
            return Ok(()); // the strategy was removed from the catalog meanwhile
        };
        let Ok(serde_json::Value::Object(mut entry)) =
            serde_json::from_str::<serde_json::Value>(&json)
        else {
            return Ok(()); // unparseable entries are reported by the catalog sync
        };
        let list = universe
            .iter()
            .map(|t| serde_json::Value::String(t.as_str().to_owned()))
            .collect();
        entry.insert("universe".to_owned(), serde_json::Value::Array(list));
        let updated = serde_json::Value::Object(entry).to_string();
        if store.catalog_write(id, Some(&updated), Some(&json)).await? {
            return Ok(());
        }
    }
    Err(StoreError::Redis {
        op: "catalog compare-and-swap",
        reason: format!("entry {id} kept changing"),
    })
}
