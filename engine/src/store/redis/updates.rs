//! [`Updates`] on Redis: `record.lua` writes, `read_updates.lua` reads what changed.

use std::collections::BTreeMap;

use super::{RedisStore, command_error, decode_scores, invoke, script_error};
use crate::core::ticker::{Ticker, check_timestamp};
use crate::limits::WRITE_CHUNK_MEMBERS;
use crate::store::scripts::FeedKind;
use crate::store::{FeedCursor, FeedRead, StoreError, Updates, validate_updates};

impl Updates for RedisStore {
    async fn record_updates<S: AsRef<str> + Sync>(
        &self,
        updates: &[(S, i64)],
    ) -> Result<(), StoreError> {
        let latest: Vec<(Ticker, i64)> = validate_updates(updates)?.into_iter().collect();
        // One script per chunk: the write and its sequence number are atomic.
        for chunk in latest.chunks(WRITE_CHUNK_MEMBERS) {
            let call = self.scripts().record(self.keys(), chunk);
            invoke::<u64>(self, &self.scripts().record, &call).await?;
        }
        Ok(())
    }

    async fn read_updates(
        &self,
        cursor: &FeedCursor,
        since_ms: i64,
        new_epoch: &str,
    ) -> Result<FeedRead, StoreError> {
        check_timestamp(since_ms)?;
        let scripts = self.scripts();
        let reply: Vec<redis::Value> = scripts
            .read_updates(self.keys(), cursor, since_ms, new_epoch)
            .invoke_async(&mut self.connection())
            .await
            .map_err(|e| script_error(scripts.read_updates.name, e))?;
        let reply = scripts.decode_read_updates(reply)?;
        let mut updates = BTreeMap::new();
        for (member, ts_ms) in decode_scores(scripts.read_updates.name, reply.pairs)? {
            if let Some(t) = self.parse_members(vec![member]).pop() {
                updates.insert(t, ts_ms);
            }
        }
        Ok(FeedRead {
            full: reply.kind == FeedKind::Full,
            cursor: reply.cursor,
            updates,
        })
    }

    async fn tracked_tickers(&self) -> Result<u64, StoreError> {
        redis::cmd("ZCARD")
            .arg(self.keys().updates())
            .query_async(&mut self.connection())
            .await
            .map_err(|e| command_error("ZCARD", e))
    }
}
