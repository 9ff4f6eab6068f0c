//! One typed wrapper per production Lua script (mini-redis's one-command-per-file, here one
//! function pair per script): the `KEYS`/`ARGV` contract is written once, beside the code
//! that builds the call from typed values, and replies are decoded into Rust types. The
//! Redis role files (`redis/*.rs`) never build script arguments themselves.
//!
//! Scripts are hashed once, called by SHA and reloaded on `NOSCRIPT`. Library functions
//! (`lua/lib/`) are prepended at load time.
//!
//! By role: `feed.rs` (updates in and out, cleanup, intersection), `jobs.rs` (dispatch and
//! settlement), `catalog.rs` (catalog entries and universes).

mod catalog;
mod feed;
mod jobs;

use redis::{Script, ScriptInvocation, Value};

use super::StoreError;

pub use self::feed::{FeedKind, FeedReply};
pub use self::jobs::DispatchAnswer;

/// The script that records ticker updates (`KEYS`: [`KeySpace::updates`],
/// [`KeySpace::update_sequence`], [`KeySpace::update_feed`]; `ARGV`: ts, ticker, ts,
/// ticker, …). A market-data writer that does not use this library should record updates
/// with it: a bare `ZADD GT` raises the time, but no reader's delta would see it.
///
/// [`KeySpace::updates`]: super::KeySpace::updates
/// [`KeySpace::update_sequence`]: super::KeySpace::update_sequence
/// [`KeySpace::update_feed`]: super::KeySpace::update_feed
pub const RECORD_SCRIPT: &str = include_str!("../lua/record.lua");

/// The script that writes (or removes) a catalog entry and records the change, so every
/// engine instance takes it in at its next tick: what the platform runs from any client
/// (README, "Writing the catalog"). `KEYS`: [`KeySpace::catalog`], [`KeySpace::version`],
/// [`KeySpace::changes`], [`KeySpace::changes_floor`]; `ARGV`: strategy id,
/// [`CHANGE_RECORDS_MAX`], the entry JSON (`""` removes it), optionally the entry expected
/// now (compare and swap). Returns 1 if written, 0 if the entry was not as expected. The
/// change-log library comes first, joined as [`Lua`] joins every script's libraries.
///
/// [`KeySpace::catalog`]: super::KeySpace::catalog
/// [`KeySpace::version`]: super::KeySpace::version
/// [`KeySpace::changes`]: super::KeySpace::changes
/// [`KeySpace::changes_floor`]: super::KeySpace::changes_floor
/// [`CHANGE_RECORDS_MAX`]: crate::limits::CHANGE_RECORDS_MAX
pub const CATALOG_WRITE_SCRIPT: &str = concat!(
    include_str!("../lua/lib/change_log.lua"),
    "\n",
    include_str!("../lua/catalog_write.lua")
);

const CLAIM_LIB: &str = include_str!("../lua/lib/claim.lua");
const CHANGE_LOG_LIB: &str = include_str!("../lua/lib/change_log.lua");
const SETTLE_LIB: &str = include_str!("../lua/lib/settle.lua");

/// A loaded script: its name (for errors), source (for `SCRIPT LOAD` in pipelines) and hash.
pub struct Lua {
    pub name: &'static str,
    pub source: String,
    script: Script,
}

impl Lua {
    fn new(name: &'static str, libs: &[&str], body: &str) -> Lua {
        let mut source = libs.join("\n");
        source.push('\n');
        source.push_str(body);
        Lua {
            name,
            script: Script::new(&source),
            source,
        }
    }

    /// A call of this script, to which keys and arguments are added.
    fn call(&self) -> ScriptInvocation<'_> {
        self.script.prepare_invoke()
    }

    /// Decodes a reply of this script.
    pub fn decode<T: redis::FromRedisValue>(&self, v: Value) -> Result<T, StoreError> {
        redis::from_redis_value(v).map_err(|e| self.error(e.to_string()))
    }

    /// A script failure with `reason`.
    pub fn error(&self, reason: String) -> StoreError {
        StoreError::Script {
            script: self.name,
            reason,
        }
    }
}

/// Every production script.
pub struct Scripts {
    pub record: Lua,
    pub read_updates: Lua,
    pub dispatch: Lua,
    pub dispatch_strategy: Lua,
    pub restore_claims: Lua,
    pub complete_job: Lua,
    pub ack_results: Lua,
    pub reap_job: Lua,
    pub take_results: Lua,
    pub trim_stream: Lua,
    pub catalog_write: Lua,
    pub replace_universe: Lua,
    pub persist_universe: Lua,
    pub restore_strategy: Lua,
    pub cleanup_chunk: Lua,
    pub intersect: Lua,
}

impl Default for Scripts {
    fn default() -> Scripts {
        Scripts {
            record: Lua::new("record.lua", &[], RECORD_SCRIPT),
            read_updates: Lua::new(
                "read_updates.lua",
                &[],
                include_str!("../lua/read_updates.lua"),
            ),
            dispatch: Lua::new(
                "dispatch.lua",
                &[CLAIM_LIB],
                include_str!("../lua/dispatch.lua"),
            ),
            restore_claims: Lua::new(
                "restore_claims.lua",
                &[CLAIM_LIB],
                include_str!("../lua/restore_claims.lua"),
            ),
            dispatch_strategy: Lua::new(
                "dispatch_strategy.lua",
                &[],
                include_str!("../lua/dispatch_strategy.lua"),
            ),
            complete_job: Lua::new(
                "complete_job.lua",
                &[SETTLE_LIB],
                include_str!("../lua/complete_job.lua"),
            ),
            ack_results: Lua::new(
                "ack_results.lua",
                &[],
                include_str!("../lua/ack_results.lua"),
            ),
            reap_job: Lua::new(
                "reap_job.lua",
                &[SETTLE_LIB],
                include_str!("../lua/reap_job.lua"),
            ),
            take_results: Lua::new(
                "take_results.lua",
                &[],
                include_str!("../lua/take_results.lua"),
            ),
            trim_stream: Lua::new(
                "trim_stream.lua",
                &[],
                include_str!("../lua/trim_stream.lua"),
            ),
            catalog_write: Lua::new(
                "catalog_write.lua",
                &[CHANGE_LOG_LIB],
                include_str!("../lua/catalog_write.lua"),
            ),
            replace_universe: Lua::new(
                "replace_universe.lua",
                &[CHANGE_LOG_LIB],
                include_str!("../lua/replace_universe.lua"),
            ),
            persist_universe: Lua::new(
                "persist_universe.lua",
                &[CHANGE_LOG_LIB],
                include_str!("../lua/persist_universe.lua"),
            ),
            restore_strategy: Lua::new(
                "restore_strategy.lua",
                &[CHANGE_LOG_LIB],
                include_str!("../lua/restore_strategy.lua"),
            ),
            cleanup_chunk: Lua::new(
                "cleanup_chunk.lua",
                &[],
                include_str!("../lua/cleanup_chunk.lua"),
            ),
            intersect: Lua::new(
                "intersect_adaptive.lua",
                &[],
                include_str!("../lua/intersect_adaptive.lua"),
            ),
        }
    }
}

/// First element of a script's array reply that reports a key of the wrong type (second
/// element: the type found). It contains a space, so no job id or ticker equals it.
pub const DAMAGED_MARKER: &str = "# damaged";

/// The type named by a reply `{DAMAGED_MARKER, type}`, if that is what `fields` is.
pub fn damaged_type(fields: &[String]) -> Option<&str> {
    match fields {
        [marker, found] if marker == DAMAGED_MARKER => Some(found),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exported catalog-write script is byte for byte the one the engine runs, so a
    /// platform calling it records changes exactly as `tickgate strategy put` does.
    #[test]
    fn the_exported_catalog_write_script_is_the_engines() {
        assert_eq!(
            CATALOG_WRITE_SCRIPT,
            Scripts::default().catalog_write.source
        );
    }
}
