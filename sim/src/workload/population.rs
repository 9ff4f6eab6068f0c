//! The random parts of a workload: the ticker population (names of every shape) and the
//! universe sizes and members. Pure functions of a seeded generator, drawn in a fixed order.

use std::collections::BTreeSet;

use rand::{Rng, RngExt};

pub(super) use crate::market::draw::partial_shuffle;

use super::{LARGE_UNIVERSE, WorkloadSpec};

/// Ticker population mix, in percent of the active tickers (equities take the rest):
/// options 10, crypto pairs 5, FX pairs 3, indices 2. Of the equities, 3% are share classes
/// (`BRK.B`).
const OPTION_PCT: usize = 10;
const CRYPTO_PCT: usize = 5;
const FX_PCT: usize = 3;
const INDEX_PCT: usize = 2;
const SHARE_CLASS_PCT: usize = 3;

/// Underlyings that carry options: the most-traded few hundred names, as in practice.
const OPTION_ROOTS: usize = 200;
/// Option expiries (YYMMDD): the monthly cycle of one year.
const OPTION_EXPIRIES: [&str; 12] = [
    "250117", "250221", "250321", "250417", "250516", "250620", "250718", "250815", "250919",
    "251017", "251121", "251219",
];
/// Strikes per (root, expiry, call/put): $5.00 to $5,000 in $0.50 steps. With one root
/// this alone is 240,000 contracts, more than any spec's options plus dormant pool.
const OPTION_STRIKES: u64 = 10_000;

/// Names of 1 to 4 letters: 26 + 26² + 26³ + 26⁴.
const ROOT_SPACE: u64 = 475_254;
/// Three-letter codes (crypto bases, currencies).
const CODE3_SPACE: u64 = 17_576;

/// The universe sizes of `explicit` strategies, in assignment order. Stratified sampling
/// of the log-normal: stratum `i` of `n` gets the quantile at `(i + U) / n` (`U` uniform),
/// then the sizes are shuffled. So the median and the share above [`LARGE_UNIVERSE`] hit
/// the spec exactly (up to one stratum) instead of within sampling noise, and the top
/// stratum's size is set to `max_universe`, making it the largest.
///
/// The spread follows from the spec: `σ = ln(1000 / median) / Φ⁻¹(1 − share)` (1.333 for
/// W-100k). Sizes are rounded to integers, so a platform's last-bit differences in
/// `exp`/`ln` cannot change a size except at an exact half, which never occurs in practice.
pub fn universe_sizes<R: Rng + ?Sized>(
    spec: &WorkloadSpec,
    explicit: usize,
    rng: &mut R,
) -> Vec<usize> {
    let mu = spec.universe_median.ln();
    let sigma = (LARGE_UNIVERSE as f64 / spec.universe_median).ln()
        / inverse_normal_cdf(1.0 - spec.share_above_1000);
    let n = explicit as f64;
    let mut sizes: Vec<usize> = (0..explicit)
        .map(|i| {
            let p = (i as f64 + rng.random::<f64>()) / n;
            // `random::<f64>()` is in [0, 1), so p < 1; p = 0 is possible and maps to -∞.
            let size = (mu + sigma * inverse_normal_cdf(p)).exp().round();
            (size.max(1.0) as usize).min(spec.max_universe)
        })
        .collect();
    if let Some(top) = sizes.last_mut() {
        *top = spec.max_universe;
    }
    shuffle(&mut sizes, rng);
    sizes
}

/// Φ⁻¹, the standard normal quantile, by Acklam's rational approximation (relative error
/// below 1.2e-9: far finer than the rounding of sizes to integers). `p` outside (0, 1)
/// gives ±∞.
pub(super) fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.024_25;
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - P_LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// `size` distinct tickers: drawn uniformly from the active population, or — when `size`
/// exceeds it — all of it plus the first dormant symbols needed (see the module docs).
pub(super) fn sample_universe<R: Rng + ?Sized>(
    size: usize,
    active: &[String],
    dormant: &[String],
    scratch: &mut [u32],
    rng: &mut R,
) -> Vec<String> {
    if size <= active.len() {
        return partial_shuffle(scratch, size, rng)
            .iter()
            .map(|&i| active[i as usize].clone())
            .collect();
    }
    let extra = (size - active.len()).min(dormant.len());
    active.iter().chain(&dormant[..extra]).cloned().collect()
}

pub(super) fn shuffle<T, R: Rng + ?Sized>(items: &mut [T], rng: &mut R) {
    let n = items.len();
    partial_shuffle(items, n, rng);
}

pub(super) fn pick_weighted<R: Rng + ?Sized>(
    choices: &[(String, u32)],
    total: u64,
    rng: &mut R,
) -> String {
    let mut x = rng.random_range(0..total.max(1));
    for (choice, weight) in choices {
        if x < u64::from(*weight) {
            return choice.clone();
        }
        x -= u64::from(*weight);
    }
    // Unreachable while `total` is the sum of the weights (validated to be positive).
    choices.last().map(|(c, _)| c.clone()).unwrap_or_default()
}

/// `count` distinct codes in `[0, space)`: each a uniform draw, moved to the next free code
/// on a collision (linear probing). Requires `count <= space`; the probe loop visits at
/// most `space` codes, so it always ends.
fn distinct_codes<R: Rng + ?Sized>(rng: &mut R, space: u64, count: usize) -> Vec<u64> {
    let mut used = BTreeSet::new();
    let mut out = Vec::with_capacity(count);
    for _ in 0..count.min(space as usize) {
        let mut code = rng.random_range(0..space);
        for _ in 0..space {
            if used.insert(code) {
                out.push(code);
                break;
            }
            code = (code + 1) % space;
        }
    }
    out
}

/// Letters `A..Z` for a base-26 number of `len` digits.
fn letters(mut code: u64, len: usize) -> String {
    let mut buf = vec![b'A'; len];
    for slot in buf.iter_mut().rev() {
        *slot = b'A' + (code % 26) as u8;
        code /= 26;
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// A root symbol of 1 to 4 letters for a code in `[0, ROOT_SPACE)` (bijective: distinct
/// codes give distinct roots).
fn root(mut code: u64) -> String {
    let mut width = 26;
    for len in 1..=4 {
        if code < width {
            return letters(code, len);
        }
        code -= width;
        width *= 26;
    }
    letters(code, 4)
}

/// An OCC option symbol (`O:AAPL251219C00200000`) for a code, over `roots` underlyings.
fn option_symbol(code: u64, roots: &[String]) -> String {
    let strike = code % OPTION_STRIKES;
    let rest = code / OPTION_STRIKES;
    let side = if rest.is_multiple_of(2) { 'C' } else { 'P' };
    let rest = rest / 2;
    let expiry = OPTION_EXPIRIES[(rest % OPTION_EXPIRIES.len() as u64) as usize];
    let root = &roots[(rest / OPTION_EXPIRIES.len() as u64) as usize % roots.len()];
    // Strike in thousandths of a dollar, 8 digits: $5.00 + $0.50 per step.
    format!("O:{root}{expiry}{side}{:08}", 5_000 + strike * 500)
}

/// The active tickers (`active`, mixed categories) and `dormant` option symbols. Each
/// category's names are distinct by construction (distinct codes, bijective encodings)
/// and categories cannot collide: their shapes differ (`.`, `/`, `X:`, `I:`, `O:`).
pub(super) fn ticker_population<R: Rng + ?Sized>(
    rng: &mut R,
    active: usize,
    dormant: usize,
) -> (Vec<String>, Vec<String>) {
    let pct = |p: usize| (active * p / 100).max(1);
    let (options, crypto, fx, indices) = (
        pct(OPTION_PCT),
        pct(CRYPTO_PCT),
        pct(FX_PCT),
        pct(INDEX_PCT),
    );
    let equities = active - options - crypto - fx - indices;
    let classes = (equities * SHARE_CLASS_PCT / 100).max(1);
    let plain = equities - classes;

    let mut tickers = Vec::with_capacity(active);
    let plain_roots: Vec<String> = distinct_codes(rng, ROOT_SPACE, plain)
        .into_iter()
        .map(root)
        .collect();
    tickers.extend(plain_roots.iter().cloned());
    tickers.extend(
        distinct_codes(rng, ROOT_SPACE * 2, classes)
            .into_iter()
            .map(|c| {
                format!(
                    "{}.{}",
                    root(c / 2),
                    if c.is_multiple_of(2) { 'A' } else { 'B' }
                )
            }),
    );
    tickers.extend(
        distinct_codes(rng, CODE3_SPACE, crypto)
            .into_iter()
            .map(|c| format!("X:{}USD", letters(c, 3))),
    );
    tickers.extend(
        distinct_codes(rng, CODE3_SPACE * CODE3_SPACE, fx)
            .into_iter()
            .map(|c| {
                format!(
                    "{}/{}",
                    letters(c / CODE3_SPACE, 3),
                    letters(c % CODE3_SPACE, 3)
                )
            }),
    );
    tickers.extend(
        distinct_codes(rng, ROOT_SPACE, indices)
            .into_iter()
            .map(|c| format!("I:{}", root(c))),
    );
    // Options on the first few hundred equities; active and dormant contracts are drawn
    // together so they never share a symbol.
    let roots = &plain_roots[..plain_roots.len().min(OPTION_ROOTS)];
    let space = roots.len() as u64 * OPTION_EXPIRIES.len() as u64 * 2 * OPTION_STRIKES;
    let mut contracts = distinct_codes(rng, space, options + dormant)
        .into_iter()
        .map(|c| option_symbol(c, roots));
    tickers.extend(contracts.by_ref().take(options));
    let dormant = contracts.collect();
    (tickers, dormant)
}
