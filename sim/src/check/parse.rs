//! The checker reads the wire formats itself (DESIGN §2.1, §2.8), from `serde_json::Value`,
//! so that neither the engine's job and catalog types nor its ticker rules stand between
//! the events and the verdict.

use serde_json::Value;

/// Longest ticker DESIGN §2.1 allows, in bytes.
const MAX_TICKER_BYTES: usize = 64;

/// How a job selects symbols (the job's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// `per_ticker`: `symbols` are the tickers it claimed.
    PerTicker,
    /// `strategy`: the whole strategy (its universe, or no filter).
    Strategy,
    /// `global`: a global strategy, no filter.
    Global,
}

/// A job as read from the jobs stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobView {
    pub id: String,
    pub strategy: u64,
    pub bucket_start_ms: i64,
    pub mode: Mode,
    /// Normalised tickers (absent for unfiltered runs).
    pub symbols: Vec<String>,
}

/// Parses a job payload; `None` when it is not a job DESIGN §2.8 describes.
pub fn job(payload: &str) -> Option<JobView> {
    let v: Value = serde_json::from_str(payload).ok()?;
    let mode = match v.get("mode")?.as_str()? {
        "per_ticker" => Mode::PerTicker,
        "strategy" => Mode::Strategy,
        "global" => Mode::Global,
        _ => return None,
    };
    let symbols = match v.get("symbols") {
        None | Some(Value::Null) => Vec::new(),
        Some(list) => list
            .as_array()?
            .iter()
            .map(|s| s.as_str().and_then(ticker))
            .collect::<Option<Vec<String>>>()?,
    };
    Some(JobView {
        id: v.get("job_id")?.as_str()?.to_owned(),
        strategy: v.get("strategy_id")?.as_u64()?,
        bucket_start_ms: v.get("bucket_start_ms")?.as_i64()?,
        mode,
        symbols,
    })
}

/// A catalog entry as the checker understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub timeframe: String,
    /// `None`: global (`"all"`, empty or absent). `Some`: the valid tickers of an explicit
    /// list (possibly none, a missing universe).
    pub universe: Option<Vec<String>>,
    pub active: bool,
}

/// Parses a catalog entry; `None` when it is not an entry the engine could use (bad JSON,
/// an id other than its key, a universe word other than `all`).
pub fn definition(key: u64, json: &str) -> Option<Definition> {
    let v: Value = serde_json::from_str(json).ok()?;
    if v.get("id")?.as_u64()? != key {
        return None;
    }
    let universe = match v.get("universe") {
        None | Some(Value::Null) => None,
        Some(Value::String(w)) if w.is_empty() || w.eq_ignore_ascii_case("all") => None,
        Some(Value::Array(list)) if list.is_empty() => None,
        Some(Value::Array(list)) => Some(
            list.iter()
                .filter_map(|s| s.as_str().and_then(ticker))
                .collect(),
        ),
        Some(_) => return None,
    };
    Some(Definition {
        timeframe: v.get("timeframe")?.as_str()?.to_owned(),
        universe,
        active: v.get("active").and_then(Value::as_bool).unwrap_or(true),
    })
}

/// A ticker normalised as DESIGN §2.1 says (trimmed; 1..=64 bytes of printable ASCII
/// without whitespace); `None` if it is not one.
pub fn ticker(raw: &str) -> Option<String> {
    let t = raw.trim();
    let valid =
        !t.is_empty() && t.len() <= MAX_TICKER_BYTES && t.bytes().all(|b| b.is_ascii_graphic());
    valid.then(|| t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_and_entries_parse_from_their_json() {
        let j = job(r#"{"job_id":"7-60000-1","strategy_id":7,"user_id":1,"bucket_start_ms":60000,"mode":"per_ticker","symbols":["A","B"]}"#)
            .unwrap();
        assert_eq!(
            (j.strategy, j.bucket_start_ms, j.mode, j.symbols.len()),
            (7, 60_000, Mode::PerTicker, 2)
        );
        let g = job(r#"{"job_id":"7-0-run","strategy_id":7,"bucket_start_ms":0,"mode":"global"}"#)
            .unwrap();
        assert!(g.symbols.is_empty() && g.mode == Mode::Global);
        assert_eq!(
            job(r#"{"job_id":"x","strategy_id":7,"bucket_start_ms":0,"mode":"odd"}"#),
            None
        );
        let d = definition(
            3,
            r#"{"id":3,"timeframe":"5m","universe":["A"," B ","not valid"]}"#,
        )
        .unwrap();
        assert_eq!(d.universe, Some(vec!["A".to_owned(), "B".to_owned()]));
        assert!(d.active);
        let all = definition(
            3,
            r#"{"id":3,"timeframe":"1d","universe":"ALL","active":false}"#,
        )
        .unwrap();
        assert_eq!((all.universe, all.active), (None, false));
        assert_eq!(definition(4, r#"{"id":3,"timeframe":"1d"}"#), None);
        assert_eq!(ticker(&"X".repeat(65)), None);
    }
}
