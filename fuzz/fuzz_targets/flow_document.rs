//! Fuzz target: flow and template validation (`flow_domain::validate`). The input is tried as a
//! JSON document (validation must not panic, and what it accepts keeps to the limits), and it is
//! also read as a small graph (node count, then edges as pairs of node numbers, the last number
//! naming no node) whose verdict is checked against a plain reference: references, the
//! transitive closure for cycles, and the count of nodes without incoming edges.

#![no_main]

use flow_domain::limits::{Limits, value_depth};
use flow_domain::validate::flow::parse_flow_document;
use flow_domain::validate::template::parse_template_document;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const LIMITS: Limits = Limits { max_depth: 16, max_nodes: 10 };

fuzz_target!(|input: &[u8]| {
    if let Ok(doc) = serde_json::from_slice::<Value>(input) {
        if let Ok(flow) = parse_flow_document(&doc, &LIMITS) {
            assert!(value_depth(&doc) <= LIMITS.max_depth, "a document past the depth limit was accepted");
            assert!(flow.spec.graph.nodes.len() <= LIMITS.max_nodes, "too many nodes were accepted");
            assert!(flow.spec.graph.trigger().is_some(), "an accepted graph has a trigger");
        }
        let _ = parse_template_document(&doc, &LIMITS);
    }
    check_graph(input);
});

/// Builds a graph from `input` and checks the validator's verdict against the reference.
fn check_graph(input: &[u8]) {
    let Some((&first, rest)) = input.split_first() else { return };
    let count = usize::from(first % 13);
    let name = |i: usize| if i < count { format!("n{i}") } else { "unknown".to_string() };
    let pairs: Vec<(usize, usize)> = rest
        .chunks_exact(2)
        .map(|pair| (usize::from(pair[0]) % (count + 1), usize::from(pair[1]) % (count + 1)))
        .collect();
    let nodes: Vec<Value> =
        (0..count).map(|i| json!({"id": name(i), "componentId": "c", "function": "f"})).collect();
    let edges: Vec<Value> =
        pairs.iter().map(|(s, t)| json!({"source": name(*s), "target": name(*t)})).collect();
    let doc = json!({"name": "fuzz", "graph": {"nodes": nodes, "edges": edges}});
    let verdict = parse_flow_document(&doc, &LIMITS);
    let expected = valid_by_reference(count, &pairs);
    assert_eq!(verdict.is_ok(), expected, "nodes {count}, edges {pairs:?}: {verdict:?}");
}

fn valid_by_reference(count: usize, pairs: &[(usize, usize)]) -> bool {
    if count == 0 || count > LIMITS.max_nodes || (count > 1 && pairs.is_empty()) {
        return false;
    }
    if pairs.iter().any(|(s, t)| *s == count || *t == count) {
        return false;
    }
    let mut reaches = vec![vec![false; count]; count];
    for (s, t) in pairs {
        reaches[*s][*t] = true;
    }
    for k in 0..count {
        for i in 0..count {
            for j in 0..count {
                if reaches[i][k] && reaches[k][j] {
                    reaches[i][j] = true;
                }
            }
        }
    }
    if (0..count).any(|i| reaches[i][i]) {
        return false;
    }
    let roots = (0..count).filter(|n| !pairs.iter().any(|(_, t)| t == n)).count();
    roots == 1
}
