//! The event-bus contract suite of `port-contracts`, run against the in-process bus.

use adapters_inprocess::InProcessBus;
use flow_domain::ports::{EventPublisher, EventSubscriber};
use port_contracts::bus;
use std::sync::Arc;

fn ports() -> (Arc<dyn EventPublisher>, Arc<dyn EventSubscriber>) {
    let bus = InProcessBus::new();
    (Arc::new(bus.clone()), Arc::new(bus))
}

#[tokio::test]
async fn delivers_to_subscribed_group() {
    let (publisher, subscriber) = ports();
    bus::delivers_to_subscribed_group(publisher, subscriber).await;
}

#[tokio::test]
async fn delivers_only_subscribed_names() {
    let (publisher, subscriber) = ports();
    bus::delivers_only_subscribed_names(publisher, subscriber).await;
}

#[tokio::test]
async fn every_group_gets_each_event() {
    let (publisher, subscriber) = ports();
    bus::every_group_gets_each_event(publisher, subscriber).await;
}

#[tokio::test]
async fn one_member_per_event_within_group() {
    let (publisher, subscriber) = ports();
    bus::one_member_per_event_within_group(publisher, subscriber).await;
}

#[tokio::test]
async fn preserves_per_key_order() {
    let (publisher, subscriber) = ports();
    bus::preserves_per_key_order(publisher, subscriber).await;
}

#[tokio::test]
async fn ack_works() {
    let (publisher, subscriber) = ports();
    bus::ack_works(publisher, subscriber).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_on_one_shared_bus() {
    let (publisher, subscriber) = ports();
    bus::run_all(publisher, subscriber).await;
}
