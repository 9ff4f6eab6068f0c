//! Step 1: the catalog. Loaded whole on start, after Redis lost its state and when the
//! change log cannot answer; otherwise only the strategies the change log names, plus:
//!
//! - a writer that bypassed the change log adding or removing entries (a direct `HSET` of a
//!   new id, a direct `HDEL`: the catalog's field count moved and the log did not say why)
//!   is found at once by comparing the catalog's ids with the known ones;
//! - the *sweep*, a safety resync spread over the steps: each step re-reads a slice of the
//!   catalog (`HSCAN`, in short pages), so that every entry is read again about every
//!   `catalog_resync_ms`, and re-applies the entries that differ from what the engine holds
//!   (a direct rewrite of an entry), those set aside (a repaired key), and those whose
//!   universe in Redis is not the size the engine holds (a direct write of a universe). A
//!   step pays a slice, never the whole catalog: at W-100k a full reload (100,000 entries,
//!   11 million universe members) took 14 s, longer than the tick interval.
//!
//! Universes (DESIGN §2.3 step 2): the newest write wins. Redis records, per strategy, the
//! digest of the catalog universe its universe was last set from or persisted to (the
//! *base*, [`crate::store::KeySpace::universe_base`]). A catalog entry whose universe has
//! that digest has been taken in already, so the Redis universe wins (it may hold a newer
//! discovery, on its way to the catalog). Any other catalog universe is a newer catalog
//! write (the platform's edit, `tickgate strategy put`, a direct `HSET`): it replaces the
//! Redis universe. A discovery replaces the Redis universe at once and reaches the catalog
//! through the persister, which writes it only while it is still the newest.
//!
//! A catalog universe with no valid ticker (*missing*: the strategy runs whole, DESIGN §2.3
//! step 2) follows the same rule with the empty set as its universe: taking it in deletes
//! the Redis universe and records the empty set's digest as the base, so a discovery made
//! after it wins (on every instance, and until the persister writes it into the catalog) and
//! its persisting is not refused as superseded.
//!
//! Redis is a cache: after it lost its state, what is missing is written back from memory
//! (DESIGN §9), never over what the platform wrote since, never reviving what it deleted.

use std::collections::{BTreeMap, BTreeSet};

use super::isolation::Isolation;
use super::metrics::Metrics;
use super::step::Engine;
use crate::core::catalog::{Strategy, Universe, universe_digest};
use crate::core::ticker::{StrategyId, Ticker};
use crate::limits::{SWEEP_PAGE_ENTRIES, SWEEP_STEP_ENTRIES_MAX};
use crate::store::{
    CatalogUniverse, FeedCursor, Restore, Store, StoreError, StoredUniverse, UniverseWrite,
};

/// What the catalog and Redis say a strategy's universe is (see `resolve_universe`).
enum Resolved {
    /// Redis's universe, taken in already.
    Keep(Universe),
    /// Damaged key or oversized universe: the strategy is skipped.
    SetAside,
    /// The catalog's universe is newer: written to Redis with this digest first.
    Write(String),
}

impl<S: Store> Engine<S> {
    /// Loads the catalog on start (and on every resync, lost Redis state, or a write that
    /// bypassed the change log), else applies the strategies changed since the last step.
    pub(super) async fn sync_catalog(&mut self, now_ms: i64) -> Result<(), StoreError> {
        let changes = self.store.changes_since(self.version).await?;
        // The update set's epoch names one incarnation of Redis's data: another one means
        // Redis lost its state, even if writers pushed the version past ours since.
        let epoch_lost = self.feed.epoch.is_some() && changes.feed_epoch != self.feed.epoch;
        let lost = changes.state_lost || epoch_lost;
        if lost && self.loaded_at_ms.is_some() {
            tracing::warn!(
                "Redis lost its state (restart or flush): restoring what is missing of the catalog and universes"
            );
            self.restore().await?;
        }
        // The catalog's size changed and the change log did not: a writer bypassed it (a
        // direct HSET of a new entry, a direct HDEL). Taking it in at once means a deleted
        // strategy is forgotten now, so a later restore can never revive it.
        let bypassed =
            changes.version == self.version && changes.catalog_fields != self.catalog_fields;
        if self.loaded_at_ms.is_none() || changes.reload_all || lost {
            self.store.ensure_groups().await?;
            let catalog = self.store.catalog_all().await?;
            let mut ids: BTreeSet<StrategyId> = catalog.keys().copied().collect();
            ids.extend(self.planner.strategy_ids());
            ids.extend(self.catalog.keys().copied());
            let ids: Vec<StrategyId> = ids.into_iter().collect();
            let jsons: Vec<Option<String>> =
                ids.iter().map(|id| catalog.get(id).cloned()).collect();
            self.apply(&ids, jsons).await?;
            self.loaded_at_ms = Some(now_ms);
            (self.sweep_cursor, self.swept_at_ms) = (0, now_ms);
        } else {
            // A change whose latest version is this instance's own write (a universe it took
            // in from the catalog) holds nothing new: at start that is every strategy, and
            // reading them all back would cost a tick a full reload.
            let ids: Vec<StrategyId> = changes
                .strategies
                .iter()
                .filter(|(id, version)| self.own_changes.get(id) != Some(version))
                .map(|(id, _)| *id)
                .collect();
            if !ids.is_empty() {
                let jsons = self.store.catalog_get(&ids).await?;
                self.apply(&ids, jsons).await?;
            }
            if bypassed {
                self.apply_added_and_removed().await?;
            }
            self.sweep(now_ms).await?;
        }
        self.version = changes.version;
        self.catalog_fields = changes.catalog_fields;
        // Own writes read back (or older than the version now known) are done with.
        self.own_changes.retain(|_, v| *v > changes.version);
        Ok(())
    }

    /// Takes in entries added or removed behind the change log's back: the catalog's ids
    /// against the known ones.
    async fn apply_added_and_removed(&mut self) -> Result<(), StoreError> {
        let present = self.store.catalog_ids().await?;
        let mut known: BTreeSet<StrategyId> = self.catalog.keys().copied().collect();
        known.extend(self.planner.strategy_ids());
        let ids: Vec<StrategyId> = present.symmetric_difference(&known).copied().collect();
        if ids.is_empty() {
            return Ok(());
        }
        tracing::info!(
            strategies = ids.len(),
            "catalog entries added or removed without the change log; taken in"
        );
        let jsons = self.store.catalog_get(&ids).await?;
        self.apply(&ids, jsons).await
    }

    /// The sweep (module docs): reads the next slice of the catalog — the entries' share of
    /// the time since the last sweep out of `catalog_resync_ms`, once that is a page's worth
    /// (or the whole catalog, if smaller), at most [`SWEEP_STEP_ENTRIES_MAX`] — and
    /// re-applies the entries that differ from what the engine holds, those set aside, and
    /// those whose universe in Redis is not the size the planner holds.
    async fn sweep(&mut self, now_ms: i64) -> Result<(), StoreError> {
        let known = self.catalog.len().max(1) as u64;
        let elapsed_ms = (now_ms - self.swept_at_ms).max(0) as u64;
        let share = (known * elapsed_ms).div_ceil(self.config.catalog_resync_ms.max(1) as u64);
        // A small catalog is swept in one go now and then, not a few entries every step.
        if share < known.min(SWEEP_PAGE_ENTRIES as u64) {
            return Ok(());
        }
        self.swept_at_ms = now_ms;
        let per_step = (share as usize).clamp(1, SWEEP_STEP_ENTRIES_MAX);
        let mut stale: BTreeMap<StrategyId, String> = BTreeMap::new();
        let mut same: Vec<StrategyId> = Vec::new();
        // Each page counts at least one, so an empty page cannot loop: a bounded loop.
        let mut read = 0;
        while read < per_step {
            let count = (per_step - read).min(SWEEP_PAGE_ENTRIES);
            let page = self.store.catalog_page(self.sweep_cursor, count).await?;
            read += page.entries.len().max(1);
            for (id, json) in page.entries {
                if self.catalog.get(&id) != Some(&json) || self.isolated.contains_key(&id) {
                    stale.insert(id, json);
                } else {
                    same.push(id);
                }
            }
            self.sweep_cursor = page.next;
            if page.next == 0 {
                break; // the scan is complete; the next step starts another
            }
        }
        // Universes the engine holds (explicit, or missing: no set) against Redis's sizes.
        let held: Vec<(StrategyId, u64)> = same
            .into_iter()
            .filter_map(|id| match &self.planner.strategy(id)?.universe {
                Universe::Tickers(set) => Some((id, set.len() as u64)),
                Universe::Missing => Some((id, 0)),
                Universe::Global => None,
            })
            .collect();
        let ids: Vec<StrategyId> = held.iter().map(|(id, _)| *id).collect();
        let sizes = self.store.universe_sizes(&ids).await?;
        for ((id, size), found) in held.into_iter().zip(sizes) {
            if found != Some(size)
                && let Some(json) = self.catalog.get(&id)
            {
                stale.insert(id, json.clone());
            }
        }
        if stale.is_empty() {
            return Ok(());
        }
        Metrics::add(&self.metrics.catalog_sweep_reapplied, stale.len() as u64);
        tracing::info!(
            strategies = stale.len(),
            "catalog sweep: entries or universes changed without the change log; taken in"
        );
        let (ids, jsons): (Vec<StrategyId>, Vec<Option<String>>) =
            stale.into_iter().map(|(id, json)| (id, Some(json))).unzip();
        self.apply(&ids, jsons).await
    }

    /// Parses catalog entries, remembering them (for a restore); `None` for an entry that
    /// was removed, and nothing at all for one that does not parse (the strategy keeps its
    /// previous definition; set aside, counted, logged once).
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
                    self.isolate(id, Isolation::InvalidEntry(e));
                    continue;
                }
            };
            parsed.push((id, strategy));
        }
        parsed
    }

    /// Applies catalog entries (and their Redis universes) to the planner; see the module
    /// documentation for which universe wins. A strategy whose universe key is damaged or
    /// whose catalog universe is oversized is skipped (removed from the planner). The
    /// catalog universes that must replace Redis's are written in pipelines, not one round
    /// trip each.
    async fn apply(
        &mut self,
        ids: &[StrategyId],
        jsons: Vec<Option<String>>,
    ) -> Result<(), StoreError> {
        let parsed = self.parse_entries(ids, jsons);
        // Explicit and missing catalog universes: Redis may hold a newer discovery for both.
        let tracked: Vec<StrategyId> = parsed
            .iter()
            .filter(|(_, s)| s.as_ref().is_some_and(|s| s.universe != Universe::Global))
            .map(|(id, _)| *id)
            .collect();
        let universes = self.store.universes(&tracked).await?;
        let bases = self.store.universe_bases(&tracked).await?;
        let mut stored: BTreeMap<StrategyId, (StoredUniverse, Option<String>)> = tracked
            .iter()
            .copied()
            .zip(universes.into_iter().zip(bases))
            .collect();
        // Strategies whose catalog universe must be written first: (id, strategy, universe
        // as a sorted list, its digest).
        let mut writes: Vec<(StrategyId, Strategy, Vec<Ticker>, String)> = Vec::new();
        for (id, mut strategy) in parsed {
            if let Some(mut s) = strategy.take_if(|s| s.universe != Universe::Global) {
                let declared = match &s.universe {
                    Universe::Tickers(declared) => declared.clone(),
                    _ => BTreeSet::new(),
                };
                let (current, base) = stored.remove(&id).unwrap_or((Ok(None), None));
                match self.resolve_universe(id, &declared, current, base) {
                    Resolved::Keep(universe) => {
                        s.universe = universe;
                        strategy = Some(s);
                    }
                    Resolved::SetAside => {}
                    Resolved::Write(digest) => {
                        writes.push((id, s, declared.into_iter().collect(), digest));
                        continue;
                    }
                }
            }
            self.planner.upsert(id, strategy);
        }
        let requests: Vec<CatalogUniverse<'_>> = writes
            .iter()
            .map(|(id, _, tickers, digest)| CatalogUniverse {
                id: *id,
                tickers,
                base: digest,
            })
            .collect();
        let written = self.store.replace_universes_from_catalog(&requests).await?;
        drop(requests);
        for ((id, mut s, tickers, _), written) in writes.into_iter().zip(written) {
            match written {
                Ok(UniverseWrite::Replaced { version }) => {
                    Metrics::add(&self.metrics.universe_updates, 1);
                    self.own_changes.insert(id, version);
                }
                Ok(UniverseWrite::Unchanged) => {}
                // Someone else wrote another type between the read and the write.
                Err(StoreError::Damaged(damaged)) => {
                    self.isolate(id, Isolation::Damaged(damaged));
                    self.planner.upsert(id, None);
                    continue;
                }
                Err(e) => return Err(e),
            }
            s.universe = if tickers.is_empty() {
                Universe::Missing
            } else {
                Universe::Tickers(tickers.into_iter().collect())
            };
            self.planner.upsert(id, Some(s));
        }
        Ok(())
    }

    /// Which universe strategy `id` runs on, given its catalog universe (`declared`, empty
    /// for a missing one) and what Redis holds (`current`, and the `base` it was set from):
    /// Redis's, none (set aside: damaged key, oversized universe), or the catalog's once
    /// written to Redis with its digest.
    fn resolve_universe(
        &mut self,
        id: StrategyId,
        declared: &BTreeSet<Ticker>,
        current: StoredUniverse,
        base: Option<String>,
    ) -> Resolved {
        let current = match current {
            Ok(current) => current,
            Err(damaged) => {
                self.isolate(id, Isolation::Damaged(damaged));
                return Resolved::SetAside;
            }
        };
        let max = self.config.max_universe;
        if declared.len() > max {
            let size = declared.len();
            self.isolate(id, Isolation::OversizedUniverse { id, size, max });
            return Resolved::SetAside;
        }
        let digest = universe_digest(declared);
        if let Some(current) = current
            && base.as_deref() == Some(digest.as_str())
        {
            // This catalog universe was taken in already: Redis's is as new or newer (for
            // a missing one, a discovery made since).
            return Resolved::Keep(Universe::Tickers(current));
        }
        Resolved::Write(digest)
    }

    /// After Redis lost its state: writes back, for every entry this engine read last,
    /// whatever is missing — the entry if the catalog has none and nobody wrote or removed
    /// it since the loss (the change log, which restarted with it, names every such write),
    /// and the universe as last used (with its base) if its key is missing. A strategy the
    /// platform deleted while Redis was up is not in memory (the change log, or the
    /// catalog's size for a direct `HDEL`, made the engine forget it at the next step), so
    /// it is never revived; one deleted in the same tick interval as the loss cannot be told
    /// from a lost one. Then forgets the update times and claims Redis lost.
    pub(super) async fn restore(&mut self) -> Result<(), StoreError> {
        let mut restored = 0u64;
        let entries: Vec<(StrategyId, String)> = self
            .catalog
            .iter()
            .map(|(id, json)| (*id, json.clone()))
            .collect();
        for (id, json) in entries {
            // A missing catalog universe's base is the empty set's digest: a universe
            // discovered for it stays the newest write after the restore.
            let base = match Strategy::from_catalog(id, &json) {
                Ok((strategy, _)) => match strategy.universe {
                    Universe::Tickers(declared) => Some(universe_digest(&declared)),
                    Universe::Missing => Some(universe_digest(&BTreeSet::new())),
                    Universe::Global => None,
                },
                Err(_) => None,
            };
            let universe: Vec<Ticker> = match self.planner.strategy(id) {
                Some(Strategy {
                    universe: Universe::Tickers(u),
                    ..
                }) => u.iter().cloned().collect(),
                _ => Vec::new(),
            };
            let restore = Restore {
                json: &json,
                base: base.as_deref(),
                universe: &universe,
            };
            if self.store.restore_strategy(id, &restore).await? {
                restored += 1;
                if !universe.is_empty() {
                    Metrics::add(&self.metrics.universe_updates, 1);
                }
            }
        }
        tracing::info!(
            restored,
            known = self.catalog.len(),
            "catalog entries written back"
        );
        self.planner.forget_redis_state();
        self.feed = FeedCursor::default();
        self.write_back_due = true;
        Ok(())
    }
}
