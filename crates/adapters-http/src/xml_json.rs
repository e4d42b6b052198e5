//! XML to JSON for webhook bodies sent as `application/xml` or `text/xml`.
//!
//! The document becomes `{<root name>: <root value>}`. An element with neither attributes nor
//! child elements is its text (a string, trimmed; `""` when empty). Any other element is an
//! object: child elements under their names (an element repeated under one parent becomes an
//! array, in document order), attributes under `_attr` (`{name: value}`), and its non-blank
//! text, if any, under `_text`. Comments, processing instructions, the declaration and the
//! doctype are ignored; entities other than the XML ones are refused (no DTD expansion).
//!
//! The conversion is linear in the document: attributes are at most [`MAX_ATTRIBUTES`] per
//! element and their duplicates are found by hashing (the parser's own check compares each
//! attribute with every earlier one), children are found by the map's lookup, elements may not
//! nest deeper than the body nesting limit, and the JSON made must keep within that limit.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// Key of an element's attributes.
pub const ATTRIBUTES_KEY: &str = "_attr";
/// Key of the text of an element that also has attributes or children.
pub const TEXT_KEY: &str = "_text";
/// Most attributes one element may have.
pub const MAX_ATTRIBUTES: usize = 1_000;

/// Why a document could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlError {
    /// The document is not well-formed (what is wrong).
    Malformed(String),
    /// The JSON made of it (or its elements) would nest deeper than the limit.
    TooDeep,
    /// An element has more than [`MAX_ATTRIBUTES`] attributes (its name).
    TooManyAttributes(String),
}

fn malformed(what: impl ToString) -> XmlError {
    XmlError::Malformed(what.to_string())
}

struct Element {
    name: String,
    attributes: Map<String, Value>,
    children: Map<String, Value>,
    text: String,
}

impl Element {
    fn open(start: &BytesStart<'_>) -> Result<Self, XmlError> {
        let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
        let mut attributes = Map::new();
        let mut keys: HashSet<&[u8]> = HashSet::new();
        for attribute in start.attributes().with_checks(false) {
            let attribute = attribute.map_err(malformed)?;
            if keys.len() == MAX_ATTRIBUTES {
                return Err(XmlError::TooManyAttributes(name));
            }
            let key = attribute.key.into_inner();
            if !keys.insert(key) {
                let key = String::from_utf8_lossy(key);
                return Err(malformed(format!("attribute {key:?} is repeated in <{name}>")));
            }
            let value = attribute.unescape_value().map_err(malformed)?;
            attributes.insert(String::from_utf8_lossy(key).into_owned(), Value::String(value.into_owned()));
        }
        Ok(Self { name, attributes, children: Map::new(), text: String::new() })
    }

    fn into_value(self) -> Value {
        let text = self.text.trim();
        if self.attributes.is_empty() && self.children.is_empty() {
            return Value::String(text.to_string());
        }
        let mut object = self.children;
        if !self.attributes.is_empty() {
            object.insert(ATTRIBUTES_KEY.into(), Value::Object(self.attributes));
        }
        if !text.is_empty() {
            object.insert(TEXT_KEY.into(), Value::String(text.to_string()));
        }
        Value::Object(object)
    }

    fn add_child(&mut self, name: String, value: Value) {
        match self.children.get_mut(&name) {
            // Element values are never arrays, so an array here holds earlier repeats.
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                self.children.insert(name, value);
            }
        }
    }
}

/// Converts the XML document `bytes` to JSON nested at most `max_depth` deep (as
/// [`flow_domain::limits::value_depth`] counts).
///
/// # Errors
/// [`XmlError::Malformed`] when the document is not well-formed: no or several root elements,
/// mismatched or unclosed tags, bad or repeated attributes, unknown entities, text outside the
/// root; [`XmlError::TooDeep`] and [`XmlError::TooManyAttributes`] past the limits.
pub fn xml_to_json(bytes: &[u8], max_depth: usize) -> Result<Value, XmlError> {
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Value> = None;
    loop {
        let event = reader.read_event().map_err(malformed)?;
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(malformed("more than one root element"));
                }
                // An element n deep is inside n - 1 objects and the document's: its JSON is at
                // least n deep.
                if stack.len() >= max_depth {
                    return Err(XmlError::TooDeep);
                }
                stack.push(Element::open(&start)?);
            }
            Event::Empty(start) => {
                if root.is_some() {
                    return Err(malformed("more than one root element"));
                }
                let element = Element::open(&start)?;
                close(element, &mut stack, &mut root);
            }
            Event::End(_) => {
                let element = stack.pop().ok_or_else(|| malformed("unexpected closing tag"))?;
                close(element, &mut stack, &mut root);
            }
            Event::Text(text) => {
                let text = text.unescape().map_err(malformed)?;
                push_text(&mut stack, &text)?;
            }
            Event::CData(data) => {
                let text = String::from_utf8_lossy(&data.into_inner()).into_owned();
                push_text(&mut stack, &text)?;
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(malformed(format!("element <{}> is not closed", open.name)));
    }
    let document = root.ok_or_else(|| malformed("no root element"))?;
    // Arrays of repeats and `_attr` objects add levels the elements alone do not show.
    if flow_domain::limits::value_exceeds(&document, max_depth) {
        return Err(XmlError::TooDeep);
    }
    Ok(document)
}

fn close(element: Element, stack: &mut [Element], root: &mut Option<Value>) {
    let name = element.name.clone();
    let value = element.into_value();
    match stack.last_mut() {
        Some(parent) => parent.add_child(name, value),
        None => {
            let mut document = Map::new();
            document.insert(name, value);
            *root = Some(Value::Object(document));
        }
    }
}

fn push_text(stack: &mut [Element], text: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(element) => {
            element.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(malformed("text outside the root element")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEPTH: usize = 64;

    fn convert(xml: &str) -> Result<Value, XmlError> {
        xml_to_json(xml.as_bytes(), DEPTH)
    }

    #[test]
    fn elements_become_keys_and_text_only_elements_strings() {
        let xml =
            r#"<?xml version="1.0"?><!-- hi --><order><id>42</id><note/><who> Ann &amp; Bo </who></order>"#;
        assert_eq!(convert(xml), Ok(json!({"order": {"id": "42", "note": "", "who": "Ann & Bo"}})));
    }

    #[test]
    fn repeated_elements_become_arrays_in_order() {
        let xml = "<list><item>a</item><other>x</other><item>b</item><item>c</item></list>";
        assert_eq!(convert(xml), Ok(json!({"list": {"item": ["a", "b", "c"], "other": "x"}})));
    }

    #[test]
    fn attributes_go_under_attr_and_mixed_text_under_text() {
        let xml =
            r#"<order id="7" kind='a&lt;b'><line sku="x"/>total<price currency="EUR">9.5</price></order>"#;
        assert_eq!(
            convert(xml),
            Ok(json!({"order": {
                "_attr": {"id": "7", "kind": "a<b"},
                "line": {"_attr": {"sku": "x"}},
                "price": {"_attr": {"currency": "EUR"}, "_text": "9.5"},
                "_text": "total",
            }}))
        );
    }

    #[test]
    fn cdata_is_text() {
        assert_eq!(convert("<a><![CDATA[<b>]]></a>"), Ok(json!({"a": "<b>"})));
    }

    #[test]
    fn malformed_documents_are_refused() {
        for xml in [
            "",
            "just text",
            "<a>",
            "<a></b>",
            "<a></a><b/>",
            "<a>&custom;</a>",
            "<a x=1/>",
            "</a>",
            "<a/>trailing",
        ] {
            assert!(convert(xml).is_err(), "{xml:?} was accepted");
        }
    }

    #[test]
    fn repeated_attributes_are_malformed() {
        assert!(matches!(convert(r#"<a x="1" y="2" x="3"/>"#), Err(XmlError::Malformed(_))));
    }

    #[test]
    fn attributes_are_capped_per_element() {
        let element = |n: usize| {
            let attributes: String = (0..n).map(|i| format!(" a{i}=\"\"")).collect();
            format!("<r{attributes}/>")
        };
        assert!(convert(&element(MAX_ATTRIBUTES)).is_ok());
        assert_eq!(convert(&element(MAX_ATTRIBUTES + 1)), Err(XmlError::TooManyAttributes("r".into())));
    }

    #[test]
    fn nesting_is_held_to_the_limit_of_the_json_made() {
        // n nested elements: the document's object, n - 1 element objects, a string.
        let nested = |n: usize| format!("{}x{}", "<a>".repeat(n), "</a>".repeat(n));
        let fine = convert(&nested(DEPTH)).unwrap_or_default();
        assert_eq!(flow_domain::limits::value_depth(&fine), DEPTH);
        assert_eq!(convert(&nested(DEPTH + 1)), Err(XmlError::TooDeep));
        assert_eq!(convert(&nested(100_000)), Err(XmlError::TooDeep));
        // Repeats (arrays) and attributes (`_attr`) add levels: the JSON is measured.
        let repeats = |n: usize| format!("{}<b/><b/>{}", "<a>".repeat(n), "</a>".repeat(n));
        assert!(convert(&repeats(DEPTH - 2)).is_ok());
        assert_eq!(convert(&repeats(DEPTH - 1)), Err(XmlError::TooDeep));
        let attributed = |n: usize| format!("{}<b x=\"1\"/>{}", "<a>".repeat(n), "</a>".repeat(n));
        assert!(convert(&attributed(DEPTH - 3)).is_ok());
        assert_eq!(convert(&attributed(DEPTH - 2)), Err(XmlError::TooDeep));
    }
}
