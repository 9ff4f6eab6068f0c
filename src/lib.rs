//! `tickgate-suite`: the root package. It exists to own the cross-crate integration and
//! property tests in `tests/` and the criterion benches in `benches/`; helpers they share
//! live here.
