//! Jobs and results as they travel through Redis Streams (DESIGN §2.8). Field names stay
//! compatible with the seed's Python workers.
//!
//! A job id names what it claimed: `<strategy>-<bucket start ms>-<n>` for a per-ticker
//! job of that bucket (n counts the strategy's per-ticker jobs and never repeats while its
//! trigger state lives, across buckets), `<strategy>-<bucket start ms>-run` for a
//! whole-strategy run. So any engine instance can settle any result from the id alone, and
//! a result settles only the job it names, however late it arrives.

use serde::{Deserialize, Serialize};

use super::ticker::{StrategyId, Ticker, excerpt};
use super::time::MINUTE_MS;

/// How a job selects symbols: the `mode` field of the job JSON. An unknown mode does not
/// parse (a worker must not guess what to run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobMode {
    /// Only the tickers that changed (`symbols` = those).
    PerTicker,
    /// The whole strategy: its whole universe, or no filter when the universe is missing.
    Strategy,
    /// A global strategy: no symbol filter.
    Global,
}

impl JobMode {
    /// The `mode` string of the job JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            JobMode::PerTicker => "per_ticker",
            JobMode::Strategy => "strategy",
            JobMode::Global => "global",
        }
    }
}

/// Which claims a job holds, parsed from its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobRef {
    pub strategy: StrategyId,
    pub bucket_start_ms: i64,
    /// `Some(n)` for the n-th per-ticker job of the bucket, `None` for a whole-strategy run.
    pub seq: Option<u64>,
}

impl JobRef {
    /// The job id string.
    pub fn id(&self) -> String {
        match self.seq {
            Some(n) => format!("{}-{}-{n}", self.strategy, self.bucket_start_ms),
            None => format!("{}-{}-run", self.strategy, self.bucket_start_ms),
        }
    }

    /// Parses a job id; `None` if it is not one tickgate issued.
    pub fn parse(id: &str) -> Option<JobRef> {
        let mut parts = id.splitn(3, '-');
        let strategy = parts.next()?.parse().ok()?;
        let bucket_start_ms = parts.next()?.parse().ok()?;
        let seq = match parts.next()? {
            "run" => None,
            n => Some(n.parse().ok()?),
        };
        let job = JobRef {
            strategy,
            bucket_start_ms,
            seq,
        };
        // Reject non-canonical spellings (`+5`, `007`) so one job has one id.
        (job.id() == id).then_some(job)
    }
}

/// The job JSON, byte for byte as `dispatch.lua` / `dispatch_strategy.lua` write it (the
/// model store uses this, and tests compare the two streams).
pub fn job_json(job: &JobRef, user_id: u64, mode: JobMode, symbols: &[Ticker]) -> String {
    let mut json = format!(
        "{{\"job_id\":\"{}\",\"strategy_id\":{},\"user_id\":{user_id},\"bucket_start_ms\":{},\"mode\":\"{}\"",
        job.id(),
        job.strategy,
        job.bucket_start_ms,
        mode.as_str()
    );
    if mode == JobMode::PerTicker || !symbols.is_empty() {
        json.push_str(",\"symbols\":");
        json.push_str(&symbols_json(symbols));
    }
    json.push('}');
    json
}

/// The JSON array of `symbols`, as a job carries it: built here once per dispatch, so the
/// dispatch script pastes it instead of quoting every ticker in Lua.
pub fn symbols_json(symbols: &[Ticker]) -> String {
    let mut json =
        String::with_capacity(2 + symbols.iter().map(|t| t.as_str().len() + 3).sum::<usize>());
    json.push('[');
    for (i, t) in symbols.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push('"');
        // Tickers are printable ASCII: only '"' and '\' need escaping in JSON.
        for c in t.as_str().chars() {
            if c == '"' || c == '\\' {
                json.push('\\');
            }
            json.push(c);
        }
        json.push('"');
    }
    json.push(']');
    json
}

/// A job as a worker reads it (field `job` of `ALERT:JOBS`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Job {
    pub job_id: String,
    pub strategy_id: StrategyId,
    pub user_id: u64,
    pub bucket_start_ms: i64,
    pub mode: JobMode,
    /// Sorted; absent for runs without a symbol filter.
    #[serde(default)]
    pub symbols: Option<Vec<String>>,
}

/// A worker's result (field `result` of `ALERT:RESULTS`); only the first three fields are
/// required. Unknown fields are allowed: workers may report more than tickgate reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WorkerResult {
    pub job_id: String,
    pub strategy_id: StrategyId,
    pub success: bool,
    #[serde(default)]
    pub alerts: Vec<serde_json::Value>,
    /// Tickers the strategy actually used: replaces its universe (DESIGN §2.7).
    #[serde(default)]
    pub used_symbols: Option<Vec<String>>,
    #[serde(default)]
    pub error: Option<serde_json::Value>,
    #[serde(default)]
    pub execution_time_ms: Option<u64>,
}

/// Why a result entry could not be used; it goes to the dead-letter stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResultError {
    #[error("result entry has no `result` field")]
    MissingField,
    #[error("result is not valid JSON for a worker result: {reason}")]
    Json { reason: String },
    #[error("result job_id {job_id:?} is not a job id tickgate issued")]
    UnknownJob { job_id: String },
    #[error("result strategy_id {strategy_id} does not match job {job_id:?}")]
    StrategyMismatch {
        job_id: String,
        strategy_id: StrategyId,
    },
    #[error("result job_id {job_id:?} was never issued: {why}")]
    NeverIssued { job_id: String, why: &'static str },
    /// The key its job lives in holds another type (someone else wrote it): nothing of the
    /// job can be found or released there, so the result is set aside with the key named.
    #[error("result job_id {job_id:?} cannot be settled: {why}")]
    Unsettled { job_id: String, why: String },
}

/// Why a job id whose bucket start is not on a minute was never issued.
pub const BUCKET_START_OFF_MINUTE: &str =
    "its bucket start is not on a minute, as every bucket start is";

/// Why a job id the strategy's trigger state disowns was never issued.
pub const NEWER_THAN_ISSUED: &str =
    "its strategy never claimed that bucket, or issued fewer jobs in it";

/// Parses and checks a result payload. A result whose job id cannot be one tickgate issued
/// (malformed, another strategy's, a bucket start off the minute) is an error; whether an
/// id of the right shape was issued is for the store to say (`complete_jobs`).
pub fn parse_result(raw: Option<&str>) -> Result<(JobRef, WorkerResult), ResultError> {
    let raw = raw.ok_or(ResultError::MissingField)?;
    let result: WorkerResult = serde_json::from_str(raw).map_err(|e| ResultError::Json {
        reason: e.to_string(),
    })?;
    let job = JobRef::parse(&result.job_id).ok_or_else(|| ResultError::UnknownJob {
        job_id: excerpt(&result.job_id),
    })?;
    if job.strategy != result.strategy_id {
        return Err(ResultError::StrategyMismatch {
            job_id: excerpt(&result.job_id),
            strategy_id: result.strategy_id,
        });
    }
    // Every bucket of every timeframe starts on a UTC minute (DESIGN §2.2: minutes, hours,
    // or midnight in New York, whose offsets are whole hours).
    if job.bucket_start_ms.rem_euclid(MINUTE_MS) != 0 {
        return Err(ResultError::NeverIssued {
            job_id: excerpt(&result.job_id),
            why: BUCKET_START_OFF_MINUTE,
        });
    }
    Ok((job, result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_round_trip_and_reject_foreign_ids() {
        for job in [
            JobRef {
                strategy: 7,
                bucket_start_ms: 1_732_800_000_000,
                seq: Some(3),
            },
            JobRef {
                strategy: 7,
                bucket_start_ms: 1_732_800_000_000,
                seq: None,
            },
        ] {
            assert_eq!(JobRef::parse(&job.id()), Some(job));
        }
        for bad in [
            "",
            "7",
            "7-1",
            "7-1-x",
            "x-1-1",
            "7-1-+1",
            "7-01-1",
            "1732-abc-run",
        ] {
            assert_eq!(JobRef::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn job_json_is_what_workers_expect() {
        let job = JobRef {
            strategy: 123,
            bucket_start_ms: 1_732_800_000_000,
            seq: Some(1),
        };
        let symbols = vec![
            Ticker::parse("AAPL").unwrap(),
            Ticker::parse("A\"B\\C").unwrap(),
        ];
        let json = job_json(&job, 7, JobMode::PerTicker, &symbols);
        let parsed: Job = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(parsed.job_id, "123-1732800000000-1");
        assert_eq!(parsed.symbols.unwrap(), ["AAPL", "A\"B\\C"]);
        let global = job_json(&JobRef { seq: None, ..job }, 7, JobMode::Global, &[]);
        let parsed: Job = serde_json::from_str(&global).expect("valid JSON");
        assert_eq!((parsed.mode, parsed.symbols), (JobMode::Global, None));
        let unknown = json.replace("per_ticker", "sometimes");
        assert!(serde_json::from_str::<Job>(&unknown).is_err(), "{unknown}");
    }

    #[test]
    fn malformed_results_are_named() {
        assert_eq!(parse_result(None).unwrap_err(), ResultError::MissingField);
        assert!(matches!(
            parse_result(Some("{")),
            Err(ResultError::Json { .. })
        ));
        assert!(matches!(
            parse_result(Some(r#"{"job_id":"x","strategy_id":1,"success":true}"#)),
            Err(ResultError::UnknownJob { .. })
        ));
        assert!(matches!(
            parse_result(Some(r#"{"job_id":"2-5-1","strategy_id":1,"success":true}"#)),
            Err(ResultError::StrategyMismatch { .. })
        ));
        assert!(matches!(
            parse_result(Some(r#"{"job_id":"1-5-1","strategy_id":1,"success":true}"#)),
            Err(ResultError::NeverIssued { .. })
        ));
        let (job, r) = parse_result(Some(
            r#"{"job_id":"1-60000-1","strategy_id":1,"success":false,"used_symbols":["A"],"extra":1}"#,
        ))
        .expect("valid");
        assert_eq!((job.seq, r.success), (Some(1), false));
    }
}
