//! A consumer group that gets stuck on the test broker, and what the bus does about it: the
//! member reports no assignment, is judged stalled past the limit, and moves the group to a new
//! generation where it settles and receives what was published meanwhile, and only that; a
//! member that starts later joins the new generation (docs/operations.md, "A consumer group
//! that receives nothing").
//!
//! The sequence: member A joins alone (it leads the group), member B joins, and A leaves while
//! the rebalance B started is still open. tansu 0.6.0 keeps A as the leader of the group after
//! it left, so no member can complete the rebalance: every later member loops between
//! JoinGroup and a SyncGroup answered "rebalance in progress", with no assignment, for as long
//! as the broker runs. Runs against the broker at `KAFKA_BOOTSTRAP` with a fresh topic prefix.

use adapters_kafka::{KafkaBus, KafkaConfig};
use chrono::Utc;
use flow_domain::event::{Event, names};
use flow_domain::ports::{BusMonitor, EventPublisher, EventStream, EventSubscriber, MemberStatus, Stall};
use port_contracts::bus::unique_name;
use serde_json::json;
use std::time::{Duration, Instant};

fn config(prefix: &str) -> KafkaConfig {
    let brokers = std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let mut config = KafkaConfig::new(brokers);
    config.topic_prefix = prefix.into();
    // tansu holds every JoinGroup about 5 s, so a member needs that long to settle at best.
    config.stall_after = Duration::from_secs(8);
    config
}

/// Polls `stream` in the background, acknowledging every event (a member is only served while
/// its stream is polled).
fn drive(mut stream: Box<dyn EventStream>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = stream.next().await {
            stream.ack(&event).await.expect("ack");
        }
    })
}

fn events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| Event::new(names::FLOW_STARTING, Some(format!("flow-{i}")), "test", json!({}), Utc::now()))
        .collect()
}

/// The member of `group` in `bus`, once `done` holds for it (at most `within`).
async fn wait_for(
    bus: &KafkaBus,
    within: Duration,
    what: &str,
    done: impl Fn(&MemberStatus) -> bool,
) -> MemberStatus {
    let deadline = Instant::now() + within;
    loop {
        let members = bus.members();
        if let Some(member) = members.iter().find(|m| done(m)) {
            return member.clone();
        }
        assert!(Instant::now() < deadline, "{what} within {within:?}: {members:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_group_is_reported_and_moves_to_a_new_generation_without_losing_events() {
    let prefix = unique_name("fmstall");
    let (a, b) = (
        KafkaBus::connect(config(&prefix)).await.expect("connect"),
        KafkaBus::connect(config(&prefix)).await.expect("connect"),
    );
    let leader = drive(a.subscribe("engine", &[names::FLOW_STARTING]).await.expect("subscribe"));
    a.publish(&events(3)).await.expect("publish");
    let settled = wait_for(&a, Duration::from_secs(30), "the first member settles and takes 3 events", |m| {
        m.received == 3
    })
    .await;
    assert_eq!(settled.group, format!("{prefix}.engine"));

    // B joins; while that rebalance is open, A leaves the group (committing what it took).
    let _follower = drive(b.subscribe("engine", &[names::FLOW_STARTING]).await.expect("subscribe"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    leader.abort();
    a.shutdown().await;
    drop(a);
    b.publish(&events(2)).await.expect("publish");

    // B gets no assignment: reported as a stall, named, past the limit...
    let stalled =
        wait_for(&b, Duration::from_secs(40), "the member is judged stalled", |m| m.stalled_too_long).await;
    assert!(!stalled.settled);
    assert_eq!(stalled.assigned_partitions, 0);
    assert!(matches!(stalled.stall, Some((Stall::NoAssignment, _))), "{stalled:?}");
    let reason = b.stall_reason().expect("a reason");
    assert!(
        reason.starts_with(&format!("consumer group {prefix}.engine has no assignment since ")),
        "{reason}"
    );

    // ... then settles in the group's next generation and takes the 2 events published after A
    // left, not the 3 A had taken.
    let moved = wait_for(&b, Duration::from_secs(40), "the member settles in generation 1", |m| {
        m.settled && m.received == 2
    })
    .await;
    assert_eq!((moved.group.clone(), moved.replaced), (format!("{prefix}.engine.g1"), 1), "{moved:?}");
    assert_eq!(b.stall_reason(), None);

    // A member that starts now joins the new generation directly.
    let c = KafkaBus::connect(config(&prefix)).await.expect("connect");
    let _late = drive(c.subscribe("engine", &[names::FLOW_STARTING]).await.expect("subscribe"));
    assert_eq!(c.members()[0].group, format!("{prefix}.engine.g1"));
    b.shutdown().await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_member_reports_its_assignment_and_no_stall() {
    let bus = KafkaBus::connect(config(&unique_name("fmhealthy"))).await.expect("connect");
    let _member = drive(bus.subscribe("flows", &[names::FLOW_STARTED]).await.expect("subscribe"));
    let events: Vec<Event> = (0..3)
        .map(|n| Event::new(names::FLOW_STARTED, Some(format!("flow-{n}")), "test", json!({}), Utc::now()))
        .collect();
    bus.publish(&events).await.expect("publish");
    let member = wait_for(&bus, Duration::from_secs(20), "the member settles and takes every event", |m| {
        m.settled && m.assigned_partitions > 0 && m.received == 3 && m.lag == Some(0)
    })
    .await;
    assert_eq!(member.stall, None);
    assert!(
        !member.stalled_too_long && member.rebalances >= 1 && member.last_progress.is_some(),
        "{member:?}"
    );
    assert_eq!(bus.stall_reason(), None);
    bus.shutdown().await;
}
