//! `ExecutionRepository` contract for bodies at the nesting ceiling (SPEC §10): an execution
//! whose input message and step samples carry a body nested
//! [`flow_domain::limits::MAX_DEPTH_CEILING`] deep, the deepest any configuration accepts, is
//! stored and read back by every read the API and the background passes make (`get`, `list`
//! with the status and step filters, `claim`, `save`, `list_expired_leases`,
//! `list_queued_before`, `usage`), so no accepted body can leave a row nothing can read.
//!
//! Its rows belong to a fresh flow and tenant and its times lie before every other contract's,
//! so it may share a database with other runs.

use super::executions::{execution, query};
use super::fixtures::long_ago;
use flow_domain::ids::{FlowId, TenantId};
use flow_domain::limits::{MAX_DEPTH_CEILING, value_depth};
use flow_domain::model::{Execution, ExecutionStatus, Owner, StepRecord, StepStatus};
use flow_domain::ports::ExecutionRepository;
use flow_domain::query::{ExecutionQuery, Visibility};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use uuid::Uuid;

/// A value nested `depth` deep, objects and arrays in turn, with a string at the bottom.
pub fn nested(depth: usize) -> Value {
    let mut value = json!("bottom");
    for level in 0..depth {
        value = if level % 2 == 0 {
            Value::Array(vec![value])
        } else {
            Value::Object(Map::from_iter([("a".to_string(), value)]))
        };
    }
    value
}

/// A webhook message whose `data` is `body`.
fn message(body: &Value) -> Value {
    json!({ "data": body, "headers": {}, "query": {}, "method": "POST", "pathSuffix": null })
}

/// The rule above: every read returns the deep execution as stored.
pub async fn deep_documents_read_back(executions: Arc<dyn ExecutionRepository>) {
    let body = nested(MAX_DEPTH_CEILING);
    assert_eq!(value_depth(&body), MAX_DEPTH_CEILING);
    let (flow, tenant) = (FlowId::new(), TenantId::new());
    let created = long_ago(-1_000_000_000);
    let mut e = execution(flow, Some(tenant), vec![Owner::user(Uuid::now_v7())], created);
    e.input = message(&body);
    for (node, component) in [("in", "webhook"), ("add", "jq")] {
        let mut step = StepRecord::started(component, created);
        step.in_count = 1;
        step.status = StepStatus::Succeeded;
        step.record_output(&message(&body));
        e.steps.insert(node.into(), step);
    }
    executions.insert(&e, &[]).await.expect("insert a deep execution");
    let stored = executions.get(e.id).await.expect("get reads a deep execution");
    assert_eq!(stored.as_ref(), Some(&e), "get: as stored");

    let mine = ExecutionQuery { flow_id: Some(flow), ..query(Visibility::Tenant(tenant)) };
    let queued = ExecutionQuery { status: Some(ExecutionStatus::Queued), ..mine.clone() };
    let page = executions.list(&queued).await.expect("list reads a deep execution");
    assert_eq!(page.items, vec![e.clone()], "list with a status filter (the backlog sampler's)");
    let by_step = ExecutionQuery { step: Some("add".into()), ..mine.clone() };
    let page = executions.list(&by_step).await.expect("list with a step filter");
    assert_eq!(page.items, vec![e.clone()], "list with a step filter (the step logs')");
    let all = executions.list(&query(Visibility::All)).await.expect("list of every tenant");
    assert!(all.total >= 1, "an administrator's list");

    let left = executions.list_queued_before(created + chrono::Duration::milliseconds(1), 1000).await;
    let left = left.expect("list_queued_before reads a deep execution");
    assert!(left.contains(&e), "list_queued_before (recovery): as stored");

    let (t0, expiry) = (long_ago(-999_999_990), long_ago(-999_999_980));
    let claimed = executions
        .claim(e.id, "worker-deep", t0, expiry, flow_domain::execution_lifecycle::AttemptLimit::DEFAULT)
        .await
        .expect("claim a deep execution");
    let claimed = claimed.expect("claimed");
    assert_eq!(claimed.input, e.input, "claim: the input as stored");
    let expired = executions.list_expired_leases(expiry, 1000).await.expect("list_expired_leases");
    assert!(expired.contains(&claimed), "list_expired_leases (recovery): as stored");

    let mut ended = claimed.clone();
    ended.status = ExecutionStatus::Succeeded;
    ended.finished_at = Some(expiry);
    ended.lease_owner = None;
    ended.lease_until = None;
    executions.save(&ended, &[]).await.expect("save a deep execution");
    let stored = executions.get(e.id).await.expect("get after save");
    assert_eq!(stored, Some(Execution { revision: ended.revision + 1, ..ended }), "save: as stored");

    let usage = executions.usage(Some(tenant), created, created + chrono::Duration::seconds(1)).await;
    let counted: u64 = usage.expect("usage reads a deep execution").iter().map(|row| row.count).sum();
    assert_eq!(counted, 2, "usage counts the deep execution's steps");
}
