//! The cron scheduler over real storage (SQLite, or PostgreSQL with
//! `FLOWMATE_TEST_STORAGE=postgres`): one execution per due time, across instances sharing one
//! database, one catch-up after downtime, nothing for inactive flows or for due times
//! before activation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::{Store, TestDb, node};
use flow_domain::ids::FlowId;
use flow_domain::model::{
    Edge, EdgeConfig, Execution, Flow, FlowSpec, FlowStatus, FlowType, Graph, TriggerType,
};
use flow_domain::query::{ExecutionQuery, PageRequest, Visibility};
use flow_domain::time::ManualClock;
use flow_engine::{Scheduler, spawn_scheduler};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const EVERY_FIVE_MINUTES: &str = "*/5 * * * *";

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, h, m, s).unwrap()
}

/// An active flow with `cron`, active since `since`.
async fn scheduled_flow(store: &Store, cron: &str, since: DateTime<Utc>) -> Flow {
    let graph = Graph {
        nodes: vec![node("start", "scheduler", "schedule", json!({})), node("log", "log", "info", json!({}))],
        edges: vec![Edge {
            id: None,
            source: "start".into(),
            target: "log".into(),
            config: EdgeConfig::default(),
        }],
    };
    let flow = Flow {
        id: FlowId::new(),
        spec: FlowSpec {
            name: "cron flow".into(),
            description: None,
            flow_type: FlowType::Ordinary,
            cron: Some(cron.into()),
            graph,
            flow_settings: Default::default(),
        },
        tenant: None,
        owners: Vec::new(),
        status: FlowStatus::Active,
        status_reason: None,
        from_template: None,
        created_at: since,
        updated_at: since,
        status_changed_at: since,
        lifecycle_attempts: 0,
        revision: 0,
    };
    store.flows.insert(&flow, &[]).await.unwrap();
    flow
}

async fn executions(store: &Store, flow: FlowId) -> Vec<Execution> {
    let query = ExecutionQuery {
        visibility: Visibility::All,
        flow_id: Some(flow),
        status: None,
        from: None,
        to: None,
        step: None,
        page: PageRequest { size: 100, number: 1 },
    };
    store.executions.list(&query).await.unwrap().items
}

fn scheduler(store: &Store, clock: &Arc<ManualClock>) -> Scheduler {
    Scheduler::new(store.flows.clone(), store.executions.clone(), clock.clone())
}

#[tokio::test]
async fn fires_once_per_due_time() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let flow = scheduled_flow(&store, EVERY_FIVE_MINUTES, at(11, 0, 0)).await;
    let clock = Arc::new(ManualClock::new(at(12, 1, 30)));
    let scheduler = scheduler(&store, &clock);

    assert_eq!(scheduler.tick().await.unwrap(), 1);
    assert_eq!(scheduler.tick().await.unwrap(), 0);
    // A fresh instance (restart) does not fire the same due time again.
    assert_eq!(self::scheduler(&store, &clock).tick().await.unwrap(), 0);

    let fired = executions(&store, flow.id).await;
    assert_eq!(fired.len(), 1);
    let execution = &fired[0];
    assert_eq!(execution.trigger.trigger_type, TriggerType::Scheduler);
    assert_eq!(execution.trigger.request_id.as_deref(), Some("2026-05-01T12:00:00.000Z"));
    assert_eq!(execution.idempotency_key.as_deref(), Some("cron:2026-05-01T12:00:00.000Z"));
    assert_eq!(execution.created_at, at(12, 1, 30));
    let input = &execution.input;
    assert_eq!(
        input["metadata"]["source"],
        json!({ "name": "scheduler", "type": "scheduler", "dueAt": "2026-05-01T12:00:00.000Z" })
    );
    assert_eq!(input["data"], json!({}));
    assert!(input["id"].is_string());
    for key in ["method", "url", "pathSuffix"] {
        assert!(input[key].is_null(), "{key}");
    }
    assert_eq!(store.outbox.pending_count().await.unwrap(), 1, "one flow.execute event in the outbox");

    // Exactly at the next due time it fires again.
    clock.advance(chrono::Duration::seconds(210));
    assert_eq!(scheduler.tick().await.unwrap(), 1);
    assert_eq!(executions(&store, flow.id).await.len(), 2);
}

#[tokio::test]
async fn two_instances_on_one_database_fire_each_due_time_once() {
    let db = TestDb::create().await;
    let first_store = db.store().await;
    let second_store = db.store().await;
    let flows = [
        scheduled_flow(&first_store, EVERY_FIVE_MINUTES, at(11, 0, 0)).await,
        scheduled_flow(&first_store, "* * * * *", at(11, 0, 0)).await,
    ];
    let clock = Arc::new(ManualClock::new(at(12, 0, 10)));
    let first = scheduler(&first_store, &clock);
    let second = scheduler(&second_store, &clock);

    for round in 0..3 {
        let (a, b) = tokio::join!(first.tick(), second.tick());
        assert_eq!(a.unwrap() + b.unwrap(), 2, "round {round}: one execution per flow");
        clock.advance(chrono::Duration::minutes(5));
    }
    for flow in &flows {
        let fired = executions(&first_store, flow.id).await;
        assert_eq!(fired.len(), 3, "{}", flow.spec.cron.as_deref().unwrap());
        let mut keys: Vec<_> = fired.iter().map(|e| e.idempotency_key.clone().unwrap()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 3);
    }
}

#[tokio::test]
async fn downtime_gives_exactly_one_catch_up() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let flow = scheduled_flow(&store, EVERY_FIVE_MINUTES, at(11, 0, 0)).await;
    let clock = Arc::new(ManualClock::new(at(12, 1, 0)));
    assert_eq!(scheduler(&store, &clock).tick().await.unwrap(), 1);

    // Down from 12:01 to 12:27: 12:05, 12:10, 12:15, 12:20 and 12:25 were missed.
    clock.advance(chrono::Duration::minutes(26));
    let restarted = scheduler(&store, &clock);
    assert_eq!(restarted.tick().await.unwrap(), 1);
    assert_eq!(restarted.tick().await.unwrap(), 0);

    let fired = executions(&store, flow.id).await;
    assert_eq!(fired.len(), 2);
    assert_eq!(fired[0].trigger.request_id.as_deref(), Some("2026-05-01T12:25:00.000Z"), "newest first");
}

#[tokio::test]
async fn inactive_flow_no_longer_fires() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let flow = scheduled_flow(&store, EVERY_FIVE_MINUTES, at(11, 0, 0)).await;
    let clock = Arc::new(ManualClock::new(at(12, 1, 0)));
    let scheduler = scheduler(&store, &clock);
    assert_eq!(scheduler.tick().await.unwrap(), 1);

    let mut stopped = store.flows.get(flow.id).await.unwrap().unwrap();
    stopped.status = FlowStatus::Inactive;
    stopped.status_changed_at = at(12, 2, 0);
    store.flows.save(&stopped, &[], None).await.unwrap();

    clock.advance(chrono::Duration::minutes(10));
    assert_eq!(scheduler.tick().await.unwrap(), 0);
    assert_eq!(executions(&store, flow.id).await.len(), 1);
}

#[tokio::test]
async fn no_fire_for_a_due_time_before_activation() {
    let db = TestDb::create().await;
    let store = db.store().await;
    // Active since 12:03; the latest due time at 12:04 is 12:00.
    let flow = scheduled_flow(&store, EVERY_FIVE_MINUTES, at(12, 3, 0)).await;
    let clock = Arc::new(ManualClock::new(at(12, 4, 0)));
    let scheduler = scheduler(&store, &clock);
    assert_eq!(scheduler.tick().await.unwrap(), 0);
    assert!(executions(&store, flow.id).await.is_empty());

    clock.advance(chrono::Duration::minutes(1));
    assert_eq!(scheduler.tick().await.unwrap(), 1, "12:05 is after activation");
}

#[tokio::test]
async fn invalid_cron_is_skipped_and_others_still_fire() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let bad = scheduled_flow(&store, "not a cron", at(11, 0, 0)).await;
    let good = scheduled_flow(&store, EVERY_FIVE_MINUTES, at(11, 0, 0)).await;
    let clock = Arc::new(ManualClock::new(at(12, 1, 0)));
    assert_eq!(scheduler(&store, &clock).tick().await.unwrap(), 1);
    assert!(executions(&store, bad.id).await.is_empty());
    assert_eq!(executions(&store, good.id).await.len(), 1);
}

#[tokio::test]
async fn spawned_loop_fires_and_stops_on_cancel() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let flow = scheduled_flow(&store, EVERY_FIVE_MINUTES, at(11, 0, 0)).await;
    let clock = Arc::new(ManualClock::new(at(12, 1, 0)));
    let cancel = CancellationToken::new();
    let handle =
        spawn_scheduler(Arc::new(scheduler(&store, &clock)), Duration::from_millis(10), cancel.clone());

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while executions(&store, flow.id).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no execution within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap().unwrap();
    assert_eq!(executions(&store, flow.id).await.len(), 1);
}
