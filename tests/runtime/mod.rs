//! The engine against a real Redis: `Engine::step` driven by the test's time and checked
//! against the full-evaluation oracle; `AlertService` driven by a manual clock.

// The closing pass of a bucket, through TICK:PRE; a damaged score costs only its ticker.
mod closing;
// A mixed catalog over three buckets, a worker that fails and discovers: jobs equal the
// oracle's decisions after every step.
mod e2e;
// Redis paused, then restarted empty: not ready meanwhile, restored, then exact again.
mod faults;
// A stamp too far ahead in Redis: ignored and counted, dispatched once its time comes.
mod future;
// `/metrics`, `/healthz`, `/readyz` over HTTP while the service runs; the server's shutdown.
mod http;
// A bad entry, a wrong-typed key or an oversized universe costs only its own strategy.
mod isolation;
// Two and three engines stepped concurrently on one Redis: every dispatch exactly once.
mod instances;
// The newest write of a universe wins: catalog edits over older discoveries and back.
mod precedence;
// Results a dead instance left pending: taken over after `result_takeover_ms`, settled.
mod orphans;
// The Python reference worker (examples/worker.py) end to end: starts first, fails,
// dead-letters, discovers; jobs and results match docs/schemas/.
mod python;
// After Redis lost its state, only what is missing is written back.
mod restore;
// The catalog sweep: direct rewrites taken in a slice per step, within `catalog_resync_ms`.
mod sweep;
// `AlertService::run(shutdown)` and `stop()`: every task ends, even with a step stuck.
mod shutdown;
// A clock further from Redis's than `max_clock_skew_ms`: no step, not ready, until it agrees.
mod skew;
// The original system's direct writers on the same Redis: seen within a tick, honoured.
mod takeover;
// Jobs re-delivered then dead-lettered; malformed results dead-lettered, the consumer goes on.
mod streams;

use std::collections::BTreeSet;

use tickgate::core::jobs::JobMode;
use tickgate_suite::{Rng, Worker, World, ticker_names};

/// (bucket start, symbols) of every per-ticker job the worker takes now.
async fn per_ticker_jobs(world: &World, rng: &mut Rng) -> BTreeSet<(i64, BTreeSet<String>)> {
    let round = Worker::PERFECT
        .round(world.market(), rng, &ticker_names(2))
        .await;
    round
        .dispatched
        .into_iter()
        .filter(|(_, _, mode, _)| *mode == JobMode::PerTicker)
        .map(|(_, start, _, symbols)| (start, symbols))
        .collect()
}

/// A set of symbols, as jobs carry them.
fn symbols(tickers: &[&str]) -> BTreeSet<String> {
    tickers.iter().map(|t| (*t).to_owned()).collect()
}
