//! Graph rules of SPEC §4: nodes, edges, references, acyclicity, one trigger, jq compiles.

use super::{Errors, opt_object, opt_string, path, reject_unknown, req_string};
use crate::expr::JqProgram;
use crate::model::{Edge, EdgeConfig, Graph, Node};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

const NODE_FIELDS: &[&str] =
    &["id", "componentId", "function", "name", "description", "credentials_id", "fields", "nodeSettings"];
const EDGE_FIELDS: &[&str] = &["id", "source", "target", "config"];
const EDGE_CONFIG_FIELDS: &[&str] = &["condition", "mapper"];

/// Longest node id allowed.
pub const MAX_NODE_ID_LEN: usize = 30;

/// Parses and validates a graph at `graph`; `None` when it is unusable.
pub(crate) fn parse_graph(value: Option<&Value>, errors: &mut Errors) -> Option<Graph> {
    let obj = match value {
        None | Some(Value::Null) => {
            errors.add("graph", "Flows require a graph.");
            return None;
        }
        Some(Value::Object(obj)) => obj,
        Some(_) => {
            errors.add("graph", "graph must be an object.");
            return None;
        }
    };
    reject_unknown(obj, &["nodes", "edges"], "graph", errors);
    let nodes = match obj.get("nodes") {
        Some(Value::Array(items)) => {
            items.iter().enumerate().filter_map(|(i, n)| parse_node(i, n, errors)).collect::<Vec<_>>()
        }
        None | Some(Value::Null) => vec![],
        Some(_) => {
            errors.add("graph.nodes", "nodes must be an array.");
            return None;
        }
    };
    let raw_node_count = obj.get("nodes").and_then(Value::as_array).map_or(0, Vec::len);
    if raw_node_count == 0 {
        errors.add("graph.nodes", "Flows require at least one node.");
    }
    let edges = match obj.get("edges") {
        Some(Value::Array(items)) => {
            items.iter().enumerate().filter_map(|(i, e)| parse_edge(i, e, errors)).collect::<Vec<_>>()
        }
        None | Some(Value::Null) => vec![],
        Some(_) => {
            errors.add("graph.edges", "edges must be an array.");
            vec![]
        }
    };
    let raw_edge_count = obj.get("edges").and_then(Value::as_array).map_or(0, Vec::len);
    if raw_node_count > 1 && raw_edge_count == 0 {
        errors.add("graph.edges", "Flows with more than one node require edges.");
    }
    let graph = Graph { nodes, edges };
    check_structure(&graph, errors);
    Some(graph)
}

fn parse_node(i: usize, value: &Value, errors: &mut Errors) -> Option<Node> {
    let prefix = format!("graph.nodes[{i}]");
    let Some(obj) = value.as_object() else {
        errors.add(prefix, "A node must be an object.");
        return None;
    };
    reject_unknown(obj, NODE_FIELDS, &prefix, errors);
    let id = req_string(obj, "id", &prefix, "Flow nodes require an id.", errors);
    if let Some(id) = &id
        && id.chars().count() > MAX_NODE_ID_LEN
    {
        errors.add(path(&prefix, "id"), format!("Node ids must be at most {MAX_NODE_ID_LEN} characters."));
    }
    let component_id = req_string(obj, "componentId", &prefix, "Flow nodes require a componentId.", errors);
    let function = req_string(obj, "function", &prefix, "Flow nodes require a function.", errors);
    let node = Node {
        id: id.unwrap_or_default(),
        component_id: component_id.unwrap_or_default(),
        function: function.unwrap_or_default(),
        name: opt_string(obj, "name", &prefix, errors),
        description: opt_string(obj, "description", &prefix, errors),
        credentials_id: opt_string(obj, "credentials_id", &prefix, errors),
        fields: opt_object(obj, "fields", &prefix, errors),
        node_settings: opt_object(obj, "nodeSettings", &prefix, errors),
    };
    Some(node)
}

fn parse_edge(i: usize, value: &Value, errors: &mut Errors) -> Option<Edge> {
    let prefix = format!("graph.edges[{i}]");
    let Some(obj) = value.as_object() else {
        errors.add(prefix, "An edge must be an object.");
        return None;
    };
    reject_unknown(obj, EDGE_FIELDS, &prefix, errors);
    let source = req_string(obj, "source", &prefix, "Flow edges require a source.", errors);
    let target = req_string(obj, "target", &prefix, "Flow edges require a target.", errors);
    let config = parse_edge_config(obj, &prefix, errors);
    Some(Edge { id: opt_string(obj, "id", &prefix, errors), source: source?, target: target?, config })
}

fn parse_edge_config(edge: &Map<String, Value>, prefix: &str, errors: &mut Errors) -> EdgeConfig {
    let prefix = path(prefix, "config");
    let obj = match edge.get("config") {
        None | Some(Value::Null) => return EdgeConfig::default(),
        Some(Value::Object(obj)) => obj,
        Some(_) => {
            errors.add(prefix, "config must be an object.");
            return EdgeConfig::default();
        }
    };
    reject_unknown(obj, EDGE_CONFIG_FIELDS, &prefix, errors);
    let mut program = |key: &str| -> Option<String> {
        let field = path(&prefix, key);
        let code = match obj.get(key) {
            None | Some(Value::Null) => return None,
            // OIH stores an empty object for "no mapper"; accept it as absent.
            Some(Value::Object(m)) if m.is_empty() => return None,
            Some(Value::String(s)) if s.trim().is_empty() => return None,
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                errors.add(field, format!("{key} must be a jq expression (a string)."));
                return None;
            }
        };
        if let Err(e) = JqProgram::compile(&code) {
            errors.add(field, format!("Invalid jq expression in {key}: {e}"));
        }
        Some(code)
    };
    let condition = program("condition");
    let mapper = program("mapper");
    EdgeConfig { condition, mapper }
}

/// Unique ids, edges naming existing nodes, no cycle, exactly one trigger.
fn check_structure(graph: &Graph, errors: &mut Errors) {
    let mut seen = HashSet::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        if !node.id.is_empty() && !seen.insert(node.id.as_str()) {
            errors.add(format!("graph.nodes[{i}].id"), format!("Node id \"{}\" is not unique.", node.id));
        }
    }
    let mut references_ok = true;
    for (i, edge) in graph.edges.iter().enumerate() {
        if !seen.contains(edge.source.as_str()) {
            references_ok = false;
            errors.add(
                format!("graph.edges[{i}].source"),
                format!("Edge source with id \"{}\" could not be found among nodes.", edge.source),
            );
        }
        if !seen.contains(edge.target.as_str()) {
            references_ok = false;
            errors.add(
                format!("graph.edges[{i}].target"),
                format!("Edge target with id \"{}\" could not be found among nodes.", edge.target),
            );
        }
    }
    if !references_ok || graph.nodes.is_empty() || graph.nodes.iter().any(|n| n.id.is_empty()) {
        return;
    }
    if has_cycle(graph) {
        errors.add("graph", "The graph must not contain a cycle.");
        return;
    }
    let triggers: Vec<&str> = graph
        .nodes
        .iter()
        .filter(|n| !graph.edges.iter().any(|e| e.target == n.id))
        .map(|n| n.id.as_str())
        .collect();
    if triggers.len() != 1 {
        errors.add(
            "graph",
            format!(
                "The graph must have exactly one trigger node (a node with no incoming edge); found {}: {}.",
                triggers.len(),
                triggers.join(", ")
            ),
        );
    }
}

/// Kahn's algorithm: a cycle leaves nodes with incoming edges unvisited.
fn has_cycle(graph: &Graph) -> bool {
    let mut indegree: HashMap<&str, usize> = graph.nodes.iter().map(|n| (n.id.as_str(), 0)).collect();
    for edge in &graph.edges {
        *indegree.entry(edge.target.as_str()).or_default() += 1;
    }
    let mut ready: Vec<&str> = indegree.iter().filter(|(_, d)| **d == 0).map(|(id, _)| *id).collect();
    let mut visited = 0;
    while let Some(id) = ready.pop() {
        visited += 1;
        for edge in graph.edges.iter().filter(|e| e.source == id) {
            if let Some(d) = indegree.get_mut(edge.target.as_str()) {
                *d -= 1;
                if *d == 0 {
                    ready.push(edge.target.as_str());
                }
            }
        }
    }
    visited != indegree.len()
}
