//! Deep merge used by template generation: objects merge by key, arrays by index, anything
//! else in the patch replaces the base.

use serde_json::Value;

/// Merges `patch` into `base`: for two objects every key merges recursively; for two arrays
/// element `i` of the patch merges into element `i` of the base (extra patch elements are
/// appended); otherwise the patch value replaces the base value.
pub fn deep_merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (key, value) in p {
                match b.get_mut(key) {
                    Some(existing) => deep_merge(existing, value),
                    None => {
                        b.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(p)) => {
            for (i, value) in p.iter().enumerate() {
                match b.get_mut(i) {
                    Some(existing) => deep_merge(existing, value),
                    None => b.push(value.clone()),
                }
            }
        }
        (slot, value) => *slot = value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn merges_objects_by_key_and_arrays_by_index() {
        let mut base =
            json!({"name": "t", "graph": {"nodes": [{"id": "a", "fields": {"x": 1}}, {"id": "b"}]}});
        let patch = json!({"graph": {"nodes": [{"fields": {"y": 2}}]}, "cron": "* * * * *"});
        deep_merge(&mut base, &patch);
        assert_eq!(
            base,
            json!({"name": "t", "cron": "* * * * *", "graph": {"nodes": [{"id": "a", "fields": {"x": 1, "y": 2}}, {"id": "b"}]}})
        );
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[a-z]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-c]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn merging_into_null_or_with_self_is_identity(v in json_value()) {
            let mut same = v.clone();
            deep_merge(&mut same, &v);
            prop_assert_eq!(&same, &v);
            let mut empty = json!({});
            if v.is_object() {
                deep_merge(&mut empty, &v);
                prop_assert_eq!(&empty, &v);
            }
        }

        #[test]
        fn every_patch_leaf_wins_and_base_keys_survive(base in json_value(), patch in json_value()) {
            let mut merged = base.clone();
            deep_merge(&mut merged, &patch);
            // Merging the same patch again changes nothing (idempotent).
            let mut again = merged.clone();
            deep_merge(&mut again, &patch);
            prop_assert_eq!(&again, &merged);
            if let (Value::Object(b), Value::Object(m)) = (&base, &merged) {
                for key in b.keys() {
                    prop_assert!(m.contains_key(key));
                }
            }
            if let (Value::Array(b), Value::Array(p), Value::Array(m)) = (&base, &patch, &merged) {
                prop_assert_eq!(m.len(), b.len().max(p.len()));
            }
        }
    }
}
