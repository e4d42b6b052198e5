//! Lifecycle rules that HTTP cannot reach deterministically, checked with the real use cases
//! over the real SQLite store, a manual clock and no engine: the watchdog (SPEC §4), the 409
//! rules of the transitional statuses, and idempotent consumption of engine events (SPEC §5),
//! including redelivery after a restart.

use adapters_sqlite::{SqliteConfig, SqliteStore};
use chrono::Utc;
use flow_domain::actor::Actor;
use flow_domain::error::ServiceError;
use flow_domain::event::{Event, names};
use flow_domain::ids::{FlowId, UserId};
use flow_domain::model::{Flow, FlowStatus};
use flow_domain::permission::{Permission, PermissionSet};
use flow_domain::ports::{FlowRepository, Outbox};
use flow_domain::services::{FlowService, LifecycleListener, Watchdog, WatchdogConfig};
use flow_domain::time::{Clock, ManualClock};
use flowmate_tests::flow_body;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const DEADLINE_SECS: i64 = 60;

/// The use cases over a SQLite file, with time under the test's control.
struct Harness {
    path: PathBuf,
    store: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    flows: FlowService,
    listener: LifecycleListener,
    actor: Actor,
}

impl Harness {
    async fn open(path: &Path, clock: Arc<ManualClock>) -> Self {
        let store = Arc::new(SqliteStore::connect(SqliteConfig::new(path)).await.expect("store opens"));
        let flows = FlowService::new(store.clone(), clock.clone());
        let listener = LifecycleListener::new(store.clone(), store.clone(), clock.clone());
        let actor = Actor {
            user_id: UserId::new(),
            tenant: None,
            permissions: PermissionSet::new(vec![Permission::All]),
            token_id: None,
        };
        Self { path: path.to_path_buf(), store, clock, flows, listener, actor }
    }

    /// The same database and clock, as after a process restart.
    async fn restart(self) -> Self {
        let (path, clock, actor) = (self.path.clone(), self.clock.clone(), self.actor.clone());
        self.store.close().await;
        drop(self);
        Self { actor, ..Self::open(&path, clock).await }
    }

    async fn flow(&self) -> FlowId {
        self.flows.create(&self.actor, &flow_body("stuck")).await.expect("flow created").id
    }

    async fn stored(&self, id: FlowId) -> Flow {
        self.store.get(id).await.expect("read").expect("flow exists")
    }

    /// Claims and acknowledges everything in the outbox: the names published, in order.
    async fn published(&self) -> Vec<Event> {
        let claimed = self.store.claim("relay#1", 100).await.expect("claim");
        let seqs: Vec<i64> = claimed.iter().map(|e| e.seq).collect();
        self.store.mark_published(&seqs).await.expect("mark published");
        claimed.into_iter().filter_map(|e| e.event.ok()).collect()
    }

    async fn published_names(&self) -> Vec<String> {
        self.published().await.into_iter().map(|e| e.name).collect()
    }

    fn watchdog(&self, max_attempts: u32) -> Watchdog {
        let config = WatchdogConfig { deadline: chrono::Duration::seconds(DEADLINE_SECS), max_attempts };
        Watchdog::new(self.store.clone(), self.clock.clone(), config)
    }

    fn past_deadline(&self) {
        self.clock.advance(chrono::Duration::seconds(DEADLINE_SECS + 1));
    }

    async fn confirm(&self, name: &str, id: FlowId) -> Event {
        let event = Event::engine_confirmation(name, id, self.clock.now());
        self.listener.handle(&event).await.expect("handled");
        event
    }
}

async fn harness(dir: &tempfile::TempDir) -> Harness {
    Harness::open(&dir.path().join("flowmate.db"), Arc::new(ManualClock::new(Utc::now()))).await
}

#[tokio::test]
async fn watchdog_republishes_a_stuck_start_then_gives_up_with_a_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let h = harness(&dir).await;
    let id = h.flow().await;
    h.flows.start(&h.actor, &id.to_string()).await.expect("started");
    assert_eq!(h.published_names().await, vec![names::FLOW_CREATED, names::FLOW_STARTING]);
    let watchdog = h.watchdog(1);
    assert_eq!(watchdog.tick().await.expect("tick"), vec![], "nothing is late yet");

    h.past_deadline();
    assert_eq!(watchdog.tick().await.expect("tick"), vec![id]);
    let events = h.published().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].name, names::FLOW_STARTING);
    assert_eq!(events[0].flow_id(), Some(id));
    assert_eq!(events[0].payload["status"], "starting");
    let flow = h.stored(id).await;
    assert_eq!((flow.status, flow.lifecycle_attempts), (FlowStatus::Starting, 1));
    assert_eq!(watchdog.tick().await.expect("tick"), vec![], "the deadline restarts after a re-publication");

    h.past_deadline();
    assert_eq!(watchdog.tick().await.expect("tick"), vec![id]);
    let flow = h.stored(id).await;
    assert_eq!(flow.status, FlowStatus::Inactive);
    assert_eq!(flow.status_reason.as_deref(), Some("The engine did not confirm the start after 2 attempts."));
    assert_eq!(h.published_names().await, Vec::<String>::new(), "giving up publishes nothing");
    h.past_deadline();
    assert_eq!(watchdog.tick().await.expect("tick"), vec![], "an inactive flow is left alone");
}

#[tokio::test]
async fn watchdog_republishes_a_stuck_stop_then_marks_the_flow_inactive() {
    let dir = tempfile::tempdir().expect("temp dir");
    let h = harness(&dir).await;
    let id = h.flow().await;
    h.flows.start(&h.actor, &id.to_string()).await.expect("started");
    h.confirm(names::FLOW_STARTED, id).await;
    assert_eq!(h.stored(id).await.status, FlowStatus::Active);
    h.flows.stop(&h.actor, &id.to_string()).await.expect("stopped");
    h.published().await;
    let watchdog = h.watchdog(2);
    for attempt in 1..=2 {
        h.past_deadline();
        assert_eq!(watchdog.tick().await.expect("tick"), vec![id]);
        let events = h.published().await;
        assert_eq!(events.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), vec![names::FLOW_STOPPING]);
        assert_eq!(events[0].payload["status"], "stopping");
        assert_eq!(h.stored(id).await.lifecycle_attempts, attempt);
    }
    h.past_deadline();
    assert_eq!(watchdog.tick().await.expect("tick"), vec![id]);
    let flow = h.stored(id).await;
    assert_eq!(flow.status, FlowStatus::Inactive);
    assert_eq!(
        flow.status_reason.as_deref(),
        Some("The engine did not confirm the stop after 3 attempts; marked inactive.")
    );
}

#[tokio::test]
async fn transitional_statuses_refuse_start_stop_edit_and_delete_with_a_conflict() {
    let dir = tempfile::tempdir().expect("temp dir");
    let h = harness(&dir).await;
    let id = h.flow().await;
    let raw = id.to_string();
    let conflict = |result: Result<Flow, ServiceError>| match result {
        Err(ServiceError::Conflict(message)) => message,
        other => panic!("expected a conflict, got {other:?}"),
    };
    h.flows.start(&h.actor, &raw).await.expect("started");
    assert_eq!(
        conflict(h.flows.start(&h.actor, &raw).await),
        "Flow is not inactive. Current status: starting"
    );
    let edit = h.flows.update(&h.actor, &raw, &serde_json::json!({"name": "x"})).await;
    assert_eq!(conflict(edit), "Flow is not inactive. Current status: starting");
    // A starting flow may be stopped; a stopping one may be neither stopped nor started.
    assert_eq!(h.flows.stop(&h.actor, &raw).await.expect("stopped").status, FlowStatus::Stopping);
    assert_eq!(
        conflict(h.flows.stop(&h.actor, &raw).await),
        "Flow is not active or starting. Current status: stopping"
    );
    assert_eq!(
        conflict(h.flows.start(&h.actor, &raw).await),
        "Flow is not inactive. Current status: stopping"
    );
    match h.flows.delete(&h.actor, &raw).await {
        Err(ServiceError::Conflict(message)) => {
            assert_eq!(message, "Flow is not inactive. Current status: stopping");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // The late confirmation of the start changes nothing; the stop's confirmation ends it.
    h.confirm(names::FLOW_STARTED, id).await;
    assert_eq!(h.stored(id).await.status, FlowStatus::Stopping);
    h.confirm(names::FLOW_STOPPED, id).await;
    assert_eq!(h.stored(id).await.status, FlowStatus::Inactive);
}

#[tokio::test]
async fn a_repeated_engine_event_has_no_second_effect() {
    let dir = tempfile::tempdir().expect("temp dir");
    let h = harness(&dir).await;
    let id = h.flow().await;
    let raw = id.to_string();
    h.flows.start(&h.actor, &raw).await.expect("started");
    let started = h.confirm(names::FLOW_STARTED, id).await;
    let after_first = h.stored(id).await;
    assert_eq!(after_first.status, FlowStatus::Active);
    h.published().await;
    h.clock.advance(chrono::Duration::seconds(1));
    h.listener.handle(&started).await.expect("duplicate handled");
    assert_eq!(h.stored(id).await, after_first, "the duplicate changed nothing, not even updatedAt");
    assert_eq!(h.published_names().await, Vec::<String>::new());

    // A second run: the first run's `flow.started`, redelivered, must not activate it.
    h.flows.stop(&h.actor, &raw).await.expect("stopped");
    h.confirm(names::FLOW_STOPPED, id).await;
    h.flows.start(&h.actor, &raw).await.expect("restarted");
    h.listener.handle(&started).await.expect("old event handled");
    assert_eq!(h.stored(id).await.status, FlowStatus::Starting, "an old confirmation is not this run's");
    h.confirm(names::FLOW_STARTED, id).await;
    assert_eq!(h.stored(id).await.status, FlowStatus::Active);
}

#[tokio::test]
async fn an_old_flow_failed_redelivered_after_a_restart_does_not_stop_the_new_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let h = harness(&dir).await;
    let id = h.flow().await;
    let raw = id.to_string();
    h.flows.start(&h.actor, &raw).await.expect("started");
    h.published().await;
    let failed = Event::flow_failed(id, "Node \"add\": unknown component \"teleport\"", h.clock.now());
    h.listener.handle(&failed).await.expect("handled");
    let flow = h.stored(id).await;
    assert_eq!(flow.status, FlowStatus::Stopping);
    assert_eq!(flow.status_reason.as_deref(), Some("Node \"add\": unknown component \"teleport\""));
    assert_eq!(h.published_names().await, vec![names::FLOW_STOPPING], "a failure stops the flow");
    h.confirm(names::FLOW_STOPPED, id).await;
    assert_eq!(h.stored(id).await.status, FlowStatus::Inactive);

    let h = h.restart().await;
    h.flows.start(&h.actor, &raw).await.expect("started again");
    assert_eq!(h.stored(id).await.status_reason, None, "a new start forgets the old reason");
    h.confirm(names::FLOW_STARTED, id).await;
    let running = h.stored(id).await;
    assert_eq!(running.status, FlowStatus::Active);
    h.published().await;
    h.listener.handle(&failed).await.expect("redelivery handled");
    assert_eq!(h.stored(id).await, running, "the old failure does not touch the new run");
    assert_eq!(h.published_names().await, Vec::<String>::new(), "and publishes no stop");
}
