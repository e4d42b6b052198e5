//! Rows that cannot be read back (a stored JSON document nested deeper than any reader
//! accepts, as a bug or a hand edit could leave) fail alone: listings and background passes go
//! on. An execution is returned as its readable remains, marked, and can be failed by a save
//! (which makes it readable again); a flow that cannot be read is left out of the scheduler's
//! and the watchdog's lists; an outbox event that cannot be read is claimed with its error, in
//! its place.
//!
//! The adapter under test plants the rows through [`RowCorrupter`] (plain SQL in its tests).

use super::executions::{execution, query};
use super::fixtures::{drain, event, flow, long_ago, marker, now};
use async_trait::async_trait;
use flow_domain::execution_lifecycle::AttemptLimit;
use flow_domain::ids::{EventId, ExecutionId, FlowId, TenantId};
use flow_domain::model::{ExecutionStatus, FlowStatus, Owner};
use flow_domain::ports::{ExecutionRepository, FlowRepository, Outbox};
use flow_domain::query::{ExecutionQuery, Visibility};
use std::sync::Arc;
use uuid::Uuid;

/// How deep [`deep_json`] nests: deeper than the JSON readers' limit (128).
pub const TOO_DEEP: usize = 200;

/// A JSON array nested [`TOO_DEEP`] levels: valid JSON no reader of FlowMate accepts.
pub fn deep_json() -> String {
    format!("{}{}", "[".repeat(TOO_DEEP), "]".repeat(TOO_DEEP))
}

/// Plants unreadable rows directly in the adapter's database.
#[async_trait]
pub trait RowCorrupter: Send + Sync {
    /// Replaces the stored document of execution `id` (trigger, input, steps) with
    /// [`deep_json`].
    async fn execution_document(&self, id: ExecutionId);
    /// Replaces the stored graph document of flow `id` with [`deep_json`].
    async fn flow_document(&self, id: FlowId);
    /// Replaces the stored payload of the outbox event `id` with [`deep_json`].
    async fn event_payload(&self, id: EventId);
}

/// The contract; see the module documentation.
pub async fn unreadable_rows_fail_alone(
    executions: Arc<dyn ExecutionRepository>,
    flows: Arc<dyn FlowRepository>,
    outbox: Arc<dyn Outbox>,
    corrupt: Arc<dyn RowCorrupter>,
) {
    let tenant = TenantId::new();
    let owners = vec![Owner::user(Uuid::now_v7()), Owner::tenant(tenant.0)];
    let flow_id = FlowId::new();
    let bad = execution(flow_id, Some(tenant), owners.clone(), long_ago(1));
    let good = execution(flow_id, Some(tenant), owners.clone(), long_ago(2));
    let running = execution(flow_id, Some(tenant), owners, long_ago(3));
    for e in [&bad, &good, &running] {
        executions.insert(e, &[]).await.expect("insert");
    }
    let (t0, expiry) = (long_ago(10), long_ago(20));
    executions.claim(running.id, "dead#1", t0, expiry, AttemptLimit::DEFAULT).await.expect("claim");
    corrupt.execution_document(bad.id).await;
    corrupt.execution_document(running.id).await;

    let read = executions.get(bad.id).await.expect("get an unreadable execution").expect("found");
    assert!(read.unreadable, "marked unreadable");
    assert_eq!(
        (read.id, read.flow_id, read.status, read.tenant),
        (bad.id, flow_id, ExecutionStatus::Queued, Some(tenant))
    );
    assert!(read.input.is_null() && read.steps.is_empty(), "its document is not shown");
    let error = read.error.clone().unwrap_or_default();
    assert!(error.contains("could not be read"), "the error says why: {error}");

    let listed = executions
        .list(&ExecutionQuery { flow_id: Some(flow_id), ..query(Visibility::All) })
        .await
        .expect("a listing with an unreadable row");
    assert_eq!(listed.total, 3, "every row counted");
    let marks: Vec<(ExecutionId, bool)> = listed.items.iter().map(|e| (e.id, e.unreadable)).collect();
    assert_eq!(
        marks,
        vec![(running.id, true), (good.id, false), (bad.id, true)],
        "newest first, each marked alone"
    );
    let queued = executions.list_queued_before(long_ago(5), 1000).await.expect("list queued");
    let queued: Vec<(ExecutionId, bool)> = queued.iter().map(|e| (e.id, e.unreadable)).collect();
    assert!(queued.contains(&(bad.id, true)) && queued.contains(&(good.id, false)), "{queued:?}");
    let expired = executions.list_expired_leases(expiry, 1000).await.expect("list expired leases");
    let expired = expired.iter().find(|e| e.id == running.id).expect("the unreadable running one is listed");
    assert!(expired.unreadable && expired.lease_owner.as_deref() == Some("dead#1"), "with its lease");

    let mut failed = read.clone();
    failed.status = ExecutionStatus::Failed;
    failed.finished_at = Some(now());
    executions.save(&failed, &[]).await.expect("an unreadable execution can be failed");
    let after = executions.get(bad.id).await.expect("get").expect("found");
    assert!(!after.unreadable, "readable again once saved");
    assert_eq!((after.status, after.error), (ExecutionStatus::Failed, Some(error)), "failed, with why");

    let mut scheduled = Vec::new();
    for _ in 0..2 {
        let mut f = flow(&marker(), None, vec![]);
        f.status = FlowStatus::Active;
        f.spec.cron = Some("*/5 * * * *".into());
        flows.insert(&f, &[]).await.expect("insert flow");
        scheduled.push(f);
    }
    corrupt.flow_document(scheduled[0].id).await;
    let listed = flows.list_scheduled().await.expect("the scheduler's list with an unreadable flow");
    assert!(listed.iter().all(|f| f.id != scheduled[0].id), "the unreadable flow is left out");
    assert!(listed.iter().any(|f| f.id == scheduled[1].id), "the others are listed");

    drain(outbox.as_ref()).await;
    let events: Vec<_> = (0..3).map(|_| event()).collect();
    outbox.append(&events, None).await.expect("append");
    corrupt.event_payload(events[1].id).await;
    let claimed = outbox.claim("relay#1", 10).await.expect("a claim with an unreadable event");
    assert_eq!(claimed.len(), 3, "each row claimed in its place");
    assert!(claimed.windows(2).all(|w| w[0].seq < w[1].seq), "in order");
    assert_eq!(claimed[0].event.as_ref().ok(), Some(&events[0]));
    assert!(claimed[1].event.is_err(), "the unreadable one comes with its error");
    assert_eq!(claimed[2].event.as_ref().ok(), Some(&events[2]));
    let seqs: Vec<i64> = claimed.iter().map(|s| s.seq).collect();
    outbox.mark_published(&seqs).await.expect("mark published");
}
