//! No crash loop: every run is counted before it begins, a run whose process died stays counted,
//! a restarted process takes over what its earlier run left at once, and an execution whose
//! process keeps dying is failed with the reason after the attempt limit. Background passes go
//! on past rows they cannot read. Over real storage (SQLite, or PostgreSQL with
//! `FLOWMATE_TEST_STORAGE=postgres`); a process's death is what it leaves in storage: a claim (or
//! an inline run's insert) and no end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::num::NonZeroU32;
use std::sync::Arc;

use common::{Store, TestDb, node};
use flow_domain::execution_lifecycle::AttemptLimit;
use flow_domain::model::{
    Edge, EdgeConfig, Execution, ExecutionStatus, Flow, FlowSpec, FlowStatus, FlowType, Graph, Node,
    ProcessIdentity, TriggerInfo, TriggerType,
};
use flow_domain::ports::InlineRunner;
use flow_domain::time::{Clock, SystemClock};
use flow_engine::Scheduler;
use flow_engine::components::{ComponentRegistry, HttpConfig};
use flow_engine::executor::{Executor, ExecutorConfig};
use serde_json::{Map, Value, json};

/// The process name every incarnation in these tests shares (a restart keeps it).
const HOST: &str = "test-host:3000";

fn limit(runs: u32) -> AttemptLimit {
    AttemptLimit::new(NonZeroU32::new(runs).unwrap())
}

/// A new incarnation (a start) of the process `name`.
fn start(store: &Store, name: &str, config: ExecutorConfig) -> Executor {
    let components = Arc::new(ComponentRegistry::builtin(HttpConfig::default()).unwrap());
    let config = ExecutorConfig { process: ProcessIdentity::new(name), ..config };
    Executor::new(store.executions.clone(), store.flows.clone(), components, Arc::new(SystemClock), config)
}

/// An active flow `webhook -> jq` (computes only), stored.
async fn flow(store: &Store) -> Flow {
    flow_of(
        store,
        vec![
            node("in", "webhook", "receive", json!({})),
            node("add", "jq", "transform", json!({ "program": ".data + {processed: true}" })),
        ],
    )
    .await
}

async fn flow_of(store: &Store, nodes: Vec<Node>) -> Flow {
    let edges = nodes
        .windows(2)
        .map(|pair| Edge {
            id: None,
            source: pair[0].id.clone(),
            target: pair[1].id.clone(),
            config: EdgeConfig { condition: None, mapper: None },
        })
        .collect();
    let spec = FlowSpec {
        name: "attempts".into(),
        description: None,
        flow_type: FlowType::Ordinary,
        cron: None,
        graph: Graph { nodes, edges },
        flow_settings: Map::new(),
    };
    let flow = Flow { status: FlowStatus::Active, ..Flow::new(spec, None, Vec::new(), SystemClock.now()) };
    store.flows.insert(&flow, &[]).await.unwrap();
    flow
}

fn message(data: Value) -> Value {
    json!({ "id": "m1", "data": data, "attachments": {}, "metadata": {}, "headers": {},
            "query": {}, "method": "POST", "url": "/webhooks/x", "pathSuffix": null })
}

fn queued(flow: &Flow) -> Execution {
    let trigger = TriggerInfo { trigger_type: TriggerType::Webhook, request_id: None };
    Execution::queued(flow.id, None, Vec::new(), trigger, message(json!({ "n": 1 })), SystemClock.now())
}

/// What a process that dies while running `execution` leaves: its claim (the run counted, the
/// lease held for an hour) and no end.
async fn claim_and_die(store: &Store, process: &ProcessIdentity, execution: &Execution) -> Execution {
    let now = SystemClock.now();
    let claimed = store
        .executions
        .claim(execution.id, process.owner(), now, now + chrono::Duration::hours(1), limit(100))
        .await
        .unwrap();
    claimed.expect("claimable")
}

async fn get(store: &Store, execution: &Execution) -> Execution {
    store.executions.get(execution.id).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_restarted_process_takes_its_own_leases_over_at_once_and_nobody_elses() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let flow = flow(&store).await;
    let (mine, other) = (queued(&flow), queued(&flow));
    store.executions.insert(&mine, &[]).await.unwrap();
    store.executions.insert(&other, &[]).await.unwrap();
    let killed = ProcessIdentity::new(HOST);
    claim_and_die(&store, &killed, &mine).await;
    claim_and_die(&store, &ProcessIdentity::new("another-host:3000"), &other).await;

    // The restart: a new incarnation of the same process, whose lease would run for an hour.
    let restarted = start(&store, HOST, ExecutorConfig::default());
    assert_eq!(restarted.recover_once().await.unwrap(), 1, "its own leftover, at the first pass");
    let requeued = get(&store, &mine).await;
    assert_eq!(
        (requeued.status, requeued.attempts, requeued.lease_owner),
        (ExecutionStatus::Queued, 1, None)
    );
    let untouched = get(&store, &other).await;
    assert_eq!(untouched.status, ExecutionStatus::Running, "another process's live lease is left alone");
    assert_eq!(restarted.recover_once().await.unwrap(), 0, "taken over once");

    assert_eq!(restarted.run_now(mine.id).await.unwrap(), Some(ExecutionStatus::Succeeded));
    let done = get(&store, &mine).await;
    assert_eq!(done.attempts, 2, "the lost run and the one that ended, both counted");
}

#[tokio::test]
async fn an_execution_that_kills_its_process_at_every_run_fails_after_the_limit() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let flow = flow(&store).await;
    let execution = queued(&flow);
    store.executions.insert(&execution, &[]).await.unwrap();
    let config = ExecutorConfig { max_attempts: limit(3), ..ExecutorConfig::default() };

    let mut process = start(&store, HOST, config.clone());
    for run in 1..=3u32 {
        // The process claims it (counting the run) and dies during the run.
        let now = SystemClock.now();
        let owner = process.config().process.owner().to_owned();
        let claimed = store
            .executions
            .claim(execution.id, &owner, now, now + chrono::Duration::hours(1), limit(3))
            .await
            .unwrap()
            .expect("claimable while runs are left");
        assert_eq!(claimed.attempts, run, "counted before the run");
        // The restart takes the lost run over at once.
        process = start(&store, HOST, config.clone());
        assert_eq!(process.recover_once().await.unwrap(), 1);
        let stored = get(&store, &execution).await;
        if run < 3 {
            assert_eq!((stored.status, stored.attempts), (ExecutionStatus::Queued, run), "queued again");
        } else {
            assert_eq!((stored.status, stored.attempts), (ExecutionStatus::Failed, 3));
            assert_eq!(
                stored.error.as_deref(),
                Some(
                    "The process running this execution died 3 times (attempt limit FLOWMATE_EXECUTION_MAX_ATTEMPTS reached)."
                )
            );
        }
    }
    assert_eq!(process.run_now(execution.id).await.unwrap(), None, "nothing runs it again");
    assert_eq!(get(&store, &execution).await.status, ExecutionStatus::Failed);
}

#[tokio::test]
async fn an_inline_run_is_stored_running_and_counted_before_it_runs() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let flow = Arc::new(flow(&store).await);
    let process = start(&store, HOST, ExecutorConfig::default());

    // What the webhook service does for `?sync=true`: claim in memory, store, run, store ended.
    let mut execution = queued(&flow);
    process.claim_inline(&mut execution);
    assert_eq!((execution.status, execution.attempts), (ExecutionStatus::Running, 1));
    assert_eq!(execution.lease_owner.as_deref(), Some(process.config().process.owner()));
    assert!(execution.lease_until.is_some() && execution.started_at.is_some());
    store.executions.insert(&execution, &[]).await.unwrap();
    let ended = process.run_inline(Arc::clone(&flow), execution.clone()).await;
    assert_eq!(ended.status, ExecutionStatus::Succeeded);
    assert_eq!((ended.lease_owner.as_deref(), ended.lease_until, ended.attempts), (None, None, 1));
    store.executions.save(&ended, &[]).await.unwrap();
    assert_eq!(get(&store, &execution).await.status, ExecutionStatus::Succeeded);

    // An inline run whose process died (stored running, never ended) is taken over by the
    // restarted process and run by a worker: its lost run stays counted.
    let mut lost = queued(&flow);
    process.claim_inline(&mut lost);
    store.executions.insert(&lost, &[]).await.unwrap();
    let restarted = start(&store, HOST, ExecutorConfig::default());
    assert_eq!(restarted.recover_once().await.unwrap(), 1);
    assert_eq!(restarted.run_now(lost.id).await.unwrap(), Some(ExecutionStatus::Succeeded));
    let done = get(&store, &lost).await;
    assert_eq!((done.attempts, done.steps["add"].out_count), (2, 1));
}

#[tokio::test]
async fn after_a_restart_of_a_process_with_the_in_process_bus_queued_executions_are_announced_at_once() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let flow = flow(&store).await;
    // Queued before the restart: its `flow.execute` died with the in-process bus.
    let execution = queued(&flow);
    store.executions.insert(&execution, &[]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    let kept = start(&store, HOST, ExecutorConfig::default());
    assert_eq!(kept.recover_once().await.unwrap(), 0, "a bus that keeps its events: left to queued_grace");
    let restarted =
        start(&store, HOST, ExecutorConfig { events_die_with_process: true, ..ExecutorConfig::default() });
    assert_eq!(restarted.recover_once().await.unwrap(), 1, "announced again at the first pass");
    let announced = get(&store, &execution).await;
    assert_eq!((announced.status, announced.revision), (ExecutionStatus::Queued, execution.revision + 1));
    assert_eq!(restarted.recover_once().await.unwrap(), 0, "once");
}

#[tokio::test]
async fn recovery_and_the_scheduler_go_on_past_rows_they_cannot_read() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let flow = flow(&store).await;
    let config = ExecutorConfig {
        events_die_with_process: true,
        queued_grace: std::time::Duration::ZERO,
        ..ExecutorConfig::default()
    };
    let (bad_queued, good_queued, bad_running) = (queued(&flow), queued(&flow), queued(&flow));
    for e in [&bad_queued, &good_queued, &bad_running] {
        store.executions.insert(e, &[]).await.unwrap();
    }
    let killed = ProcessIdentity::new(HOST);
    claim_and_die(&store, &killed, &bad_running).await;
    db.corrupt_execution_document(bad_queued.id).await;
    db.corrupt_execution_document(bad_running.id).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    let restarted = start(&store, HOST, config);
    let acted = restarted.recover_once().await.expect("the pass goes on");
    assert_eq!(acted, 3, "two unreadable ones failed, the readable one announced");
    for bad in [&bad_queued, &bad_running] {
        let failed = get(&store, bad).await;
        assert_eq!(failed.status, ExecutionStatus::Failed, "an unreadable execution is failed");
        assert!(!failed.unreadable, "and readable again");
        let error = failed.error.unwrap_or_default();
        assert!(error.contains("could not be read"), "with why: {error}");
    }
    assert_eq!(get(&store, &good_queued).await.status, ExecutionStatus::Queued);
    assert_eq!(restarted.run_now(good_queued.id).await.unwrap(), Some(ExecutionStatus::Succeeded));

    // The scheduler's list leaves an unreadable flow out; the others still fire.
    let mut scheduled = Vec::new();
    for _ in 0..2 {
        let mut f = flow_of(&store, vec![node("start", "scheduler", "schedule", json!({}))]).await;
        f.spec.cron = Some("* * * * *".into());
        f.status_changed_at -= chrono::Duration::minutes(5);
        store.flows.save(&f, &[], None).await.unwrap();
        scheduled.push(f);
    }
    db.corrupt_flow_document(scheduled[0].id).await;
    let scheduler = Scheduler::new(store.flows.clone(), store.executions.clone(), Arc::new(SystemClock));
    let created = scheduler.tick().await.expect("the scheduler's pass goes on");
    assert_eq!(created, 1, "the readable scheduled flow fired");
}
