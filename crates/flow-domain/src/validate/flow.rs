//! The flow document of `POST /flows`, `PATCH /flows/{id}` and template generation.

use super::graph::parse_graph;
use super::{Errors, as_object, check_depth, opt_object, opt_string, parse_cron, reject_unknown, req_string};
use crate::error::FieldError;
use crate::ids::{TenantId, parse_uuid};
use crate::limits::Limits;
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

/// Parses a whole flow document within `limits`, reporting every problem.
///
/// # Errors
/// Every rule of SPEC §4 that the document breaks, each with its field path; a document nested
/// deeper than the limit is refused for that alone (at each top-level field too deep).
pub fn parse_flow_document(doc: &Value, limits: &Limits) -> Result<FlowDocument, Vec<FieldError>> {
    let mut errors = Errors::default();
    let Some(obj) = as_object(doc, "flow", &mut errors) else { return Err(errors.0) };
    if !check_depth(obj, limits, &mut errors) {
        return Err(errors.0);
    }
    check_flow_keys(obj, &mut errors);
    let spec = parse_spec(obj, limits, &mut errors);
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

fn parse_spec(obj: &Map<String, Value>, limits: &Limits, errors: &mut Errors) -> Option<FlowSpec> {
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
    let graph = parse_graph(obj.get("graph"), limits, errors);
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
        match parse_flow_document(&doc, &Limits::default()) {
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
        let parsed = parse_flow_document(&doc, &Limits::default()).expect("valid");
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

    fn chain(n: usize) -> Value {
        let nodes: Vec<Value> =
            (0..n).map(|i| json!({"id": format!("n{i}"), "componentId": "c", "function": "f"})).collect();
        let edges: Vec<Value> =
            (1..n).map(|i| json!({"source": format!("n{}", i - 1), "target": format!("n{i}")})).collect();
        json!({"name": "chain", "graph": {"nodes": nodes, "edges": edges}})
    }

    #[test]
    fn graphs_are_held_to_the_node_limit() {
        let limits = Limits { max_nodes: 5, ..Limits::default() };
        assert!(parse_flow_document(&chain(5), &limits).is_ok());
        let errors = parse_flow_document(&chain(6), &limits).err().unwrap_or_default();
        assert_eq!(
            errors,
            vec![FieldError::at(
                "graph.nodes",
                "A flow has at most 5 nodes (FLOWMATE_MAX_NODES); this one has 6."
            )]
        );
        // A long chain validates in linear time (a quadratic check took seconds at 40,000).
        let unbounded = Limits { max_nodes: usize::MAX, ..Limits::default() };
        assert!(parse_flow_document(&chain(40_000), &unbounded).is_ok());
        let mut cyclic = chain(40_000);
        if let Some(edges) = cyclic["graph"]["edges"].as_array_mut() {
            edges.push(json!({"source": "n39999", "target": "n0"}));
        }
        let errors = parse_flow_document(&cyclic, &unbounded).err().unwrap_or_default();
        assert!(errors.iter().any(|e| e.message.contains("cycle")), "{errors:?}");
    }

    #[test]
    fn documents_are_held_to_the_depth_limit() {
        let limits = Limits { max_depth: 8, ..Limits::default() };
        // Document, graph, nodes, node, fields: 5 levels before the field's own.
        let with_field = |value: Value| {
            let mut doc = chain(2);
            doc["graph"]["nodes"][1]["fields"] = json!({ "x": value });
            doc
        };
        assert!(parse_flow_document(&with_field(json!([[[1]]])), &limits).is_ok());
        let errors = parse_flow_document(&with_field(json!([[[[1]]]])), &limits).err().unwrap_or_default();
        assert_eq!(errors, vec![FieldError::at("graph", limits.document_too_deep())]);
        let mut settings = chain(1);
        settings["flowSettings"] = json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}});
        let errors = parse_flow_document(&settings, &limits).err().unwrap_or_default();
        assert_eq!(errors, vec![FieldError::at("flowSettings", limits.document_too_deep())]);
        let template = crate::validate::template::parse_template_document(&settings, &limits);
        assert_eq!(template.err(), Some(vec![FieldError::at("flowSettings", limits.document_too_deep())]));
        let mut template = chain(6);
        template["name"] = json!("t");
        let refused =
            crate::validate::template::parse_template_document(&template, &Limits { max_nodes: 5, ..limits });
        assert!(
            refused.is_err_and(|errors| errors.iter().any(|e| e.field.as_deref() == Some("graph.nodes")))
        );
    }

    /// Whether `n` nodes with `edges` (pairs of node numbers) form a valid graph, by plain
    /// means: the transitive closure for cycles, a count of nodes without incoming edges.
    fn valid_by_reference(n: usize, edges: &[(usize, usize)]) -> bool {
        if n == 0 || (n > 1 && edges.is_empty()) {
            return false;
        }
        let mut reaches = vec![vec![false; n]; n];
        for (s, t) in edges {
            reaches[*s][*t] = true;
        }
        for k in 0..n {
            for i in 0..n {
                for j in 0..n {
                    reaches[i][j] |= reaches[i][k] && reaches[k][j];
                }
            }
        }
        let acyclic = (0..n).all(|i| !reaches[i][i]);
        acyclic && (0..n).filter(|node| !edges.iter().any(|(_, t)| t == node)).count() == 1
    }

    proptest! {
        /// Any graph is accepted exactly when the plain reference accepts it.
        #[test]
        fn graph_rules_agree_with_a_plain_reference(
            n in 0usize..9,
            raw_edges in prop::collection::vec((0usize..9, 0usize..9), 0..14),
        ) {
            let edges: Vec<(usize, usize)> =
                raw_edges.into_iter().filter(|(s, t)| *s < n && *t < n).collect();
            let nodes: Vec<Value> =
                (0..n).map(|i| json!({"id": format!("n{i}"), "componentId": "c", "function": "f"})).collect();
            let edge_docs: Vec<Value> =
                edges.iter().map(|(s, t)| json!({"source": format!("n{s}"), "target": format!("n{t}")})).collect();
            let doc = json!({"name": "g", "graph": {"nodes": nodes, "edges": edge_docs}});
            let verdict = parse_flow_document(&doc, &Limits::default());
            prop_assert_eq!(verdict.is_ok(), valid_by_reference(n, &edges), "{:?} {:?}", edges, verdict);
            if let Ok(parsed) = verdict {
                let trigger = parsed.spec.graph.trigger().map(|node| node.id.clone());
                let roots: Vec<String> = (0..n).filter(|i| !edges.iter().any(|(_, t)| t == i)).map(|i| format!("n{i}")).collect();
                prop_assert_eq!(trigger, roots.first().cloned());
            }
        }

        /// A chain of n valid nodes always validates; removing any required key of any node
        /// yields exactly one error at that node's path.
        #[test]
        fn chains_validate_and_missing_keys_are_pinpointed(n in 1usize..8, victim in 0usize..8, key in 0usize..3) {
            let nodes: Vec<Value> = (0..n).map(|i| json!({"id": format!("n{i}"), "componentId": "c", "function": "f"})).collect();
            let edges: Vec<Value> = (1..n).map(|i| json!({"source": format!("n{}", i - 1), "target": format!("n{i}")})).collect();
            let doc = json!({"name": "chain", "graph": {"nodes": nodes.clone(), "edges": edges.clone()}});
            prop_assert!(parse_flow_document(&doc, &Limits::default()).is_ok());
            let victim = victim % n;
            let key = ["id", "componentId", "function"][key];
            let mut broken = nodes;
            broken[victim].as_object_mut().map(|o| o.remove(key));
            let doc = json!({"name": "chain", "graph": {"nodes": broken, "edges": edges}});
            let errs = parse_flow_document(&doc, &Limits::default()).err().unwrap_or_default();
            let wanted = format!("graph.nodes[{victim}].{key}");
            prop_assert!(errs.iter().any(|e| e.field.as_deref() == Some(wanted.as_str())), "{:?}", errs);
        }
    }
}
