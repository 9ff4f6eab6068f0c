//! `docs/schemas/` against the engine's own types: each schema's property list is exactly
//! the fields of the struct the engine serializes or parses (read from serde itself), a
//! property is `required` exactly when the struct refuses JSON without it, the schemas'
//! examples parse, and jobs the engine really dispatched (every mode) validate.

use serde::Deserialize;
use serde::de::{Deserializer, Visitor};
use serde_json::Value;
use tickgate::config::EngineConfig;
use tickgate::core::catalog::CatalogEntry;
use tickgate::core::jobs::{Job, WorkerResult};
use tickgate::store::Updates;
use tickgate_suite::schema::{self, DRAFT_2020_12};
use tickgate_suite::{T0_MS, World, engine_config};

/// Records the field names serde asks for when deserializing a struct, then stops.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(serde::de::Error::custom("field names recorded"))
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a struct"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The JSON field names of `T`, as its `Deserialize` impl declares them.
fn fields_of<'de, T: Deserialize<'de>>() -> Vec<&'static str> {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut fields));
    let mut names = fields.to_vec();
    names.sort_unstable();
    names
}

fn properties(schema: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = schema["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    names
}

/// For each property of the schema's first example: the struct refuses the example
/// without it exactly when the schema lists it as required.
fn required_matches<T: for<'de> Deserialize<'de>>(name: &str, schema: &Value) {
    let example = schema["examples"][0].clone();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for property in properties(schema) {
        let mut without = example.clone();
        assert!(
            without
                .as_object_mut()
                .expect("object")
                .remove(property)
                .is_some(),
            "{name}: the first example lacks {property}, so this check cannot test it"
        );
        let refused = serde_json::from_value::<T>(without).is_err();
        assert_eq!(
            refused,
            required.contains(&property),
            "{name}: property {property}: the engine refuses JSON without it = {refused}"
        );
    }
}

/// The schema parses, declares draft 2020-12, uses only checked keywords, and its
/// examples are valid and parse into `T`.
fn examples_hold<T: for<'de> Deserialize<'de>>(name: &str) -> Value {
    let schema = schema::load(name);
    assert_eq!(schema["$schema"], DRAFT_2020_12, "{name}");
    for example in schema["examples"].as_array().expect("examples") {
        assert_eq!(
            schema::violations(&schema, example),
            Vec::<String>::new(),
            "{example}"
        );
        serde_json::from_value::<T>(example.clone())
            .unwrap_or_else(|e| panic!("{name} example {example}: {e}"));
    }
    schema
}

#[test]
fn schema_properties_are_the_fields_of_the_engines_structs() {
    let job = examples_hold::<Job>("job");
    let result = examples_hold::<WorkerResult>("result");
    let entry = examples_hold::<CatalogEntry>("catalog-entry");
    assert_eq!(properties(&job), fields_of::<Job>());
    assert_eq!(properties(&result), fields_of::<WorkerResult>());
    assert_eq!(properties(&entry), fields_of::<CatalogEntry>());
    required_matches::<Job>("job", &job);
    required_matches::<WorkerResult>("result", &result);
    required_matches::<CatalogEntry>("catalog-entry", &entry);
}

#[test]
fn the_checker_rejects_what_the_engine_rejects() {
    let result = schema::load("result");
    for bad in [
        r#"{"job_id": "1-60000-1", "success": true}"#,
        r#"{"job_id": "1-60000-1", "strategy_id": 1, "success": "yes"}"#,
        r#"{"job_id": "1-60000-1", "strategy_id": -1, "success": true}"#,
        r#"{"job_id": "1-60000-1", "strategy_id": 1, "success": true, "used_symbols": "AAPL"}"#,
    ] {
        let value: Value = serde_json::from_str(bad).expect("JSON");
        assert!(!schema::violations(&result, &value).is_empty(), "{bad}");
        assert!(
            serde_json::from_value::<WorkerResult>(value).is_err(),
            "{bad}"
        );
    }
    let job = schema::load("job");
    let extra: Value = serde_json::json!({"job_id": "1-60000-run", "strategy_id": 1,
        "user_id": 0, "bucket_start_ms": 60000, "mode": "sometimes"});
    assert!(!schema::violations(&job, &extra).is_empty());
    let odd = serde_json::json!({"type": "object", "patternProperties": {}});
    assert!(
        schema::check_supported(&odd).is_err(),
        "unknown keywords are refused"
    );
}

/// Jobs the engine really wrote, one of each mode, and catalog entries as the engine
/// writes them, validate.
#[tokio::test]
async fn real_jobs_of_every_mode_and_catalog_entries_match_their_schemas() {
    let tickers = |t: &[&str]| Some(t.iter().map(|s| (*s).to_owned()).collect());
    let entries = [
        CatalogEntry::new(1, 7, "per ticker", "5m", tickers(&["AAPL", "MSFT"])),
        CatalogEntry::new(2, 7, "global", "1h", None),
        CatalogEntry::new(3, 7, "no valid ticker", "5m", tickers(&["not valid"])),
    ];
    let catalog_schema = schema::load("catalog-entry");
    for entry in &entries {
        let value: Value = serde_json::from_str(&entry.to_json()).expect("JSON");
        assert_eq!(
            schema::violations(&catalog_schema, &value),
            Vec::<String>::new()
        );
    }
    let world = World::builder("schemas:").catalog(entries).build().await;
    let updates = [("AAPL".to_owned(), T0_MS), ("MSFT".to_owned(), T0_MS)];
    world
        .market()
        .record_updates(T0_MS, &updates)
        .await
        .expect("record");
    let mut engine = world.engine(engine_config("schemas-1")).await;
    assert!(engine.step(T0_MS).await.ready);
    // Strategy-level mode: a whole-strategy job with the universe as symbols.
    let world_b = World::builder("schemas-b:")
        .catalog([CatalogEntry::new(
            4,
            7,
            "strategy",
            "5m",
            tickers(&["AAPL"]),
        )])
        .build()
        .await;
    world_b
        .market()
        .record_updates(T0_MS, &updates)
        .await
        .expect("record");
    let config = EngineConfig {
        per_ticker_throttle: false,
        ..engine_config("schemas-2")
    };
    assert!(world_b.engine(config).await.step(T0_MS).await.ready);

    let job_schema = schema::load("job");
    let mut modes = Vec::new();
    for w in [&world, &world_b] {
        let mut con = w.connection().await;
        let raw: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(w.keys().jobs())
            .arg("-")
            .arg("+")
            .query_async(&mut con)
            .await
            .expect("XRANGE");
        for (_, fields) in raw {
            let value: Value = serde_json::from_str(&fields[0].1).expect("job JSON");
            assert_eq!(
                schema::violations(&job_schema, &value),
                Vec::<String>::new(),
                "{value}"
            );
            modes.push((
                value["mode"].as_str().unwrap_or("").to_owned(),
                value.get("symbols").is_some(),
            ));
        }
    }
    modes.sort();
    let want = [
        ("global", false),
        ("per_ticker", true),
        ("strategy", false),
        ("strategy", true),
    ];
    let want: Vec<(String, bool)> = want.iter().map(|(m, s)| ((*m).to_owned(), *s)).collect();
    assert_eq!(modes, want, "one job of each mode and shape");
}
