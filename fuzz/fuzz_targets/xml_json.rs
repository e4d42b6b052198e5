//! Fuzz target: XML to JSON (`adapters_http::xml_json`) never panics, keeps its result within
//! the nesting limit, and reports too many attributes only past the cap. The first byte picks
//! the limit. Run with the XML dictionary (`fuzz/dicts/xml.dict`, as `scripts/fuzz` does).

#![no_main]

use adapters_http::xml_json::{MAX_ATTRIBUTES, XmlError, xml_to_json};
use flow_domain::limits::value_depth;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&first, xml)) = input.split_first() else { return };
    let max = 1 + usize::from(first % 64);
    match xml_to_json(xml, max) {
        Ok(value) => {
            assert!(value_depth(&value) <= max, "converted past the limit {max}");
            assert!(value.as_object().is_some_and(|root| root.len() == 1), "one root element");
        }
        Err(XmlError::TooManyAttributes(_)) => {
            assert!(xml.iter().filter(|b| **b == b'=').count() > MAX_ATTRIBUTES, "capped too early");
        }
        Err(XmlError::Malformed(_) | XmlError::TooDeep) => {}
    }
});
