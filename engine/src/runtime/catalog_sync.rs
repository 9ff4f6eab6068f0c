//! Step 1: the catalog. Loaded whole on start, on every resync and after Redis lost its
//! state; otherwise only the strategies the change log names. Redis is a cache: an explicit
//! universe it lost is restored from the catalog.

use std::collections::{BTreeMap, BTreeSet};

use super::metrics::Metrics;
use super::step::Engine;
use crate::core::catalog::{Strategy, Universe};
use crate::core::ticker::{StrategyId, Ticker};
use crate::store::{FeedCursor, Store, StoreError};

impl<S: Store> Engine<S> {
    /// Loads the catalog on start (and on every resync or lost Redis state), else applies
    /// the strategies changed since the last step.
    pub(super) async fn sync_catalog(&mut self, now_ms: i64) -> Result<(), StoreError> {
        let changes = self.store.changes_since(self.version).await?;
        let resync_due = self
            .loaded_at_ms
            .is_none_or(|at| now_ms - at >= self.config.catalog_resync_ms);
        if changes.state_lost && self.loaded_at_ms.is_some() {
            tracing::warn!(
                "Redis lost its state (restart or flush): restoring catalog and universes"
            );
            self.restore().await?;
        }
        if resync_due || changes.reload_all {
            self.store.ensure_groups().await?;
            let catalog = self.store.catalog_all().await?;
            let mut ids: BTreeSet<StrategyId> = catalog.keys().copied().collect();
            ids.extend(self.planner.strategy_ids());
            let ids: Vec<StrategyId> = ids.into_iter().collect();
            let jsons: Vec<Option<String>> =
                ids.iter().map(|id| catalog.get(id).cloned()).collect();
            self.apply(&ids, jsons).await?;
            self.loaded_at_ms = Some(now_ms);
        } else if !changes.strategies.is_empty() {
            let ids: Vec<StrategyId> = changes.strategies.into_iter().collect();
            let jsons = self.store.catalog_get(&ids).await?;
            self.apply(&ids, jsons).await?;
        }
        self.version = changes.version;
        Ok(())
    }

    /// Parses catalog entries, remembering them (for a restore); `None` for an entry that
    /// was removed, and nothing at all for one that does not parse (the strategy keeps its
    /// previous definition).
    fn parse_entries(
        &mut self,
        ids: &[StrategyId],
        jsons: Vec<Option<String>>,
    ) -> Vec<(StrategyId, Option<Strategy>)> {
        let mut parsed = Vec::with_capacity(ids.len());
        for (&id, json) in ids.iter().zip(jsons) {
            match &json {
                Some(j) => self.catalog.insert(id, j.clone()),
                None => self.catalog.remove(&id),
            };
            let strategy = match json.map(|j| Strategy::from_catalog(id, &j)) {
                None => None,
                Some(Ok((s, rejected))) => {
                    if let Some(first) = rejected.first() {
                        tracing::warn!(strategy = id, dropped = rejected.len(), first = %first, "catalog universe has invalid tickers");
                    }
                    Some(s)
                }
                Some(Err(e)) => {
                    Metrics::add(&self.metrics.catalog_errors, 1);
                    tracing::warn!(error = %e, "catalog entry ignored; the strategy keeps its previous definition");
                    continue;
                }
            };
            parsed.push((id, strategy));
        }
        parsed
    }

    /// Applies catalog entries (and their Redis universes) to the planner. An explicit
    /// universe that Redis has lost is restored from the catalog (Redis is a cache).
    async fn apply(
        &mut self,
        ids: &[StrategyId],
        jsons: Vec<Option<String>>,
    ) -> Result<(), StoreError> {
        let parsed = self.parse_entries(ids, jsons);
        let explicit: Vec<StrategyId> = parsed
            .iter()
            .filter(|(_, s)| {
                s.as_ref()
                    .is_some_and(|s| matches!(s.universe, Universe::Tickers(_)))
            })
            .map(|(id, _)| *id)
            .collect();
        let stored: BTreeMap<StrategyId, Option<BTreeSet<Ticker>>> = explicit
            .iter()
            .copied()
            .zip(self.store.universes(&explicit).await?)
            .collect();
        for (id, mut strategy) in parsed {
            if let Some(s) = strategy.as_mut()
                && let Universe::Tickers(declared) = &s.universe
            {
                match stored.get(&id).cloned().flatten() {
                    Some(current) => s.universe = Universe::Tickers(current),
                    None => {
                        let list: Vec<&str> = declared.iter().map(Ticker::as_str).collect();
                        self.store.replace_universe(id, &list).await?;
                        Metrics::add(&self.metrics.universe_updates, 1);
                    }
                }
            }
            self.planner.upsert(id, strategy);
        }
        Ok(())
    }

    /// After Redis lost its state: writes the catalog and the universes back from memory
    /// (Redis is a cache, not the truth), and forgets the update times and claims it lost.
    pub(super) async fn restore(&mut self) -> Result<(), StoreError> {
        for (id, json) in &self.catalog {
            self.store.catalog_write(*id, Some(json), None).await?;
        }
        let ids: Vec<StrategyId> = self.planner.strategy_ids().collect();
        for id in ids {
            if let Some(Strategy {
                universe: Universe::Tickers(u),
                ..
            }) = self.planner.strategy(id)
            {
                let list: Vec<&str> = u.iter().map(Ticker::as_str).collect();
                self.store.replace_universe(id, &list).await?;
                Metrics::add(&self.metrics.universe_updates, 1);
            }
        }
        self.planner.forget_redis_state();
        self.feed = FeedCursor::default();
        self.write_back_due = true;
        Ok(())
    }
}
