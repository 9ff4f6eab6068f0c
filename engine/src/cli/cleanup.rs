//! `tickgate cleanup [--dry-run]`: the engine's retention cleanup (DESIGN §2.6) by hand.
//! The same effective retention (the configured one, raised to the longest bucket of any
//! active timeframe in the catalog, so cleanup can never change a decision) and the same
//! chunked removal ([`Maintenance::cleanup`]); what is (or would be) removed is counted by
//! age first.

use std::collections::BTreeSet;

use super::error::CliError;
use super::human;
use crate::config::Config;
use crate::core::calendar::Timeframe;
use crate::core::catalog::Strategy;
use crate::core::retention::effective_retention_ms;
use crate::core::time::DAY_MS;
use crate::runtime::{Clock, SystemClock};
use crate::store::{Catalog, Maintenance, RedisStore, StoreError};

/// Ages at which the stale entries are split, beyond the effective retention: readable
/// bands (a quarter, half a year, a year, two) for "how old is the backlog".
const AGE_EDGES_MS: [i64; 4] = [90 * DAY_MS, 180 * DAY_MS, 365 * DAY_MS, 730 * DAY_MS];

pub async fn run(config: &Config, dry_run: bool) -> Result<String, CliError> {
    let store = RedisStore::connect(&config.redis).await?;
    let now_ms = SystemClock.now_ms();
    let active = active_timeframes(&store).await?;
    let configured = config.engine.retention_ms;
    let effective = effective_retention_ms(configured, &active);
    let cutoff_ms = now_ms.saturating_sub(effective);
    let bands = count_by_age(&store, now_ms, effective).await?;
    let stale: u64 = bands.iter().map(|(_, n)| n).sum();
    let mut out = format!(
        "retention {}{}; active timeframes: {}\nentries of {} older than {} (updated before {}): {}",
        human::duration(effective),
        if effective > configured {
            format!(
                ", raised from the configured {} to the longest active bucket",
                human::duration(configured)
            )
        } else {
            String::new()
        },
        if active.is_empty() {
            "none".to_owned()
        } else {
            active
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        },
        store.keys().updates(),
        human::duration(effective),
        human::instant(cutoff_ms),
        human::count(stale),
    );
    for (label, n) in &bands {
        out.push_str(&format!("\n  {label}: {}", human::count(*n)));
    }
    if dry_run {
        out.push_str("\ndry run: nothing removed");
        return Ok(out);
    }
    let report = store.cleanup(now_ms, configured, &active).await?;
    out.push_str(&format!(
        "\nremoved {} in {} call(s){}",
        human::count(report.removed),
        report.calls,
        if report.complete {
            ""
        } else {
            "; stopped at the per-run bound, run it again for the rest"
        }
    ));
    Ok(out)
}

/// The timeframes of the active strategies in the catalog (what the engine's cleanup uses).
async fn active_timeframes(store: &RedisStore) -> Result<Vec<Timeframe>, StoreError> {
    let catalog = store.catalog_all().await?;
    let tfs: BTreeSet<Timeframe> = catalog
        .iter()
        .filter_map(|(id, raw)| Strategy::from_catalog(*id, raw).ok())
        .filter(|(s, _)| s.active)
        .filter_map(|(s, _)| s.timeframe.ok())
        .collect();
    Ok(tfs.into_iter().collect())
}

/// Entries older than `effective`, by age band (`ZCOUNT`, one round trip).
async fn count_by_age(
    store: &RedisStore,
    now_ms: i64,
    effective: i64,
) -> Result<Vec<(String, u64)>, StoreError> {
    let mut edges = vec![effective];
    edges.extend(AGE_EDGES_MS.into_iter().filter(|e| *e > effective));
    let mut labels = Vec::new();
    let mut pipe = redis::pipe();
    let key = store.keys().updates();
    for (i, lower) in edges.iter().enumerate() {
        // Removed: score < now - effective, i.e. older than `effective`. A band holds the
        // ages in (lower, upper]: scores in [now - upper, now - lower).
        let max = format!("({}", now_ms.saturating_sub(*lower));
        match edges.get(i + 1) {
            Some(upper) => {
                let min = now_ms.saturating_sub(*upper).to_string();
                pipe.cmd("ZCOUNT").arg(&key).arg(min).arg(max);
                labels.push(format!(
                    "older than {}, up to {}",
                    crate::config::human_ms(*lower),
                    crate::config::human_ms(*upper)
                ));
            }
            None => {
                pipe.cmd("ZCOUNT").arg(&key).arg("-inf").arg(max);
                labels.push(format!("older than {}", crate::config::human_ms(*lower)));
            }
        }
    }
    let counts: Vec<u64> = pipe
        .query_async(&mut store.connection())
        .await
        .map_err(|e| StoreError::Redis {
            op: "ZCOUNT",
            reason: e.to_string(),
        })?;
    Ok(labels.into_iter().zip(counts).collect())
}
