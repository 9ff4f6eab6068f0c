//! Time, from one place. The engine reads the time and waits only through a [`Clock`]:
//! [`SystemClock`] in production, [`ManualClock`] in tests and the simulator, which advance
//! it explicitly — so the same service code runs in real time and in simulated time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// A boxed sleep future, so [`Clock`] stays object-safe.
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The source of logical time (UTC epoch milliseconds).
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now_ms(&self) -> i64;
    /// Completes once `now_ms() >= deadline_ms`.
    fn sleep_until(&self, deadline_ms: i64) -> Sleep<'_>;
}

/// Wall-clock time; the only place the engine reads the system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    fn sleep_until(&self, deadline_ms: i64) -> Sleep<'_> {
        let wait_ms = deadline_ms.saturating_sub(self.now_ms()).max(0);
        Box::pin(tokio::time::sleep(Duration::from_millis(wait_ms as u64)))
    }
}

/// A clock that only moves when told to. Sleepers wake when it is advanced past their
/// deadline.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<i64>>,
}

impl ManualClock {
    /// A clock stopped at `start_ms`.
    pub fn new(start_ms: i64) -> ManualClock {
        ManualClock {
            now: Arc::new(watch::Sender::new(start_ms)),
        }
    }

    /// Moves the clock to `to_ms` (never backwards) and wakes every sleeper whose deadline
    /// has passed.
    pub fn advance_to(&self, to_ms: i64) {
        self.now.send_if_modified(|now| {
            let moved = to_ms > *now;
            *now = (*now).max(to_ms);
            moved
        });
    }

    /// Moves the clock forward by `by_ms`.
    pub fn advance(&self, by_ms: i64) {
        self.advance_to(self.now_ms().saturating_add(by_ms));
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        *self.now.borrow()
    }

    fn sleep_until(&self, deadline_ms: i64) -> Sleep<'_> {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // The sender lives as long as the clock; an error means it is gone, and then
            // time can never reach the deadline: sleep forever, like a stopped clock.
            if rx.wait_for(|now| *now >= deadline_ms).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleepers_wake_only_when_advanced_past_their_deadline() {
        let clock = ManualClock::new(1_000);
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep_until(1_500).await })
        };
        clock.advance(499);
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance_to(1_200); // backwards is ignored
        clock.advance(1);
        sleeper.await.expect("woke");
        assert_eq!(clock.now_ms(), 1_500);
    }
}
