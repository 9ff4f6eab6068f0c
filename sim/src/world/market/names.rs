//! Ticker names of every shape the platform sees: stocks (`AAPL`, share classes `BRK.B`),
//! crypto pairs (`X:BTCUSD`) and OCC option symbols (`O:AAPL240607C00190000`). All are
//! valid `tickgate::Ticker`s: printable ASCII, no whitespace, at most 26 bytes.

use rand::{Rng, RngExt};

/// The first stocks of every market: recognisable names make reports readable. Two are
/// share classes.
pub(super) const FAMOUS_STOCKS: [&str; 30] = [
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "BRK.B", "TSLA", "JPM", "V", "UNH", "XOM",
    "MA", "JNJ", "PG", "HD", "COST", "AVGO", "LLY", "WMT", "BAC", "KO", "PEP", "ORCL", "CRM",
    "AMD", "NFLX", "INTC", "DIS", "BF.B",
];

/// The first crypto bases (quoted in USD).
pub(super) const FAMOUS_CRYPTO: [&str; 20] = [
    "BTC", "ETH", "SOL", "XRP", "DOGE", "ADA", "AVAX", "LINK", "DOT", "LTC", "BCH", "UNI", "XLM",
    "ATOM", "ETC", "FIL", "NEAR", "APT", "ARB", "OP",
];

/// Share of further stocks that are share classes (`XYZ.A`/`XYZ.B`): about what US
/// exchanges list.
const SHARE_CLASS_CHANCE: f64 = 0.03;

/// Weights of root lengths 1, 2, 3 and 4 letters: most US tickers have 3–4 letters, and the
/// 26 one-letter roots would soon be taken.
const ROOT_LENGTH_WEIGHTS: [u32; 4] = [1, 4, 40, 55];

/// Live option strikes: $1.00 to $1,000.00 in $0.50 steps, as strike ÷ $0.50.
pub(super) const LIVE_STRIKE_STEPS: std::ops::RangeInclusive<u64> = 2..=2_000;

/// Strikes per (underlying, side) of the dormant contracts (see [`dormant_option`]).
const DORMANT_STRIKES: usize = 20_000;
/// Dormant contracts per underlying: calls and puts.
pub(super) const DORMANT_PER_ROOT: usize = 2 * DORMANT_STRIKES;
/// First dormant strike in dollars × 1000 ($1,000.50): above every live strike, so a
/// dormant contract never equals a live one whatever the dates.
const DORMANT_FIRST_STRIKE: usize = 1_000_500;

fn letters<R: Rng + ?Sized>(rng: &mut R, len: usize) -> String {
    (0..len)
        .map(|_| char::from(b'A' + rng.random_range(0..26u8)))
        .collect()
}

/// A random stock symbol: a root of 1–4 letters, sometimes with a class suffix.
pub(super) fn random_stock<R: Rng + ?Sized>(rng: &mut R) -> String {
    let total: u32 = ROOT_LENGTH_WEIGHTS.iter().sum();
    let mut x = rng.random_range(0..total);
    let mut len = ROOT_LENGTH_WEIGHTS.len();
    for (i, w) in ROOT_LENGTH_WEIGHTS.iter().enumerate() {
        if x < *w {
            len = i + 1;
            break;
        }
        x -= w;
    }
    let root = letters(rng, len);
    if rng.random_bool(SHARE_CLASS_CHANCE) {
        let class = if rng.random_bool(0.5) { 'A' } else { 'B' };
        format!("{root}.{class}")
    } else {
        root
    }
}

/// `X:<BASE>USD` for a base of 3 or 4 letters.
pub(super) fn crypto_pair(base: &str) -> String {
    format!("X:{base}USD")
}

pub(super) fn random_crypto<R: Rng + ?Sized>(rng: &mut R) -> String {
    let len = rng.random_range(3..=4);
    crypto_pair(&letters(rng, len))
}

/// An OCC symbol: `O:` + underlying (class dot dropped, as OCC writes `BRKB`) + `YYMMDD` +
/// `C`/`P` + the strike in thousandths of a dollar on 8 digits.
pub(super) fn option_symbol(
    underlying: &str,
    yymmdd: &str,
    call: bool,
    strike_milli: u64,
) -> String {
    let root: String = underlying.chars().filter(|c| *c != '.').collect();
    let side = if call { 'C' } else { 'P' };
    format!("O:{root}{yymmdd}{side}{strike_milli:08}")
}

/// A live contract's strike in thousandths of a dollar.
pub(super) fn random_live_strike<R: Rng + ?Sized>(rng: &mut R) -> u64 {
    rng.random_range(LIVE_STRIKE_STEPS) * 500
}

/// The `index`-th dormant contract: listed far out (a LEAPS), never traded, so never in
/// `TICK:UPD`. They only fill universes larger than the population at the start, the
/// normal shape of a big options-chain universe (as at W-100k). Distinct indexes give
/// distinct symbols; `None` past `roots.len() × DORMANT_PER_ROOT`.
pub(super) fn dormant_option(roots: &[String], yymmdd: &str, index: usize) -> Option<String> {
    let root = roots.get(index / DORMANT_PER_ROOT)?;
    let rest = index % DORMANT_PER_ROOT;
    let strike = DORMANT_FIRST_STRIKE + (rest / 2) * 500;
    Some(option_symbol(
        root,
        yymmdd,
        rest.is_multiple_of(2),
        strike as u64,
    ))
}
