//! The loops, stepped or observed through fakes: relay order, marking and retries; consumer
//! retries, skipping and cancellation; watchdog passes; and the whole start round trip over
//! the in-process bus.

use super::*;
use crate::BuiltinCatalogue;
use crate::handler::{EventHandler, LifecycleHandler};
use crate::orchestrator::{ENGINE_CONSUMER, Orchestrator};
use crate::testing::{FakeOutbox, FakePublisher};
use adapters_inprocess::InProcessBus;
use async_trait::async_trait;
use chrono::Utc;
use flow_domain::error::{PortError, ServiceError};
use flow_domain::event::{Event, names};
use flow_domain::ids::FlowId;
use flow_domain::model::ProcessIdentity;
use flow_domain::ports::{
    EventPublisher, EventSubscriber, MockFlowRepository, MockTemplateRepository, Outbox,
};
use flow_domain::services::{LifecycleListener, Watchdog, WatchdogConfig};
use flow_domain::time::SystemClock;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

fn numbered(n: u64) -> Event {
    Event::new(names::FLOW_STARTED, Some("k".into()), "test", json!({ "n": n }), Utc::now())
}

fn numbers(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.payload["n"].as_u64().expect("n")).collect()
}

async fn seeded_outbox(count: u64) -> Arc<FakeOutbox> {
    let outbox = Arc::new(FakeOutbox::default());
    let events: Vec<Event> = (0..count).map(numbered).collect();
    outbox.append(&events, None).await.expect("seed");
    outbox
}

#[tokio::test]
async fn relay_steps_publish_in_order_and_mark_each_batch_with_the_next_claim() {
    let outbox = seeded_outbox(5).await;
    let (publisher, mut accepted) = FakePublisher::failing(0);
    let mut published = Vec::new();
    assert_eq!(
        relay_step(outbox.as_ref(), &publisher, &mut published, "relay#1", 3).await.expect("relay"),
        3
    );
    assert_eq!(published.len(), 3, "the batch waits to be marked by the next step");
    assert_eq!(outbox.pending_count().await.expect("count"), 5);
    assert_eq!(
        relay_step(outbox.as_ref(), &publisher, &mut published, "relay#1", 3).await.expect("relay"),
        2
    );
    assert_eq!(outbox.pending_count().await.expect("count"), 2, "the first batch is marked");
    assert_eq!(
        relay_step(outbox.as_ref(), &publisher, &mut published, "relay#1", 3).await.expect("relay"),
        0
    );
    assert!(published.is_empty());
    let first = accepted.recv().await.expect("batch");
    let second = accepted.recv().await.expect("batch");
    assert_eq!(numbers(&first), [0, 1, 2]);
    assert_eq!(numbers(&second), [3, 4]);
    assert!(outbox.all_published());
    assert_eq!(outbox.pending_count().await.expect("count"), 0);
}

#[tokio::test]
async fn relay_step_marks_nothing_when_publishing_fails() {
    let outbox = seeded_outbox(2).await;
    let (publisher, _accepted) = FakePublisher::failing(1);
    let mut published = Vec::new();
    let result = relay_step(outbox.as_ref(), &publisher, &mut published, "relay#1", 10).await;
    assert!(matches!(result, Err(PortError::Unavailable(_))));
    assert!(published.is_empty(), "nothing to mark");
    assert_eq!(outbox.pending_count().await.expect("count"), 2);
}

#[tokio::test]
async fn relay_loop_retries_a_failing_publisher_then_stops_on_cancel() {
    let outbox = seeded_outbox(3).await;
    let (publisher, mut accepted) = FakePublisher::failing(2);
    let cancel = CancellationToken::new();
    let relay = spawn_relay(outbox.clone(), Arc::new(publisher), ProcessIdentity::unique(), cancel.clone());
    let batch = timeout(WAIT, accepted.recv()).await.expect("published in time").expect("batch");
    assert_eq!(numbers(&batch), [0, 1, 2]);
    cancel.cancel();
    timeout(WAIT, relay).await.expect("relay stops").expect("relay task");
    assert!(outbox.all_published());
}

#[tokio::test]
async fn relay_loop_retries_a_failing_outbox_and_picks_up_new_events() {
    let outbox = Arc::new(FakeOutbox::default());
    outbox.fail_next(2);
    let (publisher, mut accepted) = FakePublisher::failing(0);
    let cancel = CancellationToken::new();
    let relay = spawn_relay(outbox.clone(), Arc::new(publisher), ProcessIdentity::unique(), cancel.clone());
    let events: Vec<Event> = (0..2).map(numbered).collect();
    // The first appends may hit the injected failures; retry until the outbox takes them.
    while outbox.append(&events, None).await.is_err() {}
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let batch = timeout(WAIT, accepted.recv()).await.expect("published in time").expect("batch");
        seen.extend(numbers(&batch));
    }
    assert_eq!(seen, [0, 1]);
    cancel.cancel();
    timeout(WAIT, relay).await.expect("relay stops").expect("relay task");
}

/// Fails the first `failures` calls with `error`, then reports each handled event.
struct ScriptedHandler {
    failures: AtomicU32,
    error: fn() -> anyhow::Error,
    attempts: AtomicU32,
    handled: mpsc::UnboundedSender<Event>,
}

#[async_trait]
impl EventHandler for ScriptedHandler {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err((self.error)());
        }
        let _ = self.handled.send(event.clone());
        Ok(())
    }
}

fn scripted(
    failures: u32,
    error: fn() -> anyhow::Error,
) -> (Arc<ScriptedHandler>, mpsc::UnboundedReceiver<Event>) {
    let (handled, rx) = mpsc::unbounded_channel();
    let handler =
        ScriptedHandler { failures: AtomicU32::new(failures), error, attempts: AtomicU32::new(0), handled };
    (Arc::new(handler), rx)
}

#[tokio::test]
async fn consumer_retries_transient_errors_until_handled() {
    let bus = InProcessBus::new();
    let (handler, mut handled) = scripted(4, || PortError::Unavailable("db down".into()).into());
    let cancel = CancellationToken::new();
    let consumer =
        spawn_consumer(Arc::new(bus.clone()), "g", &[names::FLOW_STARTED], handler.clone(), cancel.clone())
            .await
            .expect("subscribed");
    bus.publish(&[numbered(1), numbered(2)]).await.expect("publish");
    let first = timeout(WAIT, handled.recv()).await.expect("in time").expect("handled");
    let second = timeout(WAIT, handled.recv()).await.expect("in time").expect("handled");
    assert_eq!(numbers(&[first, second]), [1, 2]);
    assert_eq!(
        handler.attempts.load(Ordering::SeqCst),
        6,
        "4 transient failures beyond MAX_ATTEMPTS, then 2 successes"
    );
    cancel.cancel();
    timeout(WAIT, consumer).await.expect("consumer stops").expect("consumer task");
}

#[tokio::test]
async fn consumer_skips_an_event_after_repeated_non_transient_errors() {
    let bus = InProcessBus::new();
    let (handler, mut handled) = scripted(MAX_ATTEMPTS, || anyhow::anyhow!("bad event"));
    let cancel = CancellationToken::new();
    let consumer =
        spawn_consumer(Arc::new(bus.clone()), "g", &[names::FLOW_STARTED], handler.clone(), cancel.clone())
            .await
            .expect("subscribed");
    bus.publish(&[numbered(1), numbered(2)]).await.expect("publish");
    let next = timeout(WAIT, handled.recv()).await.expect("in time").expect("handled");
    assert_eq!(numbers(&[next]), [2], "the failing event was skipped");
    assert_eq!(handler.attempts.load(Ordering::SeqCst), MAX_ATTEMPTS + 1);
    cancel.cancel();
    timeout(WAIT, consumer).await.expect("consumer stops").expect("consumer task");
}

#[tokio::test]
async fn consumer_ends_when_the_bus_closes() {
    let bus = InProcessBus::new();
    let (handler, _handled) = scripted(0, || anyhow::anyhow!("unused"));
    let consumer =
        spawn_consumer(Arc::new(bus.clone()), "g", &[names::FLOW_STARTED], handler, CancellationToken::new())
            .await
            .expect("subscribed");
    bus.close();
    timeout(WAIT, consumer).await.expect("consumer stops").expect("consumer task");
}

#[test]
fn transient_errors_are_recognised_through_the_chain() {
    assert!(is_transient(&PortError::Unavailable("x".into()).into()));
    assert!(is_transient(&anyhow::Error::new(ServiceError::Unavailable("x".into()))));
    assert!(is_transient(&anyhow::Error::from(PortError::Unavailable("x".into())).context("while saving")));
    assert!(!is_transient(&PortError::Conflict.into()));
    assert!(!is_transient(&anyhow::anyhow!("other")));
}

#[tokio::test]
async fn lifecycle_handler_reports_storage_outages_as_transient() {
    let mut flows = MockFlowRepository::new();
    flows.expect_get().returning(|_| Err(PortError::Unavailable("db down".into())));
    let listener = LifecycleListener::new(
        Arc::new(flows),
        Arc::new(MockTemplateRepository::new()),
        Arc::new(SystemClock),
    );
    let handler = LifecycleHandler(Arc::new(listener));
    let event = Event::engine_confirmation(names::FLOW_STARTED, FlowId::new(), Utc::now());
    let err = handler.handle(&event).await.expect_err("storage down");
    assert!(is_transient(&err), "{err:#}");
}

#[tokio::test]
async fn watchdog_ticks_periodically_until_cancelled() {
    let (ticked, mut ticks) = mpsc::unbounded_channel();
    let mut flows = MockFlowRepository::new();
    flows.expect_list_stalled().returning(move |_, _| {
        let _ = ticked.send(());
        Ok(Vec::new())
    });
    let watchdog = Watchdog::new(Arc::new(flows), Arc::new(SystemClock), WatchdogConfig::default());
    let cancel = CancellationToken::new();
    let task = spawn_watchdog(Arc::new(watchdog), Duration::from_millis(10), cancel.clone());
    for _ in 0..3 {
        timeout(WAIT, ticks.recv()).await.expect("a pass in time").expect("pass");
    }
    cancel.cancel();
    timeout(WAIT, task).await.expect("watchdog stops").expect("watchdog task");
}

#[tokio::test]
async fn a_start_round_trips_over_the_bus() {
    let bus = InProcessBus::new();
    let outbox = Arc::new(FakeOutbox::default());
    let cancel = CancellationToken::new();
    let orchestrator =
        Arc::new(Orchestrator::new(Arc::new(BuiltinCatalogue::new()), outbox.clone(), Arc::new(SystemClock)));
    let mut confirmations = bus
        .subscribe("flow-repository", &[names::FLOW_STARTED, names::FLOW_FAILED])
        .await
        .expect("subscribe");
    let consumer = spawn_consumer(
        Arc::new(bus.clone()),
        ENGINE_CONSUMER,
        &Orchestrator::EVENTS,
        orchestrator.clone(),
        cancel.clone(),
    )
    .await
    .expect("subscribed");
    let relay = spawn_relay(outbox.clone(), Arc::new(bus.clone()), ProcessIdentity::unique(), cancel.clone());

    let id = FlowId::new();
    let payload = json!({
        "id": id, "name": "f", "status": "starting",
        "graph": { "nodes": [{ "id": "a", "componentId": "webhook", "function": "receive" }], "edges": [] }
    });
    let starting = Event::new(names::FLOW_STARTING, Some(id.to_string()), "test", payload, Utc::now());
    outbox.append(&[starting], None).await.expect("append");

    let confirmation = timeout(WAIT, confirmations.next()).await.expect("in time").expect("open");
    assert_eq!(confirmation.name, names::FLOW_STARTED, "{confirmation:?}");
    assert_eq!(confirmation.flow_id(), Some(id));
    assert!(orchestrator.triggers().get(id).is_some());
    cancel.cancel();
    timeout(WAIT, consumer).await.expect("consumer stops").expect("consumer task");
    timeout(WAIT, relay).await.expect("relay stops").expect("relay task");
}
