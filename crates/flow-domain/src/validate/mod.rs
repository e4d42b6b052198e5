//! Parsing of request documents into valid domain values, reporting every problem at once with
//! its field path. Input is raw JSON so that unknown fields and wrong types are reported the same
//! way as rule violations.

pub mod flow;
mod graph;
pub mod identity;
pub mod template;

use crate::error::FieldError;
use crate::limits::{Limits, value_depth};
use serde_json::{Map, Value};

/// The problems found so far.
#[derive(Debug, Default)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    /// Records a problem at `field`.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::at(field, message));
    }
    /// Records a problem of the whole document.
    pub fn general(&mut self, message: impl Into<String>) {
        self.0.push(FieldError::general(message));
    }
    /// `Ok(value)` when nothing was recorded, else every problem.
    pub fn finish<T>(self, value: T) -> Result<T, Vec<FieldError>> {
        if self.0.is_empty() { Ok(value) } else { Err(self.0) }
    }
    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Joins a path prefix and a key (`graph` + `nodes` = `graph.nodes`).
pub(crate) fn path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
}

/// The document as an object, or a general error.
pub(crate) fn as_object<'a>(
    doc: &'a Value,
    what: &str,
    errors: &mut Errors,
) -> Option<&'a Map<String, Value>> {
    let obj = doc.as_object();
    if obj.is_none() {
        errors.general(format!("The {what} must be a JSON object."));
    }
    obj
}

/// Whether the document `obj` nests no deeper than `limits` allow (the document itself is one
/// level); reports each top-level field that goes deeper.
pub(crate) fn check_depth(obj: &Map<String, Value>, limits: &Limits, errors: &mut Errors) -> bool {
    let before = errors.0.len();
    for (key, value) in obj {
        if 1 + value_depth(value) > limits.max_depth {
            errors.add(key.as_str(), limits.document_too_deep());
        }
    }
    errors.0.len() == before
}

/// Reports every key of `obj` that is not in `allowed`.
pub(crate) fn reject_unknown(obj: &Map<String, Value>, allowed: &[&str], prefix: &str, errors: &mut Errors) {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            errors.add(path(prefix, key), format!("Unknown field \"{key}\"."));
        }
    }
}

/// An optional string (absent or `null` give `None`).
pub(crate) fn opt_string(
    obj: &Map<String, Value>,
    key: &str,
    prefix: &str,
    errors: &mut Errors,
) -> Option<String> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.add(path(prefix, key), format!("{key} must be a string."));
            None
        }
    }
}

/// A required non-empty string; `missing` is the message when absent, `null` or blank.
pub(crate) fn req_string(
    obj: &Map<String, Value>,
    key: &str,
    prefix: &str,
    missing: &str,
    errors: &mut Errors,
) -> Option<String> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            errors.add(path(prefix, key), missing);
            None
        }
        Some(_) => {
            errors.add(path(prefix, key), format!("{key} must be a string."));
            None
        }
    }
}

/// An optional object (absent or `null` give an empty map).
pub(crate) fn opt_object(
    obj: &Map<String, Value>,
    key: &str,
    prefix: &str,
    errors: &mut Errors,
) -> Map<String, Value> {
    match obj.get(key) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            errors.add(path(prefix, key), format!("{key} must be an object."));
            Map::new()
        }
    }
}

/// An optional boolean.
pub(crate) fn opt_bool(
    obj: &Map<String, Value>,
    key: &str,
    prefix: &str,
    errors: &mut Errors,
) -> Option<bool> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            errors.add(path(prefix, key), format!("{key} must be a boolean."));
            None
        }
    }
}

/// Parses a cron expression (5 fields, or 6 with seconds).
///
/// # Errors
/// `Invalid cron expression.`
pub fn parse_cron(raw: &str) -> Result<croner::Cron, String> {
    use std::str::FromStr;
    croner::Cron::from_str(raw.trim()).map_err(|_| "Invalid cron expression.".to_string())
}
