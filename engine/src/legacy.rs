//! The seed's deprecated entry points (DESIGN §2.10), kept so callers migrate at their own
//! pace: `start_alert_loop` / `stop_alert_loop` forward to one process-global service,
//! log a warning once per process, and count `deprecated_calls` in that service's
//! [`Metrics`] (so it is on `/metrics`: serve [`metrics`] with
//! [`crate::http::HttpState::new`]). New code owns an [`AlertService`] instead. The
//! process-global here is the one piece of global mutable state in tickgate, on purpose:
//! it is what the legacy API was.

use std::sync::{Arc, LazyLock, Once};

use tokio::sync::OnceCell;

use crate::config::Config;
use crate::runtime::{AlertService, Metrics, SystemClock};
use crate::store::{RedisStore, StoreError};

/// The process-global service, and its counters: they exist before the service does (the
/// first call may be a stop, or a start that fails to connect), and the service counts into
/// them once it runs.
struct Legacy {
    metrics: Arc<Metrics>,
    service: OnceCell<AlertService<RedisStore, SystemClock>>,
}

static LEGACY: LazyLock<Legacy> = LazyLock::new(|| Legacy {
    metrics: Arc::default(),
    service: OnceCell::const_new(),
});
static WARNED: Once = Once::new();

fn deprecated(name: &str) {
    Metrics::add(&LEGACY.metrics.deprecated_calls, 1);
    WARNED.call_once(|| {
        tracing::warn!("{name} is deprecated: own an AlertService and call start()/stop() instead");
    });
}

/// Calls of the deprecated functions so far (the `deprecated_calls` counter).
pub fn deprecated_calls() -> u64 {
    Metrics::get(&LEGACY.metrics.deprecated_calls)
}

/// The counters of the process-global service (`deprecated_calls` among them), to export
/// on `/metrics`.
pub fn metrics() -> Arc<Metrics> {
    LEGACY.metrics.clone()
}

/// Starts the process-global service (connecting on first use).
#[deprecated(note = "own an AlertService and call AlertService::start")]
pub async fn start_alert_loop(config: &Config) -> Result<(), StoreError> {
    deprecated("start_alert_loop");
    let service = LEGACY
        .service
        .get_or_try_init(|| async {
            let store = RedisStore::connect(&config.redis).await?;
            let metrics = LEGACY.metrics.clone();
            let engine = config.engine.clone();
            Ok::<_, StoreError>(AlertService::with_metrics(
                store,
                SystemClock,
                engine,
                metrics,
            ))
        })
        .await?;
    service.start();
    Ok(())
}

/// Stops the process-global service, if it was started.
#[deprecated(note = "own an AlertService and call AlertService::stop")]
pub async fn stop_alert_loop() {
    deprecated("stop_alert_loop");
    if let Some(service) = LEGACY.service.get() {
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
