//! DESIGN §2.3, Isolation: a bad catalog entry, a key of the wrong type or an oversized
//! universe costs only the strategy it belongs to. That strategy is skipped, counted by
//! reason, and logged once with the key and the value (again only if the problem changes);
//! every other strategy goes on, and the tick never fails because of it.

use super::metrics::Metrics;
use super::step::Engine;
use crate::core::catalog::CatalogError;
use crate::core::ticker::StrategyId;
use crate::store::{DamagedKey, Store};

/// Why a strategy is set aside.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum Isolation {
    /// The catalog entry cannot be used at all: the strategy keeps its previous definition
    /// (none, if it is new).
    #[error(transparent)]
    InvalidEntry(#[from] CatalogError),
    /// The catalog universe is larger than `max_universe`: the strategy is skipped.
    #[error("catalog entry {id}: universe of {size} tickers is above max_universe {max}")]
    OversizedUniverse {
        id: StrategyId,
        size: usize,
        max: usize,
    },
    /// A key of the strategy holds another type: skipped while it does.
    #[error(transparent)]
    Damaged(#[from] DamagedKey),
}

impl<S: Store> Engine<S> {
    /// Counts `why` for strategy `id` and logs it, unless it was the last thing logged for
    /// that strategy.
    pub(super) fn isolate(&mut self, id: StrategyId, why: Isolation) {
        let m = &self.metrics;
        Metrics::add(
            match &why {
                Isolation::InvalidEntry(_) => &m.catalog_errors,
                Isolation::OversizedUniverse { .. } => &m.skipped_oversized_universe,
                Isolation::Damaged(_) => &m.skipped_damaged_key,
            },
            1,
        );
        let message = why.to_string();
        if self.isolated.get(&id) != Some(&message) {
            tracing::warn!(strategy = id, problem = %message, "strategy skipped; the others go on");
            self.isolated.insert(id, message);
        }
    }

    /// A key found damaged during a tick: the strategy claims nothing now and is evaluated
    /// again next tick (skipped and counted again while the key stays damaged).
    pub(super) fn isolate_damaged(&mut self, damaged: DamagedKey) {
        let id = damaged.strategy;
        self.isolate(id, Isolation::Damaged(damaged));
        self.planner.invalidate(id);
    }
}
