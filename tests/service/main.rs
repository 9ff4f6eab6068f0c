//! The engine service against a real Redis, driven by a manual clock and checked against
//! the full-evaluation oracle after every tick.
//!
//! One test binary (modules below) so the suite links once.

mod e2e;
mod faults;
mod harness;
mod instances;
mod shutdown;
mod streams;
