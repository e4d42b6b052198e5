//! Computes-only flows run by a worker: the executor claims the queued execution (which counts
//! the run before anything of it runs), runs it in memory and stores it ended with one save
//! conditioned on the claim's revision. When the execution changes between the claim and the
//! save (here a cancel, made by a repository that cancels right after the claim), the run's
//! result is discarded and the newer state stays. Over real storage (SQLite, or PostgreSQL with
//! `FLOWMATE_TEST_STORAGE=postgres`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use common::{TestDb, node};
use flow_domain::error::PortError;
use flow_domain::event::Event;
use flow_domain::execution_lifecycle::AttemptLimit;
use flow_domain::ids::{ExecutionId, TenantId};
use flow_domain::model::{
    Edge, EdgeConfig, Execution, ExecutionStatus, Flow, FlowSpec, FlowStatus, FlowType, Graph, TriggerInfo,
    TriggerType,
};
use flow_domain::ports::{ExecutionRepository, StepUsage};
use flow_domain::query::{ExecutionQuery, Page};
use flow_domain::time::{Clock, SystemClock};
use flow_engine::EventHandler;
use flow_engine::components::{ComponentRegistry, HttpConfig};
use flow_engine::executor::{Executor, ExecutorConfig};
use serde_json::{Map, json};

/// The real repository, except that the first claim cancels the execution right after
/// handing it out (as a user's cancel landing while the executor runs it); counts the saves
/// refused as conflicting.
struct CancelAfterFirstClaim {
    inner: Arc<dyn ExecutionRepository>,
    armed: AtomicBool,
    conflicts: AtomicUsize,
}

#[async_trait]
impl ExecutionRepository for CancelAfterFirstClaim {
    async fn insert(&self, execution: &Execution, events: &[Event]) -> Result<(), PortError> {
        self.inner.insert(execution, events).await
    }

    async fn get(&self, id: ExecutionId) -> Result<Option<Execution>, PortError> {
        self.inner.get(id).await
    }

    async fn list(&self, query: &ExecutionQuery) -> Result<Page<Execution>, PortError> {
        self.inner.list(query).await
    }

    async fn claim(
        &self,
        id: ExecutionId,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: AttemptLimit,
    ) -> Result<Option<Execution>, PortError> {
        let claimed = self.inner.claim(id, worker, now, lease_until, limit).await?;
        if let Some(execution) = &claimed
            && self.armed.swap(false, Ordering::SeqCst)
        {
            let mut cancelled = execution.clone();
            cancelled.status = ExecutionStatus::Cancelled;
            cancelled.finished_at = Some(Utc::now());
            self.inner.save(&cancelled, &[]).await?;
        }
        Ok(claimed)
    }

    async fn save(&self, execution: &Execution, events: &[Event]) -> Result<(), PortError> {
        let saved = self.inner.save(execution, events).await;
        if matches!(saved, Err(PortError::Conflict)) {
            self.conflicts.fetch_add(1, Ordering::SeqCst);
        }
        saved
    }

    async fn list_expired_leases(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Execution>, PortError> {
        self.inner.list_expired_leases(now, limit).await
    }

    async fn list_orphaned_leases(
        &self,
        owner_prefix: &str,
        current_owner: &str,
        limit: u32,
    ) -> Result<Vec<Execution>, PortError> {
        self.inner.list_orphaned_leases(owner_prefix, current_owner, limit).await
    }

    async fn insert_idempotent(
        &self,
        execution: &Execution,
        events: &[Event],
        window_start: DateTime<Utc>,
    ) -> Result<Option<Execution>, PortError> {
        self.inner.insert_idempotent(execution, events, window_start).await
    }

    async fn list_queued_before(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Execution>, PortError> {
        self.inner.list_queued_before(before, limit).await
    }

    async fn usage(
        &self,
        tenant: Option<TenantId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StepUsage>, PortError> {
        self.inner.usage(tenant, from, to).await
    }
}

/// An active `webhook -> jq` flow (computes only), stored.
async fn computes_only_flow(store: &common::Store, now: DateTime<Utc>) -> Flow {
    let graph = Graph {
        nodes: vec![
            node("in", "webhook", "receive", json!({})),
            node("add", "jq", "transform", json!({ "program": ".data + {processed: true}" })),
        ],
        edges: vec![Edge {
            id: None,
            source: "in".into(),
            target: "add".into(),
            config: EdgeConfig { condition: None, mapper: None },
        }],
    };
    let spec = FlowSpec {
        name: "computes only".into(),
        description: None,
        flow_type: FlowType::Ordinary,
        cron: None,
        graph,
        flow_settings: Map::new(),
    };
    let flow = Flow { status: FlowStatus::Active, ..Flow::new(spec, None, Vec::new(), now) };
    store.flows.insert(&flow, &[]).await.unwrap();
    flow
}

/// A queued execution of `flow`, stored.
async fn queue(store: &common::Store, flow: &Flow, now: DateTime<Utc>) -> Execution {
    let input = json!({ "id": "m1", "data": { "n": 1 }, "attachments": {}, "metadata": {}, "headers": {},
                        "query": {}, "method": "POST", "url": "/webhooks/x", "pathSuffix": null });
    let trigger = TriggerInfo { trigger_type: TriggerType::Webhook, request_id: None };
    let execution = Execution::queued(flow.id, None, Vec::new(), trigger, input, now);
    store.executions.insert(&execution, &[]).await.unwrap();
    execution
}

/// A store on `db` with an active computes-only flow and one queued execution of it.
async fn queued_computes_only(db: &TestDb) -> (common::Store, Flow, Execution) {
    let store = db.store().await;
    let now = SystemClock.now();
    let flow = computes_only_flow(&store, now).await;
    let execution = queue(&store, &flow, now).await;
    (store, flow, execution)
}

fn executor(executions: Arc<dyn ExecutionRepository>, store: &common::Store) -> Executor {
    let components =
        Arc::new(ComponentRegistry::builtin(HttpConfig::default()).unwrap().with_sandbox(common::sandbox()));
    let config = ExecutorConfig::default();
    Executor::new(executions, store.flows.clone(), components, Arc::new(SystemClock), config)
}

#[tokio::test]
async fn a_computes_only_execution_is_claimed_counted_and_stored_once_ended() {
    let db = TestDb::create().await;
    let (store, _flow, execution) = queued_computes_only(&db).await;

    let status = executor(store.executions.clone(), &store).run_now(execution.id).await.unwrap();

    let stored = store.executions.get(execution.id).await.unwrap().unwrap();
    assert_eq!(status, Some(ExecutionStatus::Succeeded));
    assert_eq!(stored.status, ExecutionStatus::Succeeded);
    assert_eq!(stored.revision, execution.revision + 2, "two writes: the claim, then the end");
    assert_eq!(
        (stored.lease_owner.as_deref(), stored.attempts),
        (None, 1),
        "its run counted, its lease released"
    );
    assert_eq!(stored.steps["add"].in_count, 1);
    assert!(stored.started_at.is_some() && stored.finished_at.is_some());
}

#[tokio::test]
async fn a_cancel_during_a_computes_only_run_wins_and_the_result_is_discarded() {
    let db = TestDb::create().await;
    let (store, flow, execution) = queued_computes_only(&db).await;
    let cancelling = Arc::new(CancelAfterFirstClaim {
        inner: store.executions.clone(),
        armed: AtomicBool::new(true),
        conflicts: AtomicUsize::new(0),
    });
    let executor = executor(cancelling.clone(), &store);

    EventHandler::handle(&executor, &Event::flow_execute(flow.id, execution.id, SystemClock.now()))
        .await
        .unwrap();
    executor.idle().await;

    assert!(!cancelling.armed.load(Ordering::SeqCst), "the execution was claimed and then cancelled");
    assert_eq!(cancelling.conflicts.load(Ordering::SeqCst), 1, "the run's save lost to the cancel");
    let stored = store.executions.get(execution.id).await.unwrap().unwrap();
    assert_eq!(stored.status, ExecutionStatus::Cancelled, "the cancel stays");
    assert!(stored.steps.is_empty(), "nothing of the discarded run is stored");
}
