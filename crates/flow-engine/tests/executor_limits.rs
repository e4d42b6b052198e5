//! The executor's concurrency limits over real storage (SQLite, or PostgreSQL with
//! `FLOWMATE_TEST_STORAGE=postgres`): a gate component holds every call until
//! the test lets one through and records how many calls were inside at once, in all and per
//! flow. Global and per-flow limits are never exceeded, and a flow at its limit does not hold
//! back another flow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use common::{Store, TestDb, node};
use flow_domain::event::Event;
use flow_domain::ids::FlowId;
use flow_domain::model::{
    Edge, EdgeConfig, Execution, ExecutionStatus, Flow, FlowSpec, FlowStatus, FlowType, Graph, TriggerInfo,
    TriggerType,
};
use flow_domain::time::SystemClock;
use flow_engine::EventHandler;
use flow_engine::components::{CallContext, Component, ComponentError, ComponentRegistry, HttpConfig};
use flow_engine::executor::{Executor, ExecutorConfig};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

/// Holds each call until a permit is added; records concurrency.
struct Gate {
    gate: Arc<Semaphore>,
    inside: AtomicUsize,
    max_inside: AtomicUsize,
    /// Per flow id: (inside now, most inside at once, finished).
    per_flow: Mutex<HashMap<String, (usize, usize, usize)>>,
    done: AtomicUsize,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            gate: Arc::new(Semaphore::new(0)),
            inside: AtomicUsize::new(0),
            max_inside: AtomicUsize::new(0),
            per_flow: Mutex::default(),
            done: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl Component for Gate {
    async fn call(
        &self,
        _function: &str,
        _fields: &Map<String, Value>,
        msg: &Value,
        ctx: &CallContext,
    ) -> Result<Vec<Value>, ComponentError> {
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_inside.fetch_max(now, Ordering::SeqCst);
        {
            let mut flows = self.per_flow.lock().unwrap();
            let entry = flows.entry(ctx.flow_id.clone()).or_default();
            entry.0 += 1;
            entry.1 = entry.1.max(entry.0);
        }
        self.gate.acquire().await.unwrap().forget();
        {
            let mut flows = self.per_flow.lock().unwrap();
            let entry = flows.entry(ctx.flow_id.clone()).or_default();
            entry.0 -= 1;
            entry.2 += 1;
        }
        self.inside.fetch_sub(1, Ordering::SeqCst);
        self.done.fetch_add(1, Ordering::SeqCst);
        Ok(vec![msg.clone()])
    }
}

async fn setup(config: ExecutorConfig) -> (TestDb, Store, Arc<Executor>, Arc<Gate>) {
    let db = TestDb::create().await;
    let store = db.store().await;
    let gate = Arc::new(Gate::default());
    let mut registry =
        ComponentRegistry::builtin(HttpConfig::default()).unwrap().with_sandbox(common::sandbox());
    registry.insert("gate", gate.clone());
    let executor = Arc::new(Executor::new(
        store.executions.clone(),
        store.flows.clone(),
        Arc::new(registry),
        Arc::new(SystemClock),
        config,
    ));
    (db, store, executor, gate)
}

async fn flow(store: &Store) -> FlowId {
    let now = Utc::now();
    let flow = Flow {
        status: FlowStatus::Active,
        ..Flow::new(
            FlowSpec {
                name: "gated".into(),
                description: None,
                flow_type: FlowType::Ordinary,
                cron: None,
                graph: Graph {
                    nodes: vec![
                        node("in", "webhook", "receive", json!({})),
                        node("hold", "gate", "hold", json!({})),
                    ],
                    edges: vec![Edge {
                        id: None,
                        source: "in".into(),
                        target: "hold".into(),
                        config: EdgeConfig::default(),
                    }],
                },
                flow_settings: Map::new(),
            },
            None,
            Vec::new(),
            now,
        )
    };
    store.flows.insert(&flow, &[]).await.unwrap();
    flow.id
}

/// Queues an execution of `flow_id` and hands its `flow.execute` to the executor.
async fn start(store: &Store, executor: &Executor, flow_id: FlowId) -> Execution {
    let trigger = TriggerInfo { trigger_type: TriggerType::Webhook, request_id: None };
    let execution = Execution::queued(flow_id, None, Vec::new(), trigger, json!({"data": {}}), Utc::now());
    store.executions.insert(&execution, &[]).await.unwrap();
    EventHandler::handle(executor, &Event::flow_execute(flow_id, execution.id, Utc::now())).await.unwrap();
    execution
}

/// Lets calls through one at a time until `total` went through; before each release, waits
/// until as many calls are inside as the limits allow (`full(gate)`), so a call that should be
/// held back has every chance to slip in and be counted.
async fn release_all(gate: &Gate, total: usize, full: impl Fn(&Gate) -> usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while gate.done.load(Ordering::SeqCst) < total {
        while gate.inside.load(Ordering::SeqCst) < full(gate) {
            assert!(Instant::now() < deadline, "calls never reached the gate");
            tokio::task::yield_now().await;
        }
        let before = gate.done.load(Ordering::SeqCst);
        gate.gate.add_permits(1);
        while gate.done.load(Ordering::SeqCst) == before {
            assert!(Instant::now() < deadline, "a released call never finished");
            tokio::task::yield_now().await;
        }
    }
}

async fn wait_all(store: &Store, executions: &[Execution]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for execution in executions {
        loop {
            let stored = store.executions.get(execution.id).await.unwrap().unwrap();
            if stored.status == ExecutionStatus::Succeeded {
                break;
            }
            assert!(Instant::now() < deadline, "{} stayed {}", stored.id, stored.status);
            tokio::task::yield_now().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_limit_is_never_exceeded() {
    let config = ExecutorConfig { max_concurrent: 2, max_per_flow: 8, ..ExecutorConfig::default() };
    let (_db, store, executor, gate) = setup(config).await;
    let mut executions = Vec::new();
    for _ in 0..5 {
        let flow_id = flow(&store).await;
        executions.push(start(&store, &executor, flow_id).await);
    }
    release_all(&gate, 5, |g| 2.min(5 - g.done.load(Ordering::SeqCst))).await;
    wait_all(&store, &executions).await;
    assert_eq!(gate.max_inside.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_flow_limit_holds_without_blocking_other_flows() {
    let config = ExecutorConfig { max_concurrent: 64, max_per_flow: 1, ..ExecutorConfig::default() };
    let (_db, store, executor, gate) = setup(config).await;
    let busy = flow(&store).await;
    let other = flow(&store).await;
    let mut executions = Vec::new();
    for _ in 0..3 {
        executions.push(start(&store, &executor, busy).await);
    }
    executions.push(start(&store, &executor, other).await);
    // One call of each flow is inside at once: the busy flow's queue does not hold `other` back.
    let (busy_key, other_key) = (busy.to_string(), other.to_string());
    let full = |g: &Gate| {
        let flows = g.per_flow.lock().unwrap();
        let unfinished = |key: &str, calls: usize| usize::from(flows.get(key).map_or(0, |f| f.2) < calls);
        unfinished(&busy_key, 3) + unfinished(&other_key, 1)
    };
    release_all(&gate, 4, full).await;
    wait_all(&store, &executions).await;
    let per_flow = gate.per_flow.lock().unwrap().clone();
    assert_eq!(per_flow[&busy.to_string()].1, 1);
    assert_eq!(per_flow[&other.to_string()].1, 1);
    assert_eq!(gate.max_inside.load(Ordering::SeqCst), 2);
}
