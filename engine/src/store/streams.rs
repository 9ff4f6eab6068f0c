//! What the stream roles exchange: verdicts, settlements, entries, acknowledgements,
//! pending and reaped jobs.

use super::DamagedKey;
use crate::core::jobs::JobRef;

/// A worker's verdict on a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    Succeeded,
    /// The run failed: its claims are released, so a later tick retries those tickers.
    Failed,
}

impl Verdict {
    /// The verdict of a result's `success` field.
    pub fn from_success(success: bool) -> Verdict {
        if success {
            Verdict::Succeeded
        } else {
            Verdict::Failed
        }
    }
}

/// What settling one job found (see `lua/lib/settle.lua`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JobStatus {
    /// The job was issued and still open: settled now (a result later than a newer
    /// bucket's claim still finds its job for a while, and releases nothing).
    Open,
    /// Nothing open by that name: a duplicate of a result already settled, or one later
    /// than its job's record (kept for the trigger grace after a newer bucket's claim, or
    /// expired). It may well have been issued; it changes nothing and is not a dead letter.
    Gone,
    /// Never issued: the strategy's trigger state proves it (a bucket newer than any it
    /// claimed, or a job number above every one issued in that bucket).
    NeverIssued,
}

/// What settling one job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Settled {
    pub status: JobStatus,
    /// Claims released (a whole-strategy run counts 1).
    pub released: u64,
}

/// What settling one job did, or the damaged key its job lives in (that result is set
/// aside; the others of the batch settle).
pub type SettleOutcome = Result<Settled, DamagedKey>;

/// One stream entry: its id and its payload field (`None` if the field is missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    pub id: String,
    pub payload: Option<String>,
}

/// A result entry to acknowledge, and whether it is first copied to the dead-letter stream
/// (with the reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub entry: StreamEntry,
    pub dead_reason: Option<String>,
}

/// A job delivered to a worker and not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PendingJob {
    pub id: String,
    pub deliveries: u64,
}

/// A result delivered to an engine instance (`consumer`) and not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PendingResult {
    pub id: String,
    /// The consumer it is pending with.
    pub consumer: String,
    /// How many times it was delivered: a change means someone took it meanwhile.
    pub deliveries: u64,
}

/// What taking over orphaned results did (see [`Settlement::take_results`]).
///
/// [`Settlement::take_results`]: super::Settlement::take_results
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TakenResults {
    /// The entries now pending with this consumer, to settle and acknowledge.
    pub entries: Vec<StreamEntry>,
    /// Consumers deleted from the group because nothing was pending with them.
    pub forgotten: u64,
}

/// What reaping a stale job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaped {
    /// It was no longer pending as seen (acknowledged, or reaped by another instance).
    Nothing,
    /// Re-enqueued as a new entry, for any worker to take.
    Redelivered,
    /// Moved to the dead-letter stream, and settled as failed: `released` claims of `job`
    /// (read from the entry; `None` when it could not be) were released.
    Dead { job: Option<JobRef>, released: u64 },
}

/// What trimming the streams found (see [`Settlement::trim_streams`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamsReport {
    /// Jobs the workers have not acknowledged: pending plus not yet delivered.
    pub jobs_backlog: u64,
    /// Of those, the jobs delivered to a worker and not acknowledged yet.
    pub jobs_pending: u64,
    /// Results the engines have not acknowledged: pending plus not yet delivered.
    pub results_backlog: u64,
    /// Of those, the results delivered to an engine and not acknowledged yet.
    pub results_pending: u64,
    /// Entries trimmed from the jobs and results streams.
    pub trimmed: u64,
}
