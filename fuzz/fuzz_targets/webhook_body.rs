//! Fuzz target: a webhook body of every kind (JSON, text, form, XML) is refused with a 400 or
//! read into data within the nesting limit that prints and parses back inside the wrappers
//! storage and the API add. The first byte picks the kind and the limit.

#![no_main]

use adapters_http::webhook_body::{BodyKind, read_body};
use flow_domain::limits::{Limits, value_depth};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|input: &[u8]| {
    let Some((&first, body)) = input.split_first() else { return };
    let kind = [BodyKind::Json, BodyKind::Text, BodyKind::Form, BodyKind::Xml][usize::from(first & 3)];
    let limits = Limits { max_depth: 1 + usize::from(first >> 2) % 48, ..Limits::default() };
    match read_body(kind, body, &limits) {
        Ok(data) => {
            let depth = value_depth(&data);
            assert!(depth <= limits.max_depth, "{kind:?} data {depth} deep past {}", limits.max_depth);
            let mut stored = data;
            for _ in 0..7 {
                stored = Value::Object(Map::from_iter([("w".to_string(), Value::Array(vec![stored]))]));
            }
            let back = serde_json::from_str::<Value>(&stored.to_string());
            assert!(
                back.is_ok_and(|back| value_depth(&back) == depth + 14),
                "{kind:?} data does not read back"
            );
        }
        Err(err) => assert_eq!(err.status().as_u16(), 400, "{kind:?}: {:?}", err.entries()),
    }
});
