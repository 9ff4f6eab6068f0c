//! tickgate's integration tests: one binary (so the suite links once), every test against a
//! real Redis (`TICKGATE_REDIS`, see the README), shared set-up in `tickgate_suite` (`src/lib.rs`).

// The data layer against Redis, with the in-memory model as the oracle: the state machine,
// claims under concurrency, cleanup, the update feed, intersections.
mod store;
// The engine: `Engine::step` end to end, under Redis faults, several instances at once, the
// jobs and results streams; and `AlertService` shutdown.
mod runtime;
// The simulator: Redis provisioning, and simulations that are reproducible and whose checks
// can fail.
mod sim;
// The documents: JSON Schemas against the engine's structs and real jobs; links in the
// README and docs/ resolve inside the repository.
mod docs;
