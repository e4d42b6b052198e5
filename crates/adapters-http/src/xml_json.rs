//! XML to JSON for webhook bodies sent as `application/xml` or `text/xml`.
//!
//! The document becomes `{<root name>: <root value>}`. An element with neither attributes nor
//! child elements is its text (a string, trimmed; `""` when empty). Any other element is an
//! object: child elements under their names (an element repeated under one parent becomes an
//! array, in document order), attributes under `_attr` (`{name: value}`), and its non-blank
//! text, if any, under `_text`. Comments, processing instructions, the declaration and the
//! doctype are ignored; entities other than the XML ones are refused (no DTD expansion).

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde_json::{Map, Value};

/// Key of an element's attributes.
pub const ATTRIBUTES_KEY: &str = "_attr";
/// Key of the text of an element that also has attributes or children.
pub const TEXT_KEY: &str = "_text";
/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 128;

/// Why a document could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError(pub String);

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
        for attribute in start.attributes() {
            let attribute = attribute.map_err(|e| XmlError(e.to_string()))?;
            let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
            let value = attribute.unescape_value().map_err(|e| XmlError(e.to_string()))?;
            attributes.insert(key, Value::String(value.into_owned()));
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

/// Converts the XML document `bytes` to JSON.
///
/// # Errors
/// When the document is not well-formed: no or several root elements, mismatched or unclosed
/// tags, bad attributes, unknown entities, text outside the root, or nesting deeper than
/// [`MAX_DEPTH`].
pub fn xml_to_json(bytes: &[u8]) -> Result<Value, XmlError> {
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Value> = None;
    loop {
        let event = reader.read_event().map_err(|e| XmlError(e.to_string()))?;
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(XmlError("more than one root element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError(format!("elements nested deeper than {MAX_DEPTH}")));
                }
                stack.push(Element::open(&start)?);
            }
            Event::Empty(start) => {
                if root.is_some() {
                    return Err(XmlError("more than one root element".into()));
                }
                let element = Element::open(&start)?;
                close(element, &mut stack, &mut root);
            }
            Event::End(_) => {
                let element = stack.pop().ok_or_else(|| XmlError("unexpected closing tag".into()))?;
                close(element, &mut stack, &mut root);
            }
            Event::Text(text) => {
                let text = text.unescape().map_err(|e| XmlError(e.to_string()))?;
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
        return Err(XmlError(format!("element <{}> is not closed", open.name)));
    }
    root.ok_or_else(|| XmlError("no root element".into()))
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
        None => Err(XmlError("text outside the root element".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn convert(xml: &str) -> Result<Value, XmlError> {
        xml_to_json(xml.as_bytes())
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
        let deep = format!("{}{}", "<a>".repeat(MAX_DEPTH + 1), "</a>".repeat(MAX_DEPTH + 1));
        assert!(convert(&deep).is_err());
        let fine = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(convert(&fine).is_ok());
    }
}
