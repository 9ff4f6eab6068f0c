//! [`Universes`] on Redis: `SMEMBERS` reads, `replace_universe.lua` writes,
//! `intersect_adaptive.lua` (or a client-side intersection) answers step 3 of a tick.

use std::collections::BTreeSet;

use redis::RedisResult;

use super::{RedisStore, command_error, invoke, pipelined};
use crate::core::ticker::{StrategyId, Ticker, check_timestamp};
use crate::limits::{PIPELINE_CALLS_MAX, WRITE_CHUNK_MEMBERS};
use crate::store::scripts::damaged_type;
use crate::store::{
    CatalogUniverse, DamagedKey, Intersection, StoreError, StoredUniverse, UniverseWrite,
    Universes, validate_universe,
};

impl Universes for RedisStore {
    async fn universes(&self, ids: &[StrategyId]) -> Result<Vec<StoredUniverse>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(WRITE_CHUNK_MEMBERS) {
            let mut pipe = redis::pipe();
            // One key of the wrong type must not fail the others' reads.
            pipe.ignore_errors();
            for id in chunk {
                pipe.cmd("SMEMBERS").arg(self.keys().universe(*id));
            }
            let sets: Vec<RedisResult<Vec<String>>> = pipe
                .query_async(&mut self.connection())
                .await
                .map_err(|e| command_error("SMEMBERS", e))?;
            for (id, members) in chunk.iter().zip(sets) {
                let members = match members {
                    Ok(m) => m,
                    Err(e) if e.code() == Some("WRONGTYPE") => {
                        out.push(Err(self.damaged_universe(*id).await?));
                        continue;
                    }
                    Err(e) => return Err(command_error("SMEMBERS", e)),
                };
                // An empty universe is never written, so no members means no universe.
                let set: BTreeSet<Ticker> = self.parse_members(members).into_iter().collect();
                out.push(Ok((!set.is_empty()).then_some(set)));
            }
        }
        Ok(out)
    }

    async fn universe_sizes(&self, ids: &[StrategyId]) -> Result<Vec<Option<u64>>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(WRITE_CHUNK_MEMBERS) {
            let mut pipe = redis::pipe();
            // One key of the wrong type must not fail the others' reads.
            pipe.ignore_errors();
            for id in chunk {
                pipe.cmd("SCARD").arg(self.keys().universe(*id));
            }
            let sizes: Vec<RedisResult<u64>> = pipe
                .query_async(&mut self.connection())
                .await
                .map_err(|e| command_error("SCARD", e))?;
            for size in sizes {
                match size {
                    Ok(n) => out.push(Some(n)),
                    Err(e) if e.code() == Some("WRONGTYPE") => out.push(None),
                    Err(e) => return Err(command_error("SCARD", e)),
                }
            }
        }
        Ok(out)
    }

    async fn replace_universe<S: AsRef<str> + Sync>(
        &self,
        id: StrategyId,
        tickers: &[S],
    ) -> Result<usize, StoreError> {
        let set: Vec<Ticker> = validate_universe(id, tickers, self.max_universe)?
            .into_iter()
            .collect();
        // One script: no reader sees the key deleted or half-filled (the original's
        // DEL + SADD pipeline let readers see an empty universe), and the change is
        // recorded for other instances in the same step.
        let call = self.scripts().replace_universe(self.keys(), id, &set, None);
        let reply = invoke(self, &self.scripts().replace_universe, &call).await?;
        self.scripts().decode_replace_universe(reply)?;
        Ok(set.len())
    }

    async fn replace_universe_from_catalog<S: AsRef<str> + Sync>(
        &self,
        id: StrategyId,
        tickers: &[S],
        base: &str,
    ) -> Result<UniverseWrite, StoreError> {
        let set: Vec<Ticker> = validate_universe(id, tickers, self.max_universe)?
            .into_iter()
            .collect();
        let call = self
            .scripts()
            .replace_universe(self.keys(), id, &set, Some(base));
        let reply = invoke(self, &self.scripts().replace_universe, &call).await?;
        match self.scripts().decode_replace_universe(reply)? {
            Some(write) => Ok(write),
            None => Err(self.damaged_universe(id).await?.into()),
        }
    }

    async fn replace_universes_from_catalog(
        &self,
        writes: &[CatalogUniverse<'_>],
    ) -> Result<Vec<Result<UniverseWrite, StoreError>>, StoreError> {
        let scripts = self.scripts();
        let mut out = Vec::with_capacity(writes.len());
        for batch in writes.chunks(PIPELINE_CALLS_MAX) {
            // Validated first: a rejected list is its own answer and writes nothing.
            let sets: Vec<Result<Vec<Ticker>, StoreError>> = batch
                .iter()
                .map(|w| match w.tickers {
                    [] => Ok(Vec::new()),
                    tickers => Ok(validate_universe(w.id, tickers, self.max_universe)?
                        .into_iter()
                        .collect()),
                })
                .collect();
            let calls: Vec<_> = batch
                .iter()
                .zip(&sets)
                .filter_map(|(w, set)| {
                    let set = set.as_ref().ok()?;
                    Some(scripts.replace_universe(self.keys(), w.id, set, Some(w.base)))
                })
                .collect();
            let mut replies = pipelined(self, &scripts.replace_universe, &calls)
                .await?
                .into_iter();
            for (w, set) in batch.iter().zip(sets) {
                let answer = match set {
                    Err(e) => Err(e),
                    Ok(_) => {
                        let reply = replies.next().ok_or_else(|| {
                            scripts.replace_universe.error("a reply short".into())
                        })?;
                        match scripts.decode_replace_universe(reply)? {
                            Some(write) => Ok(write),
                            None => Err(self.damaged_universe(w.id).await?.into()),
                        }
                    }
                };
                out.push(answer);
            }
        }
        Ok(out)
    }

    async fn clear_universe_from_catalog(
        &self,
        id: StrategyId,
        base: &str,
    ) -> Result<UniverseWrite, StoreError> {
        // The replace script with no tickers: records the base, deletes the set if any.
        let call = self
            .scripts()
            .replace_universe(self.keys(), id, &[], Some(base));
        let reply = invoke(self, &self.scripts().replace_universe, &call).await?;
        match self.scripts().decode_replace_universe(reply)? {
            Some(write) => Ok(write),
            None => Err(self.damaged_universe(id).await?.into()),
        }
    }

    async fn universe_bases(&self, ids: &[StrategyId]) -> Result<Vec<Option<String>>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(WRITE_CHUNK_MEMBERS) {
            let values: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(self.keys().universe_base())
                .arg(chunk)
                .query_async(&mut self.connection())
                .await
                .map_err(|e| command_error("HMGET universe bases", e))?;
            out.extend(values);
        }
        Ok(out)
    }

    async fn intersect(
        &self,
        id: StrategyId,
        since_ms: i64,
        method: Intersection,
    ) -> Result<Vec<Ticker>, StoreError> {
        check_timestamp(since_ms)?;
        let members: Vec<String> = match method {
            Intersection::ClientSide => {
                let (universe, updated): (RedisResult<Vec<String>>, RedisResult<Vec<String>>) =
                    redis::pipe()
                        .ignore_errors()
                        .cmd("SMEMBERS")
                        .arg(self.keys().universe(id))
                        .cmd("ZRANGE")
                        .arg(self.keys().updates())
                        .arg(since_ms)
                        .arg("+inf")
                        .arg("BYSCORE")
                        .query_async(&mut self.connection())
                        .await
                        .map_err(|e| command_error("SMEMBERS + ZRANGE BYSCORE", e))?;
                let universe: BTreeSet<String> = match universe {
                    Err(e) if e.code() == Some("WRONGTYPE") => {
                        return Err(self.damaged_universe(id).await?.into());
                    }
                    other => other.map_err(|e| command_error("SMEMBERS", e))?,
                }
                .into_iter()
                .collect();
                updated
                    .map_err(|e| command_error("ZRANGE BYSCORE", e))?
                    .into_iter()
                    .filter(|t| universe.contains(t))
                    .collect()
            }
            Intersection::AdaptiveLua => {
                let call = self.scripts().intersect(self.keys(), id, since_ms);
                let members: Vec<String> = invoke(self, &self.scripts().intersect, &call).await?;
                if let Some(found) = damaged_type(&members) {
                    return Err(self.damaged(id, found.to_owned()).into());
                }
                members
            }
        };
        let mut tickers = self.parse_members(members);
        tickers.sort_unstable();
        Ok(tickers)
    }
}

impl RedisStore {
    /// The universe key of `id` holds `found`, not a set.
    fn damaged(&self, id: StrategyId, found: String) -> DamagedKey {
        DamagedKey {
            strategy: id,
            key: self.keys().universe(id),
            expected: "set",
            found,
        }
    }

    /// Reads the type of a universe key that answered `WRONGTYPE`.
    async fn damaged_universe(&self, id: StrategyId) -> Result<DamagedKey, StoreError> {
        let found: String = redis::cmd("TYPE")
            .arg(self.keys().universe(id))
            .query_async(&mut self.connection())
            .await
            .map_err(|e| command_error("TYPE", e))?;
        Ok(self.damaged(id, found))
    }
}
