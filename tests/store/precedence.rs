//! The universe precedence and restore operations on both stores, step by step: the same
//! answers, and the same state after every step (DESIGN §2.3 step 2, §9).

use std::collections::BTreeSet;
use std::fmt::Debug;

use redis::AsyncCommands;
use tickgate::core::catalog::{CatalogEntry, universe_digest};
use tickgate::limits::DEFAULT_MAX_UNIVERSE;
use tickgate::store::{
    Catalog, ModelStore, PersistWrite, Persisted, RedisStore, Restore, Store, UniverseWrite,
    Universes,
};
use tickgate::{StrategyId, Ticker};
use tickgate_suite::World;

use super::state::{comparable, redis_state};

fn set(names: &[&str]) -> Vec<Ticker> {
    let set: BTreeSet<Ticker> = names
        .iter()
        .map(|n| Ticker::parse(n).expect("ticker"))
        .collect();
    set.into_iter().collect()
}

fn digest(names: &[&str]) -> String {
    universe_digest(&set(names).into_iter().collect())
}

fn json(id: StrategyId, names: &[&str]) -> String {
    let universe = names.iter().map(|n| (*n).to_owned()).collect();
    CatalogEntry::new(id, id, "s", "1m", Some(universe)).to_json()
}

/// One step on both stores: equal answers, then equal states.
struct Both<'a> {
    world: &'a World,
    redis: RedisStore,
    model: ModelStore,
}

impl Both<'_> {
    async fn check<T: PartialEq + Debug>(&self, step: &str, redis: T, model: T) {
        assert_eq!(redis, model, "answers differ at {step}");
        let mut con = self.world.connection().await;
        let stored = redis_state(&mut con, self.redis.keys(), [1, 2]).await;
        assert_eq!(
            stored,
            comparable(self.model.snapshot()),
            "states differ at {step}"
        );
    }
}

/// Runs `$op` on both stores (as `s`) and checks the answers and states.
macro_rules! both {
    ($both:expr, $step:expr, |$s:ident| $op:expr) => {{
        let redis = {
            let $s = &$both.redis;
            $op.await.expect($step)
        };
        let model = {
            let $s = &$both.model;
            $op.await.expect($step)
        };
        $both.check($step, redis.clone(), model).await;
        redis
    }};
}

async fn persist<S: Store>(
    s: &S,
    id: StrategyId,
    from: &[&str],
    to: &[&str],
) -> Result<Persisted, tickgate::store::StoreError> {
    let (json_to, json_from, base) = (json(id, to), json(id, from), digest(from));
    let universe = set(to);
    let write = PersistWrite {
        json: &json_to,
        expected: &json_from,
        expected_base: &base,
        universe: &universe,
    };
    s.persist_universe(id, &write).await
}

async fn restore<S: Store>(
    s: &S,
    id: StrategyId,
    names: &[&str],
) -> Result<bool, tickgate::store::StoreError> {
    let (entry, base, universe) = (json(id, names), digest(names), set(names));
    let restore = Restore {
        json: &entry,
        base: Some(&base),
        universe: &universe,
    };
    s.restore_strategy(id, &restore).await
}

#[tokio::test]
async fn both_stores_agree_on_precedence_and_restore() {
    let world = World::new("precedence-ops:").await;
    let both = Both {
        redis: world.store().await,
        model: ModelStore::new(DEFAULT_MAX_UNIVERSE),
        world: &world,
    };
    let (a, b) = (json(1, &["A"]), json(2, &["B"]));
    both!(both, "write 1", |s| s.catalog_write(1, Some(&a), None));
    both!(both, "write 2", |s| s.catalog_write(2, Some(&b), None));
    let dg_a = digest(&["A"]);
    let w = both!(both, "catalog A", |s| s.replace_universe_from_catalog(
        1,
        &["A"],
        &dg_a
    ));
    assert!(matches!(w, UniverseWrite::Replaced { .. }), "{w:?}");
    let w = both!(both, "catalog A again", |s| s
        .replace_universe_from_catalog(1, &["A"], &dg_a));
    assert_eq!(w, UniverseWrite::Unchanged);
    let bases = both!(both, "bases", |s| s.universe_bases(&[1, 2]));
    assert_eq!(bases, vec![Some(dg_a.clone()), None]);
    // A discovery (C), persisted: the entry and the base follow.
    both!(both, "discover C", |s| s.replace_universe(1, &["C"]));
    let p = both!(both, "persist C", |s| persist(s, 1, &["A"], &["C"]));
    assert_eq!(p, Persisted::Written);
    // A discovery (D), then a catalog edit (E) before it is persisted: superseded.
    both!(both, "discover D", |s| s.replace_universe(1, &["D"]));
    let e = json(1, &["E"]);
    both!(both, "edit E", |s| s.catalog_write(1, Some(&e), None));
    let p = both!(both, "persist D over E", |s| persist(s, 1, &["E"], &["D"]));
    assert_eq!(p, Persisted::Superseded);
    let p = both!(both, "persist from a stale entry", |s| persist(
        s,
        1,
        &["C"],
        &["D"]
    ));
    assert_eq!(p, Persisted::EntryChanged);
    // Nothing is lost yet: restoring writes nothing.
    let r = both!(both, "restore present", |s| restore(s, 2, &["B"]));
    assert!(!r);
    // The loss, then the platform writes strategy 1 before the engine restores.
    let mut con = world.connection().await;
    let keys: Vec<String> = con
        .keys(format!(
            "{}*",
            world.server().key_prefix().to_owned() + "precedence-ops:"
        ))
        .await
        .expect("KEYS");
    for key in keys {
        let _: () = con.del(key).await.expect("DEL");
    }
    both.model.flush();
    let x = json(1, &["X"]);
    both!(both, "platform writes 1", |s| s.catalog_write(
        1,
        Some(&x),
        None
    ));
    let r = both!(both, "restore 1", |s| restore(s, 1, &["E"]));
    assert!(!r, "the platform's write since the loss wins");
    let r = both!(both, "restore 2", |s| restore(s, 2, &["B"]));
    assert!(r);
    let r = both!(both, "restore 2 again", |s| restore(s, 2, &["B"]));
    assert!(!r);
}
