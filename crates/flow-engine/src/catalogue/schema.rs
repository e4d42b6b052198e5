//! A small checker of a node's `fields` against its function's JSON Schema: the subset the
//! catalogue uses (top-level `required`, property `type`, `enum`, `minimum`/`maximum`,
//! `additionalProperties: false`, and `"format": "jq"` programs that must compile).

use flow_domain::expr::JqProgram;
use serde_json::{Map, Value};

/// Checks `fields` against `schema`; returns every problem found, each naming its field
/// (`missing required field "url"`). A `null` value counts as absent.
pub fn check_fields(schema: &Value, fields: &Map<String, Value>) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let properties = schema.get("properties").and_then(Value::as_object);
    let required = schema.get("required").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for key in required.iter().filter_map(Value::as_str) {
        if fields.get(key).is_none_or(Value::is_null) {
            problems.push(format!("missing required field \"{key}\""));
        }
    }
    let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
    for (key, value) in fields.iter().filter(|(_, v)| !v.is_null()) {
        match properties.and_then(|p| p.get(key)) {
            Some(property) => check_value(key, property, value, &mut problems),
            None if closed => problems.push(format!("unknown field \"{key}\"")),
            None => {}
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

fn check_value(key: &str, property: &Value, value: &Value, problems: &mut Vec<String>) {
    if let Some(expected) = property.get("type") {
        let allowed: Vec<&str> = match expected {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !allowed.is_empty() && !allowed.iter().any(|t| has_type(value, t)) {
            problems.push(format!("field \"{key}\" must be {}", describe_types(&allowed)));
            return;
        }
    }
    if let Some(options) = property.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        let listed: Vec<String> = options.iter().map(Value::to_string).collect();
        problems.push(format!("field \"{key}\" must be one of {}", listed.join(", ")));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = property.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            problems.push(format!("field \"{key}\" must be at least {min}"));
        }
        if let Some(max) = property.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            problems.push(format!("field \"{key}\" must be at most {max}"));
        }
    }
    if property.get("format").and_then(Value::as_str) == Some("jq")
        && let Some(code) = value.as_str()
        && let Err(err) = JqProgram::compile(code)
    {
        problems.push(format!("field \"{key}\" is not a valid jq program: {err}"));
    }
}

fn has_type(value: &Value, ty: &str) -> bool {
    match ty {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        _ => true,
    }
}

fn describe_types(types: &[&str]) -> String {
    let named: Vec<String> = types
        .iter()
        .map(|t| match *t {
            "integer" | "object" | "array" => format!("an {t}"),
            other => format!("a {other}"),
        })
        .collect();
    named.join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("object")
    }

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "url": { "type": "string" },
                "method": { "type": "string", "enum": ["GET", "POST"] },
                "timeoutMs": { "type": "integer", "minimum": 1 },
                "program": { "type": "string", "format": "jq" },
                "body": {},
                "either": { "type": ["string", "null", "object"] }
            },
            "required": ["url"]
        })
    }

    #[test]
    fn accepts_valid_fields_and_unknown_extra_keys() {
        let ok = fields(json!({ "url": "http://x", "method": "POST", "timeoutMs": 5, "program": ".a",
            "body": [1], "either": {}, "extra": true }));
        assert_eq!(check_fields(&schema(), &ok), Ok(()));
    }

    #[test]
    fn reports_every_problem() {
        let bad = fields(json!({ "method": "FETCH", "timeoutMs": 1.5, "program": ".a |", "either": 3 }));
        let problems = check_fields(&schema(), &bad).expect_err("invalid");
        assert!(problems.contains(&"missing required field \"url\"".to_string()), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("field \"method\" must be one of")), "{problems:?}");
        assert!(problems.contains(&"field \"timeoutMs\" must be an integer".to_string()), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("field \"program\" is not a valid jq program")));
        assert!(problems.contains(&"field \"either\" must be a string or a null or an object".to_string()));
        assert_eq!(problems.len(), 5, "{problems:?}");
    }

    #[test]
    fn null_counts_as_absent_and_bounds_apply() {
        let null_url = fields(json!({ "url": null }));
        assert_eq!(
            check_fields(&schema(), &null_url),
            Err(vec!["missing required field \"url\"".to_string()])
        );
        let too_small = fields(json!({ "url": "u", "timeoutMs": 0 }));
        assert_eq!(
            check_fields(&schema(), &too_small),
            Err(vec!["field \"timeoutMs\" must be at least 1".into()])
        );
    }

    #[test]
    fn closed_schemas_reject_unknown_fields() {
        let closed =
            json!({ "type": "object", "properties": {}, "required": [], "additionalProperties": false });
        assert_eq!(
            check_fields(&closed, &fields(json!({ "x": 1 }))),
            Err(vec!["unknown field \"x\"".into()])
        );
    }
}
