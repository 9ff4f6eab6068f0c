//! What the precedence and restore writes of universes take and answer (DESIGN §2.3 step 2,
//! §9): see [`super::Universes::replace_universe_from_catalog`],
//! [`super::Catalog::persist_universe`] and [`super::Catalog::restore_strategy`].

use crate::core::ticker::{StrategyId, Ticker};

/// What writing a catalog universe into Redis did (see
/// [`super::Universes::replace_universe_from_catalog`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniverseWrite {
    /// The universe was replaced, and the change recorded at this version of the change log
    /// (the writer knows the change is its own when it reads it back).
    Replaced { version: u64 },
    /// It already held exactly that set: only the base was recorded.
    Unchanged,
}

/// One catalog universe to take into Redis (see
/// [`super::Universes::replace_universes_from_catalog`]): `tickers` empty for a missing
/// universe (the set is removed).
#[derive(Debug, Clone, Copy)]
pub struct CatalogUniverse<'a> {
    pub id: StrategyId,
    pub tickers: &'a [Ticker],
    /// The digest of the catalog universe (see
    /// [`super::Universes::replace_universe_from_catalog`]).
    pub base: &'a str,
}

/// What persisting a discovered universe into the catalog did (see
/// [`super::Catalog::persist_universe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persisted {
    Written,
    /// The entry changed since it was read: read it again and retry.
    EntryChanged,
    /// A newer write won, nothing was written: the entry's universe is a catalog write the
    /// Redis universe has not taken in yet, or the Redis universe is no longer the
    /// discovered one (a catalog write or a newer discovery replaced it).
    Superseded,
}

/// A discovered universe to persist into its catalog entry.
#[derive(Debug, Clone, Copy)]
pub struct PersistWrite<'a> {
    /// The entry with the discovered universe.
    pub json: &'a str,
    /// The entry it was made from (compare and swap).
    pub expected: &'a str,
    /// [`crate::core::catalog::universe_digest`] of `expected`'s universe.
    pub expected_base: &'a str,
    /// The discovered universe, sorted.
    pub universe: &'a [Ticker],
}

/// One strategy to write back after Redis lost its state (see
/// [`super::Catalog::restore_strategy`]).
#[derive(Debug, Clone, Copy)]
pub struct Restore<'a> {
    /// The catalog entry as last read.
    pub json: &'a str,
    /// Digest of the entry's explicit universe (`None` for a global strategy).
    pub base: Option<&'a str>,
    /// The universe as last used, sorted (empty for a global strategy).
    pub universe: &'a [Ticker],
}
