//! Fault injection into the Redis under test (DESIGN §7): pause, restart empty, script
//! flush, and the memory probe. [`RedisFaults`] works on a server the run owns;
//! [`NoFaults`] stands in for the in-memory store, where Redis faults are skipped.

use tickgate::store::RedisStore;

use crate::provision::RedisServer;
use crate::run::Faults;

/// Faults on a provisioned server, with an admin connection for server-wide commands.
pub struct RedisFaults {
    server: RedisServer,
    admin: RedisStore,
}

impl RedisFaults {
    pub fn new(server: RedisServer, admin: RedisStore) -> RedisFaults {
        RedisFaults { server, admin }
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
}
