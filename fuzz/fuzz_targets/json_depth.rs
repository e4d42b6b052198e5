//! Fuzz target: the nesting scan on JSON text (`flow_domain::limits::json_exceeds`), which
//! decides before any tree is built, agrees with the depth of the tree whenever the text parses.
//! The first byte picks the limit.

#![no_main]

use flow_domain::limits::{json_exceeds, value_depth};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|input: &[u8]| {
    let Some((&first, text)) = input.split_first() else { return };
    let max = usize::from(first % 40);
    let exceeds = json_exceeds(text, max);
    if let Ok(value) = serde_json::from_slice::<Value>(text) {
        assert_eq!(exceeds, value_depth(&value) > max, "the scan and the tree disagree at limit {max}");
    }
});
