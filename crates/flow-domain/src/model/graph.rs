//! A flow's graph: component nodes joined by edges with optional jq condition and mapper.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One step of a flow: a component function with its configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// Unique within the graph, at most 30 characters.
    pub id: String,
    /// The component (a built-in name such as `http`, or a registered component).
    pub component_id: String,
    /// The component function to call.
    pub function: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Id of the credential secret the node uses.
    #[serde(default, rename = "credentials_id", skip_serializing_if = "Option::is_none")]
    pub credentials_id: Option<String>,
    /// Component arguments.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub fields: Map<String, Value>,
    /// Per-node engine settings.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub node_settings: Map<String, Value>,
}

impl Node {
    /// A node calling `component_id`'s `function` with `fields`; no name, description,
    /// credentials or node settings.
    pub fn new(
        id: impl Into<String>,
        component_id: impl Into<String>,
        function: impl Into<String>,
        fields: Map<String, Value>,
    ) -> Self {
        Self {
            id: id.into(),
            component_id: component_id.into(),
            function: function.into(),
            name: None,
            description: None,
            credentials_id: None,
            fields,
            node_settings: Map::new(),
        }
    }
}

/// Routing rules of an edge: both are jq programs on the message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EdgeConfig {
    /// The message goes along the edge only when this holds (truthy first output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Reshapes the message on its way to the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapper: Option<String>,
}

/// A directed connection between two nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Edge {
    /// Optional label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Id of the node the edge leaves.
    pub source: String,
    /// Id of the node the edge enters.
    pub target: String,
    /// Condition and mapper.
    #[serde(default)]
    pub config: EdgeConfig,
}

/// The nodes and edges of a flow; validated acyclic with exactly one trigger node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Graph {
    /// The steps.
    pub nodes: Vec<Node>,
    /// The connections.
    #[serde(default)]
    pub edges: Vec<Edge>,
}

impl Graph {
    /// The node with no incoming edge (validation guarantees there is exactly one); linear in
    /// the nodes and edges.
    pub fn trigger(&self) -> Option<&Node> {
        let targets: std::collections::HashSet<&str> = self.edges.iter().map(|e| e.target.as_str()).collect();
        self.nodes.iter().find(|n| !targets.contains(n.id.as_str()))
    }
    /// The node with id `id`.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }
    /// The edges leaving `node_id`, in declaration order.
    pub fn outgoing<'a>(&'a self, node_id: &'a str) -> impl Iterator<Item = &'a Edge> + 'a {
        self.edges.iter().filter(move |e| e.source == node_id)
    }
}
