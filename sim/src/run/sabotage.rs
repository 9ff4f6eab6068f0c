//! Deliberately broken runs, to show the checks can fail, and how each breaks the run.

use tickgate::core::calendar::Bucket;
use tickgate::core::jobs::Job;
use tickgate::store::{Dispatch, StoreError, TickerDispatch};

/// A deliberately broken run, to show the checks can fail (exit codes 3, 4 and 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sabotage {
    /// Every per-ticker claim is released right after its job is taken: an engine that
    /// does not hold its claims, so another instance dispatches the same tickers again.
    SkipClaims,
    /// One update in ten never reaches Redis (the oracle still sees it).
    DropUpdates,
    /// The workers' client loses the last job entry of every tick: only the independent
    /// checker, reading through another client, can tell (exit code 5).
    HideJob,
}

impl Sabotage {
    /// The value as typed on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Sabotage::SkipClaims => "skip-claims",
            Sabotage::DropUpdates => "drop-updates",
            Sabotage::HideJob => "hide-job",
        }
    }
}

/// [`Sabotage::SkipClaims`] after a per-ticker job is taken: the claims vanish, but nobody
/// is told and the job's record stays (an engine that never wrote its claims still records
/// its jobs, so their results count): an empty claim for a bucket starting 1 ms later drops
/// every claim of the strategy's trigger state and keeps its job records. (Settling the job
/// as failed would also consume its record: its result would then change nothing, and
/// nothing would re-evaluate the strategy within the bucket.)
pub(super) async fn drop_claims<S: Dispatch>(
    store: &S,
    now: i64,
    job: &Job,
) -> Result<(), StoreError> {
    let start_ms = job.bucket_start_ms;
    let drop_claims = TickerDispatch {
        strategy: job.strategy_id,
        user_id: job.user_id,
        bucket: Bucket {
            start_ms: start_ms + 1,
            end_ms: start_ms + 2,
        },
        tickers: Vec::new(),
    };
    store.dispatch_tickers(now, &[drop_claims]).await?;
    Ok(())
}
