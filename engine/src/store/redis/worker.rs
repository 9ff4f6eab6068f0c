//! [`WorkerSide`] on Redis: what a worker does (README, "Writing a worker"), for the test
//! and simulated workers.

use super::{RedisStore, command_error};
use crate::limits::PIPELINE_CALLS_MAX;
use crate::store::{StoreError, StreamEntry, WORKER_GROUP, WorkerSide};

impl WorkerSide for RedisStore {
    async fn take_jobs(&self, consumer: &str, max: usize) -> Result<Vec<StreamEntry>, StoreError> {
        let stream = self.keys().jobs();
        self.read_group(stream, WORKER_GROUP, consumer, max, ">", "job")
            .await
    }

    /// One round trip per [`PIPELINE_CALLS_MAX`] results; each acknowledgement is atomic
    /// with its result (`MULTI`/`EXEC` per job inside the pipeline). No `MAXLEN`: a capped
    /// `XADD` could trim results no engine has read; the engine trims the results stream
    /// only below what its group has acknowledged.
    async fn finish_jobs(&self, jobs: &[(String, String)]) -> Result<(), StoreError> {
        for batch in jobs.chunks(PIPELINE_CALLS_MAX) {
            let mut pipe = redis::pipe();
            for (job_entry_id, result_json) in batch {
                pipe.cmd("MULTI")
                    .ignore()
                    .cmd("XACK")
                    .arg(self.keys().jobs())
                    .arg(WORKER_GROUP)
                    .arg(job_entry_id)
                    .ignore()
                    .cmd("XADD")
                    .arg(self.keys().results())
                    .arg("*")
                    .arg("result")
                    .arg(result_json)
                    .ignore()
                    .cmd("EXEC")
                    .ignore();
            }
            pipe.query_async::<()>(&mut self.connection())
                .await
                .map_err(|e| command_error("XACK + XADD result", e))?;
        }
        Ok(())
    }
}
