//! The executor over real storage (SQLite, or PostgreSQL with `FLOWMATE_TEST_STORAGE=postgres`)
//! and the real built-in components, with `wiremock` as the outside world: linear flows,
//! conditions and mappers, fan-out with a failing branch, many messages from one step, the code
//! sandbox, the step limit, a deleted flow, recovery from a dead worker, cancellation during a
//! delay, and redelivered `flow.execute` events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use common::{Store, TestDb, node};
use flow_domain::actor::Actor;
use flow_domain::event::Event;
use flow_domain::execution_lifecycle::AttemptLimit;
use flow_domain::ids::{FlowId, UserId};
use flow_domain::model::{
    Edge, EdgeConfig, Execution, ExecutionStatus, Flow, FlowSpec, FlowStatus, FlowType, Graph, Node,
    StepStatus, TriggerInfo, TriggerType,
};
use flow_domain::permission::{Permission, PermissionSet};
use flow_domain::services::ExecutionService;
use flow_domain::time::{Clock, ManualClock, SystemClock};
use flow_engine::EventHandler;
use flow_engine::components::{ComponentRegistry, HttpConfig};
use flow_engine::executor::{Executor, ExecutorConfig};
use serde_json::{Map, Value, json};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Env {
    store: Store,
    clock: Arc<dyn Clock>,
    executor: Arc<Executor>,
    /// Last: dropped after everything that uses the database.
    _db: TestDb,
}

fn config() -> ExecutorConfig {
    ExecutorConfig { allow_private_networks: true, ..ExecutorConfig::default() }
}

async fn env() -> Env {
    env_with(config(), Arc::new(SystemClock)).await
}

async fn env_with(config: ExecutorConfig, clock: Arc<dyn Clock>) -> Env {
    let db = TestDb::create().await;
    let store = db.store().await;
    let http = HttpConfig { base_backoff: Duration::from_millis(5), ..HttpConfig::default() };
    let components = Arc::new(ComponentRegistry::builtin(http).unwrap().with_sandbox(common::sandbox()));
    let executor = Arc::new(Executor::new(
        store.executions.clone(),
        store.flows.clone(),
        components,
        clock.clone(),
        config,
    ));
    Env { store, clock, executor, _db: db }
}

fn trigger() -> Node {
    node("in", "webhook", "receive", json!({}))
}

fn edge(source: &str, target: &str) -> Edge {
    routed(source, target, None, None)
}

fn routed(source: &str, target: &str, condition: Option<&str>, mapper: Option<&str>) -> Edge {
    Edge {
        id: None,
        source: source.into(),
        target: target.into(),
        config: EdgeConfig { condition: condition.map(Into::into), mapper: mapper.map(Into::into) },
    }
}

fn at(s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, s).unwrap()
}

impl Env {
    /// An active flow with this graph.
    async fn flow(&self, nodes: Vec<Node>, edges: Vec<Edge>) -> Flow {
        let now = self.clock.now();
        let flow = Flow {
            status: FlowStatus::Active,
            ..Flow::new(
                FlowSpec {
                    name: "executor test".into(),
                    description: None,
                    flow_type: FlowType::Ordinary,
                    cron: None,
                    graph: Graph { nodes, edges },
                    flow_settings: Map::new(),
                },
                None,
                Vec::new(),
                now,
            )
        };
        self.store.flows.insert(&flow, &[]).await.unwrap();
        flow
    }

    /// A queued execution of `flow_id` whose message carries `data`.
    async fn queue(&self, flow_id: FlowId, data: Value) -> Execution {
        let input = json!({ "id": "m1", "data": data, "attachments": {}, "metadata": {}, "headers": {},
                            "query": {}, "method": "POST", "url": "/webhooks/x", "pathSuffix": null });
        let trigger = TriggerInfo { trigger_type: TriggerType::Webhook, request_id: None };
        let execution = Execution::queued(flow_id, None, Vec::new(), trigger, input, self.clock.now());
        self.store.executions.insert(&execution, &[]).await.unwrap();
        execution
    }

    async fn get(&self, execution: &Execution) -> Execution {
        self.store.executions.get(execution.id).await.unwrap().unwrap()
    }

    async fn run(&self, execution: &Execution) -> Execution {
        let status = self.executor.run_now(execution.id).await.unwrap();
        let stored = self.get(execution).await;
        assert_eq!(status, Some(stored.status));
        stored
    }
}

#[tokio::test]
async fn linear_flow_delivers_the_transformed_message() {
    let env = env().await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/orders"))
        .and(body_json(json!({ "total": 5, "customer": "ada" })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "stored": true })))
        .expect(1)
        .mount(&receiver)
        .await;
    let flow = env
        .flow(
            vec![
                trigger(),
                node(
                    "shape",
                    "jq",
                    "transform",
                    json!({ "program": "{total: (.data.a + .data.b), customer: .data.who}" }),
                ),
                node(
                    "send",
                    "http",
                    "request",
                    json!({ "method": "POST", "url": format!("{}/orders", receiver.uri()) }),
                ),
            ],
            vec![edge("in", "shape"), edge("shape", "send")],
        )
        .await;
    let execution = env.queue(flow.id, json!({ "a": 2, "b": 3, "who": "ada" })).await;

    let done = env.run(&execution).await;

    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    assert_eq!(done.steps.len(), 3);
    for step in done.steps.values() {
        assert_eq!(
            (step.status, step.in_count, step.out_count, step.errors),
            (StepStatus::Succeeded, 1, 1, 0)
        );
        assert!(step.finished_at.is_some());
    }
    assert_eq!(done.steps["send"].component_id, "http");
    assert_eq!(done.steps["send"].sample_output[0]["data"], json!({ "stored": true }));
    assert_eq!((done.counters.started, done.counters.succeeded, done.counters.errors), (3, 3, 0));
    assert!(done.started_at.is_some() && done.finished_at.is_some());
    assert!(done.lease_owner.is_none() && done.lease_until.is_none());
    assert_eq!(done.reply(), Ok(json!({ "stored": true })));
}

/// An outside system's reply nested deeper than a body may be fails its step with the reason,
/// and the execution is stored and reads back (a 120-deep response used to make it unreadable).
#[tokio::test]
async fn a_response_nested_too_deep_fails_its_step_and_the_execution_reads_back() {
    let env = env().await;
    let server = MockServer::start().await;
    let deep = format!("{}{}", "[".repeat(120), "]".repeat(120));
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(deep, "application/json"))
        .mount(&server)
        .await;
    let fetch = json!({ "method": "GET", "url": server.uri() });
    let flow =
        env.flow(vec![trigger(), node("fetch", "http", "request", fetch)], vec![edge("in", "fetch")]).await;
    let execution = env.queue(flow.id, json!({})).await;

    let done = env.run(&execution).await;

    assert_eq!(done.status, ExecutionStatus::Failed, "{done:?}");
    let step = &done.steps["fetch"];
    assert_eq!(step.last_error.as_deref(), Some("nesting deeper than 64 levels"), "{step:?}");
    let read = env.get(&execution).await;
    assert!(!read.unreadable, "the stored execution reads back: {read:?}");
    assert_eq!(read.status, ExecutionStatus::Failed);
}

#[tokio::test]
async fn false_condition_skips_a_branch_and_the_mapper_reshapes() {
    let env = env().await;
    let flow = env
        .flow(
            vec![trigger(), node("big", "log", "info", json!({})), node("small", "log", "info", json!({}))],
            vec![
                routed("in", "big", Some(".data.n > 10"), None),
                routed("in", "small", Some(".data.n <= 10"), Some("{data: {doubled: (.data.n * 2)}}")),
            ],
        )
        .await;
    let execution = env.queue(flow.id, json!({ "n": 2 })).await;

    let done = env.run(&execution).await;

    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert!(!done.steps.contains_key("big"));
    assert_eq!(done.steps["small"].sample_output, vec![json!({ "data": { "doubled": 4 } })]);
    assert_eq!(done.counters.started, 2);
}

#[tokio::test]
async fn a_failing_branch_fails_the_execution_but_not_the_other_branch() {
    let env = env().await;
    let flow = env
        .flow(
            vec![
                trigger(),
                node("bad", "jq", "transform", json!({ "program": "error(\"boom\")" })),
                node("good", "log", "info", json!({})),
                node("after_bad", "log", "info", json!({})),
            ],
            vec![edge("in", "bad"), edge("in", "good"), edge("bad", "after_bad")],
        )
        .await;
    let execution = env.queue(flow.id, json!({})).await;

    let done = env.run(&execution).await;

    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.steps["good"].status, StepStatus::Succeeded);
    let bad = &done.steps["bad"];
    assert_eq!((bad.status, bad.in_count, bad.out_count, bad.errors), (StepStatus::Failed, 1, 0, 1));
    assert!(bad.last_error.as_deref().unwrap().contains("boom"), "{bad:?}");
    assert!(!done.steps.contains_key("after_bad"));
    assert_eq!((done.counters.started, done.counters.succeeded, done.counters.errors), (3, 2, 1));
    assert!(done.reply().unwrap_err().contains("boom"));
}

#[tokio::test]
async fn each_output_message_runs_the_next_node_once() {
    let env = env().await;
    let flow = env
        .flow(
            vec![
                trigger(),
                node("split", "jq", "transform", json!({ "program": ".data.items[]" })),
                node("each", "log", "info", json!({})),
            ],
            vec![edge("in", "split"), edge("split", "each")],
        )
        .await;
    let execution = env.queue(flow.id, json!({ "items": [1, 2, 3] })).await;

    let done = env.run(&execution).await;

    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.steps["split"].out_count, 3);
    let each = &done.steps["each"];
    assert_eq!((each.in_count, each.out_count, each.status), (3, 3, StepStatus::Succeeded));
    let mut seen: Vec<Value> = each.sample_output.iter().map(|m| m["data"].clone()).collect();
    seen.sort_by_key(|v| v.as_i64());
    assert_eq!(seen, vec![json!(1), json!(2), json!(3)]);
    assert_eq!(done.counters.started, 5);
}

#[tokio::test]
async fn an_endless_script_is_stopped_by_the_sandbox() {
    let env = env().await;
    let flow = env
        .flow(
            vec![
                trigger(),
                node("spin", "code", "run", json!({ "script": "loop { }", "limits": { "timeMs": 200 } })),
            ],
            vec![edge("in", "spin")],
        )
        .await;
    let execution = env.queue(flow.id, json!({})).await;

    let done = env.run(&execution).await;

    assert_eq!(done.status, ExecutionStatus::Failed);
    let spin = &done.steps["spin"];
    assert_eq!(spin.status, StepStatus::Failed);
    assert!(spin.last_error.as_deref().is_some_and(|e| !e.is_empty()), "{spin:?}");
}

#[tokio::test]
async fn too_many_step_runs_fail_the_execution() {
    let env = env_with(ExecutorConfig { max_step_runs: 4, ..config() }, Arc::new(SystemClock)).await;
    let flow = env
        .flow(
            vec![
                trigger(),
                node("split", "jq", "transform", json!({ "program": "range(10)" })),
                node("each", "log", "info", json!({})),
            ],
            vec![edge("in", "split"), edge("split", "each")],
        )
        .await;
    let execution = env.queue(flow.id, json!({})).await;

    let done = env.run(&execution).await;

    assert_eq!(done.status, ExecutionStatus::Failed);
    assert!(done.error.as_deref().unwrap().contains("more than 4 steps"), "{:?}", done.error);
}

#[tokio::test]
async fn an_execution_of_a_deleted_flow_fails() {
    let env = env().await;
    let execution = env.queue(FlowId::new(), json!({})).await;

    let done = env.run(&execution).await;

    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("The flow was deleted."));
    assert!(done.finished_at.is_some());
}

#[tokio::test]
async fn a_dead_workers_execution_is_requeued_and_rerun_from_the_trigger() {
    let clock = Arc::new(ManualClock::new(at(0)));
    let env = env_with(config(), clock.clone()).await;
    let flow =
        env.flow(vec![trigger(), node("log", "log", "info", json!({}))], vec![edge("in", "log")]).await;
    let execution = env.queue(flow.id, json!({ "x": 1 })).await;
    // A worker claims it (counting its first run), records some progress, and dies.
    let mut claimed = env
        .store
        .executions
        .claim(execution.id, "dead", at(0), at(5), AttemptLimit::DEFAULT)
        .await
        .unwrap()
        .unwrap();
    claimed.steps.insert("in".into(), flow_domain::model::StepRecord::started("webhook", at(0)));
    claimed.counters.started = 1;
    env.store.executions.save(&claimed, &[]).await.unwrap();

    // Before the lease runs out nothing happens; the live claim also keeps others away.
    assert_eq!(env.executor.recover_once().await.unwrap(), 0);
    assert_eq!(env.executor.run_now(execution.id).await.unwrap(), None);

    clock.advance(chrono::Duration::seconds(6));
    assert_eq!(env.executor.recover_once().await.unwrap(), 1);
    let requeued = env.get(&execution).await;
    assert_eq!(
        (requeued.status, requeued.attempts),
        (ExecutionStatus::Queued, 1),
        "the lost run stays counted"
    );
    assert!(requeued.lease_owner.is_none());

    let done = env.run(&execution).await;
    assert_eq!(
        (done.status, done.attempts),
        (ExecutionStatus::Succeeded, 2),
        "the second run is counted too"
    );
    assert_eq!(done.steps["in"].in_count, 1, "steps start over from the trigger");
    assert_eq!((done.counters.started, done.counters.succeeded), (2, 2));
}

#[tokio::test]
async fn an_execution_whose_workers_keep_dying_fails_after_the_attempt_limit() {
    let clock = Arc::new(ManualClock::new(at(0)));
    let limit = AttemptLimit::new(std::num::NonZeroU32::new(3).unwrap());
    let env = env_with(ExecutorConfig { max_attempts: limit, ..config() }, clock.clone()).await;
    let flow = env.flow(vec![trigger()], vec![]).await;
    let execution = env.queue(flow.id, json!({})).await;

    for attempt in 1..=3u32 {
        let now = clock.now();
        let claimed =
            env.store.executions.claim(execution.id, "dead", now, now + chrono::Duration::seconds(5), limit);
        assert_eq!(claimed.await.unwrap().unwrap().attempts, attempt, "each run is counted before it runs");
        clock.advance(chrono::Duration::seconds(6));
        assert_eq!(env.executor.recover_once().await.unwrap(), 1);
        let stored = env.get(&execution).await;
        if attempt < 3 {
            assert_eq!((stored.status, stored.attempts), (ExecutionStatus::Queued, attempt));
        } else {
            assert_eq!((stored.status, stored.attempts), (ExecutionStatus::Failed, 3));
            assert_eq!(
                stored.error.as_deref(),
                Some(
                    "The process running this execution died 3 times (attempt limit FLOWMATE_EXECUTION_MAX_ATTEMPTS reached)."
                )
            );
            assert!(stored.lease_owner.is_none() && stored.finished_at.is_some());
        }
    }
    assert_eq!(env.executor.run_now(execution.id).await.unwrap(), None, "nothing runs it again");
}

#[tokio::test]
async fn a_claim_out_of_attempts_fails_the_execution_instead_of_running_it() {
    // E.g. a queued execution whose runs were used up under a higher limit, or whose last run
    // died after it was re-queued: the worker that gets its event fails it with the reason.
    let env = env().await;
    let flow =
        env.flow(vec![trigger(), node("log", "log", "info", json!({}))], vec![edge("in", "log")]).await;
    let mut execution = env.queue(flow.id, json!({})).await;
    let mut used_up = env.get(&execution).await;
    used_up.attempts = 3;
    env.store.executions.save(&used_up, &[]).await.unwrap();
    execution.revision += 1;

    let status = env.executor.run_now(execution.id).await.unwrap();

    let stored = env.get(&execution).await;
    assert_eq!(
        (status, stored.status, stored.attempts),
        (Some(ExecutionStatus::Failed), ExecutionStatus::Failed, 3)
    );
    assert!(stored.error.as_deref().unwrap().contains("died 3 times"), "{:?}", stored.error);
    assert!(stored.steps.is_empty(), "nothing ran");
}

#[tokio::test]
async fn a_queued_execution_whose_event_was_lost_is_announced_again() {
    let clock = Arc::new(ManualClock::new(at(0)));
    let env = env_with(config(), clock.clone()).await;
    let flow = env.flow(vec![trigger()], vec![]).await;
    let execution = env.queue(flow.id, json!({})).await;

    assert_eq!(env.executor.recover_once().await.unwrap(), 0);
    clock.advance(chrono::Duration::seconds(61));
    assert_eq!(env.executor.recover_once().await.unwrap(), 1);
    let stored = env.get(&execution).await;
    assert_eq!(stored.status, ExecutionStatus::Queued);
    assert_eq!(stored.revision, execution.revision + 1);
}

#[tokio::test]
async fn cancelling_during_a_delay_stops_the_execution() {
    // A short lease: the driver saves (and so notices the cancel) every 100 ms.
    let config = ExecutorConfig { lease: Duration::from_millis(300), ..config() };
    let env = env_with(config, Arc::new(SystemClock)).await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&receiver).await;
    let flow = env
        .flow(
            vec![
                trigger(),
                node("wait", "delay", "wait", json!({ "ms": 600_000 })),
                node("after", "http", "request", json!({ "method": "POST", "url": receiver.uri() })),
            ],
            vec![edge("in", "wait"), edge("wait", "after")],
        )
        .await;
    let execution = env.queue(flow.id, json!({})).await;
    let executor = env.executor.clone();
    let id = execution.id;
    let running = tokio::spawn(async move { executor.run_now(id).await });

    env.until_step_runs(&execution, "wait").await;
    let started = Instant::now();
    let actor = Actor {
        user_id: UserId::new(),
        tenant: None,
        permissions: PermissionSet::new(vec![Permission::All]),
        token_id: None,
    };
    let service =
        ExecutionService::new(env.store.executions.clone(), env.store.flows.clone(), env.clock.clone());
    service.cancel(&actor, &execution.id.to_string()).await.unwrap();

    let status = running.await.unwrap().unwrap();
    assert_eq!(status, Some(ExecutionStatus::Cancelled));
    assert!(started.elapsed() < Duration::from_secs(60), "the delay was not interrupted");
    let stored = env.get(&execution).await;
    assert_eq!(stored.status, ExecutionStatus::Cancelled);
    assert!(!stored.steps.contains_key("after"));
    receiver.verify().await;
}

#[tokio::test]
async fn flow_execute_runs_in_the_background_and_a_redelivery_is_a_noop() {
    let env = env().await;
    let flow =
        env.flow(vec![trigger(), node("log", "log", "info", json!({}))], vec![edge("in", "log")]).await;
    let execution = env.queue(flow.id, json!({})).await;
    let event = Event::flow_execute(flow.id, execution.id, env.clock.now());

    EventHandler::handle(env.executor.as_ref(), &event).await.unwrap();
    env.executor.idle().await;
    let done = env.get(&execution).await;
    assert_eq!(done.status, ExecutionStatus::Succeeded);

    EventHandler::handle(env.executor.as_ref(), &event).await.unwrap();
    env.executor.idle().await;
    assert_eq!(env.get(&execution).await, done);
    // Other events are ignored.
    let other = Event::engine_confirmation(flow_domain::event::names::FLOW_STARTED, flow.id, env.clock.now());
    EventHandler::handle(env.executor.as_ref(), &other).await.unwrap();
}

impl Env {
    /// Waits (bounded) until the execution's step `step` is recorded as running.
    async fn until_step_runs(&self, execution: &Execution, step: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stored = self.get(execution).await;
            if stored.steps.get(step).is_some_and(|s| s.status == StepStatus::Running) {
                return;
            }
            assert!(Instant::now() < deadline, "step {step} never started: {stored:?}");
            tokio::task::yield_now().await;
        }
    }
}

#[tokio::test]
async fn shutdown_lets_running_executions_finish_and_starts_nothing_new() {
    let config = ExecutorConfig { lease: Duration::from_millis(300), ..config() };
    let env = env_with(config, Arc::new(SystemClock)).await;
    let flow = env
        .flow(vec![trigger(), node("wait", "delay", "wait", json!({ "ms": 300 }))], vec![edge("in", "wait")])
        .await;
    let execution = env.queue(flow.id, json!({})).await;
    let event = Event::flow_execute(flow.id, execution.id, env.clock.now());
    EventHandler::handle(env.executor.as_ref(), &event).await.unwrap();
    env.until_step_runs(&execution, "wait").await;

    env.executor.shutdown(Duration::from_secs(30)).await;
    assert_eq!(env.get(&execution).await.status, ExecutionStatus::Succeeded);

    let late = env.queue(flow.id, json!({})).await;
    let late_event = Event::flow_execute(flow.id, late.id, env.clock.now());
    EventHandler::handle(env.executor.as_ref(), &late_event).await.unwrap();
    env.executor.idle().await;
    assert_eq!(env.get(&late).await.status, ExecutionStatus::Queued);
}

#[tokio::test]
async fn shutdown_abandons_what_outlives_the_grace() {
    let config = ExecutorConfig { lease: Duration::from_millis(300), ..config() };
    let env = env_with(config, Arc::new(SystemClock)).await;
    let flow = env
        .flow(
            vec![trigger(), node("wait", "delay", "wait", json!({ "ms": 600_000 }))],
            vec![edge("in", "wait")],
        )
        .await;
    let execution = env.queue(flow.id, json!({})).await;
    let event = Event::flow_execute(flow.id, execution.id, env.clock.now());
    EventHandler::handle(env.executor.as_ref(), &event).await.unwrap();
    env.until_step_runs(&execution, "wait").await;

    env.executor.shutdown(Duration::from_millis(100)).await;

    // Left running with its lease, for recovery to pick up once the lease ran out.
    let stored = env.get(&execution).await;
    assert_eq!(stored.status, ExecutionStatus::Running);
    assert_eq!(stored.lease_owner.as_deref(), Some(env.executor.config().process.owner()));
}
