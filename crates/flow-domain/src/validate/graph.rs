//! Graph rules of SPEC §4: nodes, edges, references, acyclicity, one trigger, jq compiles, and
//! at most [`Limits::max_nodes`] nodes (SPEC §10). Every check is linear in the nodes and edges
//! (lookups by hashing, an iterative topological sort), so a large graph costs no more than
//! its size.

use super::{Errors, opt_object, opt_string, path, reject_unknown, req_string};
use crate::expr::JqProgram;
use crate::limits::Limits;
use crate::model::{Edge, EdgeConfig, Graph, Node};
use serde_json::{Map, Value};
use std::collections::HashMap;

const NODE_FIELDS: &[&str] =
    &["id", "componentId", "function", "name", "description", "credentials_id", "fields", "nodeSettings"];
const EDGE_FIELDS: &[&str] = &["id", "source", "target", "config"];
const EDGE_CONFIG_FIELDS: &[&str] = &["condition", "mapper"];

/// Longest node id allowed.
pub const MAX_NODE_ID_LEN: usize = 30;

/// Parses and validates a graph at `graph`; `None` when it is unusable (or has more nodes than
/// `limits` allow: its nodes are then not looked at).
pub(crate) fn parse_graph(value: Option<&Value>, limits: &Limits, errors: &mut Errors) -> Option<Graph> {
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
    if !check_node_count(obj, limits, errors) {
        return None;
    }
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

/// Whether the `nodes` of the graph object `graph` are within `limits`; reports them at
/// `graph.nodes` when they are not. Also used for templates' graphs.
pub(crate) fn check_node_count(graph: &Map<String, Value>, limits: &Limits, errors: &mut Errors) -> bool {
    let count = graph.get("nodes").and_then(Value::as_array).map_or(0, Vec::len);
    if count > limits.max_nodes {
        errors.add("graph.nodes", limits.too_many_nodes(count));
        return false;
    }
    true
}

/// Unique ids, edges naming existing nodes, no cycle, exactly one trigger.
fn check_structure(graph: &Graph, errors: &mut Errors) {
    // Node ids to their positions (the first one, for a repeated id).
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(graph.nodes.len());
    for (i, node) in graph.nodes.iter().enumerate() {
        if node.id.is_empty() {
            continue;
        }
        if index.contains_key(node.id.as_str()) {
            errors.add(format!("graph.nodes[{i}].id"), format!("Node id \"{}\" is not unique.", node.id));
        } else {
            index.insert(node.id.as_str(), i);
        }
    }
    let mut references_ok = true;
    for (i, edge) in graph.edges.iter().enumerate() {
        if !index.contains_key(edge.source.as_str()) {
            references_ok = false;
            errors.add(
                format!("graph.edges[{i}].source"),
                format!("Edge source with id \"{}\" could not be found among nodes.", edge.source),
            );
        }
        if !index.contains_key(edge.target.as_str()) {
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
    let links = Links::of(graph, &index);
    if links.has_cycle() {
        errors.add("graph", "The graph must not contain a cycle.");
        return;
    }
    let triggers: Vec<&str> = links.roots().map(|i| graph.nodes[i].id.as_str()).collect();
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

/// The edges of a graph whose every edge names known nodes, by node position: the targets
/// of each node and the number of edges entering it. A repeated node id stands for its first
/// node; the later ones are left out.
struct Links {
    targets: Vec<Vec<usize>>,
    indegree: Vec<usize>,
    /// Whether each node is the first with its id.
    first: Vec<bool>,
}

impl Links {
    fn of(graph: &Graph, index: &HashMap<&str, usize>) -> Self {
        let count = graph.nodes.len();
        let first =
            graph.nodes.iter().enumerate().map(|(i, n)| index.get(n.id.as_str()) == Some(&i)).collect();
        let mut links = Self { targets: vec![Vec::new(); count], indegree: vec![0; count], first };
        for edge in &graph.edges {
            if let (Some(&source), Some(&target)) =
                (index.get(edge.source.as_str()), index.get(edge.target.as_str()))
            {
                links.targets[source].push(target);
                links.indegree[target] += 1;
            }
        }
        links
    }

    /// The nodes no edge enters, in declaration order.
    fn roots(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.indegree.len()).filter(|&i| self.first[i] && self.indegree[i] == 0)
    }

    /// Kahn's algorithm: a cycle leaves nodes with incoming edges unvisited.
    fn has_cycle(&self) -> bool {
        let mut indegree = self.indegree.clone();
        let mut ready: Vec<usize> = self.roots().collect();
        let mut visited = 0;
        while let Some(node) = ready.pop() {
            visited += 1;
            for &target in &self.targets[node] {
                indegree[target] -= 1;
                if indegree[target] == 0 {
                    ready.push(target);
                }
            }
        }
        visited != self.first.iter().filter(|first| **first).count()
    }
}
