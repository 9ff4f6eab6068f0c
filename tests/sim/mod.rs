//! The simulator's own guarantees.

// Redis provisioning: every mode, `auto`'s choice, prompt named errors, cleanup on drop.
mod provision;
// Same seed, same digest; sabotaged runs end in the right violation.
mod runs;
