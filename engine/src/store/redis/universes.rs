//! [`Universes`] on Redis: `SMEMBERS` reads, `replace_universe.lua` writes,
//! `intersect_adaptive.lua` (or a client-side intersection) answers step 3 of a tick.

use std::collections::BTreeSet;

use super::{RedisStore, command_error, invoke};
use crate::core::ticker::{StrategyId, Ticker, check_timestamp};
use crate::limits::WRITE_CHUNK_MEMBERS;
use crate::store::{Intersection, StoreError, Universes, validate_universe};

impl Universes for RedisStore {
    async fn universes(
        &self,
        ids: &[StrategyId],
    ) -> Result<Vec<Option<BTreeSet<Ticker>>>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(WRITE_CHUNK_MEMBERS) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.cmd("SMEMBERS").arg(self.keys().universe(*id));
            }
            let sets: Vec<Vec<String>> = pipe
                .query_async(&mut self.connection())
                .await
                .map_err(|e| command_error("SMEMBERS", e))?;
            for members in sets {
                // An empty universe is never written, so no members means no universe.
                let set: BTreeSet<Ticker> = self.parse_members(members).into_iter().collect();
                out.push((!set.is_empty()).then_some(set));
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
        let call = self.scripts().replace_universe(self.keys(), id, &set);
        invoke::<u64>(self, &self.scripts().replace_universe, &call).await?;
        Ok(set.len())
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
                let (universe, updated): (Vec<String>, Vec<String>) = redis::pipe()
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
                let universe: BTreeSet<String> = universe.into_iter().collect();
                updated
                    .into_iter()
                    .filter(|t| universe.contains(t))
                    .collect()
            }
            Intersection::AdaptiveLua => {
                let call = self.scripts().intersect(self.keys(), id, since_ms);
                invoke(self, &self.scripts().intersect, &call).await?
            }
        };
        let mut tickers = self.parse_members(members);
        tickers.sort_unstable();
        Ok(tickers)
    }
}
