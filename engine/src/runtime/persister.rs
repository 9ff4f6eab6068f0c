//! Discovered universes on their way to the durable catalog (DESIGN §2.7): a bounded,
//! coalescing queue (the latest universe per strategy wins; nothing is spawned per result),
//! written by passes that never sleep. A failed write is kept for the next pass, up to
//! `discovery_attempts`; the driver ([`super::AlertService`], or the simulator) decides
//! when the next pass runs and backs off between failing ones.

use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::Notify;

use super::metrics::Metrics;
use crate::core::catalog::{Strategy, Universe, universe_digest};
use crate::core::ticker::{StrategyId, Ticker};
use crate::limits::CATALOG_CAS_ROUNDS;
use crate::store::{Catalog, PersistWrite, Persisted, StoreError};

/// One queued universe and the writes already tried for it.
#[derive(Debug)]
struct Queued {
    universe: Vec<Ticker>,
    attempts: u32,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    pub written: u64,
    /// Failed and kept for the next pass.
    pub retrying: u64,
    /// Failed for the last allowed time and dropped (counted in
    /// `discovery_persist_failures`).
    pub given_up: u64,
}

/// The queue of discovered universes waiting to be persisted: at most one per strategy.
pub struct Persister {
    pending: std::sync::Mutex<BTreeMap<StrategyId, Queued>>,
    capacity: usize,
    max_attempts: u32,
    wake: Notify,
}

impl Persister {
    /// A queue of at most `capacity` strategies, each written at most `max_attempts` times.
    pub fn new(capacity: usize, max_attempts: u32) -> Persister {
        Persister {
            pending: std::sync::Mutex::new(BTreeMap::new()),
            capacity,
            max_attempts: max_attempts.max(1),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<StrategyId, Queued>> {
        // Every critical section is a single map operation: a poisoned lock is still sound.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `universe` for `id`, replacing any older one. False if the queue is full of
    /// other strategies (the Redis universe is already updated; the catalog catches up at
    /// the next discovery for that strategy).
    pub fn push(&self, id: StrategyId, universe: Vec<Ticker>) -> bool {
        let mut pending = self.lock();
        if pending.len() >= self.capacity && !pending.contains_key(&id) {
            return false;
        }
        pending.insert(
            id,
            Queued {
                universe,
                attempts: 0,
            },
        );
        drop(pending);
        self.wake.notify_one();
        true
    }

    /// Strategies waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Completes when something was queued since the last pass began.
    pub async fn queued(&self) {
        self.wake.notified().await;
    }

    /// Writes every universe queued now into its catalog entry's `universe` field, once.
    pub async fn pass<S: Catalog>(&self, store: &S, metrics: &Metrics) -> PassReport {
        let batch = std::mem::take(&mut *self.lock());
        let mut report = PassReport::default();
        for (id, mut queued) in batch {
            match write_universe(store, id, &queued.universe).await {
                Ok(()) => report.written += 1,
                Err(e) => {
                    queued.attempts += 1;
                    tracing::warn!(strategy = id, attempt = queued.attempts, error = %e, "persisting a discovered universe failed");
                    if queued.attempts >= self.max_attempts {
                        Metrics::add(&metrics.discovery_persist_failures, 1);
                        report.given_up += 1;
                    } else {
                        // A newer discovery queued meanwhile wins over this retry.
                        self.lock().entry(id).or_insert(queued);
                        report.retrying += 1;
                    }
                }
            }
        }
        report
    }
}

/// Replaces the `universe` field of the catalog entry, keeping every other field (the
/// platform may store more than tickgate reads); a compare-and-swap, so a concurrent edit
/// of the entry is never overwritten, and only while the discovery is still the newest
/// write (see [`Catalog::persist_universe`]): a catalog edit of the universe, or a newer
/// discovery, wins and this one is dropped.
async fn write_universe<S: Catalog>(
    store: &S,
    id: StrategyId,
    universe: &[Ticker],
) -> Result<(), StoreError> {
    for _ in 0..CATALOG_CAS_ROUNDS {
        let Some(Some(json)) = store.catalog_get(&[id]).await?.pop() else {
            return Ok(()); // the strategy was removed from the catalog meanwhile
        };
        let Ok(serde_json::Value::Object(mut entry)) =
            serde_json::from_str::<serde_json::Value>(&json)
        else {
            return Ok(()); // unparseable entries are reported by the catalog sync
        };
        let Ok((strategy, _)) = Strategy::from_catalog(id, &json) else {
            return Ok(()); // likewise
        };
        let declared = match strategy.universe {
            Universe::Tickers(declared) => declared,
            // No valid ticker: the base the catalog sync recorded for it is the empty set's.
            Universe::Missing => BTreeSet::new(),
            // Made global by a catalog write (a global strategy never discovers): newer.
            Universe::Global => {
                tracing::info!(
                    strategy = id,
                    "discovered universe not persisted: the strategy was made global since"
                );
                return Ok(());
            }
        };
        let list = universe
            .iter()
            .map(|t| serde_json::Value::String(t.as_str().to_owned()))
            .collect();
        entry.insert("universe".to_owned(), serde_json::Value::Array(list));
        let updated = serde_json::Value::Object(entry).to_string();
        let write = PersistWrite {
            json: &updated,
            expected: &json,
            expected_base: &universe_digest(&declared),
            universe,
        };
        match store.persist_universe(id, &write).await? {
            Persisted::Written => return Ok(()),
            Persisted::Superseded => {
                tracing::info!(
                    strategy = id,
                    "discovered universe not persisted: a newer catalog write or discovery won"
                );
                return Ok(());
            }
            Persisted::EntryChanged => {}
        }
    }
    Err(StoreError::Redis {
        op: "catalog compare-and-swap",
        reason: format!("entry {id} kept changing"),
    })
}
