//! The `tickgate-sim` binary as a CI user meets it: the Redis it is told to use or a clear
//! failure (exit 1), `redis` and `run` agreeing on every mode, a missing image named with
//! its remedy, paths from anywhere in the checkout, reports out of the repository, and
//! help, version and usage errors. Each test spawns the binary Cargo built for this
//! package; the local Redis, where one is needed, is a `redis-server` from `PATH`.

mod fake_docker;
mod redis;
mod run;
mod support;
