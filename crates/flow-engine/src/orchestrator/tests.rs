//! Orchestrator behaviour: deploy, refuse with a reason, undeploy, idempotency.

use super::*;
use crate::catalogue::BuiltinCatalogue;
use crate::runtime::is_transient;
use crate::testing::FakeOutbox;
use crate::triggers::TriggerKind;
use chrono::Utc;
use flow_domain::ids::UserId;
use flow_domain::model::{Edge, EdgeConfig, Flow, FlowSpec, FlowStatus, FlowType, Graph, Node};
use flow_domain::time::ManualClock;
use serde_json::{Value, json};

struct Fixture {
    outbox: Arc<FakeOutbox>,
    orchestrator: Orchestrator,
}

fn fixture() -> Fixture {
    let outbox = Arc::new(FakeOutbox::default());
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let orchestrator = Orchestrator::new(Arc::new(BuiltinCatalogue::new()), outbox.clone(), clock);
    Fixture { outbox, orchestrator }
}

fn node(id: &str, component: &str, function: &str, fields: Value) -> Node {
    Node::new(id, component, function, fields.as_object().cloned().unwrap_or_default())
}

fn chain(nodes: Vec<Node>) -> Graph {
    let edges = nodes
        .windows(2)
        .map(|pair| Edge {
            id: None,
            source: pair[0].id.clone(),
            target: pair[1].id.clone(),
            config: EdgeConfig::default(),
        })
        .collect();
    Graph { nodes, edges }
}

fn flow(graph: Graph, cron: Option<&str>) -> Flow {
    let now = Utc::now();
    Flow {
        status: FlowStatus::Starting,
        ..Flow::new(
            FlowSpec {
                name: "test flow".into(),
                description: None,
                flow_type: FlowType::Ordinary,
                cron: cron.map(str::to_owned),
                graph,
                flow_settings: Default::default(),
            },
            None,
            Vec::new(),
            now,
        )
    }
}

fn starting(flow: &Flow) -> Event {
    Event::flow_starting(flow, Some(UserId::new()), Utc::now())
}

fn webhook_flow(second: Node) -> Flow {
    flow(chain(vec![node("a", "webhook", "receive", json!({})), second]), None)
}

/// Starts `flow` and returns the single confirmation appended.
async fn start(fx: &Fixture, flow: &Flow) -> Event {
    fx.orchestrator.handle(&starting(flow)).await.expect("handled");
    let events = fx.outbox.events();
    assert_eq!(events.len(), 1, "one confirmation: {events:?}");
    events[0].clone()
}

fn reason(event: &Event) -> &str {
    assert_eq!(event.name, names::FLOW_FAILED);
    event.payload["reason"].as_str().expect("reason")
}

#[tokio::test]
async fn accepts_a_valid_flow_and_registers_its_webhook() {
    let fx = fixture();
    let graph = chain(vec![
        node("a", "webhook", "receive", json!({})),
        node(
            "b",
            "http",
            "request",
            json!({ "method": "POST", "url": "https://example.com", "timeoutMs": 500 }),
        ),
        node("c", "jq", "transform", json!({ "program": ".data | {x: .a}" })),
        node("d", "filter", "filter", json!({ "condition": ".x > 1" })),
        node("e", "log", "info", json!({ "level": "warn" })),
        node("f", "delay", "wait", json!({ "ms": 10 })),
        node("g", "code", "run", json!({ "script": "msg", "limits": { "timeMs": 10 } })),
    ]);
    let flow = flow(graph, None);
    let event = start(&fx, &flow).await;
    assert_eq!(event.name, names::FLOW_STARTED);
    assert_eq!(event.payload, json!({ "id": flow.id }));
    assert_eq!(event.key, Some(flow.id.to_string()));
    let registration = fx.orchestrator.triggers().get(flow.id).expect("registered");
    assert_eq!(registration.kind, TriggerKind::Webhook);
    assert_eq!(registration.trigger_node, "a");
}

#[tokio::test]
async fn registers_cron_flows_as_cron() {
    let fx = fixture();
    let graph =
        chain(vec![node("t", "scheduler", "schedule", json!({})), node("l", "log", "info", json!({}))]);
    let flow = flow(graph, Some("*/5 * * * *"));
    assert_eq!(start(&fx, &flow).await.name, names::FLOW_STARTED);
    let registration = fx.orchestrator.triggers().get(flow.id).expect("registered");
    assert_eq!(registration.kind, TriggerKind::Cron("*/5 * * * *".into()));
}

#[tokio::test]
async fn refuses_an_unknown_component() {
    let fx = fixture();
    let flow = webhook_flow(node("b", "nosuch", "run", json!({})));
    assert_eq!(reason(&start(&fx, &flow).await), "Node \"b\": unknown component \"nosuch\"");
    assert!(fx.orchestrator.triggers().get(flow.id).is_none());
}

#[tokio::test]
async fn refuses_an_unknown_function() {
    let fx = fixture();
    let flow = webhook_flow(node("b", "http", "nosuch", json!({})));
    assert_eq!(reason(&start(&fx, &flow).await), "Node \"b\": component \"http\" has no function \"nosuch\"");
}

#[tokio::test]
async fn refuses_a_missing_required_field() {
    let fx = fixture();
    let flow = webhook_flow(node("b", "http", "request", json!({ "method": "GET" })));
    assert_eq!(reason(&start(&fx, &flow).await), "Node \"b\": missing required field \"url\"");
}

#[tokio::test]
async fn refuses_a_field_of_the_wrong_type() {
    let fx = fixture();
    let flow = webhook_flow(node("b", "delay", "wait", json!({ "ms": "ten" })));
    assert_eq!(reason(&start(&fx, &flow).await), "Node \"b\": field \"ms\" must be an integer");
}

#[tokio::test]
async fn refuses_a_jq_program_that_does_not_compile() {
    let fx = fixture();
    let flow = webhook_flow(node("b", "jq", "transform", json!({ "program": ".a |" })));
    let event = start(&fx, &flow).await;
    assert!(
        reason(&event).starts_with("Node \"b\": field \"program\" is not a valid jq program"),
        "{event:?}"
    );
    let flow = webhook_flow(node("c", "filter", "filter", json!({ "condition": "nosuchfn(1)" })));
    let fx = fixture();
    assert!(
        reason(&start(&fx, &flow).await).starts_with("Node \"c\": field \"condition\" is not a valid jq")
    );
}

#[tokio::test]
async fn refuses_a_bad_cron_and_misplaced_triggers_listing_every_problem() {
    let fx = fixture();
    let graph = chain(vec![
        node("a", "webhook", "receive", json!({})),
        node("b", "scheduler", "schedule", json!({})),
        node("c", "nosuch", "x", json!({})),
    ]);
    let flow = flow(graph, Some("not a cron"));
    let event = start(&fx, &flow).await;
    assert_eq!(
        reason(&event),
        "Flow cron \"not a cron\": Invalid cron expression.; \
         Node \"b\": trigger component \"scheduler\" must be the flow's first node; \
         Node \"c\": unknown component \"nosuch\""
    );
}

#[tokio::test]
async fn refuses_edges_whose_jq_does_not_compile() {
    let fx = fixture();
    let mut flow = webhook_flow(node("b", "log", "info", json!({})));
    flow.spec.graph.edges[0].config.mapper = Some("{".into());
    assert!(reason(&start(&fx, &flow).await).starts_with("Edge \"a\" -> \"b\": invalid mapper"));
}

#[tokio::test]
async fn refuses_a_malformed_flow_document() {
    let fx = fixture();
    let id = FlowId::new();
    let event =
        Event::new(names::FLOW_STARTING, Some(id.to_string()), "test", json!({ "id": id }), Utc::now());
    fx.orchestrator.handle(&event).await.expect("handled");
    let events = fx.outbox.events();
    assert!(reason(&events[0]).starts_with("Invalid flow document"), "{events:?}");
}

#[tokio::test]
async fn stop_unregisters_and_confirms() {
    let fx = fixture();
    let flow = webhook_flow(node("b", "log", "info", json!({})));
    start(&fx, &flow).await;
    fx.orchestrator.handle(&Event::flow_stopping(&flow, Utc::now())).await.expect("handled");
    let events = fx.outbox.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].name, names::FLOW_STOPPED);
    assert_eq!(events[1].payload, json!({ "id": flow.id }));
    assert!(fx.orchestrator.triggers().is_empty());
}

#[tokio::test]
async fn a_redelivered_event_has_no_second_effect() {
    let fx = fixture();
    let flow = webhook_flow(node("b", "log", "info", json!({})));
    let event = starting(&flow);
    fx.orchestrator.handle(&event).await.expect("first delivery");
    fx.orchestrator.handle(&event).await.expect("redelivery is a success");
    assert_eq!(fx.outbox.events().len(), 1);
    let stop = Event::flow_stopping(&flow, Utc::now());
    fx.orchestrator.handle(&stop).await.expect("first delivery");
    fx.orchestrator.handle(&stop).await.expect("redelivery is a success");
    assert_eq!(fx.outbox.events().len(), 2);
}

#[tokio::test]
async fn ignores_other_events() {
    let fx = fixture();
    let event = Event::engine_confirmation(names::FLOW_STARTED, FlowId::new(), Utc::now());
    fx.orchestrator.handle(&event).await.expect("ignored");
    assert!(fx.outbox.events().is_empty());
}

#[tokio::test]
async fn an_unavailable_outbox_is_a_transient_error() {
    let fx = fixture();
    fx.outbox.fail_next(1);
    let flow = webhook_flow(node("b", "log", "info", json!({})));
    let err = fx.orchestrator.handle(&starting(&flow)).await.expect_err("outbox down");
    assert!(is_transient(&err), "{err:#}");
    fx.orchestrator.handle(&starting(&flow)).await.expect("retried");
    assert_eq!(fx.outbox.events().len(), 1);
}

#[tokio::test]
async fn shares_a_given_registry() {
    let outbox = Arc::new(FakeOutbox::default());
    let registry = Arc::new(TriggerRegistry::new());
    let orchestrator =
        Orchestrator::new(Arc::new(BuiltinCatalogue::new()), outbox, Arc::new(ManualClock::new(Utc::now())))
            .with_triggers(registry.clone());
    let flow = webhook_flow(node("b", "log", "info", json!({})));
    orchestrator.handle(&starting(&flow)).await.expect("handled");
    assert!(registry.get(flow.id).is_some());
}
