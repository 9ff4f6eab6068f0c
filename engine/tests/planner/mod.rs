//! The incremental planner against the full evaluation, without Redis: random catalogs
//! (explicit, global, missing universes; invalid, mixed and multi-unit timeframes), both
//! throttle modes, Lua thresholds small enough that some universes go server-side, update
//! sequences with equal stamps, stamps on bucket edges and ahead of the clock (also beyond
//! `max_future_ms`, ignored until the clock comes within it), time crossing
//! bucket edges, catalog edits, claims by another instance, failed runs, lost Redis state.
//!
//! The property, after every tick: for every strategy, what gets dispatched (the planner's
//! proposal, minus what the store finds already claimed) is exactly what
//! [`tickgate::core::rule::decide`] says on the whole state — its run (bucket, mode,
//! symbols), or nothing for a skip.
//!
//! Skip counts: `invalid_timeframe` must equal the rule's. `no_update` and `bucket_dup` may
//! legitimately differ, because the planner only knows what this instance did:
//! - a proposal the store turns down entirely (claimed or run by another instance, unknown
//!   to this planner) is not a skip in the plan; the runtime counts it as `bucket_dup` when
//!   it dispatches (`count_run` in `runtime/tick.rs`);
//! - a strategy sent to the server-side intersection that yields no proposal is counted by
//!   neither the plan nor the runtime (a gap in the `skipped` metrics, not in decisions).
//!
//! So the test checks, per reason, that the plan's count plus those it cannot see equals the
//! rule's: for `no_update`, the plan's plus the silent ones the rule skips `no_update`; for
//! `bucket_dup`, the plan's plus the refused ones plus the silent ones the rule skips
//! `bucket_dup`. And every refused proposal is one the rule skips `bucket_dup`.
//!
//! One more difference comes from `max_future_ms`: a time too far ahead is hidden from the
//! rule, so a strategy whose only update in the bucket was dispatched and then replaced by
//! such a time (`ZADD GT`) is `no_update` to the rule and `bucket_dup` to the planner, which
//! remembers the update. Those strategies (`masked`) may move from one count to the other.

mod world;

use proptest::prelude::*;
use tickgate::core::catalog::{self, CatalogEntry};
use tickgate::core::rule::SkipReason;
use tickgate::core::time::{DAY_MS, HOUR_MS, MINUTE_MS, WEEK_MS};
use tickgate::{StrategyId, Ticker, Timeframe};

use self::world::World;

/// Cases, and ticks per case. A tick evaluates a few strategies over a few tickers twice
/// (planner and rule), so 1,000 cases of up to 40 ticks take seconds.
const CASES: u32 = 1_000;
const MAX_TICKS: usize = 40;
/// Update times further ahead of the clock are ignored: small, so stamps beyond it and
/// clocks that catch up with them within a case are common.
const MAX_FUTURE_MS: i64 = 5 * MINUTE_MS;
/// Few strategies and tickers, so updates, claims and edits collide.
const STRATEGIES: StrategyId = 6;
const TICKERS: usize = 8;
/// Valid timeframes: every unit but years (too long to roll within a case), single and
/// multi-unit.
const TIMEFRAMES: [&str; 10] = ["1m", "5m", "15m", "1h", "2h", "1d", "3d", "1w", "2w", "1q"];
/// Timeframes that do not parse: those strategies are skipped `invalid_timeframe`.
const INVALID_TIMEFRAMES: [&str; 3] = ["0m", "5x", ""];
/// Starting instants (ET): before the spring DST change, before the fall one, a year end, a
/// quarter's last trading minute, just before a quarter (and a week) starts.
const STARTS_MS: [i64; 5] = [
    1_710_003_600_000, // 2024-03-09 12:00
    1_730_593_800_000, // 2024-11-02 20:30
    1_735_700_400_000, // 2024-12-31 22:00
    1_719_604_740_000, // 2024-06-28 15:59
    1_711_943_880_000, // 2024-03-31 23:58
];

fn pool() -> Vec<Ticker> {
    (0..TICKERS)
        .map(|i| Ticker::parse(&format!("T{i}")).expect("valid"))
        .collect()
}

fn timeframe(i: usize) -> Timeframe {
    TIMEFRAMES[i].parse().expect("valid")
}

/// A catalog entry's universe.
#[derive(Debug, Clone)]
enum UniverseSpec {
    /// These tickers of the pool (duplicates collapse).
    Explicit(Vec<usize>),
    /// These tickers and an invalid one (dropped by the parser).
    WithInvalid(Vec<usize>),
    /// Only invalid tickers: the universe is missing, the strategy runs whole.
    Missing,
    Global,
}

#[derive(Debug, Clone)]
struct EntrySpec {
    /// Index into TIMEFRAMES, then INVALID_TIMEFRAMES.
    timeframe: usize,
    universe: UniverseSpec,
    active: bool,
}

impl EntrySpec {
    fn strategy(&self, id: StrategyId) -> catalog::Strategy {
        let pool = pool();
        let names = |ix: &[usize]| -> Vec<String> {
            ix.iter().map(|&i| pool[i].as_str().to_owned()).collect()
        };
        let universe = match &self.universe {
            UniverseSpec::Explicit(ix) => Some(names(ix)),
            UniverseSpec::WithInvalid(ix) => Some([names(ix), vec!["NOT VALID".into()]].concat()),
            UniverseSpec::Missing => Some(vec!["not valid".into(), String::new()]),
            UniverseSpec::Global => None,
        };
        let tf = TIMEFRAMES
            .iter()
            .chain(&INVALID_TIMEFRAMES)
            .nth(self.timeframe)
            .expect("in range");
        let mut entry = CatalogEntry::new(id, 100 + id, "s", tf, universe);
        entry.active = self.active;
        catalog::Strategy::from_catalog(id, &entry.to_json())
            .expect("a valid entry")
            .0
    }
}

/// A ticker's update time, relative to the clock.
#[derive(Debug, Clone)]
enum Stamp {
    Now,
    Back(i64),
    Ahead(i64),
    /// Further ahead than [`MAX_FUTURE_MS`] (a bogus stamp): ignored until the clock is
    /// within the bound of it.
    FarAhead(i64),
    /// The start of the current bucket of TIMEFRAMES[i].
    BucketStart(usize),
    /// One millisecond before it (the previous bucket's last instant).
    BeforeStart(usize),
    /// The end of the current bucket: the next one's start, ahead of the clock.
    BucketEnd(usize),
    /// The same time as the previous update.
    Same,
}

#[derive(Debug, Clone)]
enum Advance {
    Not,
    Ms(i64),
    /// Exactly to the next bucket edge of TIMEFRAMES[i].
    ToEdge(usize),
    /// To one millisecond before it.
    BeforeEdge(usize),
}

#[derive(Debug, Clone)]
enum Event {
    Upsert(StrategyId, EntrySpec),
    Remove(StrategyId),
    Update(Vec<(usize, Stamp)>),
    /// Another instance claims these tickers of a strategy (`None`: runs it whole).
    OtherInstance(StrategyId, Option<Vec<usize>>),
    /// A result settles the i-th open job: failed (true) or succeeded.
    Settle(usize, bool),
    /// The update feed overflowed its delta bound: the next read is full.
    FeedOverflow,
    /// Redis restarted empty.
    RedisLost,
}

fn entry() -> impl Strategy<Value = EntrySpec> {
    let tickers = || prop::collection::vec(0..TICKERS, 1..=TICKERS);
    let universe = prop_oneof![
        6 => tickers().prop_map(UniverseSpec::Explicit),
        1 => tickers().prop_map(UniverseSpec::WithInvalid),
        1 => Just(UniverseSpec::Missing),
        2 => Just(UniverseSpec::Global),
    ];
    let timeframe = prop_oneof![
        8 => 0..TIMEFRAMES.len(),
        1 => TIMEFRAMES.len()..TIMEFRAMES.len() + INVALID_TIMEFRAMES.len(),
    ];
    let active = prop::bool::weighted(0.9);
    (timeframe, universe, active).prop_map(|(timeframe, universe, active)| EntrySpec {
        timeframe,
        universe,
        active,
    })
}

fn stamp() -> impl Strategy<Value = Stamp> {
    let tf = 0..TIMEFRAMES.len();
    prop_oneof![
        3 => Just(Stamp::Now),
        3 => (0..2 * HOUR_MS).prop_map(Stamp::Back),
        1 => (0..3 * DAY_MS).prop_map(Stamp::Back),
        1 => (1..HOUR_MS).prop_map(Stamp::Ahead),
        1 => (MAX_FUTURE_MS + 1..3 * DAY_MS).prop_map(Stamp::FarAhead),
        2 => tf.clone().prop_map(Stamp::BucketStart),
        1 => tf.clone().prop_map(Stamp::BeforeStart),
        1 => tf.prop_map(Stamp::BucketEnd),
        2 => Just(Stamp::Same),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    let id = 0..STRATEGIES;
    let tickers = prop::collection::vec(0..TICKERS, 1..4);
    prop_oneof![
        12 => (id.clone(), entry()).prop_map(|(i, e)| Event::Upsert(i, e)),
        4 => id.clone().prop_map(Event::Remove),
        32 => prop::collection::vec((0..TICKERS, stamp()), 1..5).prop_map(Event::Update),
        8 => (id, prop::option::weighted(0.8, tickers))
            .prop_map(|(i, t)| Event::OtherInstance(i, t)),
        8 => (any::<usize>(), prop::bool::weighted(0.7)).prop_map(|(i, f)| Event::Settle(i, f)),
        3 => Just(Event::FeedOverflow),
        1 => Just(Event::RedisLost),
    ]
}

fn advance() -> impl Strategy<Value = Advance> {
    let tf = 0..TIMEFRAMES.len();
    prop_oneof![
        2 => Just(Advance::Not),
        3 => (1..10 * MINUTE_MS).prop_map(Advance::Ms),
        1 => (1..2 * WEEK_MS).prop_map(Advance::Ms),
        3 => tf.clone().prop_map(Advance::ToEdge),
        1 => tf.prop_map(Advance::BeforeEdge),
    ]
}

/// One tick: events, then the clock moves, then the planner plans.
#[derive(Debug, Clone)]
struct Tick {
    events: Vec<Event>,
    advance: Advance,
}

fn tick() -> impl Strategy<Value = Tick> {
    (prop::collection::vec(event(), 0..5), advance())
        .prop_map(|(events, advance)| Tick { events, advance })
}

/// The time `stamp` names at `now_ms`; `last` is the previous update's.
fn resolve(stamp: &Stamp, now_ms: i64, last: i64) -> i64 {
    let bucket = |i: usize| timeframe(i).bucket(now_ms).expect("in range");
    match stamp {
        Stamp::Now => now_ms,
        Stamp::Back(ms) => now_ms - ms,
        Stamp::Ahead(ms) | Stamp::FarAhead(ms) => now_ms + ms,
        Stamp::BucketStart(i) => bucket(*i).start_ms,
        Stamp::BeforeStart(i) => bucket(*i).start_ms - 1,
        Stamp::BucketEnd(i) => bucket(*i).end_ms,
        Stamp::Same => last,
    }
}

fn apply(world: &mut World, event: &Event, last_stamp: &mut i64) {
    let pool = pool();
    match event {
        Event::Upsert(id, spec) => world.upsert(*id, Some(spec.strategy(*id))),
        Event::Remove(id) => world.upsert(*id, None),
        Event::Update(updates) => {
            for (t, stamp) in updates {
                *last_stamp = resolve(stamp, world.now_ms, *last_stamp);
                world.record(&pool[*t], *last_stamp);
            }
        }
        Event::OtherInstance(id, tickers) => {
            let tickers = tickers.as_ref().map(|ix| {
                let mut t: Vec<Ticker> = ix.iter().map(|&i| pool[i].clone()).collect();
                t.sort();
                t.dedup();
                t
            });
            world.other_instance(*id, tickers);
        }
        Event::Settle(i, failed) => world.settle(*i, *failed),
        Event::FeedOverflow => world.overflow_feed(),
        Event::RedisLost => world.lose_redis_state(),
    }
}

fn advanced(now_ms: i64, advance: &Advance) -> i64 {
    let edge = |i: usize| timeframe(i).bucket(now_ms).expect("in range").end_ms;
    match advance {
        Advance::Not => now_ms,
        Advance::Ms(ms) => now_ms + ms,
        Advance::ToEdge(i) => edge(*i),
        Advance::BeforeEdge(i) => (edge(*i) - 1).max(now_ms),
    }
}

/// Runs `ticks` and checks the property after each.
fn check(
    per_ticker: bool,
    lua_threshold: usize,
    start: usize,
    ticks: &[Tick],
) -> Result<(), TestCaseError> {
    let mut world = World::new(per_ticker, lua_threshold, MAX_FUTURE_MS, STARTS_MS[start]);
    let mut last_stamp = world.now_ms;
    for (k, tick) in ticks.iter().enumerate() {
        for event in &tick.events {
            apply(&mut world, event, &mut last_stamp);
        }
        world.now_ms = advanced(world.now_ms, &tick.advance);
        let outcome = world.tick()?;
        prop_assert_eq!(
            &outcome.dispatched,
            &outcome.expected,
            "tick {} at {}",
            k,
            world.now_ms
        );
        let (invalid, no_update, dup) = (
            SkipReason::InvalidTimeframe,
            SkipReason::NoUpdate,
            SkipReason::BucketDup,
        );
        let (o, at) = (
            &outcome,
            format!("tick {k} at {}: {outcome:?}", world.now_ms),
        );
        prop_assert_eq!(
            o.planned(invalid),
            o.ruled(invalid, None),
            "invalid_timeframe, {}",
            at
        );
        let silent = Some(&o.silent[..]);
        let no_update_unseen = o.ruled(no_update, silent);
        // Masked strategies the planner counts `bucket_dup` where the rule says `no_update`.
        let remembered =
            o.ruled(no_update, None) as i64 - (o.planned(no_update) + no_update_unseen) as i64;
        let masked = o.masked.iter().filter(|s| !o.silent.contains(s)).count();
        prop_assert!(
            (0..=masked as i64).contains(&remembered),
            "no_update, {} remembered of {} masked, {}",
            remembered,
            masked,
            at
        );
        let dup_unseen = o.refused.len() as u64 + o.ruled(dup, silent);
        prop_assert_eq!(
            (o.planned(dup) + dup_unseen) as i64,
            o.ruled(dup, None) as i64 + remembered,
            "bucket_dup, {}",
            at
        );
        let refused = Some(&o.refused[..]);
        prop_assert_eq!(
            o.ruled(dup, refused),
            o.refused.len() as u64,
            "refused, {}",
            at
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// After every tick, the planner dispatches what the full evaluation decides.
    #[test]
    fn the_planner_dispatches_what_the_rule_decides(
        per_ticker in prop::bool::weighted(0.8),
        lua_threshold in 0usize..5,
        start in 0..STARTS_MS.len(),
        ticks in prop::collection::vec(tick(), 1..MAX_TICKS),
    ) {
        check(per_ticker, lua_threshold, start, &ticks)?;
    }
}
