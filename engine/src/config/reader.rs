//! The one collect-every-error TOML walker, shared by `tickgate.toml` and the simulator's
//! scenario files (NautilusTrader's single config error collector): a target keeps its
//! default when its key is absent or bad, and every problem is recorded, never returned
//! early.

use std::collections::BTreeSet;
use std::fmt;

use crate::core::time::{DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS};

/// One problem in a configuration or scenario file. Every variant names where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("cannot read {path}: {reason}")]
    Io { path: String, reason: String },
    #[error("not valid TOML: {reason}")]
    Syntax { reason: String },
    #[error("{path}: unknown setting")]
    UnknownKey { path: String },
    #[error("{path}: expected {expected}")]
    WrongType {
        path: String,
        expected: &'static str,
    },
    #[error("{path}: required")]
    Missing { path: String },
    #[error("{path} = {value}: {rule}")]
    OutOfRange {
        path: String,
        value: String,
        rule: String,
    },
    #[error("environment {name}={value:?}: {rule}")]
    Env {
        name: String,
        value: String,
        rule: &'static str,
    },
}

impl Problem {
    /// The `section.key` the problem is about (the file or variable for the others).
    pub fn path(&self) -> &str {
        match self {
            Problem::Io { path, .. }
            | Problem::UnknownKey { path }
            | Problem::WrongType { path, .. }
            | Problem::Missing { path }
            | Problem::OutOfRange { path, .. } => path,
            Problem::Env { name, .. } => name,
            Problem::Syntax { .. } => "",
        }
    }
}

/// Every problem found in one file, in the order found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>, &'static str);

impl Problems {
    /// The problems of a `subject` ("configuration", "scenario").
    pub fn new(subject: &'static str, problems: Vec<Problem>) -> Problems {
        Problems(problems, subject)
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} problem(s) in the {}:", self.0.len(), self.1)?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// Parses TOML text into a table; a syntax error is the only problem reported.
pub(crate) fn parse_table(text: &str, subject: &'static str) -> Result<toml::Table, Problems> {
    text.parse().map_err(|e: toml::de::Error| {
        Problems::new(
            subject,
            vec![Problem::Syntax {
                reason: e.to_string(),
            }],
        )
    })
}

/// `1 day`, `2 h`, `100 ms`…: ranges in rules read like the files' comments.
pub fn human_ms(ms: i64) -> String {
    let units = [
        (DAY_MS, "day"),
        (HOUR_MS, "h"),
        (MINUTE_MS, "min"),
        (SECOND_MS, "s"),
    ];
    for (unit, name) in units {
        if ms != 0 && ms % unit == 0 {
            let n = ms / unit;
            let plural = if name == "day" && n != 1 { "s" } else { "" };
            return format!("{n} {name}{plural}");
        }
    }
    format!("{ms} ms")
}

/// Reads the keys of one table, recording what it saw and every problem.
pub struct Reader<'a, 'e> {
    prefix: String,
    table: Option<&'a toml::Table>,
    seen: BTreeSet<String>,
    /// Where problems go; public so that callers add the problems of their own rules.
    pub errors: &'e mut Vec<Problem>,
}

impl<'a, 'e> Reader<'a, 'e> {
    /// A reader of `table` (absent: every key keeps its default), whose keys are reported
    /// as `prefix.key`.
    pub fn new(
        prefix: String,
        table: Option<&'a toml::Table>,
        errors: &'e mut Vec<Problem>,
    ) -> Self {
        Reader {
            prefix,
            table,
            seen: BTreeSet::new(),
            errors,
        }
    }

    /// The path of `key` in problems.
    pub fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    /// The raw value of `key`, marking it as known.
    pub fn get(&mut self, key: &str) -> Option<&'a toml::Value> {
        self.seen.insert(key.to_owned());
        self.table?.get(key)
    }

    /// Records that `key` has the wrong type.
    pub fn wrong_type(&mut self, key: &str, expected: &'static str) {
        let path = self.path(key);
        self.errors.push(Problem::WrongType { path, expected });
    }

    /// Records that `key`'s `value` breaks `rule`.
    pub fn out_of_range(&mut self, key: &str, value: impl ToString, rule: String) {
        let path = self.path(key);
        self.errors.push(Problem::OutOfRange {
            path,
            value: value.to_string(),
            rule,
        });
    }

    /// Reports `key` as missing when it is absent.
    pub fn require(&mut self, key: &str) {
        if !self.table.is_some_and(|t| t.contains_key(key)) {
            let path = self.path(key);
            self.errors.push(Problem::Missing { path });
        }
    }

    /// A sub-table (`[tickers]`), or `None` when absent or not a table.
    pub fn table(&mut self, key: &str) -> Option<&'a toml::Table> {
        match self.get(key)? {
            toml::Value::Table(t) => Some(t),
            _ => {
                self.wrong_type(key, "a table");
                None
            }
        }
    }

    /// An integer in `min..=max`; `rule` words the range.
    pub fn int(
        &mut self,
        key: &str,
        min: i64,
        max: i64,
        rule: impl FnOnce() -> String,
    ) -> Option<i64> {
        match self.get(key).map(toml::Value::as_integer)? {
            Some(v) if (min..=max).contains(&v) => Some(v),
            Some(v) => {
                self.out_of_range(key, v, rule());
                None
            }
            None => {
                self.wrong_type(key, "an integer");
                None
            }
        }
    }

    /// Milliseconds in `min..=max`.
    pub fn opt_ms(&mut self, key: &str, min: i64, max: i64) -> Option<i64> {
        self.int(key, min, max, || {
            format!("must be {}..={}", human_ms(min), human_ms(max))
        })
    }

    /// Milliseconds in `min..=max` into `target`.
    pub fn ms(&mut self, key: &str, target: &mut i64, min: i64, max: i64) {
        if let Some(v) = self.opt_ms(key, min, max) {
            *target = v;
        }
    }

    /// A count in `min..=max`, stored in the field's integer type.
    pub fn count<T: TryFrom<i64>>(&mut self, key: &str, target: &mut T, min: i64, max: i64) {
        let rule = || format!("must be {min}..={max}");
        if let Some(v) = self
            .int(key, min, max, rule)
            .and_then(|v| T::try_from(v).ok())
        {
            *target = v;
        }
    }

    /// A finite number in `min..=max`; integers are accepted (`burst_multiplier = 5`).
    pub fn float(&mut self, key: &str, target: &mut f64, min: f64, max: f64) {
        let v = match self.get(key) {
            None => return,
            Some(toml::Value::Float(v)) => *v,
            Some(toml::Value::Integer(v)) => *v as f64,
            Some(_) => return self.wrong_type(key, "a number"),
        };
        if v.is_finite() && (min..=max).contains(&v) {
            *target = v;
        } else {
            self.out_of_range(key, v, format!("must be a number in {min}..={max}"));
        }
    }

    /// `true` or `false`.
    pub fn boolean(&mut self, key: &str, target: &mut bool) {
        match self.get(key).map(toml::Value::as_bool) {
            None => {}
            Some(Some(v)) => *target = v,
            Some(None) => self.wrong_type(key, "true or false"),
        }
    }

    /// A string.
    pub fn string(&mut self, key: &str, target: &mut String) {
        match self.get(key).map(toml::Value::as_str) {
            None => {}
            Some(Some(v)) => v.clone_into(target),
            Some(None) => self.wrong_type(key, "a string"),
        }
    }

    /// Reports every key of the table that no reader method asked for.
    pub fn finish(self) {
        let Some(table) = self.table else { return };
        for key in table.keys() {
            if !self.seen.contains(key) {
                let path = self.path(key);
                self.errors.push(Problem::UnknownKey { path });
            }
        }
    }
}
