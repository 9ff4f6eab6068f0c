//! What the in-memory model stores: one field per Redis key family, so tests compare the
//! model and Redis field by field.

use std::collections::{BTreeMap, BTreeSet};

use crate::core::ticker::{StrategyId, Ticker};
use crate::store::StreamEntry;

/// Everything the model stores; public so tests can compare it with Redis's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelState {
    /// `TICK:UPD`: ticker → last update ms.
    pub updates: BTreeMap<Ticker, i64>,
    /// `TICK:PRE`: ticker → its latest update ms in an earlier minute than its last.
    pub updates_before: BTreeMap<Ticker, i64>,
    /// `TICK:SEQ`: ticker → write sequence number of its latest write.
    pub update_sequence: BTreeMap<Ticker, u64>,
    /// `TICK:SEQ:META` field `seq`: the last write sequence number issued.
    pub feed_seq: u64,
    /// `TICK:SEQ:META` field `epoch`: set by the first reader.
    pub feed_epoch: Option<String>,
    /// `STRAT:<id>:UNIV`: never empty (an empty universe is never stored).
    pub universes: BTreeMap<StrategyId, BTreeSet<Ticker>>,
    /// `TICKGATE:UNIV:BASE`: digest of the catalog universe each Redis universe was last
    /// set from or persisted to.
    pub universe_bases: BTreeMap<StrategyId, String>,
    /// `STRAT:<id>:LAST`.
    pub triggers: BTreeMap<StrategyId, TriggerState>,
    /// `STRAT:<id>:RUN`: bucket start of the last whole-strategy run.
    pub strategy_runs: BTreeMap<StrategyId, i64>,
    /// `ALERT:JOBS`: job JSON in stream order.
    pub jobs: Vec<String>,
    /// `ALERT:RESULTS`: (entry id, payload) in stream order.
    pub results: Vec<StreamEntry>,
    /// `ALERT:DEAD`: (result entry id, reason, payload).
    pub dead: Vec<(String, String, Option<String>)>,
    /// `STRAT:CATALOG`: id → strategy JSON.
    pub catalog: BTreeMap<StrategyId, String>,
    /// `TICKGATE:VERSION`: bumped by every catalog or universe change.
    pub version: u64,
    /// `TICKGATE:CHANGES`: strategy → version of its latest change.
    pub changes: BTreeMap<StrategyId, u64>,
    /// Stream delivery bookkeeping (consumer groups), not compared with Redis.
    pub delivery: Delivery,
}

/// Consumer-group state of the model's streams.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Index of the next job not yet delivered to any worker.
    pub jobs_next: usize,
    /// Index of the next result not yet delivered to any engine.
    pub results_next: usize,
    /// Results delivered and not yet acknowledged: entry id → (consumer, deliveries).
    pub results_pending: BTreeMap<String, (String, u64)>,
    /// Highest version whose change record was dropped.
    pub changes_floor: u64,
    /// Jobs delivered and not acknowledged: index in `jobs` → deliveries.
    pub jobs_pending: BTreeMap<usize, u64>,
    /// Deliveries of re-delivered jobs: index in `jobs` → deliveries so far.
    pub attempts: BTreeMap<usize, u64>,
}

/// One strategy's per-ticker trigger hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriggerState {
    /// Newest bucket start claimed into the hash (`# bucket`).
    pub newest_bucket_ms: i64,
    /// Ticker → bucket start of its last claim.
    pub claims: BTreeMap<Ticker, i64>,
    /// Jobs issued into this hash (`# jobs`); survives the drop of older buckets.
    pub jobs_issued: u64,
    /// Unsettled jobs: (bucket start, n) → the tickers job n of that bucket claimed
    /// (`# job <start>-<n>`).
    pub open_jobs: BTreeMap<(i64, u64), Vec<Ticker>>,
    /// `STRAT:<id>:LAST:PREV`, the hash a newer bucket replaced: its `# bucket` and claims
    /// (its job records and counter are never read again, so not modelled).
    pub replaced: Option<ReplacedTriggers>,
}

/// The claims of the bucket a trigger hash held before a newer bucket's first claim: a
/// closing pass of that bucket compares with them (`lua/lib/claim.lua`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplacedTriggers {
    /// Its `# bucket`.
    pub bucket_ms: i64,
    /// Ticker → bucket start of its last claim, as the hash held them.
    pub claims: BTreeMap<Ticker, i64>,
}
