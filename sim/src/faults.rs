//! Fault injection into the Redis under test (DESIGN §7): pause, restart empty, script
//! flush, and the probes (memory, a seed-faithful tick on the same data, the independent
//! `fred` checker of the jobs stream). [`RedisFaults`]
//! works on a server the run owns; [`NoFaults`] stands in for the in-memory store, where
//! Redis faults and probes are skipped.

use std::time::{Duration, Instant};

use tickgate::store::{KeySpace, RedisStore};

use crate::baseline::{Baseline, default_pool_size};
use crate::checker::{Entry, JobsChecker};
use crate::provision::RedisServer;
use crate::run::{Faults, SIM_REDIS_TIMEOUT};
use crate::workload::{StrategyDef, clear_trigger_state};

/// Faults on a provisioned server, with an admin connection for server-wide commands.
pub struct RedisFaults {
    server: RedisServer,
    admin: RedisStore,
    /// The seed-faithful evaluator, connected on first use and dropped after a failure
    /// (its connections do not reconnect), so the next sample connects afresh.
    baseline: Option<Baseline>,
    /// The independent checker on the jobs stream, connected on first use.
    checker: Option<JobsChecker>,
}

impl RedisFaults {
    pub fn new(server: RedisServer, admin: RedisStore) -> RedisFaults {
        RedisFaults {
            server,
            admin,
            baseline: None,
            checker: None,
        }
    }

    /// Where the seed-faithful baseline keeps its own trigger state: a prefix of its own,
    /// so it reads the engine's update set and universes but never its claims.
    fn baseline_keys(&self) -> KeySpace {
        KeySpace::new(
            &format!("{}seed-faithful:", self.server.key_prefix()),
            false,
        )
    }

    /// The commands Redis spent most time on (`INFO commandstats`), for diagnosing runs.
    pub async fn top_commands(&self, n: usize) -> Vec<(String, u64, u64)> {
        let info: String = match redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut self.admin.connection())
            .await
        {
            Ok(info) => info,
            Err(_) => return Vec::new(),
        };
        let mut rows: Vec<(String, u64, u64)> = info
            .lines()
            .filter_map(|l| {
                let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
                let field = |k: &str| {
                    rest.split(',')
                        .find_map(|kv| kv.strip_prefix(k)?.parse::<u64>().ok())
                };
                Some((name.to_owned(), field("calls=")?, field("usec=")?))
            })
            .collect();
        rows.sort_by_key(|row| std::cmp::Reverse(row.2));
        rows.truncate(n);
        rows
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
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut self.admin.connection())
            .await
            .ok()?;
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:")?.trim().parse().ok())
    }

    async fn seed_faithful_tick(
        &mut self,
        now_ms: i64,
        strategies: &[StrategyDef],
    ) -> Option<Result<Duration, String>> {
        let state_keys = self.baseline_keys();
        if self.baseline.is_none() {
            let data_keys = self.admin.keys().clone();
            match Baseline::connect(
                self.server.url(),
                data_keys,
                default_pool_size(),
                strategies,
            )
            .await
            {
                Ok(b) => self.baseline = Some(b.with_state_keys(state_keys.clone())),
                Err(e) => return Some(Err(e.to_string())),
            }
        }
        let baseline = self.baseline.as_ref()?;
        let started = Instant::now();
        let outcome = baseline.tick(now_ms).await;
        let elapsed = started.elapsed();
        if let Err(e) = outcome {
            self.baseline = None;
            return Some(Err(e.to_string()));
        }
        // Its trigger hashes never expire (the seed's leak): drop them, so they neither
        // show in the memory chart nor grow over the run. Each sample therefore starts
        // with no claims, the seed's costliest case by at most one HMSET per strategy.
        let mut con = self.admin.connection();
        if let Err(e) = clear_trigger_state(&mut con, &state_keys, strategies).await {
            return Some(Err(e.to_string()));
        }
        Some(Ok(elapsed))
    }

    async fn jobs_appended(&mut self) -> Option<Result<Vec<Entry>, String>> {
        if self.checker.is_none() {
            let key = self.admin.keys().jobs();
            match JobsChecker::connect(self.server.url(), key, SIM_REDIS_TIMEOUT).await {
                Ok(c) => self.checker = Some(c),
                Err(e) => return Some(Err(format!("the fred checker cannot connect: {e}"))),
            }
        }
        Some(self.checker.as_mut()?.appended().await)
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
        _strategies: &[StrategyDef],
    ) -> Option<Result<Duration, String>> {
        None
    }

    async fn jobs_appended(&mut self) -> Option<Result<Vec<Entry>, String>> {
        None
    }
}
