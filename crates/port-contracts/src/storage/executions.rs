//! `ExecutionRepository` contracts: round trip, visibility, filters and newest-first paging,
//! exclusive claims, reclaim after lease expiry, compare-and-set saves.
//!
//! Every row belongs to a fresh flow id or tenant, so the contracts may share a database; the
//! lease contracts use leases long past, which no other contract sets.

use super::fixtures::{drain, event, events_of, long_ago, ms, now};
use super::visibility::{Actors, Sample};
use chrono::{DateTime, Utc};
use flow_domain::error::PortError;
use flow_domain::execution_lifecycle::AttemptLimit;
use flow_domain::ids::{ExecutionId, FlowId, TenantId};
use flow_domain::model::{
    Counters, Execution, ExecutionStatus, Owner, StepRecord, StepStatus, TriggerInfo, TriggerType,
};
use flow_domain::ports::{ExecutionRepository, Outbox};
use flow_domain::query::{ExecutionQuery, PageRequest, Visibility};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

/// A queued webhook execution of `flow` created at `at`.
pub fn execution(flow: FlowId, tenant: Option<TenantId>, owners: Vec<Owner>, at: DateTime<Utc>) -> Execution {
    let trigger = TriggerInfo { trigger_type: TriggerType::Webhook, request_id: None };
    Execution::queued(flow, tenant, owners, trigger, json!({ "data": { "n": 1 } }), ms(at))
}

/// A query with only `visibility`, one page of 100.
pub fn query(visibility: Visibility) -> ExecutionQuery {
    ExecutionQuery {
        visibility,
        flow_id: None,
        status: None,
        from: None,
        to: None,
        step: None,
        page: PageRequest { size: 100, number: 1 },
    }
}

async fn ids(executions: &dyn ExecutionRepository, query: &ExecutionQuery) -> Vec<ExecutionId> {
    executions.list(query).await.expect("list executions").items.into_iter().map(|e| e.id).collect()
}

async fn insert_all(executions: &dyn ExecutionRepository, all: &[Execution]) {
    for e in all {
        executions.insert(e, &[]).await.expect("insert execution");
    }
}

/// `insert` then `get` returns every field as stored (to the millisecond), lease and revision
/// included, and the events given to `insert` are in the outbox; an unknown id is `None`; a
/// second insert of the same id is `Duplicate`.
pub async fn round_trip(executions: Arc<dyn ExecutionRepository>, outbox: Arc<dyn Outbox>) {
    let tenant = TenantId::new();
    let owners = vec![Owner::user(Uuid::now_v7()), Owner::tenant(tenant.0)];
    let mut full = execution(FlowId::new(), Some(tenant), owners, long_ago(5));
    full.trigger = TriggerInfo { trigger_type: TriggerType::Scheduler, request_id: Some("req-1".into()) };
    full.status = ExecutionStatus::Running;
    full.started_at = Some(ms(long_ago(6)));
    full.finished_at = Some(ms(long_ago(7_001)));
    full.counters = Counters { started: 3, succeeded: 2, errors: 1 };
    let mut step = StepRecord::started("jq", ms(long_ago(8)));
    step.status = StepStatus::Failed;
    step.in_count = 2;
    step.errors = 1;
    step.finished_at = Some(ms(long_ago(9)));
    step.last_error = Some("HTTP 500".into());
    step.record_output(&json!({ "data": [1, "two", null] }));
    full.steps.insert("send".into(), step.clone());
    full.steps.insert("trigger".into(), StepRecord::started("webhook", ms(long_ago(10))));
    full.lease_owner = Some("worker-1".into());
    full.lease_until = Some(ms(long_ago(60_000)));
    full.attempts = 2;
    full.revision = 4;
    let bare = execution(FlowId::new(), None, vec![], now());
    let events = vec![event(), event()];

    drain(outbox.as_ref()).await;
    executions.insert(&full, &events).await.expect("insert full execution");
    executions.insert(&bare, &[]).await.expect("insert bare execution");
    assert_eq!(executions.get(full.id).await.expect("get"), Some(full.clone()), "get returns every field");
    assert_eq!(executions.get(bare.id).await.expect("get"), Some(bare.clone()), "get returns a bare one");
    assert_eq!(executions.get(ExecutionId::new()).await.expect("get"), None, "unknown id is None");
    assert_eq!(events_of(&drain(outbox.as_ref()).await), events, "insert appends its events in order");
    assert!(
        matches!(executions.insert(&bare, &[]).await, Err(PortError::Duplicate(_))),
        "a second insert of the same id is Duplicate"
    );
}

/// Inserts made at once (which an adapter may gather into one statement or transaction) each
/// stand alone: a duplicate id among them fails with `Duplicate` and nothing else does; every
/// other execution is stored, visible through its owners, with its event in the outbox.
pub async fn concurrent_inserts_fail_alone(
    executions: Arc<dyn ExecutionRepository>,
    outbox: Arc<dyn Outbox>,
) {
    let tenant = TenantId::new();
    let user = Uuid::now_v7();
    let all: Vec<Execution> = (0..40)
        .map(|_| {
            execution(FlowId::new(), Some(tenant), vec![Owner::user(user), Owner::tenant(tenant.0)], now())
        })
        .collect();
    let duplicate = all[7].clone();
    drain(outbox.as_ref()).await;
    let mut calls = tokio::task::JoinSet::new();
    for (i, e) in all.iter().chain(std::iter::once(&duplicate)).cloned().enumerate() {
        let executions = Arc::clone(&executions);
        let events = vec![event()];
        calls.spawn(async move { (i, executions.insert(&e, &events).await.map(|()| events)) });
    }
    let mut appended = Vec::new();
    let mut duplicates = 0;
    while let Some(joined) = calls.join_next().await {
        let (i, result) = joined.expect("insert task");
        match result {
            Ok(events) => appended.extend(events),
            Err(PortError::Duplicate(_)) if i == 7 || i == all.len() => duplicates += 1,
            Err(e) => panic!("insert {i} failed: {e}"),
        }
    }
    assert_eq!(duplicates, 1, "exactly one of the two inserts of one id is Duplicate");
    let mut listed =
        ids(executions.as_ref(), &query(Visibility::Owners { tenant: Some(tenant), owner_ids: vec![user] }))
            .await;
    listed.sort();
    let mut expected: Vec<ExecutionId> = all.iter().map(|e| e.id).collect();
    expected.sort();
    assert_eq!(listed, expected, "every execution is stored and visible to its owner");
    let mut published: Vec<_> = events_of(&drain(outbox.as_ref()).await).into_iter().map(|e| e.id).collect();
    let mut wanted: Vec<_> = appended.into_iter().map(|e| e.id).collect();
    published.sort();
    wanted.sort();
    assert_eq!(published, wanted, "the events of every stored execution, and only those, are in the outbox");
}

/// Concurrent saves without events: of several saves of one execution from the same revision
/// exactly one wins (the others are `Conflict`) and its content is stored with the revision
/// bumped once; every save of another execution succeeds; a save of an unknown execution is
/// `NotFound`.
pub async fn concurrent_saves_fail_alone(executions: Arc<dyn ExecutionRepository>) {
    let all: Vec<Execution> = (0..30).map(|_| execution(FlowId::new(), None, vec![], now())).collect();
    for e in &all {
        executions.insert(e, &[]).await.expect("insert");
    }
    let contested = all[3].id;
    let mut saves: Vec<(u64, Execution)> = all.iter().map(|e| (1, e.clone())).collect();
    saves.extend((0..8).map(|k| (100 + k, all[3].clone())));
    saves.push((1, execution(FlowId::new(), None, vec![], now())));
    let unknown = saves.len() - 1;
    let mut calls = tokio::task::JoinSet::new();
    for (i, (marker, mut e)) in saves.into_iter().enumerate() {
        let executions = Arc::clone(&executions);
        e.counters.started = marker;
        calls.spawn(async move { (i, e.id, marker, executions.save(&e, &[]).await) });
    }
    let mut winners = Vec::new();
    while let Some(joined) = calls.join_next().await {
        let (i, id, marker, result) = joined.expect("save task");
        match result {
            Ok(()) if id == contested => winners.push(marker),
            Ok(()) => assert_ne!(i, unknown, "a save of an unknown execution succeeded"),
            Err(PortError::Conflict) if id == contested => {}
            Err(PortError::NotFound) if i == unknown => {}
            Err(e) => panic!("save {i} failed: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one save of the contested execution wins: {winners:?}");
    for e in &all {
        let stored = executions.get(e.id).await.expect("get").expect("stored");
        assert_eq!(stored.revision, e.revision + 1, "one save applied to {}", e.id);
        let marker = if e.id == contested { winners[0] } else { 1 };
        assert_eq!(stored.counters.started, marker, "the winning save's content is stored");
    }
}

/// `list` applies each visibility exactly as `Actor::can_see` on the execution's tenant and
/// owners, never across tenants, newest first.
pub async fn list_visibility(executions: Arc<dyn ExecutionRepository>) {
    let actors = Actors::new();
    let flow = FlowId::new();
    let base = now();
    let all: Vec<Execution> = Sample::new(&actors)
        .cases
        .iter()
        .enumerate()
        .map(|(i, (tenant, owners))| {
            let at = base + chrono::Duration::milliseconds(i64::try_from(i).unwrap_or(0));
            execution(flow, *tenant, owners.clone(), at)
        })
        .collect();
    insert_all(executions.as_ref(), &all).await;
    for actor in actors.all() {
        let expected: Vec<ExecutionId> =
            all.iter().rev().filter(|e| actor.can_see(e.tenant, &e.owners)).map(|e| e.id).collect();
        let q = ExecutionQuery { flow_id: Some(flow), ..query(actor.visibility()) };
        assert_eq!(ids(executions.as_ref(), &q).await, expected, "visibility {:?}", actor.visibility());
    }
    let nobody = Visibility::Owners { tenant: Some(actors.t1), owner_ids: vec![] };
    let q = ExecutionQuery { flow_id: Some(flow), ..query(nobody) };
    assert!(ids(executions.as_ref(), &q).await.is_empty(), "no owner ids: nothing visible");
}

/// `flowId`, `status`, `from` (inclusive) and `to` (exclusive) filters, alone and combined;
/// newest first with ties broken by id (descending); pages do not overlap; `total` counts
/// every match.
pub async fn list_filters_and_paging(executions: Arc<dyn ExecutionRepository>) {
    let tenant = TenantId::new();
    let (a, b) = (FlowId::new(), FlowId::new());
    let mut all = Vec::new();
    for (i, status) in ExecutionStatus::ALL.into_iter().chain(ExecutionStatus::ALL).enumerate() {
        let flow = if i % 2 == 0 { a } else { b };
        // Executions 4 and 5 share a creation time: the tie is broken by id.
        let offset = if i == 5 { 4 } else { i64::try_from(i).unwrap_or(0) };
        let mut e = execution(flow, Some(tenant), vec![], long_ago(offset * 1_000));
        e.status = status;
        all.push(e);
    }
    insert_all(executions.as_ref(), &all).await;
    let mut newest_first = all.clone();
    newest_first.sort_by_key(|e| std::cmp::Reverse((e.created_at, e.id)));
    let expect = |pred: &dyn Fn(&Execution) -> bool| -> Vec<ExecutionId> {
        newest_first.iter().filter(|e| pred(e)).map(|e| e.id).collect()
    };
    let base = query(Visibility::Tenant(tenant));
    assert_eq!(ids(executions.as_ref(), &base).await, expect(&|_| true), "newest first, ties by id");
    let q = ExecutionQuery { flow_id: Some(a), ..base.clone() };
    assert_eq!(ids(executions.as_ref(), &q).await, expect(&|e| e.flow_id == a), "flowId");
    for status in ExecutionStatus::ALL {
        let q = ExecutionQuery { status: Some(status), ..base.clone() };
        assert_eq!(ids(executions.as_ref(), &q).await, expect(&|e| e.status == status), "status {status}");
    }
    let (from, to) = (long_ago(2_000), long_ago(7_000));
    let q = ExecutionQuery { from: Some(from), to: Some(to), ..base.clone() };
    let in_range = |e: &Execution| e.created_at >= from && e.created_at < to;
    assert_eq!(ids(executions.as_ref(), &q).await, expect(&in_range), "from inclusive, to exclusive");
    let q = ExecutionQuery { flow_id: Some(b), status: Some(ExecutionStatus::Queued), ..q };
    let combined = |e: &Execution| in_range(e) && e.flow_id == b && e.status == ExecutionStatus::Queued;
    assert_eq!(ids(executions.as_ref(), &q).await, expect(&combined), "filters combine");

    let mut paged = Vec::new();
    for number in 1..=4 {
        let q = ExecutionQuery { page: PageRequest { size: 3, number }, ..base.clone() };
        let page = executions.list(&q).await.expect("list page");
        assert_eq!(page.total, 10, "total counts every match");
        paged.extend(page.items.into_iter().map(|e| e.id));
    }
    assert_eq!(paged, expect(&|_| true), "pages are consecutive and do not overlap");
}

/// `claim` takes a queued execution once: of two concurrent claims exactly one wins, getting
/// the execution as stored (running, leased, started, revision + 1); a live lease, a
/// finished execution and an unknown id are not claimable.
pub async fn claim_is_exclusive(executions: Arc<dyn ExecutionRepository>) {
    let queued = execution(FlowId::new(), None, vec![], now());
    let mut done = execution(FlowId::new(), None, vec![], now());
    done.status = ExecutionStatus::Succeeded;
    insert_all(executions.as_ref(), &[queued.clone(), done.clone()]).await;
    let at = now();
    let until = at + chrono::Duration::seconds(60);
    let (x, y) = tokio::join!(
        executions.claim(queued.id, "worker-x", at, until, AttemptLimit::DEFAULT),
        executions.claim(queued.id, "worker-y", at, until, AttemptLimit::DEFAULT)
    );
    let winners: Vec<Execution> = [x.expect("claim x"), y.expect("claim y")].into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "exactly one of two concurrent claims wins");
    let won = winners[0].clone();
    assert_eq!(won.status, ExecutionStatus::Running, "a claimed execution is running");
    assert!(matches!(won.lease_owner.as_deref(), Some("worker-x" | "worker-y")), "lease owner set");
    assert_eq!(won.lease_until, Some(until), "lease expiry set");
    assert_eq!(won.started_at, Some(at), "startedAt set on first claim");
    assert_eq!(won.revision, queued.revision + 1, "a claim bumps the revision");
    assert_eq!(won.attempts, queued.attempts + 1, "a claim counts the run");
    assert_eq!(executions.get(queued.id).await.expect("get"), Some(won), "the claim is stored");
    let later = at + chrono::Duration::seconds(30);
    let again = executions.claim(
        queued.id,
        "worker-z",
        later,
        later + chrono::Duration::seconds(60),
        AttemptLimit::DEFAULT,
    );
    assert_eq!(again.await.expect("claim"), None, "a live lease is not claimable");
    assert_eq!(
        executions.claim(done.id, "w", at, until, AttemptLimit::DEFAULT).await.expect("claim"),
        None,
        "finished"
    );
    assert_eq!(
        executions.claim(ExecutionId::new(), "w", at, until, AttemptLimit::DEFAULT).await.expect("claim"),
        None,
        "unknown"
    );
}

/// A running execution whose lease ran out is listed by `list_expired_leases` (not before
/// the expiry) and can be claimed again by another worker, keeping its `startedAt`.
pub async fn lease_expiry_reclaim(executions: Arc<dyn ExecutionRepository>) {
    let e = execution(FlowId::new(), None, vec![], now());
    executions.insert(&e, &[]).await.expect("insert");
    // Leases long past, so no other contract's lease falls in the windows below.
    let (t0, expiry) = (long_ago(100_000), long_ago(160_000));
    let first = executions
        .claim(e.id, "worker-a", t0, expiry, AttemptLimit::DEFAULT)
        .await
        .expect("claim")
        .expect("claimed");
    let before = executions.list_expired_leases(long_ago(159_999), 1000).await.expect("list expired");
    assert!(before.iter().all(|x| x.id != e.id), "not listed before its lease runs out");
    let listed = executions.list_expired_leases(expiry, 1000).await.expect("list expired");
    assert_eq!(listed.iter().filter(|x| x.id == e.id).count(), 1, "listed once its lease ran out");
    assert_eq!(listed.iter().find(|x| x.id == e.id), Some(&first), "listed as stored");
    let t1 = long_ago(170_000);
    let second = executions
        .claim(e.id, "worker-b", t1, now() + chrono::Duration::seconds(60), AttemptLimit::DEFAULT)
        .await;
    let second = second.expect("claim").expect("an expired lease is claimable");
    assert_eq!(second.lease_owner.as_deref(), Some("worker-b"), "the new worker holds the lease");
    assert_eq!(second.started_at, Some(t0), "startedAt is kept");
    assert_eq!(second.revision, first.revision + 1, "the reclaim bumps the revision");
    let after = executions.list_expired_leases(long_ago(170_000), 1000).await.expect("list expired");
    assert!(after.iter().all(|x| x.id != e.id), "a renewed lease is not listed");
    assert!(executions.list_expired_leases(expiry, 0).await.expect("list").is_empty(), "limit 0");
}

/// `save` succeeds only on the stored revision (storing revision + 1, appending the events,
/// leaving what the execution keeps from its creation as inserted); a stale revision (e.g. from
/// before a claim) is `Conflict` and an unknown id `NotFound`, both changing nothing and
/// appending nothing.
pub async fn save_compare_and_set(executions: Arc<dyn ExecutionRepository>, outbox: Arc<dyn Outbox>) {
    let e = execution(FlowId::new(), None, vec![Owner::user(Uuid::now_v7())], now());
    executions.insert(&e, &[]).await.expect("insert");
    let at = now();
    let claimed =
        executions.claim(e.id, "w", at, at + chrono::Duration::seconds(60), AttemptLimit::DEFAULT).await;
    let claimed = claimed.expect("claim").expect("claimed");
    drain(outbox.as_ref()).await;

    let mut stale = e.clone();
    stale.status = ExecutionStatus::Cancelled;
    assert!(
        matches!(executions.save(&stale, &[event()]).await, Err(PortError::Conflict)),
        "a revision from before the claim is Conflict"
    );
    let unknown = execution(FlowId::new(), None, vec![], now());
    assert!(matches!(executions.save(&unknown, &[event()]).await, Err(PortError::NotFound)), "NotFound");
    assert!(drain(outbox.as_ref()).await.is_empty(), "failed saves append nothing");
    assert_eq!(executions.get(e.id).await.expect("get"), Some(claimed.clone()), "unchanged");

    let mut done = claimed.clone();
    done.status = ExecutionStatus::Succeeded;
    done.finished_at = Some(now());
    done.lease_owner = None;
    done.lease_until = None;
    done.counters.started = 1;
    done.counters.succeeded = 1;
    done.steps.insert("trigger".into(), StepRecord::started("webhook", now()));
    done.owners.push(Owner::tenant(Uuid::now_v7()));
    let events = vec![event()];
    executions.save(&done, &events).await.expect("save on the current revision");
    assert_eq!(events_of(&drain(outbox.as_ref()).await), events, "save appends its events");
    let stored = executions.get(e.id).await.expect("get").expect("stored");
    let kept = Execution { revision: done.revision + 1, owners: e.owners.clone(), ..done.clone() };
    assert_eq!(stored, kept, "save stores rev + 1, and the owners as inserted");
    assert!(
        matches!(executions.save(&done, &[]).await, Err(PortError::Conflict)),
        "saving the same revision twice is Conflict"
    );
}
