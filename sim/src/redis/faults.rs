//! What the run loop needs from the Redis under test (DESIGN §7): faults — pause, restart
//! empty, script flush — and probes (memory, a seed-faithful tick on the same data, the
//! independent `fred` reader of the jobs stream), as one trait, [`Faults`].
//! [`RedisFaults`] works on a server the run owns (its probes are in `probes`);
//! [`NoFaults`] stands in for the in-memory store, where Redis faults and probes are
//! skipped.

use std::time::Duration;

use tickgate::store::RedisStore;

use super::baseline::{Baseline, SeedStrategy};
use super::provision::RedisServer;
use crate::oracle::fred::{Entry, JobsChecker};

/// What the loop needs from the Redis under test (absent in memory mode).
pub trait Faults {
    /// Whether faults can be injected (a Redis this run owns); otherwise the scenario's
    /// faults are skipped with a notice.
    fn supported(&self) -> bool;
    fn pause(&mut self) -> impl std::future::Future<Output = Result<(), String>>;
    fn resume(&mut self) -> impl std::future::Future<Output = Result<(), String>>;
    fn restart_empty(&mut self) -> impl std::future::Future<Output = Result<(), String>>;
    fn script_flush(&mut self) -> impl std::future::Future<Output = Result<(), String>>;
    /// `INFO memory` used_memory, if this is a Redis.
    fn used_memory(&mut self) -> impl std::future::Future<Output = Option<u64>>;
    /// Runs the seed-faithful tick on the data under test at `now_ms` and returns its wall
    /// time; `None` when there is no Redis to run it on.
    fn seed_faithful_tick(
        &mut self,
        now_ms: i64,
        strategies: &[SeedStrategy],
    ) -> impl std::future::Future<Output = Option<Result<Duration, String>>>;
    /// Every jobs-stream entry appended since the previous call, read by the independent
    /// checker (a second client); `None` when there is no Redis to read.
    fn jobs_appended(
        &mut self,
    ) -> impl std::future::Future<Output = Option<Result<Vec<Entry>, String>>>;
    /// The `job` field of every job entry appended to the dead-letter stream since the
    /// previous call, read by a plain client (for the independent guarantee checker: a
    /// dead-lettered job releases its claims); `None` when there is no Redis to read — then
    /// a re-dispatch after a dead letter would look like a duplicate to the checker, which
    /// only a sabotaged run meets (the job visibility covers the slowest simulated run).
    fn dead_jobs_appended(
        &mut self,
    ) -> impl std::future::Future<Output = Option<Result<Vec<String>, String>>>;
}

/// Faults on a provisioned server, with an admin connection for server-wide commands.
pub struct RedisFaults {
    pub(super) server: RedisServer,
    pub(super) admin: RedisStore,
    /// The seed-faithful evaluator, connected on first use and dropped after a failure
    /// (its connections do not reconnect), so the next sample connects afresh.
    pub(super) baseline: Option<Baseline>,
    /// The independent checker on the jobs stream, connected on first use.
    pub(super) checker: Option<JobsChecker>,
    /// Id of the last dead-letter entry read (`None`: from the start of the stream).
    pub(super) dead_cursor: Option<String>,
}

impl RedisFaults {
    pub fn new(server: RedisServer, admin: RedisStore) -> RedisFaults {
        RedisFaults {
            server,
            admin,
            baseline: None,
            checker: None,
            dead_cursor: None,
        }
    }

    /// Where the server came from.
    pub fn source(&self) -> String {
        self.server.source()
    }
}

impl Faults for RedisFaults {
    fn supported(&self) -> bool {
        self.server.is_dedicated()
    }

    async fn pause(&mut self) -> Result<(), String> {
        self.server.pause().await.map_err(|e| e.to_string())
    }

    async fn resume(&mut self) -> Result<(), String> {
        self.server.resume().await.map_err(|e| e.to_string())
    }

    async fn restart_empty(&mut self) -> Result<(), String> {
        if let Some(checker) = &mut self.checker {
            checker.reset();
        }
        self.dead_cursor = None;
        self.server
            .restart_empty(async {})
            .await
            .map_err(|e| e.to_string())
    }

    async fn script_flush(&mut self) -> Result<(), String> {
        redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async::<()>(&mut self.admin.connection())
            .await
            .map_err(|e| e.to_string())
    }

    async fn used_memory(&mut self) -> Option<u64> {
        self.memory().await
    }

    async fn seed_faithful_tick(
        &mut self,
        now_ms: i64,
        strategies: &[SeedStrategy],
    ) -> Option<Result<Duration, String>> {
        Some(self.seed_sample(now_ms, strategies).await)
    }

    async fn jobs_appended(&mut self) -> Option<Result<Vec<Entry>, String>> {
        Some(self.fred_read().await)
    }

    async fn dead_jobs_appended(&mut self) -> Option<Result<Vec<String>, String>> {
        Some(self.dead_read().await)
    }
}

/// The in-memory store has no server to break.
pub struct NoFaults;

impl Faults for NoFaults {
    fn supported(&self) -> bool {
        false
    }

    async fn pause(&mut self) -> Result<(), String> {
        Ok(())
    }

    async fn resume(&mut self) -> Result<(), String> {
        Ok(())
    }

    async fn restart_empty(&mut self) -> Result<(), String> {
        Ok(())
    }

    async fn script_flush(&mut self) -> Result<(), String> {
        Ok(())
    }

    async fn used_memory(&mut self) -> Option<u64> {
        None
    }

    async fn seed_faithful_tick(
        &mut self,
        _now_ms: i64,
        _strategies: &[SeedStrategy],
    ) -> Option<Result<Duration, String>> {
        None
    }

    async fn jobs_appended(&mut self) -> Option<Result<Vec<Entry>, String>> {
        None
    }

    async fn dead_jobs_appended(&mut self) -> Option<Result<Vec<String>, String>> {
        None
    }
}
