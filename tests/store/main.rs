//! The data layer against a real Redis, with the in-memory model as the oracle.
//!
//! One test binary (modules below) so the suite links once.

mod claims;
mod cleanup;
mod common;
mod feed;
mod intersection;
mod model;
