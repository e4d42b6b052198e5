//! The event-bus contract suite and the Kafka specifics (per-key order across partitions,
//! redelivery of un-acked events, partition split within a group, broker down), run against
//! the real broker at `KAFKA_BOOTSTRAP` (default `127.0.0.1:9092`). Each test uses its own
//! topic prefix, so runs never see each other's events.

use adapters_kafka::{KafkaBus, KafkaConfig, KafkaPublisher};
use chrono::Utc;
use flow_domain::error::PortError;
use flow_domain::event::{Event, names};
use flow_domain::ports::{EventPublisher, EventStream, EventSubscriber, Health};
use port_contracts::bus::{self, WAIT, unique_name};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::timeout;

fn config() -> KafkaConfig {
    let brokers = std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let mut config = KafkaConfig::new(brokers);
    config.topic_prefix = unique_name("fmtest");
    config
}

async fn connect() -> KafkaBus {
    KafkaBus::connect(config()).await.expect("connect to the test broker")
}

fn event(key: &str, seq: u64) -> Event {
    Event::new(names::FLOW_STARTED, Some(key.to_owned()), "test", json!({ "seq": seq }), Utc::now())
}

fn seq(event: &Event) -> u64 {
    event.payload["seq"].as_u64().expect("seq")
}

async fn next(stream: &mut Box<dyn EventStream>) -> Event {
    timeout(WAIT, stream.next()).await.expect("an event in time").expect("an open stream")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_contract() {
    let bus = connect().await;
    bus::run_all(Arc::new(bus.clone()), Arc::new(bus.clone())).await;
    bus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_passes_on_a_running_broker() {
    let bus = connect().await;
    bus.check().await.expect("healthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_order_holds_across_partitions() {
    let bus = connect().await;
    let mut stream = bus.subscribe("order", &[names::FLOW_STARTED]).await.expect("subscribe");
    let keys: Vec<String> = (0..8).map(|i| format!("flow-{i}")).collect();
    let events: Vec<Event> = (0..200).map(|i| event(&keys[i % keys.len()], i as u64)).collect();
    bus.publish(&events).await.expect("publish");
    let mut per_key: HashMap<String, Vec<u64>> = HashMap::new();
    for _ in 0..events.len() {
        let got = next(&mut stream).await;
        stream.ack(&got).await.expect("ack");
        let key = keys[(seq(&got) as usize) % keys.len()].clone();
        per_key.entry(key).or_default().push(seq(&got));
    }
    for (key, seqs) in per_key {
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        assert_eq!(seqs, sorted, "events of {key} arrive in publication order");
        assert_eq!(seqs.len(), 25, "every event of {key} arrives once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_event_is_redelivered_to_a_new_member() {
    let bus = connect().await;
    let mut first = bus.subscribe("redeliver", &[names::FLOW_STARTED]).await.expect("subscribe");
    let events = [event("k", 0), event("k", 1)];
    bus.publish(&events).await.expect("publish");
    let acked = next(&mut first).await;
    assert_eq!(acked.id, events[0].id);
    first.ack(&acked).await.expect("ack");
    let unacked = next(&mut first).await;
    assert_eq!(unacked.id, events[1].id);
    drop(first); // leaves the group, commits the first event's offset only
    let mut second = bus.subscribe("redeliver", &[names::FLOW_STARTED]).await.expect("subscribe");
    let again = next(&mut second).await;
    assert_eq!(again.id, events[1].id, "the un-acked event comes again, the acked one does not");
    second.ack(&again).await.expect("ack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_split_partitions_and_handle_each_event_once() {
    let bus = connect().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut readers = Vec::new();
    for member in 0..2 {
        let mut stream = bus.subscribe("split", &[names::FLOW_STARTED]).await.expect("subscribe");
        let tx = tx.clone();
        readers.push(tokio::spawn(async move {
            while let Some(got) = stream.next().await {
                stream.ack(&got).await.expect("ack");
                if tx.send((member, got.id)).is_err() {
                    break;
                }
            }
        }));
    }
    // Publish in rounds until both members have handled events (the second join rebalances).
    let mut published = HashSet::new();
    let mut seen: HashMap<_, usize> = HashMap::new();
    let mut members = HashSet::new();
    let deadline = Instant::now() + WAIT * 2;
    let mut round = 0;
    while members.len() < 2 {
        assert!(Instant::now() < deadline, "both members receive events within {:?}", WAIT * 2);
        let batch: Vec<Event> = (0..24).map(|i| event(&format!("key-{round}-{i}"), i)).collect();
        published.extend(batch.iter().map(|e| e.id));
        bus.publish(&batch).await.expect("publish");
        while seen.len() < published.len() {
            let (member, id) = timeout(WAIT, rx.recv()).await.expect("in time").expect("readers alive");
            members.insert(member);
            *seen.entry(id).or_default() += 1;
        }
        round += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "each event is handled once within the group");
    bus.shutdown().await;
    for reader in readers {
        timeout(WAIT, reader).await.expect("reader ends at shutdown").expect("reader task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_an_unreachable_broker_answers_unavailable_quickly() {
    let mut config = KafkaConfig::new("127.0.0.1:1");
    config.timeout = Duration::from_secs(2);
    let publisher = KafkaPublisher::new(&config).expect("producer");
    let started = Instant::now();
    let result =
        timeout(Duration::from_secs(10), publisher.publish(&[event("k", 0)])).await.expect("answers");
    assert!(matches!(result, Err(PortError::Unavailable(_))), "Unavailable, got {result:?}");
    assert!(started.elapsed() < Duration::from_secs(8), "answers within the timeout");
}
