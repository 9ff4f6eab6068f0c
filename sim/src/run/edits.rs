//! What the platform and the clocks do to a run besides the market: catalog edits and
//! deletions mid-run (the `catalog_edit` and `catalog_delete` faults), and each engine
//! instance's clock offset (`[engine] clock_skew_ms`). All drawn from the run's seed, on
//! streams of their own, so they never shift the market's or the workers' draws.

use std::collections::BTreeMap;

use rand::RngExt;

use crate::world::rng::{SimRng, sample_indexes, seeded_rng, stream_seed};
use crate::world::scenario::Scenario;

/// The editor's and the clocks' streams (the market uses 0–2).
const EDIT_STREAM: u64 = 0x0ed1_7000;
const CLOCK_STREAM: u64 = 0xc10c_0000;

/// Each engine instance's clock offset from the simulation's time, uniform in
/// `-clock_skew_ms..=clock_skew_ms` (all 0 without skew).
pub fn clock_offsets(scenario: &Scenario, seed: u64) -> Vec<i64> {
    let skew = scenario.engine.clock_skew_ms;
    let mut rng = seeded_rng(stream_seed(seed, CLOCK_STREAM));
    (0..scenario.engine.instances)
        .map(|_| {
            if skew > 0 {
                rng.random_range(-skew..=skew)
            } else {
                0
            }
        })
        .collect()
}

/// The platform editing the catalog.
pub struct Editor {
    rng: SimRng,
    /// The scenario's timeframes with a positive weight: an edit may move a strategy to one.
    timeframes: Vec<String>,
}

/// A catalog write: the entry's new JSON, `None` for a deletion.
pub type Write = (u64, Option<String>);

impl Editor {
    pub fn new(scenario: &Scenario, seed: u64) -> Editor {
        let timeframes = scenario
            .strategies
            .timeframes
            .iter()
            .filter(|(_, w)| **w > 0)
            .map(|(tf, _)| tf.clone())
            .collect();
        Editor {
            rng: seeded_rng(stream_seed(seed, EDIT_STREAM)),
            timeframes,
        }
    }

    /// `count` distinct strategies of `catalog`, rewritten: an explicit universe replaced
    /// by as many tickers drawn from `listed`, and half of the time the timeframe changed.
    pub fn edit(
        &mut self,
        catalog: &BTreeMap<u64, String>,
        listed: &[String],
        count: usize,
    ) -> Vec<Write> {
        let mut writes = Vec::new();
        for id in self.pick(catalog, count) {
            let Ok(mut entry) = serde_json::from_str::<serde_json::Value>(&catalog[&id]) else {
                continue;
            };
            if let Some(old) = entry.get("universe").and_then(|u| u.as_array()) {
                let size = old.len().max(1);
                let mut new: Vec<String> = sample_indexes(&mut self.rng, listed.len(), size)
                    .into_iter()
                    .map(|i| listed[i].clone())
                    .collect();
                new.sort_unstable();
                entry["universe"] = serde_json::json!(new);
            }
            if !self.timeframes.is_empty() && self.rng.random_bool(0.5) {
                let tf = &self.timeframes[self.rng.random_range(0..self.timeframes.len())];
                entry["timeframe"] = serde_json::json!(tf);
            }
            writes.push((id, Some(entry.to_string())));
        }
        writes
    }

    /// `count` distinct strategies of `catalog`, deleted.
    pub fn delete(&mut self, catalog: &BTreeMap<u64, String>, count: usize) -> Vec<Write> {
        self.pick(catalog, count)
            .into_iter()
            .map(|id| (id, None))
            .collect()
    }

    fn pick(&mut self, catalog: &BTreeMap<u64, String>, count: usize) -> Vec<u64> {
        let ids: Vec<u64> = catalog.keys().copied().collect();
        sample_indexes(&mut self.rng, ids.len(), count)
            .into_iter()
            .map(|i| ids[i])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_and_clocks_follow_the_seed() {
        let mut scenario = Scenario::parse("[engine]\ninstances = 3", "t").unwrap();
        assert_eq!(clock_offsets(&scenario, 1), [0, 0, 0]);
        scenario.engine.clock_skew_ms = 1_000;
        let offsets = clock_offsets(&scenario, 1);
        assert!(offsets.iter().all(|o| o.abs() <= 1_000) && offsets != [0, 0, 0]);
        assert_eq!(offsets, clock_offsets(&scenario, 1));
        let catalog: BTreeMap<u64, String> = [
            (1, r#"{"id":1,"timeframe":"5m","universe":["A","B"]}"#),
            (2, r#"{"id":2,"timeframe":"1h","universe":"all"}"#),
        ]
        .into_iter()
        .map(|(id, j)| (id, j.to_owned()))
        .collect();
        let listed: Vec<String> = ["C", "D", "E"].map(String::from).into();
        let writes = Editor::new(&scenario, 3).edit(&catalog, &listed, 2);
        assert_eq!(writes, Editor::new(&scenario, 3).edit(&catalog, &listed, 2));
        assert_eq!(writes.len(), 2);
        let one: serde_json::Value = serde_json::from_str(writes[0].1.as_ref().unwrap()).unwrap();
        let universe = one["universe"].as_array().unwrap();
        assert_eq!(universe.len(), 2);
        assert!(
            universe
                .iter()
                .all(|t| listed.contains(&t.as_str().unwrap().to_owned()))
        );
        let two: serde_json::Value = serde_json::from_str(writes[1].1.as_ref().unwrap()).unwrap();
        assert_eq!(two["universe"], "all");
        let gone = Editor::new(&scenario, 3).delete(&catalog, 1);
        assert!(gone.len() == 1 && gone[0].1.is_none());
    }
}
