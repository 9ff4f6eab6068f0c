//! The seed's deprecated entry points (DESIGN §2.10), kept so callers migrate at their own
//! pace: `start_alert_loop` / `stop_alert_loop` forward to one process-global service,
//! log a warning once per process, and count `deprecated_calls`. New code owns an
//! [`AlertService`] instead. The process-global here is the one piece of global mutable
//! state in tickgate, on purpose: it is what the legacy API was.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::OnceCell;

use crate::config::Config;
use crate::runtime::{AlertService, SystemClock};
use crate::store::{RedisStore, StoreError};

static SERVICE: OnceCell<AlertService<RedisStore, SystemClock>> = OnceCell::const_new();
static WARNED: Once = Once::new();
static DEPRECATED_CALLS: AtomicU64 = AtomicU64::new(0);

fn deprecated(name: &str) {
    DEPRECATED_CALLS.fetch_add(1, Ordering::Relaxed);
    WARNED.call_once(|| {
        tracing::warn!("{name} is deprecated: own an AlertService and call start()/stop() instead");
    });
}

/// Calls of the deprecated functions so far (the `deprecated_calls` counter).
pub fn deprecated_calls() -> u64 {
    DEPRECATED_CALLS.load(Ordering::Relaxed)
}

/// Starts the process-global service (connecting on first use).
#[deprecated(note = "own an AlertService and call AlertService::start")]
pub async fn start_alert_loop(config: &Config) -> Result<(), StoreError> {
    deprecated("start_alert_loop");
    let service = SERVICE
        .get_or_try_init(|| async {
            let store = RedisStore::connect(&config.redis).await?;
            Ok::<_, StoreError>(AlertService::new(store, SystemClock, config.engine.clone()))
        })
        .await?;
    service.start();
    Ok(())
}

/// Stops the process-global service, if it was started.
#[deprecated(note = "own an AlertService and call AlertService::stop")]
pub async fn stop_alert_loop() {
    deprecated("stop_alert_loop");
    if let Some(service) = SERVICE.get() {
        service.stop().await;
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    #[allow(deprecated)]
    async fn deprecated_calls_are_counted_and_forward() {
        let before = super::deprecated_calls();
        super::stop_alert_loop().await; // never started: forwards to nothing, still counted
        assert_eq!(super::deprecated_calls(), before + 1);
        let mut config = crate::config::Config::parse("", |_| None).expect("defaults");
        config.redis.url = "redis://127.0.0.1:1".to_owned(); // nothing listens on port 1
        config.redis.connect_timeout = std::time::Duration::from_millis(200);
        assert!(
            super::start_alert_loop(&config).await.is_err(),
            "a failed connect is an error, not a panic"
        );
        assert_eq!(super::deprecated_calls(), before + 2);
    }
}
