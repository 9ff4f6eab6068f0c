//! [`Maintenance`] on Redis: retention cleanup in bounded `cleanup_chunk.lua` steps.

use super::{RedisStore, command_error, invoke};
use crate::core::calendar::Timeframe;
use crate::core::retention::effective_retention_ms;
use crate::core::ticker::check_timestamp;
use crate::limits::{CLEANUP_CALLS_PER_RUN_MAX, CLEANUP_CHUNK_MEMBERS};
use crate::store::{CleanupReport, Maintenance, StoreError};

impl Maintenance for RedisStore {
    async fn cleanup(
        &self,
        now_ms: i64,
        configured_retention_ms: i64,
        active: &[Timeframe],
    ) -> Result<CleanupReport, StoreError> {
        check_timestamp(now_ms)?;
        let effective = effective_retention_ms(configured_retention_ms, active);
        if effective > configured_retention_ms {
            tracing::warn!(
                configured_retention_ms,
                effective_retention_ms = effective,
                "retention raised to the longest bucket of an active timeframe, so cleanup cannot change a decision"
            );
        }
        let cutoff_ms = now_ms.saturating_sub(effective);
        let mut report = CleanupReport {
            removed: 0,
            effective_retention_ms: effective,
            cutoff_ms,
            calls: 0,
            complete: false,
        };
        let scripts = self.scripts();
        while report.calls < CLEANUP_CALLS_PER_RUN_MAX as u64 {
            let call = scripts.cleanup_chunk(self.keys(), cutoff_ms, CLEANUP_CHUNK_MEMBERS);
            let removed: u64 = invoke(self, &scripts.cleanup_chunk, &call).await?;
            report.calls += 1;
            report.removed += removed;
            if removed < CLEANUP_CHUNK_MEMBERS as u64 {
                report.complete = true;
                break;
            }
        }
        Ok(report)
    }

    async fn server_time_ms(&self) -> Result<Option<i64>, StoreError> {
        let (secs, micros): (i64, i64) = redis::cmd("TIME")
            .query_async(&mut self.connection())
            .await
            .map_err(|e| command_error("TIME", e))?;
        Ok(Some(
            secs.saturating_mul(1_000).saturating_add(micros / 1_000),
        ))
    }
}
