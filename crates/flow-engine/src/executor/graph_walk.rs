//! Routing between nodes: each edge's jq `condition` and `mapper`, compiled once per flow
//! version and cached, decide where a node's output message goes and in what shape. Edge
//! programs run as the `jq` component's do: in process when bounded by their input, else in
//! the sandbox within the default step time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use flow_domain::expr::JqProgram;
use flow_domain::ids::FlowId;
use flow_domain::model::{Flow, Graph};
use serde_json::Value;

use tokio_util::sync::CancellationToken;

use crate::components::MAX_JQ_OUTPUTS;
use crate::sandbox::{DEFAULT_STEP_TIME, JqOutput, Sandbox};

/// How many compiled flow versions the cache keeps before it starts over.
const CACHE_LIMIT: usize = 1024;

/// A jq program of an edge, or why it does not compile.
type Program = Result<JqProgram, String>;

/// One edge with its programs compiled.
#[derive(Debug)]
struct CompiledEdge {
    target: String,
    condition: Option<Program>,
    mapper: Option<Program>,
}

/// A flow's edges, compiled and grouped by source node.
#[derive(Debug, Default)]
pub(crate) struct CompiledGraph {
    outgoing: HashMap<String, Vec<CompiledEdge>>,
}

/// Where one output message goes: the target node, and the message it receives or why the
/// edge failed (a condition or mapper that does not compile or fails on the message).
pub(crate) type Delivery = (String, Result<Value, String>);

impl CompiledGraph {
    /// Compiles every condition and mapper of `graph`; a program that does not compile is kept
    /// as its error, reported when a message takes the edge.
    pub(crate) fn compile(graph: &Graph) -> Self {
        let mut outgoing: HashMap<String, Vec<CompiledEdge>> = HashMap::new();
        for edge in &graph.edges {
            let compile = |code: &Option<String>, what: &str| {
                code.as_deref().filter(|c| !c.trim().is_empty()).map(|code| {
                    JqProgram::compile(code).map_err(|e| {
                        format!(
                            "The {what} of the edge from {} to {} is invalid: {e}",
                            edge.source, edge.target
                        )
                    })
                })
            };
            outgoing.entry(edge.source.clone()).or_default().push(CompiledEdge {
                target: edge.target.clone(),
                condition: compile(&edge.config.condition, "condition"),
                mapper: compile(&edge.config.mapper, "mapper"),
            });
        }
        Self { outgoing }
    }

    /// Where `message`, emitted by `source`, goes: along every outgoing edge whose condition
    /// holds, once per output of the edge's mapper (the message itself without a mapper).
    pub(crate) async fn route(
        &self,
        source: &str,
        message: &Value,
        sandbox: &Sandbox,
        cancel: &CancellationToken,
    ) -> Vec<Delivery> {
        let time = DEFAULT_STEP_TIME.min(sandbox.config().max_step_time);
        let mut out = Vec::new();
        for edge in self.outgoing.get(source).map(Vec::as_slice).unwrap_or_default() {
            let fail = |reason: String| (edge.target.clone(), Err(reason));
            match &edge.condition {
                None => {}
                Some(Err(reason)) => {
                    out.push(fail(reason.clone()));
                    continue;
                }
                Some(Ok(condition)) => match sandbox.jq_holds(condition, message, time, cancel).await {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        out.push(fail(format!(
                            "The condition of the edge from {source} to {} failed: {e}",
                            edge.target
                        )));
                        continue;
                    }
                },
            }
            match &edge.mapper {
                None => out.push((edge.target.clone(), Ok(message.clone()))),
                Some(Err(reason)) => out.push(fail(reason.clone())),
                Some(Ok(mapper)) => match sandbox
                    .run_jq(mapper, message, JqOutput::Values(MAX_JQ_OUTPUTS), time, cancel)
                    .await
                {
                    Ok(values) => out.extend(values.into_iter().map(|v| (edge.target.clone(), Ok(v)))),
                    Err(e) => out.push(fail(format!(
                        "The mapper of the edge from {source} to {} failed: {e}",
                        edge.target
                    ))),
                },
            }
        }
        out
    }
}

/// A compiled graph and the flow version (`updated_at`) it was compiled from.
type Entries = HashMap<FlowId, (DateTime<Utc>, Arc<CompiledGraph>)>;

/// Compiled graphs by flow, valid while the flow's `updated_at` is unchanged.
#[derive(Debug, Default)]
pub(crate) struct GraphCache {
    entries: Mutex<Entries>,
}

impl GraphCache {
    /// The compiled graph of `flow` as it is now, compiling it on a miss.
    pub(crate) fn get(&self, flow: &Flow) -> Arc<CompiledGraph> {
        if let Some((_, graph)) = self.lock().get(&flow.id).filter(|(version, _)| *version == flow.updated_at)
        {
            return Arc::clone(graph);
        }
        let compiled = Arc::new(CompiledGraph::compile(&flow.spec.graph));
        let mut entries = self.lock();
        if entries.len() >= CACHE_LIMIT {
            entries.clear();
        }
        entries.insert(flow.id, (flow.updated_at, Arc::clone(&compiled)));
        compiled
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flow_domain::model::{Edge, EdgeConfig, Node};
    use serde_json::json;

    fn node(id: &str) -> Node {
        serde_json::from_value(json!({"id": id, "componentId": "log", "function": "info"}))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn edge(target: &str, condition: Option<&str>, mapper: Option<&str>) -> Edge {
        Edge {
            id: None,
            source: "a".into(),
            target: target.into(),
            config: EdgeConfig { condition: condition.map(Into::into), mapper: mapper.map(Into::into) },
        }
    }

    #[tokio::test]
    async fn routes_by_condition_and_mapper() {
        let graph = Graph {
            nodes: vec![node("a"), node("b"), node("c"), node("d"), node("e")],
            edges: vec![
                edge("b", None, None),
                edge("c", Some(".data.n > 1"), None),
                edge("d", None, Some(".data.items[] | {data: .}")),
                edge("e", Some(".data |"), None),
            ],
        };
        let compiled = CompiledGraph::compile(&graph);
        let msg = json!({"data": {"n": 1, "items": [1, 2]}});
        let sandbox = Sandbox::default();
        let cancel = CancellationToken::new();
        let routed = compiled.route("a", &msg, &sandbox, &cancel).await;
        let targets: Vec<&str> = routed.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(targets, ["b", "d", "d", "e"]);
        assert_eq!(routed[0].1, Ok(msg.clone()));
        assert_eq!(routed[1].1, Ok(json!({"data": 1})));
        assert_eq!(routed[2].1, Ok(json!({"data": 2})));
        assert!(routed[3].1.as_ref().is_err_and(|e| e.contains("condition")));
        assert!(compiled.route("b", &msg, &sandbox, &cancel).await.is_empty());
    }
}
