//! The hold of a running instance on its consumer name: two live `tickgate run`s with one
//! name would read each other's pending results, so the second is refused at start.
//!
//! The hold is a key (`TICKGATE:CONSUMER:<name>`) holding this process's random token,
//! written `SET NX PX` [`CONSUMER_LEASE_MS`] at start, renewed every third of that while
//! running (only while it still holds this token), and deleted at shutdown (likewise). A
//! crashed instance's name is free again within [`CONSUMER_LEASE_MS`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use super::error::CliError;
use crate::limits::CONSUMER_LEASE_MS;
use crate::store::{RedisStore, StoreError};

/// Renews the hold if this token still has it, takes it again if the key is gone (Redis
/// lost its state), and answers 0 if another instance holds it.
const RENEW: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
elseif not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
";

/// Deletes the hold only if this token has it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// This process's hold on a consumer name.
pub struct Lease {
    con: ConnectionManager,
    key: String,
    consumer: String,
    token: String,
}

fn redis_error(op: &'static str) -> impl FnOnce(redis::RedisError) -> CliError {
    move |e| {
        CliError::Store(StoreError::Redis {
            op,
            reason: e.to_string(),
        })
    }
}

impl Lease {
    /// Takes the hold on `consumer`, or reports who has it.
    pub async fn acquire(store: &RedisStore, consumer: &str) -> Result<Lease, CliError> {
        // Unique per process start; readable in the refusal a second instance prints.
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let token = format!(
            "pid {} since {}, token {}",
            std::process::id(),
            super::human::et(i64::try_from(since.as_millis()).unwrap_or(0)),
            since.subsec_nanos()
        );
        let key = store.keys().consumer_lease(consumer);
        let mut con = store.connection();
        let taken: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(CONSUMER_LEASE_MS)
            .query_async(&mut con)
            .await
            .map_err(redis_error("SET NX (consumer name)"))?;
        if taken.is_none() {
            let (holder, ttl_ms): (Option<String>, i64) = redis::pipe()
                .cmd("GET")
                .arg(&key)
                .cmd("PTTL")
                .arg(&key)
                .query_async(&mut con)
                .await
                .map_err(redis_error("GET (consumer name)"))?;
            return Err(CliError::ConsumerTaken {
                consumer: consumer.to_owned(),
                holder: holder.unwrap_or_else(|| "just released".to_owned()),
                ttl_ms: ttl_ms.max(0),
            });
        }
        Ok(Lease {
            con,
            key,
            consumer: consumer.to_owned(),
            token,
        })
    }

    /// Renews the hold every third of its lifetime until `stop`; if another instance took
    /// the name meanwhile, cancels `lost` and returns. A failed renewal (Redis away) is
    /// retried at the next period: the hold outlives two of them.
    pub async fn keep(&self, stop: &CancellationToken, lost: &CancellationToken) {
        let period = Duration::from_millis(CONSUMER_LEASE_MS / 3);
        let script = redis::Script::new(RENEW);
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                () = tokio::time::sleep(period) => {}
            }
            let renewed: redis::RedisResult<i64> = script
                .key(&self.key)
                .arg(&self.token)
                .arg(CONSUMER_LEASE_MS)
                .invoke_async(&mut self.con.clone())
                .await;
            match renewed {
                Ok(0) => {
                    tracing::error!(consumer = %self.consumer, "another instance took this consumer name; stopping");
                    lost.cancel();
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(consumer = %self.consumer, error = %e, "renewing the hold on the consumer name failed; retrying")
                }
            }
        }
    }

    /// Deletes the hold (if still this process's), so a restart need not wait for it.
    pub async fn release(self) {
        let released: redis::RedisResult<i64> = redis::Script::new(RELEASE)
            .key(&self.key)
            .arg(&self.token)
            .invoke_async(&mut self.con.clone())
            .await;
        if let Err(e) = released {
            tracing::warn!(consumer = %self.consumer, error = %e, "releasing the consumer name failed; it lapses by itself");
        }
    }
}
