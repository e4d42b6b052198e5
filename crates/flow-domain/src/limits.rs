//! Input limits (SPEC §10): how deep any body or stored document may nest, and how many nodes a
//! flow may have. The binary fills [`Limits`] from its configuration and hands it to the use
//! cases and adapters as a value; nothing here reads the environment.
//!
//! Depth counts nested containers (objects and arrays): a scalar is 0, `[]` and `{}` are 1,
//! `{"a": [1]}` is 2. Every measure here is linear in its input and never recurses, so a
//! hostile document cannot exhaust the stack while it is being measured.

use serde_json::Value;

/// The default nesting limit of bodies and documents (`FLOWMATE_MAX_BODY_DEPTH`).
pub const DEFAULT_MAX_DEPTH: usize = 64;
/// The default largest number of nodes of a flow (`FLOWMATE_MAX_NODES`).
pub const DEFAULT_MAX_NODES: usize = 1_000;
/// The largest nesting limit that may be configured. An accepted body is stored inside
/// wrappers (the message, the execution document, a step's sample output: up to 7 more levels
/// through the API), and every stored document is read back with `serde_json`, which refuses
/// 128 levels: this ceiling keeps every accepted body readable through every route.
pub const MAX_DEPTH_CEILING: usize = 100;

/// The limits every intake path enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of a webhook body (JSON, XML converted to JSON, form) and of a flow or
    /// template document; deeper is refused (400) before anything is stored.
    pub max_depth: usize,
    /// Most nodes in a flow graph (and in a template's graph); more is refused (400).
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_depth: DEFAULT_MAX_DEPTH, max_nodes: DEFAULT_MAX_NODES }
    }
}

impl Limits {
    /// The refusal of a body nested deeper than [`Limits::max_depth`]; names the limit and
    /// its setting.
    pub fn body_too_deep(&self) -> String {
        format!("Body nesting is deeper than {} levels (FLOWMATE_MAX_BODY_DEPTH).", self.max_depth)
    }

    /// The refusal of a document field nested deeper than [`Limits::max_depth`].
    pub fn document_too_deep(&self) -> String {
        format!("Nesting is deeper than {} levels (FLOWMATE_MAX_BODY_DEPTH).", self.max_depth)
    }

    /// The refusal of a graph of `count` nodes, more than [`Limits::max_nodes`].
    pub fn too_many_nodes(&self, count: usize) -> String {
        format!("A flow has at most {} nodes (FLOWMATE_MAX_NODES); this one has {count}.", self.max_nodes)
    }
}

/// The nesting depth of `value`, counted without recursion.
pub fn value_depth(value: &Value) -> usize {
    fn is_container(value: &&Value) -> bool {
        value.is_array() || value.is_object()
    }
    let mut deepest = 0;
    // The containers still to look into, each with the depth it sits at (1: outermost).
    let mut pending: Vec<(&Value, usize)> =
        Some(value).filter(is_container).map(|v| (v, 1)).into_iter().collect();
    while let Some((container, depth)) = pending.pop() {
        deepest = deepest.max(depth);
        let inner = depth + 1;
        match container {
            Value::Array(items) => pending.extend(items.iter().filter(is_container).map(|c| (c, inner))),
            Value::Object(map) => pending.extend(map.values().filter(is_container).map(|c| (c, inner))),
            _ => {}
        }
    }
    deepest
}

/// Whether `value` nests deeper than `max`.
pub fn value_exceeds(value: &Value, max: usize) -> bool {
    value_depth(value) > max
}

/// Whether the JSON text `bytes` nests deeper than `max`, found by one pass over the bytes
/// (brackets inside strings do not count) before any tree is built. On malformed text the
/// answer is about its brackets; a parser still has to refuse the text itself.
pub fn json_exceeds(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn depth_counts_containers() {
        assert_eq!(value_depth(&json!(1)), 0);
        assert_eq!(value_depth(&json!([])), 1);
        assert_eq!(value_depth(&json!({})), 1);
        assert_eq!(value_depth(&json!({"a": [1], "b": {"c": {"d": []}}})), 4);
        assert_eq!(value_depth(&json!([1, [2, [3]], {}])), 3);
    }

    #[test]
    fn byte_scan_skips_strings_and_escapes() {
        assert!(!json_exceeds(br#"{"a": "[[[[[[", "b": "\"[[[["}"#, 1));
        assert!(json_exceeds(br#"{"a": [1]}"#, 1));
        assert!(!json_exceeds(br#"{"a": [1]}"#, 2));
        assert!(!json_exceeds(b"", 0));
        assert!(!json_exceeds(b"12", 0));
        assert!(json_exceeds(b"[", 0));
        assert!(!json_exceeds(nested(64).as_bytes(), 64));
        assert!(json_exceeds(nested(65).as_bytes(), 64));
    }

    #[test]
    fn a_very_deep_value_is_measured_without_recursion() {
        let mut value = json!(1);
        for _ in 0..100_000 {
            value = Value::Array(vec![value]);
        }
        assert_eq!(value_depth(&value), 100_000);
        // Dropping a tree this deep would recurse: take it apart level by level.
        while let Value::Array(mut items) = value {
            value = items.pop().unwrap_or(Value::Null);
        }
    }

    #[test]
    fn messages_name_the_limit_and_its_setting() {
        let limits = Limits::default();
        assert_eq!(
            limits.body_too_deep(),
            "Body nesting is deeper than 64 levels (FLOWMATE_MAX_BODY_DEPTH)."
        );
        assert!(limits.too_many_nodes(1_001).contains("at most 1000 nodes (FLOWMATE_MAX_NODES)"));
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[\\[\\]{}\"\\\\a-z]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(12, 64, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z\\[\"]{0,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// The byte scan agrees with the depth of the parsed tree, for every limit.
        #[test]
        fn byte_scan_agrees_with_the_tree(value in arbitrary_json(), max in 0usize..14) {
            let text = value.to_string();
            prop_assert_eq!(json_exceeds(text.as_bytes(), max), value_depth(&value) > max);
            let pretty = serde_json::to_string_pretty(&value).unwrap_or_default();
            prop_assert_eq!(json_exceeds(pretty.as_bytes(), max), value_exceeds(&value, max));
        }
    }
}
