//! [`Catalog`] on Redis: the `STRAT:CATALOG` hash, written through `catalog_write.lua`
//! (which records the change), and the change log read by every instance each tick.

use std::collections::{BTreeMap, BTreeSet};

use super::{RedisStore, command_error};
use crate::core::ticker::StrategyId;
use crate::limits::{CATALOG_PAGE_ENTRIES, CATALOG_PAGES_MAX, WRITE_CHUNK_MEMBERS};
use crate::store::{Catalog, CatalogPage, Changes, PersistWrite, Persisted, Restore, StoreError};

impl Catalog for RedisStore {
    async fn catalog_write(
        &self,
        id: StrategyId,
        json: Option<&str>,
        expected: Option<&str>,
    ) -> Result<bool, StoreError> {
        let scripts = self.scripts();
        let call = scripts.catalog_write(self.keys(), id, json, expected);
        let reply = super::invoke(self, &scripts.catalog_write, &call).await?;
        scripts.decode_catalog_write(reply)
    }

    async fn catalog_page(&self, cursor: u64, count: usize) -> Result<CatalogPage, StoreError> {
        let (next, page): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
            .arg(self.keys().catalog())
            .arg(cursor)
            .arg("COUNT")
            .arg(count.max(1))
            .query_async(&mut self.connection())
            .await
            .map_err(|e| command_error("HSCAN", e))?;
        // A field that is not a strategy id is someone else's; the engine reports catalog
        // entries it cannot use when it parses them.
        let entries = page
            .into_iter()
            .filter_map(|(id, json)| Some((id.parse().ok()?, json)))
            .collect();
        Ok(CatalogPage { next, entries })
    }

    async fn catalog_ids(&self) -> Result<BTreeSet<StrategyId>, StoreError> {
        let ids: Vec<String> = redis::cmd("HKEYS")
            .arg(self.keys().catalog())
            .query_async(&mut self.connection())
            .await
            .map_err(|e| command_error("HKEYS", e))?;
        Ok(ids.iter().filter_map(|id| id.parse().ok()).collect())
    }

    async fn catalog_all(&self) -> Result<BTreeMap<StrategyId, String>, StoreError> {
        let mut out = BTreeMap::new();
        let mut cursor: u64 = 0;
        for _ in 0..CATALOG_PAGES_MAX {
            let page = self.catalog_page(cursor, CATALOG_PAGE_ENTRIES).await?;
            out.extend(page.entries);
            if page.next == 0 {
                return Ok(out);
            }
            cursor = page.next;
        }
        Err(StoreError::Redis {
            op: "HSCAN",
            reason: format!("catalog larger than {CATALOG_PAGES_MAX} pages"),
        })
    }

    async fn catalog_get(&self, ids: &[StrategyId]) -> Result<Vec<Option<String>>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(WRITE_CHUNK_MEMBERS) {
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(self.keys().catalog()).arg(chunk);
            let values: Vec<Option<String>> = cmd
                .query_async(&mut self.connection())
                .await
                .map_err(|e| command_error("HMGET", e))?;
            out.extend(values);
        }
        Ok(out)
    }

    async fn persist_universe(
        &self,
        id: StrategyId,
        write: &PersistWrite<'_>,
    ) -> Result<Persisted, StoreError> {
        let scripts = self.scripts();
        let call = scripts.persist_universe(self.keys(), id, write);
        let reply = super::invoke(self, &scripts.persist_universe, &call).await?;
        scripts.decode_persist_universe(reply)
    }

    async fn restore_strategy(
        &self,
        id: StrategyId,
        restore: &Restore<'_>,
    ) -> Result<bool, StoreError> {
        let scripts = self.scripts();
        let call = scripts.restore_strategy(self.keys(), id, restore);
        let written: u64 = super::invoke(self, &scripts.restore_strategy, &call).await?;
        Ok(written == 1)
    }

    async fn changes_since(&self, version: u64) -> Result<Changes, StoreError> {
        let keys = self.keys();
        #[allow(
            clippy::type_complexity,
            reason = "one tuple element per pipelined command"
        )]
        let (current, floor, changed, fields, epoch): (
            Option<u64>,
            Option<u64>,
            Vec<(String, u64)>,
            u64,
            Option<String>,
        ) = redis::pipe()
            .cmd("GET")
            .arg(keys.version())
            .cmd("GET")
            .arg(keys.changes_floor())
            .cmd("ZRANGE")
            .arg(keys.changes())
            .arg(format!("({version}"))
            .arg("+inf")
            .arg("BYSCORE")
            .arg("WITHSCORES")
            .cmd("HLEN")
            .arg(keys.catalog())
            .cmd("HGET")
            .arg(keys.update_feed())
            .arg("epoch")
            .query_async(&mut self.connection())
            .await
            .map_err(|e| command_error("GET + ZRANGE changes", e))?;
        let current = current.unwrap_or(0);
        Ok(Changes {
            version: current,
            strategies: changed
                .iter()
                .filter_map(|(id, version)| Some((id.parse().ok()?, *version)))
                .collect(),
            // A version behind ours means Redis lost its state (restart, flush).
            reload_all: version > current || floor.unwrap_or(0) > version,
            state_lost: version > current,
            catalog_fields: fields,
            feed_epoch: epoch,
        })
    }
}
