//! Reading a webhook call's data: the body by its `Content-Type` (POST) and the query string
//! (GET data, and `query` of every call), each as JSON.
//!
//! Repeated keys (in a query string or a form body) keep every value: `a=1&a=2` is
//! `{"a": ["1", "2"]}`; a key given once is a string. All values are strings.

use crate::error::ApiError;
use crate::xml_json::xml_to_json;
use axum::http::StatusCode;
use serde_json::{Map, Value};

/// The 415 message when a POST has no `Content-Type`.
pub const MISSING_CONTENT_TYPE: &str = "Content-Type header is missing";
/// The 415 message for a `Content-Type` no parser takes.
pub const UNSUPPORTED_CONTENT_TYPE: &str = "Unsupported Content-Type";

/// The kinds of body a webhook accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Text,
    Form,
    Xml,
}

fn kind_of(content_type: &str) -> Option<BodyKind> {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Some(BodyKind::Json),
        "text/plain" => Some(BodyKind::Text),
        "application/x-www-form-urlencoded" => Some(BodyKind::Form),
        "application/xml" | "text/xml" => Some(BodyKind::Xml),
        other if other.ends_with("+json") => Some(BodyKind::Json),
        other if other.ends_with("+xml") => Some(BodyKind::Xml),
        _ => None,
    }
}

/// The data of a POST body of `content_type`.
///
/// JSON (`application/json`, `*+json`) is parsed; `text/plain` is JSON when it parses, else
/// the text; a form becomes an object; XML (`application/xml`, `text/xml`, `*+xml`) is
/// converted as [`crate::xml_json`] describes. An empty (or blank) JSON, form or XML body is
/// `{}`.
///
/// # Errors
/// 415 without a content type or with one not listed; 400 for malformed JSON or XML.
pub fn parse_body(content_type: Option<&str>, body: &[u8]) -> Result<Value, ApiError> {
    let content_type = content_type
        .filter(|ct| !ct.trim().is_empty())
        .ok_or_else(|| ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, MISSING_CONTENT_TYPE))?;
    let kind = kind_of(content_type)
        .ok_or_else(|| ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, UNSUPPORTED_CONTENT_TYPE))?;
    let blank = body.iter().all(u8::is_ascii_whitespace);
    if blank && kind != BodyKind::Text {
        return Ok(Value::Object(Map::new()));
    }
    match kind {
        BodyKind::Json => serde_json::from_slice(body).map_err(|err| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("Malformed JSON in request body. {err}"))
        }),
        BodyKind::Text => Ok(serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))),
        BodyKind::Form => {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|err| {
                ApiError::new(StatusCode::BAD_REQUEST, format!("Malformed form body. {err}"))
            })?;
            Ok(Value::Object(pairs_to_object(pairs)))
        }
        BodyKind::Xml => xml_to_json(body).map_err(|err| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("Malformed XML in request body. {}", err.0))
        }),
    }
}

/// The query string (without `?`) as an object; `None` is `{}`.
pub fn query_object(query: Option<&str>) -> Map<String, Value> {
    let pairs: Vec<(String, String)> =
        query.and_then(|q| serde_urlencoded::from_str(q).ok()).unwrap_or_default();
    pairs_to_object(pairs)
}

/// Key/value pairs as an object; a repeated key collects its values in an array.
pub fn pairs_to_object(pairs: Vec<(String, String)>) -> Map<String, Value> {
    let mut object = Map::new();
    for (key, value) in pairs {
        let value = Value::String(value);
        match object.get_mut(&key) {
            Some(Value::Array(values)) => values.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                object.insert(key, value);
            }
        }
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(content_type: &str, body: &str) -> Result<Value, (u16, String)> {
        parse_body(Some(content_type), body.as_bytes())
            .map_err(|e| (e.status().as_u16(), e.entries()[0].message.clone()))
    }

    #[test]
    fn json_bodies() {
        assert_eq!(parse("application/json", r#"{"a": [1]}"#), Ok(json!({"a": [1]})));
        assert_eq!(parse("Application/JSON; charset=utf-8", "[1, 2]"), Ok(json!([1, 2])));
        assert_eq!(parse("application/vnd.api+json", "true"), Ok(json!(true)));
        assert_eq!(parse("application/json", "  "), Ok(json!({})));
        let (status, message) = parse("application/json", "{nope").err().unwrap_or_default();
        assert_eq!(status, 400);
        assert!(message.starts_with("Malformed JSON"), "{message}");
    }

    #[test]
    fn text_is_json_when_it_parses_else_a_string() {
        assert_eq!(parse("text/plain", r#"{"a": 1}"#), Ok(json!({"a": 1})));
        assert_eq!(parse("text/plain; charset=utf-8", "hello world"), Ok(json!("hello world")));
        assert_eq!(parse("text/plain", ""), Ok(json!("")));
    }

    #[test]
    fn form_bodies_become_objects() {
        assert_eq!(
            parse("application/x-www-form-urlencoded", "a=1&b=two+words&a=3&c=%26"),
            Ok(json!({"a": ["1", "3"], "b": "two words", "c": "&"}))
        );
    }

    #[test]
    fn xml_bodies_become_json_or_400() {
        assert_eq!(
            parse("application/xml", r#"<r v="1"><i>a</i><i>b</i></r>"#),
            Ok(json!({"r": {"_attr": {"v": "1"}, "i": ["a", "b"]}}))
        );
        assert_eq!(parse("text/xml; charset=utf-8", "<r>x</r>"), Ok(json!({"r": "x"})));
        let (status, message) = parse("application/xml", "<r><i></r>").err().unwrap_or_default();
        assert_eq!(status, 400);
        assert!(message.starts_with("Malformed XML"), "{message}");
    }

    #[test]
    fn missing_or_unsupported_content_types_are_415() {
        let missing =
            parse_body(None, b"{}").err().map(|e| (e.status().as_u16(), e.entries()[0].message.clone()));
        assert_eq!(missing, Some((415, MISSING_CONTENT_TYPE.to_string())));
        assert_eq!(parse("", "{}").err().map(|e| e.1), Some(MISSING_CONTENT_TYPE.to_string()));
        assert_eq!(parse("image/png", "x"), Err((415, UNSUPPORTED_CONTENT_TYPE.to_string())));
        assert_eq!(parse("multipart/form-data; boundary=x", "x").err().map(|e| e.0), Some(415));
    }

    #[test]
    fn query_strings_become_objects() {
        assert_eq!(query_object(None), Map::new());
        assert_eq!(
            Value::Object(query_object(Some("a=1&b=&a=2&a=3&sync=true"))),
            json!({"a": ["1", "2", "3"], "b": "", "sync": "true"})
        );
    }
}
