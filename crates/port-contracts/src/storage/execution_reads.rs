//! `ExecutionRepository` contracts for what the engine and the reports read: the execution's
//! error and idempotency key as stored, queued executions left behind, the step filter with
//! paging, and the step-usage report.
//!
//! Every row belongs to a fresh flow id or tenant (or is picked out of the results by id), so
//! these contracts may share a database with other runs.

use super::executions::{execution, query};
use super::fixtures::{long_ago, now};
use chrono::{DateTime, Duration, Utc};
use flow_domain::ids::{FlowId, TenantId};
use flow_domain::model::{Execution, ExecutionStatus, Owner, StepRecord};
use flow_domain::ports::{ExecutionRepository, StepUsage};
use flow_domain::query::{ExecutionQuery, PageRequest, Visibility};
use std::sync::Arc;
use uuid::Uuid;

/// `error` and `idempotency_key` are stored by `insert` and read back; `save` stores a new
/// `error` (and keeps the key).
pub async fn error_and_key_round_trip(executions: Arc<dyn ExecutionRepository>) {
    let mut e = execution(FlowId::new(), None, vec![], now());
    e.idempotency_key = Some("key-\u{e9}\"1".into());
    e.error = Some("The worker was lost.".into());
    executions.insert(&e, &[]).await.expect("insert");
    assert_eq!(executions.get(e.id).await.expect("get"), Some(e.clone()), "error and key stored");
    let mut failed = e.clone();
    failed.status = ExecutionStatus::Failed;
    failed.error = Some("The flow was deleted.".into());
    executions.save(&failed, &[]).await.expect("save");
    let stored = executions.get(e.id).await.expect("get");
    assert_eq!(stored, Some(Execution { revision: e.revision + 1, ..failed }), "save stores the error");
    let bare = execution(FlowId::new(), None, vec![], now());
    executions.insert(&bare, &[]).await.expect("insert");
    let stored = executions.get(bare.id).await.expect("get").expect("stored");
    assert_eq!((stored.error, stored.idempotency_key), (None, None), "absent error and key stay absent");
}

/// `list_queued_before` returns queued executions created strictly before `before`, oldest
/// first, at most `limit`.
pub async fn list_queued_before(executions: Arc<dyn ExecutionRepository>) {
    let before = long_ago(-500_000_000);
    let flow = FlowId::new();
    let cases = [
        (ExecutionStatus::Queued, -1_000),
        (ExecutionStatus::Queued, -2_000),
        (ExecutionStatus::Queued, 0),
        (ExecutionStatus::Running, -3_000),
        (ExecutionStatus::Succeeded, -3_000),
    ];
    let all: Vec<Execution> = cases
        .iter()
        .map(|(status, offset)| {
            let mut e = execution(flow, None, vec![], before + Duration::milliseconds(*offset));
            e.status = *status;
            e
        })
        .collect();
    for e in &all {
        executions.insert(e, &[]).await.expect("insert");
    }
    let listed = executions.list_queued_before(before, 1000).await.expect("list queued");
    assert!(listed.windows(2).all(|w| w[0].created_at <= w[1].created_at), "oldest first");
    assert!(
        listed.iter().all(|e| e.status == ExecutionStatus::Queued && e.created_at < before),
        "only queued"
    );
    let mine: Vec<&Execution> = listed.iter().filter(|e| e.flow_id == flow).collect();
    assert_eq!(mine, vec![&all[1], &all[0]], "queued and created strictly before, as stored");
    let one = executions.list_queued_before(before, 1).await.expect("list queued");
    assert_eq!(one.len(), 1, "limit");
    assert!(one[0].created_at <= all[1].created_at, "the limit keeps the oldest");
}

/// `ExecutionQuery::step` keeps the executions in which that node ran (matched literally, not
/// as a JSON path), combined with the other filters; `total` counts the same matches and pages
/// do not overlap.
pub async fn list_step_filter_and_paging(executions: Arc<dyn ExecutionRepository>) {
    let flow = FlowId::new();
    let tenant = TenantId::new();
    let odd_step = "we\"ird.step[0]";
    let mut with_step = Vec::new();
    for i in 0..9 {
        let mut e = execution(flow, Some(tenant), vec![], long_ago(i * 1_000));
        let at = e.created_at;
        e.steps.insert("trigger".into(), StepRecord::started("webhook", at));
        match i % 3 {
            0 => {
                e.steps.insert("send".into(), StepRecord::started("http", at));
                with_step.push(e.id);
            }
            1 => {
                e.steps.insert("sender".into(), StepRecord::started("http", at));
            }
            _ => {
                e.steps.insert(odd_step.into(), StepRecord::started("jq", at));
            }
        }
        executions.insert(&e, &[]).await.expect("insert");
    }
    executions.insert(&execution(flow, Some(tenant), vec![], long_ago(500)), &[]).await.expect("insert");
    with_step.reverse(); // newest first
    let base = ExecutionQuery {
        flow_id: Some(flow),
        step: Some("send".into()),
        ..query(Visibility::Tenant(tenant))
    };
    let mut paged = Vec::new();
    for number in 1..=3 {
        let page =
            executions.list(&ExecutionQuery { page: PageRequest { size: 2, number }, ..base.clone() }).await;
        let page = page.expect("list page");
        assert_eq!(page.total, 3, "total counts the executions with the step");
        paged.extend(page.items.into_iter().map(|e| e.id));
    }
    assert_eq!(paged, with_step, "only executions with the step, newest first, pages consecutive");
    let odd = ExecutionQuery { step: Some(odd_step.into()), ..base.clone() };
    assert_eq!(executions.list(&odd).await.expect("list").total, 3, "a step id is matched literally");
    let none = ExecutionQuery { step: Some("sen".into()), ..base.clone() };
    let page = executions.list(&none).await.expect("list");
    assert_eq!((page.items.len(), page.total), (0, 0), "no prefix match");
    let queued = ExecutionQuery { status: Some(ExecutionStatus::Running), ..base };
    assert_eq!(executions.list(&queued).await.expect("list").total, 0, "combined with the status filter");
}

/// An execution of `flow` created at `at` whose steps `(node id, component, in)` received
/// the given message counts.
fn with_steps(
    flow: FlowId,
    tenant: Option<TenantId>,
    owners: Vec<Owner>,
    at: DateTime<Utc>,
    steps: &[(&str, &str, u64)],
) -> Execution {
    let mut e = execution(flow, tenant, owners, at);
    for (node, component, count) in steps {
        let mut step = StepRecord::started(component, e.created_at);
        step.in_count = *count;
        e.steps.insert((*node).into(), step);
    }
    e
}

fn usage_row(flow: FlowId, tenant: TenantId, user: Option<Uuid>, component: &str, count: u64) -> StepUsage {
    StepUsage { flow_id: flow, tenant: Some(tenant), user, component_id: component.into(), count }
}

fn sorted(mut rows: Vec<StepUsage>) -> Vec<StepUsage> {
    rows.sort_by(|a, b| {
        (a.flow_id, a.tenant, a.user, &a.component_id).cmp(&(b.flow_id, b.tenant, b.user, &b.component_id))
    });
    rows
}

/// `usage` sums the messages received by the steps of the executions created in
/// `[from, to)`, per flow, tenant, first user owner (in order; `None` when no user owns it)
/// and component; `Some(tenant)` keeps that tenant's executions, `None` every tenant's.
pub async fn usage(executions: Arc<dyn ExecutionRepository>) {
    let (t1, t2) = (TenantId::new(), TenantId::new());
    let (a, b, c) = (FlowId::new(), FlowId::new(), FlowId::new());
    let (u1, u2) = (Uuid::now_v7(), Uuid::now_v7());
    let (from, to) = (long_ago(-900_000_000), long_ago(-800_000_000));
    let first_user = vec![Owner::tenant(t1.0), Owner::user(u1), Owner::user(u2)];
    let all = vec![
        with_steps(
            a,
            Some(t1),
            first_user,
            from,
            &[("t", "webhook", 1), ("s1", "http", 2), ("s2", "http", 3)],
        ),
        with_steps(
            a,
            Some(t1),
            vec![Owner::user(u1)],
            from + Duration::hours(1),
            &[("t", "webhook", 1), ("j", "jq", 4)],
        ),
        with_steps(
            a,
            Some(t1),
            vec![Owner::user(u2), Owner::user(u1)],
            to - Duration::milliseconds(1),
            &[("t", "webhook", 1)],
        ),
        with_steps(b, Some(t1), vec![Owner::tenant(t1.0)], from, &[("s", "http", 7)]),
        with_steps(c, Some(t2), vec![Owner::user(u1)], from, &[("s", "http", 2)]),
        with_steps(a, Some(t1), vec![Owner::user(u1)], to, &[("s", "http", 100)]),
        with_steps(
            a,
            Some(t1),
            vec![Owner::user(u1)],
            from - Duration::milliseconds(1),
            &[("s", "http", 100)],
        ),
        with_steps(c, Some(t2), vec![Owner::user(u1)], to + Duration::hours(1), &[("s", "http", 100)]),
    ];
    for e in &all {
        executions.insert(e, &[]).await.expect("insert");
    }
    let expected_t1 = sorted(vec![
        usage_row(a, t1, Some(u1), "webhook", 2),
        usage_row(a, t1, Some(u1), "http", 5),
        usage_row(a, t1, Some(u1), "jq", 4),
        usage_row(a, t1, Some(u2), "webhook", 1),
        usage_row(b, t1, None, "http", 7),
    ]);
    let expected_t2 = vec![usage_row(c, t2, Some(u1), "http", 2)];
    let got = executions.usage(Some(t1), from, to).await.expect("usage t1");
    assert_eq!(sorted(got), expected_t1, "grouped per flow, first user and component, [from, to)");
    let got = executions.usage(Some(t2), from, to).await.expect("usage t2");
    assert_eq!(sorted(got), expected_t2, "only the tenant's executions");
    let got = executions.usage(None, from, to).await.expect("usage all");
    let mine: Vec<StepUsage> = got.into_iter().filter(|r| [a, b, c].contains(&r.flow_id)).collect();
    assert_eq!(sorted(mine), sorted([expected_t1, expected_t2].concat()), "None: every tenant");
    let empty = executions.usage(Some(t1), to + Duration::days(1), to + Duration::days(2)).await;
    assert!(empty.expect("usage").is_empty(), "nothing in another period");
}
