//! Probes of the Redis under test, for [`RedisFaults`]: its memory, the commands it spent
//! most time on, a timed seed-faithful tick on the data under test, and the independent
//! `fred` reader of the jobs stream.

use std::time::{Duration, Instant};

use tickgate::StrategyId;
use tickgate::store::KeySpace;

use redis::streams::StreamRangeReply;

use super::SIM_REDIS_TIMEOUT;
use super::baseline::{Baseline, SeedStrategy, default_pool_size};
use super::faults::RedisFaults;
use super::load::clear_trigger_state;
use crate::oracle::fred::{Entry, JobsChecker};

/// Dead-letter entries read per `XRANGE`, and reads per call at most: far more than a tick
/// dead-letters (each is a job not acknowledged after several deliveries).
const DEAD_PAGE: usize = 1_000;
const MAX_DEAD_PAGES: usize = 100;

impl RedisFaults {
    /// `INFO memory` used_memory.
    pub async fn memory(&self) -> Option<u64> {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut self.admin.connection())
            .await
            .ok()?;
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:")?.trim().parse().ok())
    }

    /// The commands Redis spent most time on (`INFO commandstats`), for diagnosing runs:
    /// (name, calls, µs).
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

    /// Where the seed-faithful baseline keeps its own trigger state: a prefix of its own,
    /// so it reads the engine's update set and universes but never its claims.
    fn baseline_keys(&self) -> KeySpace {
        KeySpace::new(
            &format!("{}seed-faithful:", self.server.key_prefix()),
            false,
        )
    }

    /// One seed-faithful tick at `now_ms` on the data under test, timed.
    pub(super) async fn seed_sample(
        &mut self,
        now_ms: i64,
        strategies: &[SeedStrategy],
    ) -> Result<Duration, String> {
        let state_keys = self.baseline_keys();
        if self.baseline.is_none() {
            let data_keys = self.admin.keys().clone();
            let url = self.server.url();
            let pool = default_pool_size();
            let baseline = Baseline::connect(url, data_keys, pool, strategies)
                .await
                .map_err(|e| e.to_string())?;
            self.baseline = Some(baseline.with_state_keys(state_keys.clone()));
        }
        let Some(baseline) = self.baseline.as_ref() else {
            return Err("the seed-faithful baseline is not connected".to_owned());
        };
        let started = Instant::now();
        let outcome = baseline.tick(now_ms).await;
        let elapsed = started.elapsed();
        if let Err(e) = outcome {
            self.baseline = None;
            return Err(e.to_string());
        }
        // Its trigger hashes never expire (the seed's leak): drop them, so they neither
        // show in the memory chart nor grow over the run. Each sample therefore starts
        // with no claims, the seed's costliest case by at most one HMSET per strategy.
        let mut con = self.admin.connection();
        let ids: Vec<StrategyId> = strategies.iter().map(|s| s.id).collect();
        clear_trigger_state(&mut con, &state_keys, &ids)
            .await
            .map_err(|e| e.to_string())?;
        Ok(elapsed)
    }

    /// The jobs-stream entries appended since the last read, through `fred`.
    pub(super) async fn fred_read(&mut self) -> Result<Vec<Entry>, String> {
        if self.checker.is_none() {
            let key = self.admin.keys().jobs();
            let checker = JobsChecker::connect(self.server.url(), key, SIM_REDIS_TIMEOUT)
                .await
                .map_err(|e| format!("the fred checker cannot connect: {e}"))?;
            self.checker = Some(checker);
        }
        match self.checker.as_mut() {
            Some(checker) => checker.appended().await,
            None => Err("the fred checker is not connected".to_owned()),
        }
    }

    /// The `job` field of the job entries appended to the dead-letter stream since the last
    /// read (result entries there carry no `job`).
    pub(super) async fn dead_read(&mut self) -> Result<Vec<String>, String> {
        let key = self.admin.keys().dead();
        let mut out = Vec::new();
        for _ in 0..MAX_DEAD_PAGES {
            let start = match &self.dead_cursor {
                Some(id) => format!("({id}"),
                None => "-".to_owned(),
            };
            let mut xrange = redis::cmd("XRANGE");
            xrange
                .arg(&key)
                .arg(start)
                .arg("+")
                .arg("COUNT")
                .arg(DEAD_PAGE);
            // After a restart the first command on the old connection fails and the
            // connection manager reconnects: one retry, which a failed read makes safe.
            let page: StreamRangeReply =
                match xrange.query_async(&mut self.admin.connection()).await {
                    Ok(page) => page,
                    Err(_) => xrange
                        .query_async(&mut self.admin.connection())
                        .await
                        .map_err(|e| format!("reading the dead-letter stream: {e}"))?,
                };
            let full = page.ids.len() == DEAD_PAGE;
            for entry in page.ids {
                if let Some(job) = entry.get::<String>("job").filter(|j| !j.is_empty()) {
                    out.push(job);
                }
                self.dead_cursor = Some(entry.id);
            }
            if !full {
                return Ok(out);
            }
        }
        Err(format!(
            "more than {} dead letters in one tick",
            DEAD_PAGE * MAX_DEAD_PAGES
        ))
    }
}
