//! The strategy catalog (DESIGN §2.8 JSON), drawn from the population at the start.

use std::collections::BTreeMap;

use rand::RngExt;
use tickgate::core::catalog::CatalogEntry;

use super::names::{DORMANT_PER_ROOT, dormant_option};
use crate::world::rng::{
    SimRng, partial_shuffle, seeded_rng, standard_normal, stochastic_round, stream_seed,
};
use crate::world::scenario::StrategySpec;

/// Stream of the catalog's generator: its own, so the catalog is the same whenever it is
/// asked for and never shifts the market's events.
const CATALOG_STREAM: u64 = 2;

/// Invalid timeframes a platform sees in the wild (zero counts, unknown units, decimals,
/// signs): the engine must skip them with reason `invalid_timeframe`.
pub const INVALID_TIMEFRAMES: [&str; 6] = ["0m", "5x", "0d", "1.5h", "m5", "-1h"];

/// Average strategies per user: several alerts each, as on the seed's platform.
const STRATEGIES_PER_USER: usize = 4;

/// Strategy setups, for human-readable names.
const SETUPS: [&str; 10] = [
    "gap up",
    "gap down",
    "rsi oversold",
    "vwap reclaim",
    "breakout",
    "volume spike",
    "ma cross",
    "earnings drift",
    "short squeeze",
    "opening range",
];

/// The population at the start, as the catalog sees it.
pub(super) struct Population<'a> {
    /// Stocks and crypto pairs.
    pub base: &'a [String],
    pub options: &'a [String],
    /// Plain stock roots that carry dormant contracts.
    pub roots: &'a [String],
    /// `YYMMDD` of the dormant contracts, `None` when the start date is unknown.
    pub dormant_expiry: Option<String>,
}

/// Strategy id (`1..=count`) → catalog JSON.
pub(super) fn build(
    spec: &StrategySpec,
    population: &Population<'_>,
    seed: u64,
) -> BTreeMap<u64, String> {
    let mut rng = seeded_rng(stream_seed(seed, CATALOG_STREAM));
    let count = spec.count;
    // Exact numbers of global and invalid strategies, at shuffled ids.
    let global = exact_flags(count, spec.global_share, &mut rng);
    let invalid = exact_flags(count, spec.invalid_timeframe_share, &mut rng);
    let explicit = global.iter().filter(|g| !**g).count();
    let mut sizes = universe_sizes(spec, explicit, &mut rng).into_iter();

    let mix: Vec<(&String, u64)> = spec
        .timeframes
        .iter()
        .map(|(tf, w)| (tf, u64::from(*w)))
        .collect();
    let total_weight: u64 = mix.iter().map(|(_, w)| w).sum();
    let users = (count / STRATEGIES_PER_USER).max(1) as u64;
    let mut members = Members::new(population, spec.option_share);

    let mut catalog = BTreeMap::new();
    for (index, (is_global, is_invalid)) in global.into_iter().zip(invalid).enumerate() {
        let id = index as u64 + 1;
        let timeframe = if is_invalid {
            INVALID_TIMEFRAMES[rng.random_range(0..INVALID_TIMEFRAMES.len())].to_owned()
        } else {
            pick_weighted(&mix, rng.random_range(0..total_weight.max(1)))
        };
        let setup = SETUPS[rng.random_range(0..SETUPS.len())];
        let user_id = rng.random_range(1..=users);
        let universe = if is_global {
            None
        } else {
            Some(members.draw(sizes.next().unwrap_or(1), &mut rng))
        };
        let name = format!("{setup} {timeframe} #{id}");
        let entry = CatalogEntry::new(id, user_id, &name, &timeframe, universe);
        catalog.insert(id, entry.to_json());
    }
    catalog
}

/// `count` flags of which `share` (rounded) are set, at shuffled positions.
fn exact_flags(count: usize, share: f64, rng: &mut SimRng) -> Vec<bool> {
    let set = ((count as f64 * share.clamp(0.0, 1.0)).round() as usize).min(count);
    let mut flags = vec![false; count];
    flags.iter_mut().take(set).for_each(|f| *f = true);
    partial_shuffle(&mut flags, count, rng);
    flags
}

/// Draws universe members from the population at the start.
struct Members<'a> {
    population: &'a Population<'a>,
    option_share: f64,
    /// Dormant contracts there are names for (none without a start date).
    dormant_capacity: usize,
    base_scratch: Vec<u32>,
    option_scratch: Vec<u32>,
}

impl<'a> Members<'a> {
    fn new(population: &'a Population<'a>, option_share: f64) -> Members<'a> {
        let dormant_capacity = match population.dormant_expiry {
            Some(_) => population.roots.len().saturating_mul(DORMANT_PER_ROOT),
            None => 0,
        };
        Members {
            population,
            option_share,
            dormant_capacity,
            base_scratch: (0..population.base.len() as u32).collect(),
            option_scratch: (0..population.options.len() as u32).collect(),
        }
    }

    /// `size` members, sorted: `option_share` of them options, the rest stocks and crypto;
    /// when one side runs out the other fills in, then dormant contracts.
    fn draw(&mut self, size: usize, rng: &mut SimRng) -> Vec<String> {
        let population = self.population;
        let (n_base, n_opt) = (population.base.len(), population.options.len());
        let mut k_opt = stochastic_round(rng, size as f64 * self.option_share).min(n_opt);
        let k_base = (size - k_opt.min(size)).min(n_base);
        k_opt = (size - k_base).min(n_opt);
        let k_dormant = (size - k_base - k_opt).min(self.dormant_capacity);
        let mut members: Vec<String> = Vec::with_capacity(k_base + k_opt + k_dormant);
        members.extend(
            partial_shuffle(&mut self.base_scratch, k_base, rng)
                .iter()
                .map(|&i| population.base[i as usize].clone()),
        );
        members.extend(
            partial_shuffle(&mut self.option_scratch, k_opt, rng)
                .iter()
                .map(|&i| population.options[i as usize].clone()),
        );
        if let Some(expiry) = &population.dormant_expiry {
            members
                .extend((0..k_dormant).filter_map(|i| dormant_option(population.roots, expiry, i)));
        }
        members.sort_unstable();
        members
    }
}

/// `explicit` log-normal sizes (median × e^(σZ)), clamped to `1..=universe_max`; the
/// largest is raised to `universe_max` so the worst case is always in the catalog.
fn universe_sizes(spec: &StrategySpec, explicit: usize, rng: &mut SimRng) -> Vec<usize> {
    let max = spec.universe_max.max(1);
    let median = spec.universe_median.max(1) as f64;
    let sigma = if spec.universe_sigma.is_finite() {
        spec.universe_sigma.max(0.0)
    } else {
        0.0
    };
    let mut sizes: Vec<usize> = (0..explicit)
        .map(|_| {
            let size = (median * (sigma * standard_normal(rng)).exp()).round();
            (size.max(1.0).min(max as f64)) as usize
        })
        .collect();
    let largest = sizes
        .iter()
        .enumerate()
        .max_by_key(|&(i, s)| (*s, std::cmp::Reverse(i)))
        .map(|(i, _)| i);
    if let Some(i) = largest {
        sizes[i] = max;
    }
    sizes
}

fn pick_weighted(mix: &[(&String, u64)], mut x: u64) -> String {
    for (tf, w) in mix {
        if x < *w {
            return (*tf).clone();
        }
        x -= w;
    }
    // Only without a positive weight (a scenario built by hand): a valid default.
    "5m".to_owned()
}
