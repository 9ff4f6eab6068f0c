//! The strategy catalog (DESIGN §2.1, §2.8): the entry JSON, both ways, and the
//! [`Strategy`] the engine builds from it, with its [`Universe`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::calendar::{Timeframe, TimeframeError};
use super::ticker::{InputError, StrategyId, Ticker, excerpt};

/// What the engine knows of a strategy's universe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Universe {
    /// `all`, or empty: the whole market, which cannot be filtered per ticker.
    Global,
    /// An explicit, non-empty set.
    Tickers(BTreeSet<Ticker>),
    /// Declared explicit, but none can be had (no valid ticker): strategy-level fallback,
    /// because a lost cache must never silence alerts.
    Missing,
}

/// A strategy as the engine uses it, parsed from its catalog entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strategy {
    pub id: StrategyId,
    pub user_id: u64,
    pub name: String,
    /// Kept unparsed on error: the strategy is skipped with `invalid_timeframe`, not dropped.
    pub timeframe: Result<Timeframe, TimeframeError>,
    pub universe: Universe,
    pub active: bool,
}

/// The catalog entry JSON (DESIGN §2.8): `{"id": 123, "user_id": 7, "name": "gap up",
/// "timeframe": "5m", "universe": ["AAPL", "MSFT"] | "all", "active": true}`. Read by the
/// engine, written by the platform, `tickgate strategy`, the simulator and the tests: this
/// is the one writer (fields in the order above).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// Must equal the key the entry is stored under.
    pub id: StrategyId,
    /// Copied into every job, for the workers.
    #[serde(default)]
    pub user_id: u64,
    /// Free text, for people.
    #[serde(default)]
    pub name: String,
    /// Unparsed: an invalid one skips the strategy (`invalid_timeframe`), it never rejects
    /// the entry.
    pub timeframe: String,
    /// The declared universe; absent, empty or `"all"` means global.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub universe: Option<UniverseField>,
    /// Inactive strategies are never run.
    #[serde(default = "active_by_default")]
    pub active: bool,
}

impl CatalogEntry {
    /// An active entry with an explicit universe (`Some`) or a global one (`None`, written
    /// as `"all"`).
    pub fn new(
        id: StrategyId,
        user_id: u64,
        name: &str,
        timeframe: &str,
        universe: Option<Vec<String>>,
    ) -> CatalogEntry {
        CatalogEntry {
            id,
            user_id,
            name: name.to_owned(),
            timeframe: timeframe.to_owned(),
            universe: Some(match universe {
                Some(list) => UniverseField::List(list),
                None => UniverseField::Word("all".to_owned()),
            }),
            active: true,
        }
    }

    /// The JSON stored in the catalog hash.
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and booleans always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn active_by_default() -> bool {
    true
}

/// The `universe` field: a list of tickers, or a word (`"all"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UniverseField {
    List(Vec<String>),
    Word(String),
}

/// Why a catalog entry could not be used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog entry {key} is not a strategy JSON object: {reason}")]
    Json { key: String, reason: String },
    #[error("catalog entry {key} holds strategy id {id}")]
    IdMismatch { key: String, id: StrategyId },
    #[error("catalog entry {key}: universe {value:?} is neither a list nor \"all\"")]
    Universe { key: String, value: String },
}

impl Strategy {
    /// Parses a catalog entry stored under `key`. Invalid universe tickers are dropped
    /// (and returned, to be counted); a universe with none left is [`Universe::Missing`].
    pub fn from_catalog(
        key: StrategyId,
        json: &str,
    ) -> Result<(Strategy, Vec<InputError>), CatalogError> {
        let entry: CatalogEntry = serde_json::from_str(json).map_err(|e| CatalogError::Json {
            key: key.to_string(),
            reason: e.to_string(),
        })?;
        if entry.id != key {
            return Err(CatalogError::IdMismatch {
                key: key.to_string(),
                id: entry.id,
            });
        }
        let mut rejected = Vec::new();
        let universe = match entry.universe {
            None => Universe::Global,
            Some(UniverseField::Word(w)) if w.eq_ignore_ascii_case("all") || w.is_empty() => {
                Universe::Global
            }
            Some(UniverseField::Word(w)) => {
                return Err(CatalogError::Universe {
                    key: key.to_string(),
                    value: excerpt(&w),
                });
            }
            Some(UniverseField::List(list)) if list.is_empty() => Universe::Global,
            Some(UniverseField::List(list)) => {
                let mut set = BTreeSet::new();
                for raw in &list {
                    match Ticker::parse(raw) {
                        Ok(t) => {
                            set.insert(t);
                        }
                        Err(e) => rejected.push(e),
                    }
                }
                if set.is_empty() {
                    Universe::Missing
                } else {
                    Universe::Tickers(set)
                }
            }
        };
        let strategy = Strategy {
            id: entry.id,
            user_id: entry.user_id,
            name: entry.name,
            timeframe: entry.timeframe.parse(),
            universe,
            active: entry.active,
        };
        Ok((strategy, rejected))
    }
}

/// A stable digest of a universe (FNV-1a, 64 bits, over each ticker and a newline, in
/// order), as 16 hex digits: the same set gives the same digest on every instance and
/// version, so instances compare universes through Redis without shipping them.
pub fn universe_digest(universe: &BTreeSet<Ticker>) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for ticker in universe {
        for byte in ticker.as_str().bytes().chain(std::iter::once(b'\n')) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(json: &str) -> Strategy {
        Strategy::from_catalog(1, json).expect("valid").0
    }

    fn t(s: &str) -> Ticker {
        Ticker::parse(s).expect("valid")
    }

    #[test]
    fn catalog_entries_parse_as_documented() {
        let s = strategy(
            r#"{"id":1,"user_id":7,"name":"gap up","timeframe":"5m","universe":["AAPL","MSFT"],"active":true}"#,
        );
        assert_eq!(s.universe, Universe::Tickers([t("AAPL"), t("MSFT")].into()));
        assert_eq!(
            strategy(r#"{"id":1,"timeframe":"1d","universe":"all"}"#).universe,
            Universe::Global
        );
        assert_eq!(
            strategy(r#"{"id":1,"timeframe":"1d","universe":[]}"#).universe,
            Universe::Global
        );
        let (s, rejected) =
            Strategy::from_catalog(1, r#"{"id":1,"timeframe":"0m","universe":["A B",""]}"#)
                .unwrap();
        assert_eq!((s.universe, rejected.len()), (Universe::Missing, 2));
        assert!(s.timeframe.is_err());
        assert!(matches!(
            Strategy::from_catalog(2, r#"{"id":1,"timeframe":"1m"}"#),
            Err(CatalogError::IdMismatch { .. })
        ));
        assert!(matches!(
            Strategy::from_catalog(1, r#"{"id":1,"timeframe":"1m","universe":"some"}"#),
            Err(CatalogError::Universe { .. })
        ));
        assert!(matches!(
            Strategy::from_catalog(1, "[]"),
            Err(CatalogError::Json { .. })
        ));
    }

    #[test]
    fn universe_digests_are_stable_and_tell_sets_apart() {
        let set = |names: &[&str]| names.iter().map(|n| t(n)).collect::<BTreeSet<_>>();
        assert_eq!(universe_digest(&BTreeSet::new()), "cbf29ce484222325");
        assert_eq!(
            universe_digest(&set(&["B", "A"])),
            universe_digest(&set(&["A", "B"]))
        );
        assert_ne!(
            universe_digest(&set(&["A", "B"])),
            universe_digest(&set(&["AB"]))
        );
        assert_ne!(universe_digest(&set(&["A"])), universe_digest(&set(&["B"])));
    }

    #[test]
    fn entries_written_here_read_back() {
        let entry = CatalogEntry::new(9, 7, "gap \"up\"", "5m", Some(vec!["AAPL".into()]));
        let json = entry.to_json();
        assert_eq!(
            json,
            r#"{"id":9,"user_id":7,"name":"gap \"up\"","timeframe":"5m","universe":["AAPL"],"active":true}"#
        );
        let back: CatalogEntry = serde_json::from_str(&json).expect("valid");
        assert_eq!(back, entry);
        let global = CatalogEntry::new(9, 7, "g", "1d", None).to_json();
        assert!(global.contains(r#""universe":"all""#), "{global}");
        assert_eq!(
            strategy(&global.replace("9", "1")).universe,
            Universe::Global
        );
    }
}
