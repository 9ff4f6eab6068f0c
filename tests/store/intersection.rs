//! Step 3 of a tick computed four ways — the seed's Lua script (kept beside the simulator's
//! baseline), the adaptive Lua script, client-side, and the model — must agree for universes
//! and updated sets of 0..5,000 tickers; and a script failure must fall back to client-side
//! and be counted.

use std::sync::atomic::Ordering;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tickgate::Ticker;
use tickgate::core::time::DAY_MS;
use tickgate::limits::DEFAULT_MAX_UNIVERSE;
use tickgate::store::{
    Intersection, ModelStore, Store, StoreError, Universes, Updates, intersect_or_fall_back,
};
use tickgate_sim::redis::baseline::intersect_seed;
use tickgate_suite::{T0_MS, World, ticker_pool};

/// Cases: each writes up to 10,000 members and runs four intersections, ~50 ms apiece.
const CASES: u32 = 64;
const POOL: usize = 8_000;
const MAX_SIDE: usize = 5_000;

/// Sizes that matter: empty, tiny, around the script chunk (1,000), and the maximum.
fn side_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        1usize..20,
        990usize..1_010,
        2_000usize..MAX_SIDE,
        Just(MAX_SIDE)
    ]
}

#[test]
fn seed_script_adaptive_lua_client_side_and_model_agree() {
    let rt = tickgate_suite::runtime();
    let _ctx = rt.enter();
    let world = rt.block_on(World::new("inter:"));
    let pool = ticker_pool(POOL);
    let since = T0_MS;
    let con = rt.block_on(world.connection());
    let case = std::cell::Cell::new(0u64);
    let mut runner = TestRunner::new(Config::with_cases(CASES));
    let strategy = (side_size(), side_size(), any::<u64>());
    let result = runner.run(&strategy, |(universe_size, updated_size, seed)| {
        case.set(case.get() + 1);
        // Deterministic subsets of the pool from the case's seed (an LCG walk with a
        // stride coprime to POOL visits distinct indices).
        let pick = |n: usize, salt: u64| -> Vec<&Ticker> {
            let start = (seed ^ salt) as usize % POOL;
            (0..n).map(|i| &pool[(start + i * 7_919) % POOL]).collect()
        };
        let universe = pick(universe_size, 0);
        // Half the updated tickers changed before `since`, half at or after it.
        let updates: Vec<(&str, i64)> = pick(updated_size, 0x5eed)
            .into_iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), since + (i as i64 % 7 - 3) * DAY_MS / 3))
            .collect();
        // The feed's clock when it writes them: at the latest stamp.
        let written_ms = since + DAY_MS;
        rt.block_on(async {
            let redis = world.store_under(&format!("{}:", case.get())).await;
            let model = ModelStore::new(DEFAULT_MAX_UNIVERSE);
            let raw: Vec<&str> = universe.iter().map(|t| t.as_str()).collect();
            let (a, b) = (
                redis.replace_universe(1, &raw).await,
                model.replace_universe(1, &raw).await,
            );
            prop_assert_eq!(a.is_ok(), b.is_ok(), "empty universes are rejected by both");
            redis
                .record_updates(written_ms, &updates)
                .await
                .expect("record");
            model
                .record_updates(written_ms, &updates)
                .await
                .expect("record");
            let want = model
                .intersect(1, since, Intersection::ClientSide)
                .await
                .expect("model");
            for method in [Intersection::ClientSide, Intersection::AdaptiveLua] {
                let got = redis.intersect(1, since, method).await.expect("intersect");
                prop_assert_eq!(
                    &got,
                    &want,
                    "{:?} with |U| = {}, |updated| = {}",
                    method,
                    universe_size,
                    updated_size
                );
            }
            // The seed's script answers unsorted raw members.
            let mut seed = intersect_seed(&mut con.clone(), redis.keys(), 1, since)
                .await
                .expect("the seed's script");
            seed.sort();
            let want: Vec<&str> = want.iter().map(Ticker::as_str).collect();
            prop_assert_eq!(
                seed,
                want,
                "the seed's script with |U| = {}, |updated| = {}",
                universe_size,
                updated_size
            );
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// An operator may forbid scripting (an ACL without `@scripting`): every intersection
/// must still be answered, client-side, and counted as a fallback. It also shows that an
/// ACL user's password reaches no error or debug output.
#[tokio::test]
async fn a_failing_script_falls_back_to_client_side_and_is_counted() {
    let world = World::new("fallback:").await;
    let admin = world.store().await;
    let mut con = world.connection().await;
    let user = format!("noscript{}", std::process::id());
    let password = "pw-that-must-not-leak";
    let _: () = redis::cmd("ACL")
        .arg(
            &[
                "SETUSER",
                &user,
                "on",
                &format!(">{password}"),
                "~*",
                "&*",
                "+@all",
                "-@scripting",
            ][..],
        )
        .query_async(&mut con)
        .await
        .expect("ACL SETUSER");

    let mut config = world.store_config();
    config.url = config
        .url
        .replacen("redis://", &format!("redis://{user}:{password}@"), 1);
    assert!(!format!("{config:?}").contains(password));
    let limited = world.store_with(&config).await;

    admin
        .replace_universe(9, &["AAPL", "X:BTCUSD", "O:AAPL251219C00200000"])
        .await
        .expect("universe");
    admin
        .record_updates(
            T0_MS + 1,
            &[
                ("AAPL", T0_MS),
                ("X:BTCUSD", T0_MS - DAY_MS),
                ("O:AAPL251219C00200000", T0_MS + 1),
            ],
        )
        .await
        .expect("updates");

    let direct = limited.intersect(9, T0_MS, Intersection::AdaptiveLua).await;
    let err = direct.expect_err("scripting is forbidden for this user");
    assert!(matches!(err, StoreError::Script { .. }), "{err:?}");
    assert!(!err.to_string().contains(password) && !format!("{err:?}").contains(password));

    // Every failing call is answered, and each one is counted.
    for _ in 0..2 {
        let got = intersect_or_fall_back(&limited, 9, T0_MS, Intersection::AdaptiveLua)
            .await
            .expect("fallback answers");
        let names: Vec<&str> = got.iter().map(Ticker::as_str).collect();
        assert_eq!(names, ["AAPL", "O:AAPL251219C00200000"]);
    }
    assert_eq!(limited.counters().lua_fallbacks.load(Ordering::Relaxed), 2);
    assert_eq!(
        limited.counters().lua_intersections.load(Ordering::Relaxed),
        0
    );

    // With scripting allowed the same call is a Lua intersection, not a fallback.
    intersect_or_fall_back(&admin, 9, T0_MS, Intersection::AdaptiveLua)
        .await
        .expect("lua");
    assert_eq!(
        admin.counters().lua_intersections.load(Ordering::Relaxed),
        1
    );
    assert_eq!(admin.counters().lua_fallbacks.load(Ordering::Relaxed), 0);

    let _: () = redis::cmd("ACL")
        .arg(&["DELUSER", &user][..])
        .query_async(&mut con)
        .await
        .expect("ACL DELUSER");
}
