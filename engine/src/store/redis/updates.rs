//! [`Updates`] on Redis: `record.lua` writes, `read_updates.lua` reads what changed.

use std::collections::BTreeMap;

use super::{RedisStore, command_error, invoke, script_error};
use crate::core::ticker::{Ticker, check_timestamp};
use crate::limits::WRITE_CHUNK_MEMBERS;
use crate::store::scripts::FeedKind;
use crate::store::{
    FeedCursor, FeedRead, Store, StoreCounters, StoreError, Updates, validate_updates,
};

impl RedisStore {
    /// An update time read from Redis, if it is whole milliseconds of a supported instant;
    /// else counted and logged, and the ticker skipped.
    fn stamp(&self, member: &str, score: f64) -> Option<i64> {
        // Integral and below 2^53, f64 holds the milliseconds exactly.
        let ms = (score.fract() == 0.0 && score.abs() < 9.0e15).then_some(score as i64);
        match ms.and_then(|ms| check_timestamp(ms).ok()) {
            Some(ms) => Some(ms),
            None => {
                StoreCounters::bump(&self.counters().invalid_scores, 1);
                tracing::warn!(key = %self.keys().updates(), member, score, "update time is not a millisecond instant; ticker skipped");
                None
            }
        }
    }
}

impl Updates for RedisStore {
    async fn record_updates<S: AsRef<str> + Sync>(
        &self,
        now_ms: i64,
        updates: &[(S, i64)],
    ) -> Result<(), StoreError> {
        let batch = validate_updates(now_ms, self.max_future_ms, updates)?;
        // The earlier-minute times first, so TICK:PRE keeps them (see `UpdateBatch`); then
        // the latest. One script per chunk: the write and its sequence number are atomic.
        for times in [batch.earlier, batch.latest] {
            let times: Vec<(Ticker, i64)> = times.into_iter().collect();
            for chunk in times.chunks(WRITE_CHUNK_MEMBERS) {
                let call = self.scripts().record(self.keys(), chunk);
                invoke::<u64>(self, &self.scripts().record, &call).await?;
            }
        }
        Ok(())
    }

    async fn read_updates(
        &self,
        cursor: &FeedCursor,
        since_ms: i64,
        recent_ms: i64,
        new_epoch: &str,
    ) -> Result<FeedRead, StoreError> {
        check_timestamp(since_ms)?;
        check_timestamp(recent_ms)?;
        let scripts = self.scripts();
        let reply: Vec<redis::Value> = scripts
            .read_updates(self.keys(), cursor, since_ms, recent_ms, new_epoch)
            .invoke_async(&mut self.connection())
            .await
            .map_err(|e| script_error(scripts.read_updates.name, e))?;
        let reply = scripts.decode_read_updates(reply)?;
        let mut updates = BTreeMap::new();
        let mut before = BTreeMap::new();
        for (member, score, before_score) in reply.triples {
            // One bad score costs only its ticker (DESIGN §2.3, isolation).
            let Some(ts_ms) = self.stamp(&member, score) else {
                continue;
            };
            let Some(t) = self.parse_members(vec![member]).pop() else {
                continue;
            };
            if let Some(b) = before_score.and_then(|b| self.stamp(t.as_str(), b)) {
                before.insert(t.clone(), b);
            }
            updates.insert(t, ts_ms);
        }
        Ok(FeedRead {
            full: reply.kind == FeedKind::Full,
            cursor: reply.cursor,
            updates,
            before,
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
