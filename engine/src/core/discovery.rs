//! Universe discovery (DESIGN §2.7), the pure part: what a worker's `used_symbols` does to
//! a strategy's universe. The runtime applies the verdict (Redis, planner, persister).

use std::collections::BTreeSet;

use super::catalog::Universe;
use super::ticker::{InputError, Ticker};

/// What a discovered universe does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// It replaces the universe (valid, non-empty, within `max_universe`, different).
    Replace(BTreeSet<Ticker>),
    /// Nothing to do: the same universe, or a global strategy (which stays global).
    Unchanged,
    /// Rejected whole; the old universe stays.
    Rejected(Rejection),
}

/// Why a discovered universe was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no valid symbol in used_symbols")]
    NoValidSymbol,
    #[error("used_symbols has {size} valid symbols, above max_universe = {max}")]
    TooLarge { size: usize, max: usize },
}

/// The verdict on `used_symbols` for a strategy whose universe is `current`, and the
/// symbols dropped as invalid (to be counted).
pub fn judge(
    current: &Universe,
    used_symbols: &[String],
    max_universe: usize,
) -> (Discovery, Vec<InputError>) {
    if *current == Universe::Global {
        return (Discovery::Unchanged, Vec::new());
    }
    let mut valid = BTreeSet::new();
    let mut invalid = Vec::new();
    for raw in used_symbols {
        match Ticker::parse(raw) {
            Ok(t) => {
                valid.insert(t);
            }
            Err(e) => invalid.push(e),
        }
    }
    let verdict = if valid.is_empty() {
        Discovery::Rejected(Rejection::NoValidSymbol)
    } else if valid.len() > max_universe {
        Discovery::Rejected(Rejection::TooLarge {
            size: valid.len(),
            max: max_universe,
        })
    } else if matches!(current, Universe::Tickers(u) if *u == valid) {
        Discovery::Unchanged
    } else {
        Discovery::Replace(valid)
    };
    (verdict, invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(symbols: &[&str]) -> Vec<String> {
        symbols.iter().map(|s| (*s).to_owned()).collect()
    }

    fn set(symbols: &[&str]) -> BTreeSet<Ticker> {
        symbols
            .iter()
            .map(|s| Ticker::parse(s).expect("valid"))
            .collect()
    }

    #[test]
    fn verdicts() {
        let current = Universe::Tickers(set(&["A"]));
        let (v, invalid) = judge(&current, &list(&["B", "bad one", "A"]), 10);
        assert_eq!(
            (v, invalid.len()),
            (Discovery::Replace(set(&["A", "B"])), 1)
        );
        assert_eq!(judge(&current, &list(&[" A"]), 10).0, Discovery::Unchanged);
        assert_eq!(
            judge(&current, &list(&["", "a b"]), 10).0,
            Discovery::Rejected(Rejection::NoValidSymbol)
        );
        assert_eq!(
            judge(&current, &list(&["A", "B", "C"]), 2).0,
            Discovery::Rejected(Rejection::TooLarge { size: 3, max: 2 })
        );
        assert_eq!(
            judge(&Universe::Global, &list(&["A"]), 10).0,
            Discovery::Unchanged
        );
        assert_eq!(
            judge(&Universe::Missing, &list(&["A"]), 10).0,
            Discovery::Replace(set(&["A"]))
        );
    }
}
