//! The engine's tests: one binary. The pure core, property-tested without Redis; and the
//! `tickgate` binary against a `redis-server` process of each test's own.

// Buckets: every unit and count over 1970–2100, DST days, named timeframe errors.
mod calendar;
// The incremental planner against the full evaluation (`rule::decide`), tick after tick.
mod planner;
// The `tickgate` binary: every subcommand, bad input, `run` and its signals.
mod cli;
