//! The independent checker (DESIGN §5, §7): a second Redis client, `fred`, reads what the
//! engine appended to the jobs stream, so a bug in redis-rs (which the engine, the workers
//! and the rest of the simulator use) cannot hide itself. Every tick the simulator compares
//! the entries read here with those its workers received through redis-rs: same ids, same
//! bytes, same order.

use std::time::Duration;

use fred::prelude::{Builder, ClientLike, Config, ReconnectPolicy, StreamsInterface};
use fred::types::ConnectHandle;

use super::Violation;

/// Entries read per `XRANGE`: a tick's jobs fit in a few reads even at the W-100k rate
/// (about 70,000 jobs per tick), and one reply stays a few megabytes.
pub const CHECK_PAGE: u64 = 10_000;

/// Reads per tick at most: 100 × [`CHECK_PAGE`] = a million entries, the stream's own cap;
/// more than that in one tick means the stream was trimmed under the checker anyway.
pub const MAX_CHECK_PAGES: usize = 100;

/// One stream entry: its id and its `job` field (`None` when the field is missing).
pub type Entry = (String, Option<String>);

/// A `fred` client positioned after the last jobs-stream entry it has seen.
pub struct JobsChecker {
    client: fred::clients::Client,
    /// The client's connection task; aborted on drop, so it never outlives the checker.
    task: ConnectHandle,
    key: String,
    /// Id of the last entry read (`None`: from the start of the stream).
    cursor: Option<String>,
}

impl JobsChecker {
    /// Connects to `url` (bounded by `timeout`, also every command's bound) and starts at
    /// the beginning of `jobs_key`.
    pub async fn connect(url: &str, jobs_key: String, timeout: Duration) -> Result<Self, String> {
        let config = Config::from_url(url).map_err(|e| e.to_string())?;
        let client = Builder::from_config(config)
            .with_connection_config(|c| {
                c.connection_timeout = timeout;
                c.internal_command_timeout = timeout;
            })
            .with_performance_config(|c| c.default_command_timeout = timeout)
            // Constant 100 ms between attempts, at most 50: covers a Redis restart.
            .set_policy(ReconnectPolicy::new_constant(50, 100))
            .build()
            .map_err(|e| e.to_string())?;
        let task = client.init().await.map_err(|e| e.to_string())?;
        Ok(JobsChecker {
            client,
            task,
            key: jobs_key,
            cursor: None,
        })
    }

    /// Redis lost the stream (restart empty): read the new one from its start.
    pub fn reset(&mut self) {
        self.cursor = None;
    }

    /// Every entry appended since the previous call, in stream order.
    pub async fn appended(&mut self) -> Result<Vec<Entry>, String> {
        let mut out = Vec::new();
        for _ in 0..MAX_CHECK_PAGES {
            let start = match &self.cursor {
                Some(id) => format!("({id}"),
                None => "-".to_owned(),
            };
            let page: Vec<(String, std::collections::HashMap<String, String>)> = self
                .client
                .xrange_values(self.key.as_str(), start, "+", Some(CHECK_PAGE))
                .await
                .map_err(|e| e.to_string())?;
            let full = page.len() as u64 == CHECK_PAGE;
            for (id, mut fields) in page {
                self.cursor = Some(id.clone());
                out.push((id, fields.remove("job")));
            }
            if !full {
                return Ok(out);
            }
        }
        Err(format!(
            "more than {} entries appended in one tick",
            CHECK_PAGE * MAX_CHECK_PAGES as u64
        ))
    }
}

impl Drop for JobsChecker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The independent reader's check: the entries the workers read through redis-rs (`seen`)
/// must be exactly those `fred` read (`appended`): same ids, same bytes, same order.
pub fn check(now: i64, seen: &[Entry], appended: &[Entry]) -> Result<(), Violation> {
    if seen == appended {
        return Ok(());
    }
    Err(Violation::Checker {
        tick_ms: now,
        detail: first_difference(seen, appended),
    })
}

/// Where two readings of the jobs stream first differ.
fn first_difference(workers: &[Entry], fred: &[Entry]) -> String {
    let at = workers
        .iter()
        .zip(fred)
        .position(|(a, b)| a != b)
        .unwrap_or(workers.len().min(fred.len()));
    let id = |entries: &[Entry]| {
        entries
            .get(at)
            .map_or_else(|| "no entry".to_owned(), |e| format!("entry {}", e.0))
    };
    format!(
        "the workers read {} entries, fred {}; first difference at position {at}: {} vs {}",
        workers.len(),
        fred.len(),
        id(workers),
        id(fred)
    )
}
