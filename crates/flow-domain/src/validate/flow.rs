//! The flow document of `POST /flows`, `PATCH /flows/{id}` and template generation.

use super::graph::parse_graph;
use super::{Errors, as_object, opt_object, opt_string, parse_cron, reject_unknown, req_string};
use crate::error::FieldError;
use crate::ids::{TenantId, parse_uuid};
use crate::model::{FlowSpec, FlowStatus, FlowType, Owner, OwnerType};
use serde_json::{Map, Value};

/// Fields a client may write.
pub const WRITABLE_FIELDS: &[&str] =
    &["name", "description", "type", "cron", "graph", "flowSettings", "owners", "tenant", "status"];
/// Fields a client may send back unchanged; they are never taken from a body.
pub const READ_ONLY_FIELDS: &[&str] = &["id", "createdAt", "updatedAt", "fromTemplate", "statusReason"];

/// The message for a `status` that is not the current one.
pub const STATUS_IS_READ_ONLY: &str =
    "Flow status cannot be set manually. Use the flow start/stop end points instead.";

/// A parsed flow document.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowDocument {
    /// Name, graph and settings, valid.
    pub spec: FlowSpec,
    /// Owners named in the document, if any.
    pub owners: Option<Vec<Owner>>,
    /// Tenant named in the document: `Some(None)` for an explicit `null`.
    pub tenant: Option<Option<TenantId>>,
    /// The `status` sent, if any (only the current one is accepted by the use cases).
    pub status: Option<Value>,
}

/// Checks a body's top-level keys: every unknown field is one error.
pub fn check_flow_keys(body: &Map<String, Value>, errors: &mut Errors) {
    let allowed: Vec<&str> = WRITABLE_FIELDS.iter().chain(READ_ONLY_FIELDS).copied().collect();
    reject_unknown(body, &allowed, "", errors);
}

/// Parses a whole flow document, reporting every problem.
///
/// # Errors
/// Every rule of SPEC §4 that the document breaks, each with its field path.
pub fn parse_flow_document(doc: &Value) -> Result<FlowDocument, Vec<FieldError>> {
    let mut errors = Errors::default();
    let Some(obj) = as_object(doc, "flow", &mut errors) else { return Err(errors.0) };
    check_flow_keys(obj, &mut errors);
    let spec = parse_spec(obj, &mut errors);
    let owners = parse_owners(obj.get("owners"), &mut errors);
    let tenant = parse_tenant(obj.get("tenant"), &mut errors);
    let status = obj.get("status").cloned();
    match spec {
        Some(spec) => errors.finish(FlowDocument { spec, owners, tenant, status }),
        None => Err(errors.0),
    }
}

/// Whether a `status` value in a body may be accepted for a flow currently in `current`.
pub fn status_matches(sent: &Value, current: FlowStatus) -> bool {
    sent.is_null() || sent.as_str() == Some(current.as_str())
}

fn parse_spec(obj: &Map<String, Value>, errors: &mut Errors) -> Option<FlowSpec> {
    let name = req_string(obj, "name", "", "Flows require a name.", errors);
    let description = opt_string(obj, "description", "", errors);
    let flow_type = match obj.get("type") {
        None | Some(Value::Null) => FlowType::default(),
        Some(Value::String(s)) => s.parse().unwrap_or_else(|_| {
            errors.add("type", "Invalid flow type. Use ordinary or realtime.");
            FlowType::default()
        }),
        Some(_) => {
            errors.add("type", "type must be a string.");
            FlowType::default()
        }
    };
    let cron = opt_string(obj, "cron", "", errors).filter(|c| !c.trim().is_empty());
    if let Some(expr) = &cron
        && let Err(message) = parse_cron(expr)
    {
        errors.add("cron", message);
    }
    let flow_settings = opt_object(obj, "flowSettings", "", errors);
    for (field, message) in crate::services::webhook_auth::check_settings(&flow_settings) {
        errors.add(field, message);
    }
    let graph = parse_graph(obj.get("graph"), errors);
    Some(FlowSpec { name: name?, description, flow_type, cron, graph: graph?, flow_settings })
}

/// Parses `owners`: an array of `{id, type}`.
pub(crate) fn parse_owners(value: Option<&Value>, errors: &mut Errors) -> Option<Vec<Owner>> {
    let items = match value {
        None | Some(Value::Null) => return None,
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.add("owners", "owners must be an array.");
            return None;
        }
    };
    let mut owners = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("owners[{i}]");
        let Some(obj) = item.as_object() else {
            errors.add(prefix, "An owner must be an object.");
            continue;
        };
        reject_unknown(obj, &["id", "type"], &prefix, errors);
        let id = match obj.get("id").and_then(Value::as_str).map(parse_uuid) {
            Some(Ok(id)) => Some(id),
            Some(Err(_)) => {
                errors.add(format!("{prefix}.id"), "Invalid id");
                None
            }
            None => {
                errors.add(format!("{prefix}.id"), "Owners require an id.");
                None
            }
        };
        let owner_type = match obj.get("type").and_then(Value::as_str) {
            Some("user") => Some(OwnerType::User),
            Some("tenant") => Some(OwnerType::Tenant),
            _ => {
                errors.add(format!("{prefix}.type"), "Owner type must be user or tenant.");
                None
            }
        };
        if let (Some(id), Some(owner_type)) = (id, owner_type) {
            owners.push(Owner { id, owner_type });
        }
    }
    Some(owners)
}

/// Parses `tenant`: a tenant id or `null`.
pub(crate) fn parse_tenant(value: Option<&Value>, errors: &mut Errors) -> Option<Option<TenantId>> {
    match value {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => match s.parse() {
            Ok(id) => Some(Some(id)),
            Err(_) => {
                errors.add("tenant", "Invalid id");
                None
            }
        },
        Some(_) => {
            errors.add("tenant", "tenant must be a tenant id.");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn messages(doc: Value) -> Vec<(Option<String>, String)> {
        match parse_flow_document(&doc) {
            Ok(_) => vec![],
            Err(errors) => errors.into_iter().map(|e| (e.field, e.message)).collect(),
        }
    }

    #[test]
    fn accepts_a_valid_two_node_flow() {
        let doc = json!({
            "name": "f", "type": "ordinary", "cron": "*/5 * * * *",
            "graph": {
                "nodes": [
                    {"id": "a", "componentId": "webhook", "function": "receive"},
                    {"id": "b", "componentId": "jq", "function": "transform", "fields": {"program": "."}}
                ],
                "edges": [{"source": "a", "target": "b", "config": {"condition": ".data.ok", "mapper": {}}}]
            }
        });
        let parsed = parse_flow_document(&doc).expect("valid");
        assert_eq!(parsed.spec.graph.trigger().map(|n| n.id.as_str()), Some("a"));
        assert_eq!(parsed.spec.graph.edges[0].config.mapper, None);
    }

    #[test]
    fn reports_every_error_with_its_path() {
        let doc = json!({
            "cron": "every day", "colour": "red",
            "graph": {
                "nodes": [
                    {"id": "a", "componentId": "webhook"},
                    {"id": "a", "function": "x", "componentId": "c"},
                    {"componentId": "c", "function": "f"}
                ],
                "edges": [{"source": "a", "target": "zz", "config": {"condition": ".a |"}}]
            }
        });
        let got = messages(doc);
        let expect = |field: &str, msg: &str| (Some(field.to_string()), msg.to_string());
        for wanted in [
            expect("name", "Flows require a name."),
            expect("colour", "Unknown field \"colour\"."),
            expect("cron", "Invalid cron expression."),
            expect("graph.nodes[0].function", "Flow nodes require a function."),
            expect("graph.nodes[1].id", "Node id \"a\" is not unique."),
            expect("graph.nodes[2].id", "Flow nodes require an id."),
            expect("graph.edges[0].target", "Edge target with id \"zz\" could not be found among nodes."),
        ] {
            assert!(got.contains(&wanted), "missing {wanted:?} in {got:?}");
        }
        assert!(got.iter().any(|(f, _)| f.as_deref() == Some("graph.edges[0].config.condition")));
    }

    #[test]
    fn graph_shape_rules() {
        let node = |id: &str| json!({"id": id, "componentId": "c", "function": "f"});
        let g =
            |nodes: Vec<Value>, edges: Value| json!({"name": "n", "graph": {"nodes": nodes, "edges": edges}});
        assert!(
            messages(json!({"name": "n"})).contains(&(Some("graph".into()), "Flows require a graph.".into()))
        );
        assert!(messages(g(vec![], json!([]))).iter().any(|(_, m)| m == "Flows require at least one node."));
        assert!(
            messages(g(vec![node("a"), node("b")], json!([])))
                .iter()
                .any(|(_, m)| m == "Flows with more than one node require edges.")
        );
        let cycle = json!([{"source": "a", "target": "b"}, {"source": "b", "target": "a"}]);
        assert!(messages(g(vec![node("a"), node("b")], cycle)).iter().any(|(_, m)| m.contains("cycle")));
        let two_triggers = json!([{"source": "a", "target": "c"}, {"source": "b", "target": "c"}]);
        assert!(
            messages(g(vec![node("a"), node("b"), node("c")], two_triggers))
                .iter()
                .any(|(_, m)| m.contains("exactly one trigger"))
        );
        let long = "x".repeat(31);
        assert!(messages(g(vec![node(&long)], json!([]))).iter().any(|(_, m)| m.contains("at most 30")));
    }

    proptest! {
        /// A chain of n valid nodes always validates; removing any required key of any node
        /// yields exactly one error at that node's path.
        #[test]
        fn chains_validate_and_missing_keys_are_pinpointed(n in 1usize..8, victim in 0usize..8, key in 0usize..3) {
            let nodes: Vec<Value> = (0..n).map(|i| json!({"id": format!("n{i}"), "componentId": "c", "function": "f"})).collect();
            let edges: Vec<Value> = (1..n).map(|i| json!({"source": format!("n{}", i - 1), "target": format!("n{i}")})).collect();
            let doc = json!({"name": "chain", "graph": {"nodes": nodes.clone(), "edges": edges.clone()}});
            prop_assert!(parse_flow_document(&doc).is_ok());
            let victim = victim % n;
            let key = ["id", "componentId", "function"][key];
            let mut broken = nodes;
            broken[victim].as_object_mut().map(|o| o.remove(key));
            let doc = json!({"name": "chain", "graph": {"nodes": broken, "edges": edges}});
            let errs = parse_flow_document(&doc).err().unwrap_or_default();
            let wanted = format!("graph.nodes[{victim}].{key}");
            prop_assert!(errs.iter().any(|e| e.field.as_deref() == Some(wanted.as_str())), "{:?}", errs);
        }
    }
}
