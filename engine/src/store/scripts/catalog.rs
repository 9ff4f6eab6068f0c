//! Wrappers of the catalog scripts: entries, universes, their persistence to the catalog and
//! their restore after a Redis loss (DESIGN §2.3 step 2, §2.7).

use redis::{ScriptInvocation, Value};

use super::Scripts;
use crate::core::catalog::universe_digest;
use crate::core::ticker::{StrategyId, Ticker};
use crate::limits::CHANGE_RECORDS_MAX;
use crate::store::keys::KeySpace;
use crate::store::{PersistWrite, Persisted, Restore, StoreError, UniverseWrite};

impl Scripts {
    /// `catalog_write.lua` — KEYS: catalog, version, change log, floor. ARGV: strategy id,
    /// max change records, the entry ('' removes it), and the expected current entry for a
    /// compare and swap. Reply: 1 written, 0 not (the entry was not as expected).
    pub fn catalog_write(
        &self,
        keys: &KeySpace,
        id: StrategyId,
        json: Option<&str>,
        expected: Option<&str>,
    ) -> ScriptInvocation<'_> {
        let mut call = self.catalog_write.call();
        call.key(keys.catalog())
            .key(keys.version())
            .key(keys.changes())
            .key(keys.changes_floor())
            .arg(id)
            .arg(CHANGE_RECORDS_MAX)
            .arg(json.unwrap_or(""));
        if let Some(expected) = expected {
            call.arg(expected);
        }
        call
    }

    /// Decodes a [`Scripts::catalog_write`] reply: whether it wrote.
    pub fn decode_catalog_write(&self, reply: Value) -> Result<bool, StoreError> {
        match self.catalog_write.decode::<u64>(reply)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(self.catalog_write.error(format!("unknown reply {other}"))),
        }
    }

    /// `replace_universe.lua` — KEYS: universe, version, change log, floor, universe
    /// bases. ARGV: strategy id, max change records, the digest of the catalog universe
    /// written (`None`: a discovery, which leaves the base), the tickers (validated, never
    /// empty). Reply: see [`Scripts::decode_replace_universe`].
    pub fn replace_universe(
        &self,
        keys: &KeySpace,
        id: StrategyId,
        tickers: &[Ticker],
        base: Option<&str>,
    ) -> ScriptInvocation<'_> {
        let mut call = self.replace_universe.call();
        call.key(keys.universe(id))
            .key(keys.version())
            .key(keys.changes())
            .key(keys.changes_floor())
            .key(keys.universe_base())
            .arg(id)
            .arg(CHANGE_RECORDS_MAX)
            .arg(base.unwrap_or(""));
        for t in tickers {
            call.arg(t.as_str());
        }
        call
    }

    /// Decodes a [`Scripts::replace_universe`] reply; `None` when the universe key holds
    /// another type.
    pub fn decode_replace_universe(
        &self,
        reply: Value,
    ) -> Result<Option<UniverseWrite>, StoreError> {
        match self.replace_universe.decode::<i64>(reply)? {
            -1 => Ok(None),
            0 => Ok(Some(UniverseWrite::Unchanged)),
            v if v > 0 => Ok(Some(UniverseWrite::Replaced { version: v as u64 })),
            other => Err(self
                .replace_universe
                .error(format!("unknown reply {other}"))),
        }
    }

    /// `persist_universe.lua` — KEYS: catalog, version, change log, floor, universe bases,
    /// universe. ARGV: strategy id, max change records, the new entry, the entry it was made
    /// from, that entry's universe digest, the discovered universe's digest, its tickers.
    /// Reply: see [`Scripts::decode_persist_universe`].
    pub fn persist_universe<'a>(
        &'a self,
        keys: &KeySpace,
        id: StrategyId,
        write: &PersistWrite<'_>,
    ) -> ScriptInvocation<'a> {
        let mut call = self.persist_universe.call();
        call.key(keys.catalog())
            .key(keys.version())
            .key(keys.changes())
            .key(keys.changes_floor())
            .key(keys.universe_base())
            .key(keys.universe(id))
            .arg(id)
            .arg(CHANGE_RECORDS_MAX)
            .arg(write.json)
            .arg(write.expected)
            .arg(write.expected_base)
            .arg(universe_digest(&write.universe.iter().cloned().collect()));
        for t in write.universe {
            call.arg(t.as_str());
        }
        call
    }

    /// Decodes a [`Scripts::persist_universe`] reply.
    pub fn decode_persist_universe(&self, reply: Value) -> Result<Persisted, StoreError> {
        match self.persist_universe.decode::<u64>(reply)? {
            0 => Ok(Persisted::EntryChanged),
            1 => Ok(Persisted::Written),
            2 => Ok(Persisted::Superseded),
            other => Err(self
                .persist_universe
                .error(format!("unknown reply {other}"))),
        }
    }

    /// `restore_strategy.lua` — KEYS: catalog, version, change log, floor, universe bases,
    /// universe. ARGV: strategy id, max change records, the entry, its universe digest (''
    /// for none), the universe (none for a global strategy). Reply: 1 if the entry was
    /// written back, else 0.
    pub fn restore_strategy<'a>(
        &'a self,
        keys: &KeySpace,
        id: StrategyId,
        restore: &Restore<'_>,
    ) -> ScriptInvocation<'a> {
        let mut call = self.restore_strategy.call();
        call.key(keys.catalog())
            .key(keys.version())
            .key(keys.changes())
            .key(keys.changes_floor())
            .key(keys.universe_base())
            .key(keys.universe(id))
            .arg(id)
            .arg(CHANGE_RECORDS_MAX)
            .arg(restore.json)
            .arg(restore.base.unwrap_or(""));
        for t in restore.universe {
            call.arg(t.as_str());
        }
        call
    }
}
