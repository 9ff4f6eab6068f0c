//! Seeded randomness: the simulator's one generator and the bounded draws the world makes
//! with it. Nothing else in the simulator is random, and nothing here reads a clock or the
//! OS: a seed gives the same stream on every platform (DESIGN §5).

use std::collections::BTreeSet;

use rand::{Rng, RngExt, SeedableRng};

/// The generator of every random choice: PCG's output is specified, so a seed gives the
/// same stream on every platform and version (DESIGN §5).
pub type SimRng = rand_pcg::Pcg64;

/// A [`SimRng`] from a seed.
pub fn seeded_rng(seed: u64) -> SimRng {
    SimRng::seed_from_u64(seed)
}

/// Poisson draws above this mean use the normal approximation: below it Knuth's method is
/// exact and costs about `mean` uniforms; above it the approximation's error is far below
/// the noise the simulation cares about.
const POISSON_NORMAL_FROM: f64 = 30.0;

/// A Poisson draw is capped at `mean + POISSON_CAP_SIGMAS·√mean + POISSON_CAP_SLACK`: the
/// chance of reaching it is below 1e-20, so it never shapes the distribution; it only
/// makes every loop that consumes a draw provably bounded.
pub const POISSON_CAP_SIGMAS: f64 = 10.0;
pub const POISSON_CAP_SLACK: f64 = 20.0;

/// The cap of a Poisson draw of mean `lambda` (see [`POISSON_CAP_SIGMAS`]).
pub fn poisson_cap(lambda: f64) -> u64 {
    let lambda = if lambda.is_finite() {
        lambda.max(0.0)
    } else {
        0.0
    };
    (lambda + POISSON_CAP_SIGMAS * lambda.sqrt() + POISSON_CAP_SLACK).ceil() as u64
}

/// A Poisson draw of mean `lambda`, at most `cap`.
pub fn poisson<R: Rng + ?Sized>(rng: &mut R, lambda: f64, cap: u64) -> u64 {
    if !lambda.is_finite() || lambda <= 0.0 {
        return 0;
    }
    if lambda < POISSON_NORMAL_FROM {
        // Knuth: count uniforms until their product drops below e^-λ.
        let limit = (-lambda).exp();
        let mut product = 1.0;
        for k in 0..cap {
            product *= rng.random::<f64>();
            if product <= limit {
                return k;
            }
        }
        return cap;
    }
    // Normal approximation. Irwin–Hall (12 uniforms − 6) needs only additions, so the
    // count does not depend on a platform's last-bit `ln`/`cos` differences.
    let z: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
    let x = (lambda + lambda.sqrt() * z).round();
    if x <= 0.0 { 0 } else { (x as u64).min(cap) }
}

/// A standard normal draw (Box–Muller), for the log-normal universe sizes, whose tails
/// matter (1% above 1,000 at W-100k), so Irwin–Hall's clipped tails would not do.
pub fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    // 1 − U is in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// `x` rounded up or down at random, with the expected value `x` (for `x ≥ 0`).
pub fn stochastic_round<R: Rng + ?Sized>(rng: &mut R, x: f64) -> usize {
    if !x.is_finite() || x <= 0.0 {
        return 0;
    }
    let floor = x.floor();
    let up = rng.random::<f64>() < x - floor;
    floor as usize + usize::from(up)
}

/// `k` distinct indexes of `0..n` (Floyd's algorithm: `k` draws, no scratch of size `n`),
/// in increasing order.
pub fn sample_indexes<R: Rng + ?Sized>(rng: &mut R, n: usize, k: usize) -> BTreeSet<usize> {
    let k = k.min(n);
    let mut picked = BTreeSet::new();
    for j in n - k..n {
        let t = rng.random_range(0..=j);
        if !picked.insert(t) {
            picked.insert(j);
        }
    }
    picked
}

/// Moves a uniform sample of `k` elements of `items` to its front (partial Fisher–Yates)
/// and returns it; `items` stays a permutation, so it serves the next sample unchanged.
pub fn partial_shuffle<'a, T, R: Rng + ?Sized>(
    items: &'a mut [T],
    k: usize,
    rng: &mut R,
) -> &'a [T] {
    let n = items.len();
    let k = k.min(n);
    for i in 0..k {
        let j = rng.random_range(i..n);
        items.swap(i, j);
    }
    &items[..k]
}

/// SplitMix64's finaliser: derives independent stream seeds from one seed.
pub fn stream_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
