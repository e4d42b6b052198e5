//! Unit tests of the in-process specifics: key routing across members, redelivery when a member
//! leaves, back-pressure and shutdown. The port contract itself runs in `tests/contract.rs`.

use crate::InProcessBus;
use chrono::Utc;
use flow_domain::event::{Event, names};
use flow_domain::ports::{EventPublisher, EventStream, EventSubscriber, Health};
use serde_json::json;
use std::time::Duration;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(30);

fn event(key: Option<&str>, seq: u32) -> Event {
    Event::new(names::FLOW_STARTED, key.map(str::to_owned), "test", json!({ "seq": seq }), Utc::now())
}

async fn next(stream: &mut Box<dyn EventStream>) -> Event {
    let event = timeout(WAIT, stream.next()).await.expect("an event in time").expect("an open stream");
    stream.ack(&event).await.expect("ack");
    event
}

fn seq(event: &Event) -> u64 {
    event.payload["seq"].as_u64().expect("seq")
}

#[tokio::test]
async fn same_key_goes_to_one_member_in_order() {
    let bus = InProcessBus::new();
    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(bus.subscribe("g", &[names::FLOW_STARTED]).await.expect("subscribe"));
    }
    let events: Vec<Event> = (0..50).map(|i| event(Some("one-key"), i)).collect();
    bus.publish(&events).await.expect("publish");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let readers: Vec<_> = members
        .into_iter()
        .enumerate()
        .map(|(index, mut stream)| {
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(event) = stream.next().await {
                    stream.ack(&event).await.expect("ack");
                    if tx.send((index, seq(&event))).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    let mut received = Vec::new();
    while received.len() < events.len() {
        received.push(timeout(WAIT, rx.recv()).await.expect("in time").expect("readers alive"));
    }
    let member = received[0].0;
    assert!(received.iter().all(|(m, _)| *m == member), "one member for one key");
    assert_eq!(received.iter().map(|(_, s)| *s).collect::<Vec<_>>(), (0..50).collect::<Vec<u64>>());
    bus.close();
    for reader in readers {
        timeout(WAIT, reader).await.expect("reader ends").expect("reader task");
    }
}

#[tokio::test]
async fn unkeyed_events_are_spread_over_members() {
    let bus = InProcessBus::new();
    let mut a = bus.subscribe("g", &[names::FLOW_STARTED]).await.expect("subscribe");
    let mut b = bus.subscribe("g", &[names::FLOW_STARTED]).await.expect("subscribe");
    bus.publish(&[event(None, 0), event(None, 1)]).await.expect("publish");
    let (x, y) = (next(&mut a).await, next(&mut b).await);
    let mut seqs = vec![seq(&x), seq(&y)];
    seqs.sort_unstable();
    assert_eq!(seqs, vec![0, 1]);
}

#[tokio::test]
async fn events_before_subscription_are_not_retained() {
    let bus = InProcessBus::new();
    bus.publish(&[event(Some("k"), 0)]).await.expect("publish without subscribers");
    let mut stream = bus.subscribe("g", &[names::FLOW_STARTED]).await.expect("subscribe");
    bus.publish(&[event(Some("k"), 1)]).await.expect("publish");
    assert_eq!(seq(&next(&mut stream).await), 1);
}

#[tokio::test]
async fn a_departed_member_hands_its_events_to_the_group() {
    let bus = InProcessBus::new();
    let mut stays = bus.subscribe("g", &[names::FLOW_STARTED]).await.expect("subscribe");
    let mut leaves = bus.subscribe("g", &[names::FLOW_STARTED]).await.expect("subscribe");
    let events: Vec<Event> = (0..20).map(|i| event(Some(&format!("key-{i}")), i)).collect();
    bus.publish(&events).await.expect("publish");
    // Take one event without acknowledging it, then leave: it must be redelivered too.
    let unacked = timeout(WAIT, leaves.next()).await.expect("in time").expect("open");
    drop(leaves);
    let mut seen = Vec::new();
    while seen.len() < events.len() {
        seen.push(seq(&next(&mut stays).await));
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..20).collect::<Vec<u64>>());
    assert!(seen.contains(&seq(&unacked)));
}

#[tokio::test]
async fn a_full_queue_makes_publish_wait() {
    let bus = InProcessBus::with_capacity(1);
    let mut stream = bus.subscribe("g", &[names::FLOW_STARTED]).await.expect("subscribe");
    let publisher = bus.clone();
    let mut publish =
        tokio::spawn(async move { publisher.publish(&[event(Some("k"), 0), event(Some("k"), 1)]).await });
    assert!(timeout(Duration::from_millis(100), &mut publish).await.is_err(), "publish waits");
    assert_eq!(seq(&next(&mut stream).await), 0);
    timeout(WAIT, publish).await.expect("in time").expect("task").expect("publish");
    assert_eq!(seq(&next(&mut stream).await), 1);
}

#[tokio::test]
async fn close_ends_streams_and_refuses_work() {
    let bus = InProcessBus::new();
    let mut stream = bus.subscribe("g", &[names::FLOW_STARTED]).await.expect("subscribe");
    assert_eq!(bus.check().await, Ok(()));
    let waiting = tokio::spawn(async move { stream.next().await });
    bus.close();
    assert!(bus.is_closed());
    assert_eq!(timeout(WAIT, waiting).await.expect("in time").expect("task"), None);
    assert!(bus.publish(&[event(None, 0)]).await.is_err());
    assert!(bus.subscribe("g", &[names::FLOW_STARTED]).await.is_err());
    assert!(bus.check().await.is_err());
}
