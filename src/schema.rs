//! A checker for the JSON Schemas under `docs/schemas/`, limited to the keywords they use,
//! so the tests need no schema-validator dependency. A schema using any other assertion
//! keyword is refused ([`SchemaError`]) rather than half-checked.

use serde_json::{Map, Value};

/// Keywords that only annotate: they never make a value invalid.
const ANNOTATIONS: &[&str] = &["$schema", "$comment", "title", "description", "examples"];

/// Assertion keywords this checker evaluates.
const CHECKED: &[&str] = &[
    "type",
    "enum",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "anyOf",
    "minimum",
    "minLength",
    "maxLength",
];

/// The draft every schema declares.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// The schema `docs/schemas/<name>.schema.json`, parsed and checked to use only what
/// [`violations`] evaluates; panics naming the file and the problem.
pub fn load(name: &str) -> Value {
    let path = format!(
        "{}/docs/schemas/{name}.schema.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let schema: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"));
    if let Err(e) = check_supported(&schema) {
        panic!("{path}: {e}");
    }
    schema
}

/// A schema this checker cannot evaluate faithfully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// JSON pointer of the offending schema object.
    pub at: String,
    pub reason: String,
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "schema at {:?}: {}", self.at, self.reason)
    }
}

/// Checks that every keyword of `schema` (and of its subschemas) is one this module
/// evaluates or an annotation.
pub fn check_supported(schema: &Value) -> Result<(), SchemaError> {
    supported(schema, "")
}

fn supported(schema: &Value, at: &str) -> Result<(), SchemaError> {
    let Value::Object(map) = schema else {
        return Err(SchemaError {
            at: at.to_owned(),
            reason: "a schema must be an object".to_owned(),
        });
    };
    for (keyword, value) in map {
        if !ANNOTATIONS.contains(&keyword.as_str()) && !CHECKED.contains(&keyword.as_str()) {
            return Err(SchemaError {
                at: at.to_owned(),
                reason: format!("keyword {keyword:?} is not one this checker evaluates"),
            });
        }
        match (keyword.as_str(), value) {
            ("properties", Value::Object(props)) => {
                for (name, sub) in props {
                    supported(sub, &format!("{at}/properties/{name}"))?;
                }
            }
            ("items" | "additionalProperties", sub @ Value::Object(_)) => {
                supported(sub, &format!("{at}/{keyword}"))?;
            }
            ("anyOf", Value::Array(subs)) => {
                for (i, sub) in subs.iter().enumerate() {
                    supported(sub, &format!("{at}/anyOf/{i}"))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every way `value` breaks `schema`, each naming the JSON pointer and the rule; empty
/// when it is valid. Call [`check_supported`] on the schema first.
pub fn violations(schema: &Value, value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    check(schema, value, "", &mut found);
    found
}

fn check(schema: &Value, value: &Value, at: &str, found: &mut Vec<String>) {
    let Value::Object(s) = schema else {
        return;
    };
    if let Some(types) = s.get("type") {
        let allowed: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !allowed.iter().any(|t| has_type(value, t)) {
            found.push(format!("{at}: {value} is not of type {allowed:?}"));
            return;
        }
    }
    if let Some(Value::Array(options)) = s.get("enum")
        && !options.contains(value)
    {
        found.push(format!("{at}: {value} is not one of {options:?}"));
    }
    if let Some(Value::Array(subs)) = s.get("anyOf")
        && !subs.iter().any(|sub| violations(sub, value).is_empty())
    {
        found.push(format!("{at}: {value} matches none of anyOf"));
    }
    check_bounds(s, value, at, found);
    match value {
        Value::Object(fields) => check_object(s, fields, at, found),
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item_schema, item, &format!("{at}/{i}"), found);
                }
            }
        }
        _ => {}
    }
}

fn check_bounds(s: &Map<String, Value>, value: &Value, at: &str, found: &mut Vec<String>) {
    let minimum = s.get("minimum").and_then(Value::as_f64);
    if let (Some(min), Some(n)) = (minimum, value.as_f64())
        && n < min
    {
        found.push(format!("{at}: {value} is below the minimum {min}"));
    }
    let Value::String(text) = value else {
        return;
    };
    let chars = text.chars().count() as u64;
    if let Some(min) = s.get("minLength").and_then(Value::as_u64)
        && chars < min
    {
        found.push(format!("{at}: {value} is shorter than {min}"));
    }
    if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
        && chars > max
    {
        found.push(format!("{at}: {value} is longer than {max}"));
    }
}

fn check_object(
    s: &Map<String, Value>,
    fields: &Map<String, Value>,
    at: &str,
    found: &mut Vec<String>,
) {
    if let Some(Value::Array(required)) = s.get("required") {
        for name in required.iter().filter_map(Value::as_str) {
            if !fields.contains_key(name) {
                found.push(format!("{at}: required property {name:?} is missing"));
            }
        }
    }
    let props = s.get("properties").and_then(Value::as_object);
    for (name, field) in fields {
        let pointer = format!("{at}/{name}");
        match props.and_then(|p| p.get(name)) {
            Some(sub) => check(sub, field, &pointer, found),
            None => match s.get("additionalProperties") {
                Some(Value::Bool(false)) => {
                    found.push(format!("{pointer}: property {name:?} is not allowed"));
                }
                Some(sub @ Value::Object(_)) => check(sub, field, &pointer, found),
                _ => {}
            },
        }
    }
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        _ => false,
    }
}
