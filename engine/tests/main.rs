//! The engine's pure core, property-tested without Redis: one test binary.

// Buckets: every unit and count over 1970–2100, DST days, named timeframe errors.
mod calendar;
// The incremental planner against the full evaluation (`rule::decide`), tick after tick.
mod planner;
