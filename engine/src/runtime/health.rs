//! What `/readyz` reports: whether the service runs, and what its last step found. The
//! engine loop writes it after every step and `stop()` clears it, so a probe never waits
//! for the engine (a step may hold it for a while) and never touches Redis itself: a probe
//! answering from the last step is at most one tick interval late, and costs nothing.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use super::step::StepReport;

/// Readiness as the engine loop last saw it. All relaxed atomics: each flag is written by
/// the one engine loop and only read for reporting.
#[derive(Debug)]
pub struct Health {
    running: AtomicBool,
    reached_redis: AtomicBool,
    catalog_loaded: AtomicBool,
    backpressure: AtomicBool,
    /// The last tick was not stepped: the clock is too far from Redis's (`skew`).
    clock_skewed: AtomicBool,
    /// Clock time (ms) of the last step that reached Redis; [`i64::MIN`] before the first.
    last_ok_step_ms: AtomicI64,
}

impl Default for Health {
    fn default() -> Health {
        Health {
            running: AtomicBool::new(false),
            reached_redis: AtomicBool::new(false),
            catalog_loaded: AtomicBool::new(false),
            backpressure: AtomicBool::new(false),
            clock_skewed: AtomicBool::new(false),
            last_ok_step_ms: AtomicI64::new(i64::MIN),
        }
    }
}

/// A snapshot of [`Health`]: ready when every field says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// The service's tasks run (started and not stopped).
    pub running: bool,
    /// The last step reached Redis.
    pub redis_reachable: bool,
    /// The catalog was read in full at least once.
    pub catalog_loaded: bool,
    /// The workers lag beyond `jobs_stream_max`: nothing is dispatched (DESIGN §2.8).
    pub backpressure: bool,
    /// The clock is further from Redis's than `max_clock_skew_ms`: no step is taken.
    pub clock_skewed: bool,
    /// Clock time (ms) of the last step that reached Redis, if any.
    pub last_ok_step_ms: Option<i64>,
}

impl Readiness {
    /// Whether the service does its work: running, on a reachable Redis, with its catalog,
    /// dispatching.
    pub fn is_ready(&self) -> bool {
        self.problems().is_empty()
    }

    /// Why it is not ready, one phrase per reason, for a person reading `/readyz`.
    pub fn problems(&self) -> Vec<&'static str> {
        let mut problems = Vec::new();
        if !self.running {
            problems.push("the engine is not running");
        }
        if !self.redis_reachable {
            problems.push("Redis was not reachable at the last step (or no step ran yet)");
        }
        if !self.catalog_loaded {
            problems.push("the strategy catalog is not loaded yet");
        }
        if self.backpressure {
            problems.push("the workers lag beyond jobs_stream_max: dispatch is paused");
        }
        if self.clock_skewed {
            problems.push(
                "this instance's clock is further from Redis's than max_clock_skew_ms: no step is taken",
            );
        }
        problems
    }
}

impl Health {
    /// The current readiness.
    pub fn readiness(&self) -> Readiness {
        let last = self.last_ok_step_ms.load(Ordering::Relaxed);
        Readiness {
            running: self.running.load(Ordering::Relaxed),
            redis_reachable: self.reached_redis.load(Ordering::Relaxed),
            catalog_loaded: self.catalog_loaded.load(Ordering::Relaxed),
            backpressure: self.backpressure.load(Ordering::Relaxed),
            clock_skewed: self.clock_skewed.load(Ordering::Relaxed),
            last_ok_step_ms: (last != i64::MIN).then_some(last),
        }
    }

    /// The tasks started.
    pub(super) fn started(&self) {
        self.running.store(true, Ordering::Relaxed);
    }

    /// What the step at `now_ms` found.
    pub(super) fn record(&self, now_ms: i64, report: &StepReport, catalog_loaded: bool) {
        self.clock_skewed.store(false, Ordering::Relaxed);
        self.reached_redis
            .store(report.reached_redis, Ordering::Relaxed);
        self.backpressure
            .store(report.backpressure, Ordering::Relaxed);
        self.catalog_loaded.store(catalog_loaded, Ordering::Relaxed);
        if report.reached_redis {
            self.last_ok_step_ms.store(now_ms, Ordering::Relaxed);
        }
    }

    /// The tick was not stepped: the clock is too far from Redis's.
    pub(super) fn clock_skewed(&self) {
        self.clock_skewed.store(true, Ordering::Relaxed);
    }

    /// The tasks stopped: nothing is known to be reachable any more.
    pub(super) fn stopped(&self) {
        self.running.store(false, Ordering::Relaxed);
        self.reached_redis.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::Readiness;

    #[test]
    fn every_failing_condition_is_named() {
        let ready = Readiness {
            running: true,
            redis_reachable: true,
            catalog_loaded: true,
            backpressure: false,
            clock_skewed: false,
            last_ok_step_ms: Some(1),
        };
        assert!(ready.is_ready() && ready.problems().is_empty());
        let worst = Readiness {
            running: false,
            redis_reachable: false,
            catalog_loaded: false,
            backpressure: true,
            clock_skewed: true,
            last_ok_step_ms: None,
        };
        assert!(!worst.is_ready());
        assert_eq!(worst.problems().len(), 5, "{:?}", worst.problems());
    }
}
