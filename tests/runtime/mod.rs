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
// A bad entry, a wrong-typed key or an oversized universe costs only its own strategy.
mod isolation;
// Two and three engines stepped concurrently on one Redis: every dispatch exactly once.
mod instances;
// The newest write of a universe wins: catalog edits over older discoveries and back.
mod precedence;
// After Redis lost its state, only what is missing is written back.
mod restore;
// `AlertService::run(shutdown)` and `stop()`: every task ends, even with a step stuck.
mod shutdown;
// Jobs re-delivered then dead-lettered; malformed results dead-lettered, the consumer goes on.
mod streams;
