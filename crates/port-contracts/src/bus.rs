//! Event-bus contract: [`EventPublisher`] + [`EventSubscriber`].
//!
//! Every function takes a publisher and a subscriber of the same bus and panics, naming the
//! rule, when the bus breaks it. The suite can run against a shared broker: each run uses
//! fresh consumer-group names and marks its events with a unique run id in the payload, and
//! events of other runs are acknowledged and skipped. Waits are bounded by [`WAIT`]; nothing
//! sleeps to synchronise.
//!
//! Events of a group are only guaranteed from the moment the group subscribed, so every
//! function subscribes before it publishes.

use chrono::Utc;
use flow_domain::event::{Event, names};
use flow_domain::ports::{EventPublisher, EventStream, EventSubscriber};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::timeout;
use uuid::Uuid;

/// How long any single wait for an event may take before the contract fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// A name no other test run uses: `prefix-<uuid>` (consumer groups, keys, run ids).
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::new_v4())
}

/// Runs every bus contract in turn.
pub async fn run_all(publisher: Arc<dyn EventPublisher>, subscriber: Arc<dyn EventSubscriber>) {
    delivers_to_subscribed_group(publisher.clone(), subscriber.clone()).await;
    delivers_only_subscribed_names(publisher.clone(), subscriber.clone()).await;
    every_group_gets_each_event(publisher.clone(), subscriber.clone()).await;
    one_member_per_event_within_group(publisher.clone(), subscriber.clone()).await;
    preserves_per_key_order(publisher.clone(), subscriber.clone()).await;
    ack_works(publisher, subscriber).await;
}

/// A published event reaches a group subscribed to its name, with its id, name, source and
/// payload intact.
pub async fn delivers_to_subscribed_group(
    publisher: Arc<dyn EventPublisher>,
    subscriber: Arc<dyn EventSubscriber>,
) {
    let run = unique_name("run");
    let mut stream = subscribe(&*subscriber, &unique_name("group"), &[names::FLOW_STARTED]).await;
    let sent = run_event(names::FLOW_STARTED, &run, &unique_name("key"), 0);
    publish(&*publisher, std::slice::from_ref(&sent)).await;
    let got = next_of_run(&mut stream, &run).await;
    assert_eq!(got.id, sent.id, "the delivered event keeps its id");
    assert_eq!(got.name, sent.name, "the delivered event keeps its name");
    assert_eq!(got.source, sent.source, "the delivered event keeps its source");
    assert_eq!(got.payload, sent.payload, "the delivered event keeps its payload");
    ack(&mut stream, &got).await;
}

/// A group receives only the names it subscribed to.
pub async fn delivers_only_subscribed_names(
    publisher: Arc<dyn EventPublisher>,
    subscriber: Arc<dyn EventSubscriber>,
) {
    let run = unique_name("run");
    let mut stream = subscribe(&*subscriber, &unique_name("group"), &[names::FLOW_STOPPED]).await;
    let key = unique_name("key");
    let other = run_event(names::FLOW_STARTED, &run, &key, 0);
    let wanted = run_event(names::FLOW_STOPPED, &run, &key, 1);
    publish(&*publisher, &[other, wanted.clone()]).await;
    let got = next_of_run(&mut stream, &run).await;
    assert_eq!(got.name, names::FLOW_STOPPED, "only subscribed names are delivered");
    assert_eq!(got.id, wanted.id, "the subscribed event is delivered");
    ack(&mut stream, &got).await;
}

/// Every group subscribed to a name receives each event of that name.
pub async fn every_group_gets_each_event(
    publisher: Arc<dyn EventPublisher>,
    subscriber: Arc<dyn EventSubscriber>,
) {
    let run = unique_name("run");
    let mut first = subscribe(&*subscriber, &unique_name("group-a"), &[names::FLOW_STARTED]).await;
    let mut second = subscribe(&*subscriber, &unique_name("group-b"), &[names::FLOW_STARTED]).await;
    let events: Vec<Event> =
        (0..5).map(|i| run_event(names::FLOW_STARTED, &run, &unique_name("key"), i)).collect();
    publish(&*publisher, &events).await;
    let expected: HashSet<Uuid> = events.iter().map(|e| e.id.0).collect();
    for (label, stream) in [("first", &mut first), ("second", &mut second)] {
        let mut seen = HashSet::new();
        while seen.len() < expected.len() {
            let got = next_of_run(stream, &run).await;
            ack(stream, &got).await;
            seen.insert(got.id.0);
        }
        assert_eq!(seen, expected, "the {label} group receives every event");
    }
}

/// Within one group, each event goes to one member only.
pub async fn one_member_per_event_within_group(
    publisher: Arc<dyn EventPublisher>,
    subscriber: Arc<dyn EventSubscriber>,
) {
    let run = unique_name("run");
    let group = unique_name("group");
    let members = vec![
        subscribe(&*subscriber, &group, &[names::FLOW_STARTED]).await,
        subscribe(&*subscriber, &group, &[names::FLOW_STARTED]).await,
    ];
    let events: Vec<Event> =
        (0..20).map(|i| run_event(names::FLOW_STARTED, &run, &unique_name("key"), i)).collect();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let readers: Vec<_> =
        members.into_iter().map(|stream| read_run_into(stream, run.clone(), tx.clone())).collect();
    publish(&*publisher, &events).await;
    let expected: HashSet<Uuid> = events.iter().map(|e| e.id.0).collect();
    let mut seen = HashSet::new();
    while seen.len() < expected.len() {
        let got =
            timeout(WAIT, rx.recv()).await.expect("every event arrives in time").expect("readers alive");
        assert!(seen.insert(got.id.0), "an event is delivered to one member of a group only");
    }
    assert_eq!(seen, expected, "the group receives every event");
    // Anything already forwarded beyond the expected set is a second delivery.
    while let Ok(extra) = rx.try_recv() {
        assert!(!seen.contains(&extra.id.0), "an event is delivered to one member of a group only");
    }
    for reader in readers {
        reader.abort();
    }
}

/// 100 events with the same key arrive in publication order, whether published one by one or
/// in batches.
pub async fn preserves_per_key_order(
    publisher: Arc<dyn EventPublisher>,
    subscriber: Arc<dyn EventSubscriber>,
) {
    let run = unique_name("run");
    let key = unique_name("key");
    let mut stream = subscribe(&*subscriber, &unique_name("group"), &[names::FLOW_STARTED]).await;
    let events: Vec<Event> = (0..100).map(|i| run_event(names::FLOW_STARTED, &run, &key, i)).collect();
    // Batches of growing size: 1, 2, 3, ... so both single and batched publishes are covered.
    let mut rest = events.as_slice();
    let mut size = 1;
    while !rest.is_empty() {
        let (batch, tail) = rest.split_at(size.min(rest.len()));
        publish(&*publisher, batch).await;
        rest = tail;
        size += 1;
    }
    let mut order = Vec::new();
    while order.len() < events.len() {
        let got = next_of_run(&mut stream, &run).await;
        ack(&mut stream, &got).await;
        order.push(seq_of(&got));
    }
    assert_eq!(order, (0..100).collect::<Vec<u64>>(), "events with one key arrive in publication order");
}

/// Acknowledging delivered events succeeds, is harmless to repeat, and delivery continues.
pub async fn ack_works(publisher: Arc<dyn EventPublisher>, subscriber: Arc<dyn EventSubscriber>) {
    let run = unique_name("run");
    let key = unique_name("key");
    let mut stream = subscribe(&*subscriber, &unique_name("group"), &[names::FLOW_STARTED]).await;
    let events: Vec<Event> = (0..2).map(|i| run_event(names::FLOW_STARTED, &run, &key, i)).collect();
    publish(&*publisher, &events).await;
    let first = next_of_run(&mut stream, &run).await;
    assert_eq!(first.id, events[0].id, "the first event comes first");
    ack(&mut stream, &first).await;
    let second = next_of_run(&mut stream, &run).await;
    assert_eq!(second.id, events[1].id, "delivery continues after an ack");
    ack(&mut stream, &second).await;
}

/// An event of this run: `{contractRun, seq}` payload, keyed by `key`.
fn run_event(name: &str, run: &str, key: &str, seq: u64) -> Event {
    Event::new(
        name,
        Some(key.to_owned()),
        "port-contracts",
        json!({ "contractRun": run, "seq": seq }),
        Utc::now(),
    )
}

fn seq_of(event: &Event) -> u64 {
    event.payload.get("seq").and_then(serde_json::Value::as_u64).unwrap_or(u64::MAX)
}

fn is_of_run(event: &Event, run: &str) -> bool {
    event.payload.get("contractRun").and_then(serde_json::Value::as_str) == Some(run)
}

async fn subscribe(
    subscriber: &dyn EventSubscriber,
    group: &str,
    names: &[&'static str],
) -> Box<dyn EventStream> {
    match timeout(WAIT, subscriber.subscribe(group, names)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => panic!("subscribe must succeed on a healthy bus: {err}"),
        Err(_) => panic!("subscribe must finish within {WAIT:?}"),
    }
}

async fn publish(publisher: &dyn EventPublisher, events: &[Event]) {
    match timeout(WAIT, publisher.publish(events)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => panic!("publish must succeed on a healthy bus: {err}"),
        Err(_) => panic!("publish must finish within {WAIT:?}"),
    }
}

async fn ack(stream: &mut Box<dyn EventStream>, event: &Event) {
    if let Err(err) = stream.ack(event).await {
        panic!("ack must succeed on a healthy bus: {err}");
    }
    if let Err(err) = stream.ack(event).await {
        panic!("a repeated ack must be harmless: {err}");
    }
}

/// The next event of `run`, acknowledging and skipping events of other runs. Every event
/// delivered must have a subscribed name; callers check which one.
async fn next_of_run(stream: &mut Box<dyn EventStream>, run: &str) -> Event {
    loop {
        let event = match timeout(WAIT, stream.next()).await {
            Ok(Some(event)) => event,
            Ok(None) => panic!("the stream must stay open while the bus runs"),
            Err(_) => panic!("a published event must be delivered within {WAIT:?}"),
        };
        if is_of_run(&event, run) {
            return event;
        }
        ack(stream, &event).await;
    }
}

/// Forwards the events of `run` from `stream` into `tx`, acknowledging each, until aborted.
fn read_run_into(
    mut stream: Box<dyn EventStream>,
    run: String,
    tx: mpsc::UnboundedSender<Event>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = stream.next().await {
            if stream.ack(&event).await.is_err() {
                return;
            }
            if is_of_run(&event, &run) && tx.send(event).is_err() {
                return;
            }
        }
    })
}
