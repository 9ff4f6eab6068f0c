//! Grouping of per-ticker dispatches into `dispatch.lua` calls.

use super::{DISPATCH_GROUP_STRATEGIES, DISPATCH_GROUP_TICKERS, TickerDispatch};

/// Splits per-ticker dispatches into the groups one `dispatch.lua` call serves: at most
/// [`DISPATCH_GROUP_STRATEGIES`] strategies, and no more tickers than
/// [`DISPATCH_GROUP_TICKERS`] once the group has one strategy (a single larger strategy gets
/// a call of its own).
pub(super) fn script_groups(requests: &[TickerDispatch]) -> Vec<&[TickerDispatch]> {
    let mut groups = Vec::new();
    let (mut begin, mut tickers) = (0, 0);
    for (i, r) in requests.iter().enumerate() {
        let full = i - begin >= DISPATCH_GROUP_STRATEGIES
            || (i > begin && tickers + r.tickers.len() > DISPATCH_GROUP_TICKERS);
        if full {
            groups.push(&requests[begin..i]);
            (begin, tickers) = (i, 0);
        }
        tickers += r.tickers.len();
    }
    if begin < requests.len() {
        groups.push(&requests[begin..]);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Ticker;
    use crate::timeframe::Bucket;

    fn request(strategy: u64, tickers: usize) -> TickerDispatch {
        TickerDispatch {
            strategy,
            user_id: 1,
            bucket: Bucket {
                start_ms: 0,
                end_ms: 60_000,
            },
            tickers: (0..tickers)
                .map(|i| Ticker::parse(&format!("T{i}")).expect("valid"))
                .collect(),
        }
    }

    #[test]
    fn groups_cover_every_request_in_order_within_both_bounds() {
        let sizes = [1, 3, 4_000, 2_000, 1, 9_000, 0, 1, 1];
        let mut requests: Vec<TickerDispatch> = Vec::new();
        for (i, n) in sizes.iter().cycle().take(200).enumerate() {
            requests.push(request(i as u64, *n));
        }
        let groups = script_groups(&requests);
        let flat: Vec<u64> = groups
            .iter()
            .flat_map(|g| g.iter().map(|r| r.strategy))
            .collect();
        assert_eq!(flat, (0..200).collect::<Vec<u64>>());
        for g in &groups {
            assert!(!g.is_empty() && g.len() <= DISPATCH_GROUP_STRATEGIES);
            let tickers: usize = g.iter().map(|r| r.tickers.len()).sum();
            assert!(
                g.len() == 1 || tickers <= DISPATCH_GROUP_TICKERS,
                "{tickers} tickers"
            );
        }
        // The 9,000-ticker strategy is above the ticker bound: it always goes alone.
        assert!(
            groups
                .iter()
                .filter(|g| g.iter().any(|r| r.tickers.len() == 9_000))
                .all(|g| g.len() == 1)
        );
        assert!(script_groups(&[]).is_empty());
    }
}
