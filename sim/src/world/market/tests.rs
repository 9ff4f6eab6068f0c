use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use tickgate::Ticker;
use tickgate::Timeframe;

use super::calendar::{CLOSE, Calendar, OPEN};
use super::*;
use crate::world::rng::{poisson, poisson_cap, sample_indexes, seeded_rng};
use crate::world::scenario::Scenario;
use tickgate::core::time::HOUR_MS;

fn fixture(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/scenarios")
        .join(format!("{name}.toml"));
    Scenario::load(&path).unwrap()
}

fn scenario(text: &str) -> Scenario {
    Scenario::parse(text, "test").unwrap_or_else(|e| panic!("{e}"))
}

fn at(rfc3339: &str) -> i64 {
    rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

/// Steps `[from, to)` in windows of `step_ms`.
fn run(market: &mut Market, from: i64, to: i64, step_ms: i64) -> Vec<(i64, MarketStep)> {
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        let end = (t + step_ms).min(to);
        out.push((t, market.step(t, end)));
        t = end;
    }
    out
}

fn assert_ticker(name: &str) {
    let parsed = Ticker::parse(name).unwrap_or_else(|e| panic!("{name:?}: {e}"));
    assert_eq!(parsed.as_str(), name);
}

/// A quiet market for counting: no bursts, no late stamps, no churn.
const QUIET: &str = r#"
    start = "2024-06-03T00:00:00-04:00"
    [tickers]
    stocks = 1000
    crypto = 50
    listings_per_day = 0
    delistings_per_day = 0
    options_per_day = 0
    [activity]
    updates_per_minute_open = 600
    updates_per_minute_closed = 6
    burst_chance_per_minute = 0
    late_share = 0
"#;

#[test]
fn same_seed_same_market_other_seed_other_market() {
    let s = fixture("ci");
    let (from, to) = (s.start_ms, s.end_ms());
    let mut a = Market::new(&s, 7);
    let mut b = Market::new(&s, 7);
    let mut c = Market::new(&s, 8);
    assert_eq!(a.listed(), b.listed());
    assert_ne!(a.listed(), c.listed());
    assert_eq!(a.catalog(), b.catalog());
    assert_ne!(a.catalog(), c.catalog());
    let steps_a = run(&mut a, from, to, s.tick_interval_ms);
    assert_eq!(steps_a, run(&mut b, from, to, s.tick_interval_ms));
    assert_ne!(steps_a, run(&mut c, from, to, s.tick_interval_ms));
    let updates: usize = steps_a.iter().map(|(_, s)| s.updates.len()).sum();
    assert!(
        (10_000..60_000).contains(&updates),
        "{updates} updates in ci"
    );
}

#[test]
fn catalog_and_worker_samples_never_shift_market_events() {
    let s = fixture("ci");
    let (from, to) = (s.start_ms, s.start_ms + 6 * HOUR_MS);
    let mut plain = Market::new(&s, 1);
    let mut busy = Market::new(&s, 1);
    let first = busy.catalog();
    let mut t = from;
    let mut plain_steps = Vec::new();
    let mut busy_steps = Vec::new();
    while t < to {
        plain_steps.push(plain.step(t, t + 10_000));
        busy_steps.push(busy.step(t, t + 10_000));
        let sample = busy.sample_listed(5);
        assert_eq!(sample.len(), 5);
        t += 10_000;
    }
    assert_eq!(plain_steps, busy_steps);
    // Drawn from the population at the start, whenever asked.
    assert_eq!(busy.catalog(), first);
}

#[test]
fn updates_follow_us_market_hours_and_crypto_trades_around_the_clock() {
    let mut market = Market::new(&scenario(QUIET), 3);
    let mut count = |from: &str, to: &str| {
        let steps = run(&mut market, at(from), at(to), 10_000);
        let (mut stocks, mut crypto) = (0usize, 0usize);
        for (_, step) in steps {
            for (ticker, _) in step.updates {
                if ticker.starts_with("X:") {
                    crypto += 1;
                } else {
                    stocks += 1;
                }
            }
        }
        (stocks, crypto)
    };
    // Monday 2024-06-03 (EDT, UTC−4).
    let night = count("2024-06-03T03:00:00-04:00", "2024-06-03T04:00:00-04:00");
    let pre = count("2024-06-03T09:20:00-04:00", "2024-06-03T09:30:00-04:00");
    let first = count("2024-06-03T09:30:00-04:00", "2024-06-03T09:40:00-04:00");
    let open = count("2024-06-03T10:00:00-04:00", "2024-06-03T11:00:00-04:00");
    let after = count("2024-06-03T16:00:00-04:00", "2024-06-03T17:00:00-04:00");
    let sunday = count("2024-06-09T10:00:00-04:00", "2024-06-09T11:00:00-04:00");
    // Open: 600/min × 1000/1050 ≈ 34,000 stock updates an hour; closed: 6/min ≈ 360.
    assert!((30_000..38_000).contains(&open.0), "open {open:?}");
    for (name, closed) in [("night", night), ("after", after), ("sunday", sunday)] {
        assert!((200..550).contains(&closed.0), "{name} {closed:?}");
        assert!(open.0 > 50 * closed.0, "{name} {closed:?} vs open {open:?}");
        // Crypto: 600 × 50/1050 ≈ 29/min, open or not.
        assert!((1_400..2_100).contains(&closed.1), "{name} {closed:?}");
    }
    assert!((1_400..2_100).contains(&open.1), "open {open:?}");
    assert!(
        pre.0 < 150 && first.0 > 4_000,
        "pre {pre:?}, first {first:?}"
    );

    // Winter (EST, UTC−5): the session is 14:30–21:00 UTC, so New York time is what counts.
    let mut winter = scenario(QUIET);
    winter.start_ms = at("2024-01-08T00:00:00-05:00");
    let mut market = Market::new(&winter, 3);
    let mut stock_updates = |from: &str, to: &str| {
        run(&mut market, at(from), at(to), 10_000)
            .into_iter()
            .flat_map(|(_, s)| s.updates)
            .filter(|(t, _)| !t.starts_with("X:"))
            .count()
    };
    let before = stock_updates("2024-01-08T14:15:00Z", "2024-01-08T14:30:00Z");
    let inside = stock_updates("2024-01-08T14:30:00Z", "2024-01-08T14:45:00Z");
    assert!(before < 200 && inside > 7_000, "{before} vs {inside}");
}

#[test]
fn options_list_at_the_open_expire_at_the_close_and_never_update_again() {
    let s = scenario(
        r#"
        start = "2024-06-05T00:00:00-04:00"   # Wednesday
        [tickers]
        stocks = 50
        crypto = 5
        listings_per_day = 30
        delistings_per_day = 30
        options_per_day = 40
        option_expiry_days = 2
        [activity]
        updates_per_minute_open = 300
        updates_per_minute_closed = 30
        late_share = 0.1
        late_max_ms = 60000
    "#,
    );
    let mut market = Market::new(&s, 11);
    // Monday's and Tuesday's contracts are alive on Wednesday at midnight.
    let initial: Vec<String> = market
        .listed()
        .into_iter()
        .filter(|t| t.starts_with("O:"))
        .collect();
    assert_eq!(initial.len(), 80);
    assert!(
        initial
            .iter()
            .all(|o| o[2..].contains("240605") || o[2..].contains("240606"))
    );
    let calendar = Calendar::new();
    let mut gone: BTreeSet<String> = BTreeSet::new();
    let (mut option_updates, mut expired, mut listed_options) = (0, 0, 0);
    let mut stock_delistings = 0;
    let cap = 50 + 5 + 40 * 3 + 6 * 30 * 2;
    for (from, step) in run(&mut market, s.start_ms, s.start_ms + 6 * DAY_MS, MINUTE_MS) {
        for (ticker, _) in &step.updates {
            assert!(
                !gone.contains(ticker),
                "{ticker} updated after its delisting"
            );
            option_updates += usize::from(ticker.starts_with("O:"));
        }
        let date = calendar.date_of(from).unwrap();
        for option in step.listed.iter().filter(|t| t.starts_with("O:")) {
            listed_options += 1;
            assert_eq!(
                from,
                calendar.at(date, OPEN).unwrap(),
                "{option} listed off the open"
            );
            let expiry = yymmdd(add_days(date, 2).unwrap());
            assert!(option.contains(&expiry), "{option} should expire {expiry}");
        }
        for ticker in &step.delisted {
            if ticker.starts_with("O:") {
                expired += 1;
                // Delisted at the close of the date in its symbol.
                assert_eq!(from, calendar.at(date, CLOSE).unwrap(), "{ticker}");
                assert!(ticker.contains(&yymmdd(date)), "{ticker} expired on {date}");
            } else {
                stock_delistings += 1;
            }
            assert!(gone.insert(ticker.clone()), "{ticker} delisted twice");
        }
        assert!(
            market.listed_count() <= cap,
            "{} listed",
            market.listed_count()
        );
    }
    // Wed, Thu, Fri and Mon list 40 each; the batches of Mon–Fri expire Wed–Sun.
    assert_eq!(listed_options, 160);
    assert_eq!(expired, 200);
    assert!(option_updates > 10_000, "{option_updates}");
    assert!((100..260).contains(&stock_delistings), "{stock_delistings}");
}

#[test]
fn steps_respect_their_window_whatever_the_slicing() {
    let mut s = fixture("ci");
    s.activity.late_share = 0.2;
    s.activity.late_max_ms = 30_000;
    let (from, to) = (
        at("2024-06-04T09:00:00-04:00"),
        at("2024-06-04T12:00:00-04:00"),
    );
    s.start_ms = from;
    let mut market = Market::new(&s, 5);
    let (mut late, mut total) = (0, 0);
    for (start, step) in run(&mut market, from, to, 10_000) {
        for (_, ts) in &step.updates {
            assert!(
                *ts < start + 10_000 && *ts >= start - 30_000,
                "{ts} in [{start}, +10 s)"
            );
            late += usize::from(*ts < start);
            total += 1;
        }
    }
    assert!(total > 5_000 && late > total / 20, "{late} late of {total}");

    // The same market in 10 s and in 7 s windows (after a first window of 3 s).
    let mut tens = Market::new(&s, 5);
    let mut sevens = Market::new(&s, 5);
    let flatten = |steps: Vec<(i64, MarketStep)>| {
        let mut all = MarketStep::default();
        for (_, s) in steps {
            all.updates.extend(s.updates);
            all.listed.extend(s.listed);
            all.delisted.extend(s.delisted);
        }
        all
    };
    let a = flatten(run(&mut tens, from, to, 10_000));
    let mut b = flatten(vec![(from, sevens.step(from, from + 3_000))]);
    let rest = flatten(run(&mut sevens, from + 3_000, to, 7_000));
    b.updates.extend(rest.updates);
    b.listed.extend(rest.listed);
    b.delisted.extend(rest.delisted);
    assert_eq!(a, b);

    // Empty, inverted and already handed-out windows give nothing.
    assert_eq!(tens.step(to, to), MarketStep::default());
    assert_eq!(tens.step(to, to - 1), MarketStep::default());
    assert!(tens.step(from, to).updates.is_empty());
}

#[test]
fn a_share_of_updates_is_stamped_ahead_only_when_asked() {
    let mut s = fixture("ci");
    let (from, to) = (
        at("2024-06-04T09:30:00-04:00"),
        at("2024-06-04T10:30:00-04:00"),
    );
    s.start_ms = from;
    let updates = |s: &Scenario| {
        let mut market = Market::new(s, 5);
        run(&mut market, from, to, 10_000)
            .into_iter()
            .flat_map(|(start, step)| step.updates.into_iter().map(move |u| (start, u)))
            .collect::<Vec<_>>()
    };
    let plain = updates(&s);
    assert!(plain.iter().all(|(start, (_, ts))| *ts < start + 10_000));
    // A bound alone draws nothing: the market is the same.
    s.activity.future_max_ms = 90_000;
    assert_eq!(updates(&s), plain);
    s.activity.future_share = 0.1;
    let ahead: Vec<i64> = updates(&s)
        .into_iter()
        .filter(|(start, (_, ts))| *ts >= start + 10_000)
        .map(|(start, (_, ts))| ts - start)
        .collect();
    assert!(
        ahead.len() > plain.len() / 20,
        "{} of {}",
        ahead.len(),
        plain.len()
    );
    assert!(ahead.iter().all(|d| *d <= 100_000), "{ahead:?}");
}

#[test]
fn every_generated_ticker_is_valid() {
    for name in ["ci", "default"] {
        let s = fixture(name);
        let mut market = Market::new(&s, 9);
        let listed = market.listed();
        assert_eq!(listed.len(), market.listed_count());
        let stocks = s.tickers.stocks + s.tickers.crypto;
        assert!(listed.len() >= stocks, "{name}: {}", listed.len());
        listed.iter().for_each(|t| assert_ticker(t));
        assert!(
            listed.iter().any(|t| t.contains('.')),
            "{name}: no share class"
        );
        for entry in market.catalog().values() {
            let v: serde_json::Value = serde_json::from_str(entry).unwrap();
            if let Some(members) = v["universe"].as_array() {
                members
                    .iter()
                    .for_each(|m| assert_ticker(m.as_str().unwrap()));
            }
        }
        for (_, step) in run(&mut market, s.start_ms, s.start_ms + DAY_MS, 60_000) {
            let all = step.updates.iter().map(|(t, _)| t);
            all.chain(&step.listed)
                .chain(&step.delisted)
                .for_each(|t| assert_ticker(t));
        }
    }
    // Shapes: `AAPL`, `BRK.B`, `X:BTCUSD`, `O:AAPL240607C00190000`.
    let market = Market::new(&fixture("ci"), 9);
    let listed = market.listed();
    for t in &listed {
        if let Some(pair) = t.strip_prefix("X:") {
            assert!(
                pair.ends_with("USD") && (5..=7).contains(&pair.len()),
                "{t}"
            );
        } else if let Some(option) = t.strip_prefix("O:") {
            let (head, strike) = option.split_at(option.len() - 8);
            assert!(strike.bytes().all(|b| b.is_ascii_digit()), "{t}");
            assert!(head.ends_with('C') || head.ends_with('P'), "{t}");
            let date = &head[head.len() - 7..head.len() - 1];
            assert!(date.bytes().all(|b| b.is_ascii_digit()), "{t}");
        } else {
            let root = t.split('.').next().unwrap_or_default();
            assert!(
                (1..=5).contains(&root.len()) && root.bytes().all(|b| b.is_ascii_uppercase()),
                "{t}"
            );
        }
    }
    for famous in ["AAPL", "BRK.B", "X:BTCUSD", "X:ETHUSD"] {
        assert!(listed.iter().any(|t| t == famous), "{famous}");
    }
}

fn decode(catalog: &BTreeMap<u64, String>) -> Vec<serde_json::Value> {
    catalog
        .values()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

#[test]
fn the_catalog_follows_its_spec_in_the_design_format() {
    let s = fixture("default");
    let mut market = Market::new(&s, 21);
    let catalog = market.catalog();
    assert_eq!(
        catalog.keys().copied().collect::<Vec<_>>(),
        (1..=1_000).collect::<Vec<u64>>()
    );
    let (mut global, mut invalid, mut sizes) = (0, 0, Vec::new());
    let (mut members, mut option_members) = (0usize, 0usize);
    for (entry, v) in catalog.values().zip(decode(&catalog)) {
        // Key order of DESIGN §2.8.
        let keys = [
            "\"id\":",
            "\"user_id\":",
            "\"name\":",
            "\"timeframe\":",
            "\"universe\":",
            "\"active\":true}",
        ];
        let positions: Vec<usize> = keys.iter().map(|k| entry.find(k).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{entry}");
        assert_eq!(v.as_object().unwrap().len(), 6);
        assert!(v["user_id"].as_u64().unwrap() >= 1);
        let tf = v["timeframe"].as_str().unwrap();
        if tf.parse::<Timeframe>().is_err() {
            assert!(INVALID_TIMEFRAMES.contains(&tf), "{tf}");
            invalid += 1;
        } else {
            assert!(s.strategies.timeframes.contains_key(tf), "{tf}");
        }
        assert!(v["name"].as_str().unwrap().contains(tf));
        match &v["universe"] {
            serde_json::Value::String(all) => {
                assert_eq!(all, "all");
                global += 1;
            }
            serde_json::Value::Array(u) => {
                let names: BTreeSet<&str> = u.iter().map(|m| m.as_str().unwrap()).collect();
                assert_eq!(names.len(), u.len(), "duplicate member in {entry}");
                sizes.push(u.len());
                members += u.len();
                option_members += names.iter().filter(|n| n.starts_with("O:")).count();
            }
            other => panic!("universe {other}"),
        }
    }
    assert_eq!((global, invalid), (10, 5));
    sizes.sort_unstable();
    assert_eq!(sizes.last(), Some(&2_000));
    assert!(sizes[0] >= 1);
    let median = sizes[sizes.len() / 2];
    assert!((16..=25).contains(&median), "median {median}");
    let share = option_members as f64 / members as f64;
    assert!((0.03..0.08).contains(&share), "option share {share}");
}

#[test]
fn w100k_shaped_universes_fill_past_the_population_with_dormant_contracts() {
    let mut s = fixture("w100k");
    s.strategies.count = 10_000;
    let mut market = Market::new(&s, 4);
    assert_eq!(market.listed_count(), 10_000);
    let values = decode(&market.catalog());
    let mut sizes: Vec<usize> = values
        .iter()
        .filter_map(|v| v["universe"].as_array().map(Vec::len))
        .collect();
    sizes.sort_unstable();
    let above = sizes.iter().filter(|&&n| n > 1_000).count() as f64 / sizes.len() as f64;
    assert!((0.005..0.016).contains(&above), "share above 1000: {above}");
    assert!((40..=50).contains(&sizes[sizes.len() / 2]));
    let largest = values
        .iter()
        .filter_map(|v| v["universe"].as_array())
        .find(|u| u.len() == 50_000)
        .unwrap();
    let names: BTreeSet<&str> = largest.iter().map(|m| m.as_str().unwrap()).collect();
    assert_eq!(names.len(), 50_000);
    let listed: BTreeSet<String> = market.listed().into_iter().collect();
    let dormant: Vec<&&str> = names.iter().filter(|n| !listed.contains(**n)).collect();
    assert_eq!(dormant.len(), 40_000);
    dormant.iter().for_each(|n| assert_ticker(n));
    assert!(
        dormant
            .iter()
            .all(|n| n.starts_with("O:") && n.contains("250604"))
    );
}

#[test]
fn worker_samples_are_distinct_listed_and_sorted() {
    let mut market = Market::new(&fixture("ci"), 2);
    let listed: BTreeSet<String> = market.listed().into_iter().collect();
    let sample = market.sample_listed(25);
    assert_eq!(sample.len(), 25);
    assert!(sample.windows(2).all(|w| w[0] < w[1]));
    assert!(sample.iter().all(|t| listed.contains(t)));
    assert_ne!(sample, market.sample_listed(25));
    assert_eq!(market.sample_listed(1_000_000).len(), listed.len());
    assert!(market.sample_listed(0).is_empty());
    assert_eq!(Market::new(&fixture("ci"), 2).sample_listed(25), sample);
}

#[test]
fn draws_are_bounded_and_well_centred() {
    let mut rng = seeded_rng(1);
    for lambda in [0.5, 5.0, 29.0, 31.0, 500.0, 3_000.0] {
        let cap = poisson_cap(lambda);
        let n = 2_000;
        let sum: u64 = (0..n).map(|_| poisson(&mut rng, lambda, cap)).sum();
        let mean = sum as f64 / n as f64;
        assert!(
            (mean - lambda).abs() < 0.1 * lambda + 0.1,
            "λ {lambda}: mean {mean}"
        );
    }
    assert_eq!(poisson(&mut rng, 1e6, 10), 10);
    assert_eq!(poisson(&mut rng, 0.0, 10), 0);
    assert_eq!(poisson(&mut rng, f64::NAN, 10), 0);
    let picked = sample_indexes(&mut rng, 10, 10);
    assert_eq!(picked, (0..10).collect());
    assert_eq!(sample_indexes(&mut rng, 3, 7).len(), 3);
    for tf in INVALID_TIMEFRAMES {
        assert!(tf.parse::<Timeframe>().is_err(), "{tf} parses");
    }
}

#[test]
fn a_month_of_default_market_steps_stays_cheap_and_bounded() {
    let s = fixture("default");
    let mut market = Market::new(&s, 1);
    let cap = market.max_updates_per_minute() as usize;
    assert!(cap > 1_500 && cap < 3_000, "{cap}");
    let mut updates = 0;
    let mut t = s.start_ms;
    // A week in 10 s ticks: 60,480 calls.
    while t < s.start_ms + 7 * DAY_MS {
        let step = market.step(t, t + s.tick_interval_ms);
        assert!(step.updates.len() <= 2 * cap);
        updates += step.updates.len();
        t += s.tick_interval_ms;
    }
    // 5 sessions × 390 min × 300/min plus the nights and the weekend: ≈ 0.8 million.
    assert!((600_000..1_100_000).contains(&updates), "{updates}");
    // A window longer than MAX_STEP_MS is cut to it.
    let mut slow = scenario(QUIET);
    slow.activity.updates_per_minute_open = 1;
    slow.activity.updates_per_minute_closed = 1;
    let mut market = Market::new(&slow, 1);
    let long = market.step(slow.start_ms, slow.start_ms + 40 * DAY_MS);
    let last = long
        .updates
        .iter()
        .map(|(_, ts)| *ts)
        .max()
        .unwrap_or_default();
    assert!(last < slow.start_ms + MAX_STEP_MS && last > slow.start_ms + 30 * DAY_MS);
}
