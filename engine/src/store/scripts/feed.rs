//! Wrappers of the update-feed scripts: recording updates, reading what changed since a
//! cursor, retention cleanup, and the server-side intersection (DESIGN §2.3, §2.5, §2.6).

use redis::{ScriptInvocation, Value};

use super::Scripts;
use crate::core::ticker::{StrategyId, Ticker};
use crate::limits::FEED_DELTA_MAX;
use crate::store::keys::KeySpace;
use crate::store::{FeedCursor, StoreError};

/// What `read_updates.lua` answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    /// The tickers written after the cursor.
    Delta,
    /// Every ticker updated at or after `since_ms`.
    Full,
}

/// A decoded `read_updates.lua` reply.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedReply {
    pub kind: FeedKind,
    /// Where the reader stands after this read.
    pub cursor: FeedCursor,
    /// (member, score, earlier-minute score) triples, still raw.
    pub triples: Vec<(String, f64, Option<f64>)>,
}

impl Scripts {
    /// `record.lua` — KEYS: updates, sequence, feed meta, earlier-minute times. ARGV: ts1, ticker1, ts2, … (one
    /// write chunk). Reply: the write sequence number taken.
    pub fn record(&self, keys: &KeySpace, chunk: &[(Ticker, i64)]) -> ScriptInvocation<'_> {
        let mut call = self.record.call();
        call.key(keys.updates())
            .key(keys.update_sequence())
            .key(keys.update_feed())
            .key(keys.updates_before());
        for (ticker, ts_ms) in chunk {
            call.arg(*ts_ms).arg(ticker.as_str());
        }
        call
    }

    /// `read_updates.lua` — KEYS: updates, sequence, feed meta, earlier-minute times. ARGV:
    /// cursor epoch ('' for none), cursor seq, since ms (full read), the epoch to set if
    /// none, the most changes answered as a delta. Reply: `{kind, epoch, seq, ticker1, ms1,
    /// before1, …}`; see
    /// [`Scripts::decode_read_updates`].
    pub fn read_updates(
        &self,
        keys: &KeySpace,
        cursor: &FeedCursor,
        since_ms: i64,
        recent_ms: i64,
        new_epoch: &str,
    ) -> ScriptInvocation<'_> {
        let mut call = self.read_updates.call();
        call.key(keys.updates())
            .key(keys.update_sequence())
            .key(keys.update_feed())
            .key(keys.updates_before())
            .arg(cursor.epoch.as_deref().unwrap_or(""))
            .arg(cursor.seq)
            .arg(since_ms)
            .arg(new_epoch)
            .arg(FEED_DELTA_MAX)
            .arg(recent_ms);
        call
    }

    /// Decodes the reply of [`Scripts::read_updates`].
    pub fn decode_read_updates(&self, reply: Vec<Value>) -> Result<FeedReply, StoreError> {
        let lua = &self.read_updates;
        if reply.len() < 3 || !reply.len().is_multiple_of(3) {
            return Err(lua.error(format!("{} values in the reply", reply.len())));
        }
        let mut values = reply.into_iter();
        let mut next = || values.next().unwrap_or(Value::Nil);
        let kind = match lua.decode::<i64>(next())? {
            0 => FeedKind::Delta,
            1 => FeedKind::Full,
            other => return Err(lua.error(format!("unknown reply kind {other}"))),
        };
        let epoch: String = lua.decode(next())?;
        let seq: u64 = lua.decode(next())?;
        let rest: Vec<Value> = values.collect();
        let mut triples = Vec::with_capacity(rest.len() / 3);
        for t in rest.chunks_exact(3) {
            let before: Option<f64> = lua.decode(t[2].clone())?;
            triples.push((lua.decode(t[0].clone())?, lua.decode(t[1].clone())?, before));
        }
        let cursor = FeedCursor {
            epoch: Some(epoch),
            seq,
        };
        Ok(FeedReply {
            kind,
            cursor,
            triples,
        })
    }

    /// `cleanup_chunk.lua` — KEYS: updates, sequence, earlier-minute times. ARGV: cutoff
    /// ms, most members to
    /// remove. Reply: the number removed.
    pub fn cleanup_chunk(
        &self,
        keys: &KeySpace,
        cutoff_ms: i64,
        chunk_members: usize,
    ) -> ScriptInvocation<'_> {
        let mut call = self.cleanup_chunk.call();
        call.key(keys.updates())
            .key(keys.update_sequence())
            .key(keys.updates_before())
            .arg(cutoff_ms)
            .arg(chunk_members);
        call
    }

    /// `intersect_adaptive.lua` — KEYS: updates, universe. ARGV: since ms. Reply: the
    /// universe's members updated at or after it, or `{DAMAGED_MARKER, type}` when the
    /// universe key is not a set.
    pub fn intersect(
        &self,
        keys: &KeySpace,
        id: StrategyId,
        since_ms: i64,
    ) -> ScriptInvocation<'_> {
        let mut call = self.intersect.call();
        call.key(keys.updates())
            .key(keys.universe(id))
            .arg(since_ms);
        call
    }
}
