//! Redis key names (DESIGN §3) — the external contract workers and the platform rely on.
//!
//! Defaults match the original deployment so tickgate can take over on the same Redis:
//! `TICK:UPD`, `STRAT:<id>:UNIV`, `STRAT:<id>:LAST`. A prefix namespaces several
//! deployments (or tests) on one server; cluster mode puts one hash tag in every key so
//! that multi-key scripts never hit `CROSSSLOT`.

use crate::core::ticker::StrategyId;

/// Builds every key name from a prefix and an optional cluster hash tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpace {
    /// Prepended to every key, e.g. `prod:`; empty by default.
    prefix: String,
}

/// The hash tag shared by all keys in cluster mode.
pub const CLUSTER_HASH_TAG: &str = "{tickgate}";

/// Field of a trigger hash holding the newest bucket start claimed into it. It contains a
/// space, so it can never collide with a ticker.
pub const TRIGGER_BUCKET_FIELD: &str = "# bucket";

impl KeySpace {
    /// Key names with `prefix`; in `cluster` mode every key also carries [`CLUSTER_HASH_TAG`].
    pub fn new(prefix: &str, cluster: bool) -> KeySpace {
        let tag = if cluster { CLUSTER_HASH_TAG } else { "" };
        KeySpace {
            prefix: format!("{prefix}{tag}"),
        }
    }

    /// ZSET ticker → last update ms.
    pub fn updates(&self) -> String {
        format!("{}TICK:UPD", self.prefix)
    }

    /// ZSET ticker → its latest update ms in an earlier minute than its time in
    /// [`KeySpace::updates`] (kept by `record.lua`): a closing pass (DESIGN §2.3 step 6)
    /// still sees an update inside a bucket that a newer one in the next bucket hid before
    /// the engine read it. Every bucket boundary is a minute boundary.
    pub fn updates_before(&self) -> String {
        format!("{}TICK:PRE", self.prefix)
    }

    /// ZSET ticker → write sequence number of its latest write to [`KeySpace::updates`]:
    /// readers fetch only what changed since their last read.
    pub fn update_sequence(&self) -> String {
        format!("{}TICK:SEQ", self.prefix)
    }

    /// HASH `seq` (last change sequence number issued) and `epoch` (names this incarnation
    /// of the update set, so a reader notices when Redis lost it).
    pub fn update_feed(&self) -> String {
        format!("{}TICK:SEQ:META", self.prefix)
    }

    /// SET of the strategy's universe.
    pub fn universe(&self, id: StrategyId) -> String {
        format!("{}STRAT:{id}:UNIV", self.prefix)
    }

    /// HASH strategy id → digest ([`crate::core::catalog::universe_digest`]) of the catalog
    /// universe that the strategy's Redis universe was last set from or persisted to. A
    /// catalog entry whose universe has another digest is a newer catalog write, which
    /// replaces the Redis universe (DESIGN §2.3 step 2, precedence).
    pub fn universe_base(&self) -> String {
        format!("{}TICKGATE:UNIV:BASE", self.prefix)
    }

    /// HASH ticker → bucket start ms of the last dispatch (per-ticker mode), plus
    /// [`TRIGGER_BUCKET_FIELD`]; expires after its bucket.
    pub fn triggers(&self, id: StrategyId) -> String {
        format!("{}STRAT:{id}:LAST", self.prefix)
    }

    /// HASH: the trigger hash that a newer bucket's first claim replaced (renamed here, with
    /// its expiry), so that a closing pass of its bucket that comes after another instance
    /// moved on still sees what that bucket ran (`lib/claim.lua`).
    pub fn triggers_replaced(&self, id: StrategyId) -> String {
        format!("{}STRAT:{id}:LAST:PREV", self.prefix)
    }

    /// STRING bucket start ms of the last whole-strategy run (strategy-level and global
    /// mode); expires after its bucket.
    pub fn strategy_run(&self, id: StrategyId) -> String {
        format!("{}STRAT:{id}:RUN", self.prefix)
    }

    /// HASH strategy id → strategy JSON.
    pub fn catalog(&self) -> String {
        format!("{}STRAT:CATALOG", self.prefix)
    }

    /// STREAM of jobs (field `job`).
    pub fn jobs(&self) -> String {
        format!("{}ALERT:JOBS", self.prefix)
    }

    /// STREAM of worker results (field `result`).
    pub fn results(&self) -> String {
        format!("{}ALERT:RESULTS", self.prefix)
    }

    /// STREAM of dead letters.
    pub fn dead(&self) -> String {
        format!("{}ALERT:DEAD", self.prefix)
    }

    /// STRING counter bumped by every catalog or universe change.
    pub fn version(&self) -> String {
        format!("{}TICKGATE:VERSION", self.prefix)
    }

    /// ZSET strategy id → version of its latest change.
    pub fn changes(&self) -> String {
        format!("{}TICKGATE:CHANGES", self.prefix)
    }

    /// STRING, expiring: a random token of the live `tickgate run` instance that holds the
    /// consumer name `name` (see [`crate::limits::CONSUMER_LEASE_MS`]).
    pub fn consumer_lease(&self, name: &str) -> String {
        format!("{}TICKGATE:CONSUMER:{name}", self.prefix)
    }

    /// Pattern matching every [`KeySpace::consumer_lease`] key (for `SCAN`); glob
    /// characters of the prefix are escaped.
    pub fn consumer_lease_pattern(&self) -> String {
        let mut escaped = String::new();
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        format!("{escaped}TICKGATE:CONSUMER:*")
    }

    /// STRING highest version dropped from the change log.
    pub fn changes_floor(&self) -> String {
        format!("{}TICKGATE:CHANGES:FLOOR", self.prefix)
    }
}

impl Default for KeySpace {
    fn default() -> Self {
        KeySpace::new("", false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_match_the_original_deployment() {
        let k = KeySpace::default();
        assert_eq!(k.updates(), "TICK:UPD");
        assert_eq!(k.universe(123), "STRAT:123:UNIV");
        assert_eq!(k.triggers(123), "STRAT:123:LAST");
        assert_eq!(k.triggers_replaced(123), "STRAT:123:LAST:PREV");
        assert_eq!(k.catalog(), "STRAT:CATALOG");
        assert_eq!(k.jobs(), "ALERT:JOBS");
    }

    #[test]
    fn cluster_mode_shares_one_hash_tag() {
        let k = KeySpace::new("p:", true);
        assert_eq!(k.updates(), "p:{tickgate}TICK:UPD");
        assert_eq!(k.universe(7), "p:{tickgate}STRAT:7:UNIV");
    }
}
