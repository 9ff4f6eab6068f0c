//! [`Dispatch`] on Redis: per-ticker claims and their jobs through `dispatch.lua` (many
//! strategies per call, many calls per pipeline), whole-strategy runs through
//! `dispatch_strategy.lua`. Each claim is atomic with its job.

use super::{RedisStore, command_error, pipelined};
use crate::core::ledger::WriteBack;
use crate::core::ticker::check_timestamp;
use crate::limits::{DISPATCH_GROUP_STRATEGIES, DISPATCH_GROUP_TICKERS, PIPELINE_CALLS_MAX};
use crate::store::{
    DamagedKey, Dispatch, DispatchOutcome, Dispatched, RunOutcome, StoreError, StrategyDispatch,
    TickerDispatch, check_bucket, trigger_ttl_ms,
};

impl Dispatch for RedisStore {
    async fn dispatch_tickers(
        &self,
        now_ms: i64,
        requests: &[TickerDispatch],
    ) -> Result<Vec<DispatchOutcome>, StoreError> {
        check_timestamp(now_ms)?;
        for r in requests {
            check_bucket(r.bucket)?;
        }
        let scripts = self.scripts();
        let ttl_ms = |r: &TickerDispatch| trigger_ttl_ms(r.bucket, now_ms, self.trigger_grace_ms);
        let mut out = Vec::with_capacity(requests.len());
        for batch in requests.chunks(PIPELINE_CALLS_MAX) {
            let groups = script_groups(batch);
            let calls: Vec<_> = groups
                .iter()
                .map(|group| scripts.dispatch(self.keys(), group, self.trigger_grace_ms, ttl_ms))
                .collect();
            let replies = pipelined(self, &scripts.dispatch, &calls).await?;
            for (group, reply) in groups.iter().zip(replies) {
                let answers = scripts.decode_dispatch(reply, group)?;
                for (r, answer) in group.iter().zip(answers) {
                    out.push(match answer {
                        Ok(answer) => Ok(answer.map(|(job, members)| Dispatched {
                            job,
                            tickers: match members {
                                Some(members) => self.parse_members(members),
                                None => r.tickers.clone(),
                            },
                        })),
                        Err(found) => Err(DamagedKey {
                            strategy: r.strategy,
                            key: self.keys().triggers(r.strategy),
                            expected: "hash",
                            found,
                        }),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn dispatch_strategies(
        &self,
        now_ms: i64,
        requests: &[StrategyDispatch],
    ) -> Result<Vec<RunOutcome>, StoreError> {
        check_timestamp(now_ms)?;
        for r in requests {
            check_bucket(r.bucket)?;
        }
        let scripts = self.scripts();
        let mut out = Vec::with_capacity(requests.len());
        for batch in requests.chunks(PIPELINE_CALLS_MAX) {
            let calls: Vec<_> = batch
                .iter()
                .map(|r| {
                    let ttl_ms = trigger_ttl_ms(r.bucket, now_ms, self.trigger_grace_ms);
                    scripts.dispatch_strategy(self.keys(), r, ttl_ms)
                })
                .collect();
            let replies = pipelined(self, &scripts.dispatch_strategy, &calls).await?;
            for (r, reply) in batch.iter().zip(replies) {
                out.push(
                    scripts
                        .decode_dispatch_strategy(reply)?
                        .map_err(|found| DamagedKey {
                            strategy: r.strategy,
                            key: self.keys().strategy_run(r.strategy),
                            expected: "string",
                            found,
                        }),
                );
            }
        }
        Ok(out)
    }

    async fn restore_claims(&self, now_ms: i64, back: &WriteBack) -> Result<u64, StoreError> {
        check_timestamp(now_ms)?;
        let scripts = self.scripts();
        let grace = self.trigger_grace_ms;
        let mut written = 0;
        for batch in back.tickers.chunks(PIPELINE_CALLS_MAX) {
            for c in batch {
                check_bucket(c.bucket)?;
            }
            let calls: Vec<_> = batch
                .iter()
                .map(|c| {
                    let ttl_ms = trigger_ttl_ms(c.bucket, now_ms, grace);
                    scripts.restore_claims(self.keys(), c, grace, ttl_ms)
                })
                .collect();
            for reply in pipelined(self, &scripts.restore_claims, &calls).await? {
                written += scripts.restore_claims.decode::<u64>(reply)?;
            }
        }
        for batch in back.runs.chunks(PIPELINE_CALLS_MAX) {
            let mut pipe = redis::pipe();
            for (strategy, bucket) in batch {
                check_bucket(*bucket)?;
                // NX: a run recorded meanwhile (by another instance) stays.
                pipe.cmd("SET")
                    .arg(self.keys().strategy_run(*strategy))
                    .arg(bucket.start_ms)
                    .arg("PX")
                    .arg(trigger_ttl_ms(*bucket, now_ms, grace))
                    .arg("NX");
            }
            let set: Vec<Option<String>> = pipe
                .query_async(&mut self.connection())
                .await
                .map_err(|e| command_error("SET runs", e))?;
            written += set.iter().filter(|r| r.is_some()).count() as u64;
        }
        Ok(written)
    }
}

/// Splits per-ticker dispatches into the groups one `dispatch.lua` call serves: at most
/// [`DISPATCH_GROUP_STRATEGIES`] strategies, and no more tickers than
/// [`DISPATCH_GROUP_TICKERS`] once the group has one strategy (a single larger strategy gets
/// a call of its own).
fn script_groups(requests: &[TickerDispatch]) -> Vec<&[TickerDispatch]> {
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
    use crate::core::calendar::Bucket;
    use crate::core::ticker::Ticker;

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
