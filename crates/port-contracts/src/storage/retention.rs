//! `ExecutionRetention` contracts: the purge deletes only ended executions that finished
//! strictly before the cutoff, oldest first, at most `limit` per call, in every tenant, and
//! leaves everything else exactly as stored.
//!
//! The purge is global, so these contracts use times in 1985, which no other contract uses
//! (theirs are from 2001 on), and need those times to themselves: they may share a database
//! with the other contracts run one after the other, not with a concurrent run of themselves.

use super::executions::{execution, query};
use super::fixtures::ms;
use chrono::{DateTime, Duration, TimeZone, Utc};
use flow_domain::ids::{FlowId, TenantId};
use flow_domain::model::{Execution, ExecutionStatus, Owner, StepRecord};
use flow_domain::ports::{ExecutionRepository, ExecutionRetention};
use flow_domain::query::{ExecutionQuery, Visibility};
use std::sync::Arc;
use uuid::Uuid;

/// An instant in 1985, plus `offset_ms`.
fn in_1985(offset_ms: i64) -> DateTime<Utc> {
    let base = Utc.with_ymd_and_hms(1985, 6, 7, 8, 9, 10).single().unwrap_or_default();
    ms(base + Duration::milliseconds(offset_ms))
}

/// An execution of `flow` in `tenant` owned by a user and the tenant, with one step, created
/// an hour before `finished` and in `status`, finished at `finished` when given.
fn ended(
    flow: FlowId,
    tenant: Option<TenantId>,
    status: ExecutionStatus,
    finished: Option<DateTime<Utc>>,
) -> Execution {
    let mut owners = vec![Owner::user(Uuid::now_v7())];
    owners.extend(tenant.map(|t| Owner::tenant(t.0)));
    let created = finished.unwrap_or_else(|| in_1985(0)) - Duration::hours(1);
    let mut e = execution(flow, tenant, owners, created);
    e.status = status;
    e.started_at = Some(created);
    e.finished_at = finished;
    let mut step = StepRecord::started("jq", created);
    step.in_count = 1;
    step.finished_at = finished;
    e.steps.insert("trigger".into(), step);
    e
}

/// The executions of `flow` that `visibility` lets see, one page of 100.
fn of_flow(flow: FlowId, visibility: Visibility) -> ExecutionQuery {
    ExecutionQuery { flow_id: Some(flow), ..query(visibility) }
}

async fn present(executions: &dyn ExecutionRepository, all: &[&Execution]) -> Vec<bool> {
    let mut found = Vec::new();
    for e in all {
        found.push(executions.get(e.id).await.expect("get execution").is_some());
    }
    found
}

/// `purge_ended_before(before, limit)` deletes the `succeeded`, `failed` and `cancelled`
/// executions finished strictly before `before`, oldest `finishedAt` first, at most `limit`
/// per call, whatever their tenant, and returns how many; the deleted ones are gone from `get`
/// and `list` (with their owners). Executions finished at or after `before`, and `queued` or
/// `running` ones however old, stay exactly as stored.
pub async fn purge_ended_before(
    executions: Arc<dyn ExecutionRepository>,
    retention: Arc<dyn ExecutionRetention>,
) {
    let cutoff = in_1985(100_000);
    let flow = FlowId::new();
    let (a, b) = (TenantId::new(), TenantId::new());
    // Old and ended, in three tenants (one of them none), finished at distinct times: the
    // first two listed finished first.
    let old = [
        ended(flow, Some(b), ExecutionStatus::Failed, Some(in_1985(1_000))),
        ended(flow, None, ExecutionStatus::Cancelled, Some(in_1985(2_000))),
        ended(flow, Some(a), ExecutionStatus::Succeeded, Some(in_1985(3_000))),
        ended(flow, Some(b), ExecutionStatus::Succeeded, Some(in_1985(4_000))),
        ended(flow, None, ExecutionStatus::Failed, Some(in_1985(5_000))),
        ended(flow, Some(a), ExecutionStatus::Cancelled, Some(cutoff - Duration::milliseconds(1))),
    ];
    // To keep: ended at or after the cutoff, or not ended at all (even with an old
    // `finishedAt`, which only a broken writer would store).
    let kept = [
        ended(flow, Some(a), ExecutionStatus::Succeeded, Some(cutoff)),
        ended(flow, Some(b), ExecutionStatus::Failed, Some(cutoff + Duration::milliseconds(1))),
        ended(flow, None, ExecutionStatus::Queued, None),
        ended(flow, Some(a), ExecutionStatus::Running, None),
        ended(flow, Some(b), ExecutionStatus::Running, Some(in_1985(500))),
        ended(flow, None, ExecutionStatus::Queued, Some(in_1985(600))),
    ];
    for e in old.iter().chain(kept.iter()) {
        executions.insert(e, &[]).await.expect("insert execution");
    }
    let old_refs: Vec<&Execution> = old.iter().collect();

    assert_eq!(retention.purge_ended_before(cutoff, 2).await.expect("purge"), 2, "limit respected");
    assert_eq!(
        present(executions.as_ref(), &old_refs).await,
        [false, false, true, true, true, true],
        "the batch took the oldest finishedAt first"
    );

    let rest = retention.purge_ended_before(cutoff, 1_000).await.expect("purge");
    assert_eq!(rest, 4, "every other old ended execution, in every tenant");
    assert_eq!(present(executions.as_ref(), &old_refs).await, [false; 6], "old ended executions gone");
    assert_eq!(retention.purge_ended_before(cutoff, 1_000).await.expect("purge"), 0, "nothing left");

    for e in &kept {
        let stored = executions.get(e.id).await.expect("get execution");
        assert_eq!(stored.as_ref(), Some(e), "kept exactly as stored: {:?} {:?}", e.status, e.finished_at);
    }
    for (tenant, owners) in [(Some(a), 2), (Some(b), 2), (None, 2)] {
        let visibility = match tenant {
            Some(t) => Visibility::Tenant(t),
            None => Visibility::All,
        };
        let listed = executions.list(&of_flow(flow, visibility)).await.expect("list executions");
        let mine: Vec<&Execution> = listed.items.iter().filter(|e| e.tenant == tenant).collect();
        assert_eq!(mine.len(), owners, "only the kept executions of {tenant:?} are listed");
    }
    let user = old[0].owners[0].id;
    let by_owner = Visibility::Owners { tenant: Some(b), owner_ids: vec![user, b.0] };
    let owned = executions.list(&of_flow(flow, by_owner)).await.expect("list executions");
    assert!(owned.items.iter().all(|e| e.id != old[0].id), "a deleted execution is not listed for its owner");
}

/// A cutoff before every execution deletes nothing, even with a large limit.
pub async fn purge_with_an_early_cutoff_deletes_nothing(
    executions: Arc<dyn ExecutionRepository>,
    retention: Arc<dyn ExecutionRetention>,
) {
    let e = ended(FlowId::new(), None, ExecutionStatus::Succeeded, Some(in_1985(50_000)));
    executions.insert(&e, &[]).await.expect("insert execution");
    assert_eq!(retention.purge_ended_before(in_1985(-1), 1_000).await.expect("purge"), 0);
    assert_eq!(executions.get(e.id).await.expect("get execution"), Some(e.clone()), "still there");
    // Clean up for the contracts that follow on a shared database.
    assert_eq!(retention.purge_ended_before(in_1985(50_001), 1_000).await.expect("purge"), 1);
}
