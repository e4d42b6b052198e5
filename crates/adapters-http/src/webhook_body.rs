//! Reading a webhook call's data: the body by its `Content-Type` (POST) and the query string
//! (GET data, and `query` of every call), each as JSON.
//!
//! Repeated keys (in a query string or a form body) keep every value: `a=1&a=2` is
//! `{"a": ["1", "2"]}`; a key given once is a string. All values are strings (`a[b]=1` is the
//! key `a[b]`: forms do not nest).
//!
//! Every body is held to one nesting limit (`FLOWMATE_MAX_BODY_DEPTH`, see
//! [`flow_domain::limits`]): JSON is measured on its bytes before it is parsed, XML while it is
//! converted, a form's object after it is made. Every step is linear in the body.

use crate::error::ApiError;
use crate::xml_json::{MAX_ATTRIBUTES, XmlError, xml_to_json};
use axum::http::StatusCode;
use flow_domain::limits::{Limits, json_exceeds, value_exceeds};
use serde_json::{Map, Value};

/// The 415 message when a POST has no `Content-Type`.
pub const MISSING_CONTENT_TYPE: &str = "Content-Type header is missing";
/// The 415 message for a `Content-Type` no parser takes.
pub const UNSUPPORTED_CONTENT_TYPE: &str = "Unsupported Content-Type";

/// The kinds of body a webhook accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/json`, `*+json`.
    Json,
    /// `text/plain`: JSON when it parses, else the text.
    Text,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `application/xml`, `text/xml`, `*+xml`.
    Xml,
}

impl BodyKind {
    /// The kind of body a `Content-Type` names; looks at the header only.
    ///
    /// # Errors
    /// 415 without a content type or with one not listed.
    pub fn of(content_type: Option<&str>) -> Result<Self, ApiError> {
        let content_type = content_type
            .filter(|ct| !ct.trim().is_empty())
            .ok_or_else(|| ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, MISSING_CONTENT_TYPE))?;
        let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Ok(BodyKind::Json),
            "text/plain" => Ok(BodyKind::Text),
            "application/x-www-form-urlencoded" => Ok(BodyKind::Form),
            "application/xml" | "text/xml" => Ok(BodyKind::Xml),
            other if other.ends_with("+json") => Ok(BodyKind::Json),
            other if other.ends_with("+xml") => Ok(BodyKind::Xml),
            _ => Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, UNSUPPORTED_CONTENT_TYPE)),
        }
    }
}

/// The data of a POST body of `content_type`: [`BodyKind::of`], then [`read_body`].
///
/// # Errors
/// As both.
pub fn parse_body(content_type: Option<&str>, body: &[u8], limits: &Limits) -> Result<Value, ApiError> {
    read_body(BodyKind::of(content_type)?, body, limits)
}

/// The data of a POST body of `kind`, nested at most `limits.max_depth` deep.
///
/// JSON is parsed; `text/plain` is JSON when it parses, else the text; a form becomes an
/// object; XML is converted as [`crate::xml_json`] describes. An empty (or blank) JSON, form or
/// XML body is `{}`.
///
/// # Errors
/// 400 for malformed JSON, form or XML, for a body nested deeper than the limit (JSON, and
/// text that would be JSON, measured before parsing) and for an XML element with more than
/// [`MAX_ATTRIBUTES`] attributes.
pub fn read_body(kind: BodyKind, body: &[u8], limits: &Limits) -> Result<Value, ApiError> {
    let too_deep = || ApiError::new(StatusCode::BAD_REQUEST, limits.body_too_deep());
    let blank = body.iter().all(u8::is_ascii_whitespace);
    if blank && kind != BodyKind::Text {
        return Ok(Value::Object(Map::new()));
    }
    match kind {
        BodyKind::Json => {
            if json_exceeds(body, limits.max_depth) {
                return Err(too_deep());
            }
            serde_json::from_slice(body).map_err(|err| {
                ApiError::new(StatusCode::BAD_REQUEST, format!("Malformed JSON in request body. {err}"))
            })
        }
        BodyKind::Text => {
            if json_exceeds(body, limits.max_depth) && looks_like_json(body) {
                return Err(too_deep());
            }
            Ok(serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned())))
        }
        BodyKind::Form => {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|err| {
                ApiError::new(StatusCode::BAD_REQUEST, format!("Malformed form body. {err}"))
            })?;
            let data = Value::Object(pairs_to_object(pairs));
            if value_exceeds(&data, limits.max_depth) {
                return Err(too_deep());
            }
            Ok(data)
        }
        BodyKind::Xml => xml_to_json(body, limits.max_depth).map_err(|err| match err {
            XmlError::Malformed(what) => {
                ApiError::new(StatusCode::BAD_REQUEST, format!("Malformed XML in request body. {what}"))
            }
            XmlError::TooDeep => too_deep(),
            XmlError::TooManyAttributes(element) => ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("XML element <{element}> has more than {MAX_ATTRIBUTES} attributes."),
            ),
        }),
    }
}

/// Whether a text body starts as JSON containers do (`[` or `{` after blanks): such a text
/// nested past the limit is refused rather than kept as a string, as JSON sent as text is.
fn looks_like_json(body: &[u8]) -> bool {
    matches!(body.iter().find(|b| !b.is_ascii_whitespace()), Some(b'[' | b'{'))
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
    use flow_domain::limits::value_depth;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse(content_type: &str, body: &str) -> Result<Value, (u16, String)> {
        parse_body(Some(content_type), body.as_bytes(), &Limits::default())
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
        let missing = parse_body(None, b"{}", &Limits::default())
            .err()
            .map(|e| (e.status().as_u16(), e.entries()[0].message.clone()));
        assert_eq!(missing, Some((415, MISSING_CONTENT_TYPE.to_string())));
        assert_eq!(parse("", "{}").err().map(|e| e.1), Some(MISSING_CONTENT_TYPE.to_string()));
        assert_eq!(parse("image/png", "x"), Err((415, UNSUPPORTED_CONTENT_TYPE.to_string())));
        assert_eq!(parse("multipart/form-data; boundary=x", "x").err().map(|e| e.0), Some(415));
    }

    #[test]
    fn every_kind_of_body_is_held_to_the_nesting_limit() {
        let too_deep = Err((400, Limits::default().body_too_deep()));
        let arrays = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        // Reached exactly: accepted.
        assert!(parse("application/json", &arrays(64)).is_ok());
        assert!(parse("text/plain", &arrays(64)).is_ok_and(|v| v.is_array()));
        let elements = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        assert!(parse("application/xml", &elements(64)).is_ok());
        // One more: refused, naming the limit, for JSON, text that is JSON and XML alike.
        assert_eq!(parse("application/json", &arrays(65)), too_deep);
        assert_eq!(parse("application/json", &arrays(100_000)), too_deep);
        assert_eq!(parse("text/plain", &format!(" {}", arrays(65))), too_deep);
        assert_eq!(parse("application/xml", &elements(65)), too_deep);
        // Text that cannot be JSON stays text, brackets and all.
        let text = format!("see {}", arrays(65));
        assert_eq!(parse("text/plain", &text), Ok(Value::String(text)));
        // Forms never nest (brackets in keys are kept), but a limit below theirs holds too.
        assert_eq!(parse("application/x-www-form-urlencoded", "a[b][c]=1"), Ok(json!({"a[b][c]": "1"})));
        let strict = Limits { max_depth: 1, ..Limits::default() };
        let form = read_body(BodyKind::Form, b"a=1&a=2", &strict).map_err(|e| e.entries()[0].message.clone());
        assert_eq!(form, Err(strict.body_too_deep()));
        assert!(read_body(BodyKind::Form, b"a=1&b=2", &strict).is_ok());
    }

    #[test]
    fn xml_attributes_are_capped() {
        let attributes: String = (0..=MAX_ATTRIBUTES).map(|i| format!(" a{i}=\"\"")).collect();
        let (status, message) =
            parse("application/xml", &format!("<r{attributes}/>")).err().unwrap_or_default();
        assert_eq!(status, 400);
        assert_eq!(message, format!("XML element <r> has more than {MAX_ATTRIBUTES} attributes."));
    }

    /// Wraps `data` as storage and the API do at most (message, sample, step, steps, execution
    /// document, envelope), prints it and parses it back as every reader does.
    fn reads_back(data: &Value) -> bool {
        let mut stored = data.clone();
        for _ in 0..7 {
            stored = Value::Object(Map::from_iter([("w".to_string(), Value::Array(vec![stored]))]));
        }
        serde_json::from_str::<Value>(&stored.to_string()).is_ok_and(|back| back == stored)
    }

    fn nested_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<i16>().prop_map(|n| json!(n)),
            "[a-z\\[\\]{}\"]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(16, 48, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[a-c]", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// An XML element as text: names and attributes from small sets (so repeats happen), text,
    /// and children.
    fn xml_element() -> impl Strategy<Value = String> {
        let attributes = prop::collection::vec(("[xyz]", "[a-z<&]{0,3}"), 0..3);
        let leaf = ("[abc]", attributes.clone(), "[a-z ]{0,4}").prop_map(|(name, attributes, text)| {
            let attributes: String = attributes
                .iter()
                .map(|(k, v)| format!(" {k}=\"{}\"", v.replace('&', "&amp;").replace('<', "&lt;")))
                .collect();
            format!("<{name}{attributes}>{text}</{name}>")
        });
        leaf.prop_recursive(16, 48, 3, move |inner| {
            ("[abc]", attributes.clone(), prop::collection::vec(inner, 0..3)).prop_map(
                |(name, attributes, children)| {
                    let attributes: String = attributes.iter().map(|(k, _)| format!(" {k}=\"v\"")).collect();
                    format!("<{name}{attributes}>{}</{name}>", children.concat())
                },
            )
        })
    }

    proptest! {
        /// Any nested JSON, sent as JSON or as text, is refused (400, naming the limit) exactly
        /// when it is deeper than the limit, and is otherwise data that reads back.
        #[test]
        fn nested_json_is_refused_or_reads_back(value in nested_json(), max in 1usize..12) {
            let limits = Limits { max_depth: max, ..Limits::default() };
            let text = value.to_string();
            for kind in [BodyKind::Json, BodyKind::Text] {
                match read_body(kind, text.as_bytes(), &limits) {
                    Ok(data) => {
                        prop_assert!(value_depth(&value) <= max);
                        prop_assert_eq!(&data, &value);
                        prop_assert!(reads_back(&data));
                    }
                    Err(err) => {
                        prop_assert!(value_depth(&value) > max);
                        prop_assert_eq!(err.status(), StatusCode::BAD_REQUEST);
                        prop_assert_eq!(&err.entries()[0].message, &limits.body_too_deep());
                    }
                }
            }
        }

        /// Any XML document is refused (400) or converted to data within the limit that reads
        /// back.
        #[test]
        fn nested_xml_is_refused_or_reads_back(xml in xml_element(), max in 1usize..12) {
            let limits = Limits { max_depth: max, ..Limits::default() };
            match read_body(BodyKind::Xml, xml.as_bytes(), &limits) {
                Ok(data) => {
                    prop_assert!(value_depth(&data) <= max);
                    prop_assert!(reads_back(&data));
                }
                Err(err) => prop_assert_eq!(err.status(), StatusCode::BAD_REQUEST),
            }
        }

        /// Any form body is an object of strings and arrays of strings that reads back, or 400.
        #[test]
        fn forms_are_refused_or_read_back(body in "[a-c\\[\\]=&%0-9+]{0,40}", max in 1usize..4) {
            let limits = Limits { max_depth: max, ..Limits::default() };
            match read_body(BodyKind::Form, body.as_bytes(), &limits) {
                Ok(data) => {
                    prop_assert!(data.is_object());
                    prop_assert!(value_depth(&data) <= max.min(2));
                    prop_assert!(reads_back(&data));
                }
                Err(err) => prop_assert_eq!(err.status(), StatusCode::BAD_REQUEST),
            }
        }
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
