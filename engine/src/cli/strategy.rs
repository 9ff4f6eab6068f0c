//! `tickgate strategy put|rm|list|import`: the catalog, written through
//! [`Catalog::catalog_write`] (the script that records each change in the change log every
//! engine instance watches), so running engines pick a write up at their next step.
//!
//! Files are checked whole before anything is written: the JSON, each entry's fields, its
//! timeframe, every universe ticker and the universe's size. The engine would skip or trim
//! such entries; a person writing them gets every problem named instead, and nothing is
//! written.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::args::StrategyCommand;
use super::error::{CliError, StrategyFileError};
use super::human;
use crate::config::Config;
use crate::core::calendar::Timeframe;
use crate::core::catalog::{CatalogEntry, Strategy, Universe, UniverseField};
use crate::core::ticker::{InputError, StrategyId, Ticker};
use crate::store::{Catalog, RedisStore};

pub async fn run(config: &Config, command: StrategyCommand) -> Result<String, CliError> {
    let max_universe = config.engine.max_universe;
    match command {
        StrategyCommand::Put { file } => {
            let value = read_json(&file, "one strategy JSON object")?;
            let entry = checked(&file, [value].into_iter(), max_universe)?;
            write(config, &entry).await
        }
        StrategyCommand::Import { file } => {
            let Value::Array(values) = read_json(&file, "a JSON array of strategies")? else {
                return Err(StrategyFileError::Json {
                    path: file,
                    expected: "a JSON array of strategies",
                    reason: "the top level is not an array".into(),
                }
                .into());
            };
            let entries = checked(&file, values.into_iter(), max_universe)?;
            write(config, &entries).await
        }
        StrategyCommand::Rm { id } => remove(config, &id).await,
        StrategyCommand::List { json } => list(config, json).await,
    }
}

fn read_json(path: &Path, expected: &'static str) -> Result<Value, StrategyFileError> {
    let mut text = String::new();
    let read = if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    read.map_err(|e| StrategyFileError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| StrategyFileError::Json {
        path: path.to_owned(),
        expected,
        reason: e.to_string(),
    })
}

/// Every entry checked; the stored JSON of each (the object as given: fields tickgate does
/// not read are the platform's), or every problem found.
fn checked(
    path: &Path,
    values: impl Iterator<Item = Value>,
    max_universe: usize,
) -> Result<Vec<(StrategyId, String)>, StrategyFileError> {
    let mut problems = Vec::new();
    let mut entries = Vec::new();
    let mut ids = BTreeSet::new();
    for (index, value) in values.enumerate() {
        match check_entry(&value, max_universe) {
            Ok(id) if !ids.insert(id) => {
                problems.push(format!("strategy {id} appears more than once"));
            }
            Ok(id) => entries.push((id, value.to_string())),
            Err(found) => problems.extend(found.into_iter().map(|p| format!("entry {index}: {p}"))),
        }
    }
    if problems.is_empty() && entries.is_empty() {
        problems.push("no strategy in the file".into());
    }
    if problems.is_empty() {
        Ok(entries)
    } else {
        Err(StrategyFileError::Invalid {
            path: path.to_owned(),
            problems,
        })
    }
}

fn check_entry(value: &Value, max_universe: usize) -> Result<StrategyId, Vec<String>> {
    let entry: CatalogEntry =
        serde_json::from_value(value.clone()).map_err(|e| vec![format!("not a strategy: {e}")])?;
    let id = entry.id;
    let mut problems = Vec::new();
    if let Err(e) = entry.timeframe.parse::<Timeframe>() {
        problems.push(format!("strategy {id}: {e}"));
    }
    match &entry.universe {
        Some(UniverseField::Word(w)) if !(w.is_empty() || w.eq_ignore_ascii_case("all")) => {
            problems.push(format!(
                "strategy {id}: universe {w:?} is invalid: must be a list of tickers or \"all\""
            ));
        }
        Some(UniverseField::List(list)) => {
            for raw in list {
                if let Err(e) = Ticker::parse(raw) {
                    problems.push(format!("strategy {id}: {e}"));
                }
            }
            if list.len() > max_universe {
                let e = InputError::UniverseTooLarge {
                    strategy: id,
                    size: list.len(),
                    max: max_universe,
                };
                problems.push(e.to_string());
            }
        }
        _ => {}
    }
    if problems.is_empty() {
        Ok(id)
    } else {
        Err(problems)
    }
}

async fn write(config: &Config, entries: &[(StrategyId, String)]) -> Result<String, CliError> {
    let store = RedisStore::connect(&config.redis).await?;
    for (id, json) in entries {
        store.catalog_write(*id, Some(json), None).await?;
    }
    let ids: Vec<String> = entries.iter().map(|(id, _)| id.to_string()).collect();
    Ok(format!(
        "wrote {} strateg{} to {}: {}",
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" },
        store.keys().catalog(),
        ids.join(", ")
    ))
}

async fn remove(config: &Config, raw: &str) -> Result<String, CliError> {
    let id: StrategyId = raw.trim().parse().map_err(|_| CliError::Argument {
        name: "strategy id",
        value: raw.to_owned(),
        rule: "must be a whole number (the catalog key)",
    })?;
    let store = RedisStore::connect(&config.redis).await?;
    if store.catalog_get(&[id]).await?.pop().flatten().is_none() {
        return Ok(format!(
            "strategy {id} is not in the catalog; nothing removed"
        ));
    }
    store.catalog_write(id, None, None).await?;
    Ok(format!("removed strategy {id}"))
}

async fn list(config: &Config, json: bool) -> Result<String, CliError> {
    let store = RedisStore::connect(&config.redis).await?;
    let catalog = store.catalog_all().await?;
    if json {
        let entries: Vec<Value> = catalog
            .values()
            .map(|raw| serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.clone())))
            .collect();
        return Ok(Value::Array(entries).to_string());
    }
    let mut out = format!(
        "{} strateg{} in {}\n{:>10}  {:>8}  {:<8}  {:<9}  {:<16}  name",
        human::count(catalog.len() as u64),
        if catalog.len() == 1 { "y" } else { "ies" },
        store.keys().catalog(),
        "id",
        "user",
        "active",
        "timeframe",
        "universe"
    );
    for (id, raw) in &catalog {
        out.push('\n');
        out.push_str(&row(*id, raw));
    }
    Ok(out)
}

fn row(id: StrategyId, raw: &str) -> String {
    match Strategy::from_catalog(id, raw) {
        Ok((s, rejected)) => {
            let universe = match &s.universe {
                Universe::Global => "all".to_owned(),
                Universe::Tickers(t) => format!("{} tickers", human::count(t.len() as u64)),
                Universe::Missing => "none valid".to_owned(),
            };
            let universe = if rejected.is_empty() {
                universe
            } else {
                format!("{universe} (+{} invalid)", rejected.len())
            };
            let timeframe = match &s.timeframe {
                Ok(tf) => tf.to_string(),
                Err(_) => "invalid".to_owned(),
            };
            let active = if s.active { "yes" } else { "no" };
            format!(
                "{id:>10}  {:>8}  {active:<8}  {timeframe:<9}  {universe:<16}  {}",
                s.user_id, s.name
            )
        }
        Err(e) => format!("{id:>10}  unusable: {e}"),
    }
}
