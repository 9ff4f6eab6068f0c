//! The update set's write and incremental read on Redis (`record.lua`, `read_updates.lua`).

use std::collections::BTreeMap;

use super::redis::{decode_scores, script_error};
use super::{
    FeedCursor, FeedRead, MAX_FEED_DELTA, RedisStore, StoreError, WRITE_CHUNK, validate_updates,
};
use crate::domain::{Ticker, check_timestamp};

impl RedisStore {
    pub(super) async fn record_updates_impl<S: AsRef<str> + Sync>(
        &self,
        updates: &[(S, i64)],
    ) -> Result<(), StoreError> {
        let latest: Vec<(Ticker, i64)> = validate_updates(updates)?.into_iter().collect();
        if latest.is_empty() {
            return Ok(());
        }
        // One script per chunk: the write and its sequence number are atomic.
        for chunk in latest.chunks(WRITE_CHUNK) {
            let mut call = self.scripts().record.key(self.keys().updates());
            call.key(self.keys().update_sequence())
                .key(self.keys().update_feed());
            for (ticker, ts_ms) in chunk {
                call.arg(*ts_ms).arg(ticker.as_str());
            }
            call.invoke_async::<u64>(&mut self.connection())
                .await
                .map_err(|e| script_error("record.lua", e))?;
        }
        Ok(())
    }

    pub(super) async fn read_updates_impl(
        &self,
        cursor: &FeedCursor,
        since_ms: i64,
        new_epoch: &str,
    ) -> Result<FeedRead, StoreError> {
        check_timestamp(since_ms)?;
        let reply: Vec<redis::Value> = self
            .scripts()
            .read_updates
            .key(self.keys().updates())
            .key(self.keys().update_sequence())
            .key(self.keys().update_feed())
            .arg(cursor.epoch.as_deref().unwrap_or(""))
            .arg(cursor.seq)
            .arg(since_ms)
            .arg(new_epoch)
            .arg(MAX_FEED_DELTA)
            .invoke_async(&mut self.connection())
            .await
            .map_err(|e| script_error("read_updates.lua", e))?;
        let bad = |reason: String| StoreError::Script {
            script: "read_updates.lua",
            reason,
        };
        if reply.len() < 3 || reply.len().is_multiple_of(2) {
            return Err(bad(format!("{} values in the reply", reply.len())));
        }
        let mut values = reply.into_iter();
        let mut next = || values.next().unwrap_or(redis::Value::Nil);
        let kind: i64 = redis::from_redis_value(next()).map_err(|e| bad(e.to_string()))?;
        let epoch: String = redis::from_redis_value(next()).map_err(|e| bad(e.to_string()))?;
        let seq: u64 = redis::from_redis_value(next()).map_err(|e| bad(e.to_string()))?;
        let rest: Vec<(String, f64)> =
            redis::from_redis_value(redis::Value::Array(values.collect()))
                .map_err(|e| bad(e.to_string()))?;
        let mut updates = BTreeMap::new();
        for (member, ts_ms) in decode_scores("read_updates.lua", rest)? {
            if let Some(t) = self.parse_members(vec![member]).pop() {
                updates.insert(t, ts_ms);
            }
        }
        Ok(FeedRead {
            full: kind == 1,
            cursor: FeedCursor {
                epoch: Some(epoch),
                seq,
            },
            updates,
        })
    }
}
