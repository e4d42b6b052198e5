//! `Outbox` contracts. Each needs an outbox no other test uses at the same time.

use super::fixtures::{drain, event, events_of, marker};
use flow_domain::error::PortError;
use flow_domain::event::{Consumed, Event};
use flow_domain::ids::EventId;
use flow_domain::ports::{Outbox, StoredEvent};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, timeout};

fn seqs(stored: &[StoredEvent]) -> Vec<i64> {
    stored.iter().map(|s| s.seq).collect()
}

/// Appended events are claimed in append order with increasing positions; claimed events are
/// not claimed again; published events are gone; `pending_count` counts what is left.
pub async fn append_claim_publish(outbox: Arc<dyn Outbox>) {
    drain(outbox.as_ref()).await;
    assert_eq!(outbox.pending_count().await.expect("pending"), 0, "drained");
    let mut keyless = event();
    keyless.key = None;
    let events = [event(), keyless, event()];
    outbox.append(&events[..2], None).await.expect("append");
    outbox.append(&events[2..], None).await.expect("append");
    outbox.append(&[], None).await.expect("append nothing");
    assert_eq!(outbox.pending_count().await.expect("pending"), 3, "three pending");

    let first = outbox.claim("relay#1", 2).await.expect("claim");
    assert_eq!(events_of(&first), events[..2].to_vec(), "claim returns the oldest events, in order");
    assert!(first[0].seq < first[1].seq, "positions increase");
    let rest = outbox.claim("relay#1", 10).await.expect("claim");
    assert_eq!(events_of(&rest), events[2..].to_vec(), "claimed events are not handed out again");
    assert!(first[1].seq < rest[0].seq, "positions increase across appends");
    assert!(outbox.claim("relay#1", 10).await.expect("claim").is_empty(), "everything is claimed");
    assert!(outbox.claim("relay#1", 0).await.expect("claim").is_empty(), "limit 0");

    outbox.mark_published(&seqs(&first)).await.expect("mark published");
    assert_eq!(outbox.pending_count().await.expect("pending"), 1, "published events are gone");
    outbox.mark_published(&seqs(&rest)).await.expect("mark published");
    outbox.mark_published(&[]).await.expect("mark nothing");
    assert_eq!(outbox.pending_count().await.expect("pending"), 0, "all published");
    assert!(
        outbox.claim("relay#1", 10).await.expect("claim").is_empty(),
        "published events are never claimed"
    );
}

/// `mark_published_then_claim` marks the given events published and claims the next ones, in
/// order, as `mark_published` then `claim` would; with nothing to mark it claims; marking
/// events again is harmless.
pub async fn mark_published_then_claim(outbox: Arc<dyn Outbox>) {
    drain(outbox.as_ref()).await;
    let events: Vec<Event> = (0..5).map(|_| event()).collect();
    outbox.append(&events, None).await.expect("append");

    let first = outbox.mark_published_then_claim(&[], "relay#1", 2).await.expect("claim only");
    assert_eq!(events_of(&first), events[..2].to_vec(), "nothing to mark: the oldest two");
    let second = outbox.mark_published_then_claim(&seqs(&first), "relay#1", 2).await.expect("mark and claim");
    assert_eq!(events_of(&second), events[2..4].to_vec(), "the next two, in order");
    assert_eq!(outbox.pending_count().await.expect("pending"), 3, "the first two are gone");
    let again =
        outbox.mark_published_then_claim(&seqs(&first), "relay#1", 10).await.expect("mark again and claim");
    assert_eq!(events_of(&again), events[4..].to_vec(), "marking again is harmless; the last one");
    let none = outbox.mark_published_then_claim(&seqs(&second), "relay#1", 10).await.expect("mark and claim");
    assert!(none.is_empty(), "everything is claimed: {none:?}");
    assert_eq!(outbox.pending_count().await.expect("pending"), 1, "only the last claim is left");
    let nothing =
        outbox.mark_published_then_claim(&seqs(&again), "relay#1", 0).await.expect("mark, claim none");
    assert!(nothing.is_empty(), "limit 0");
    assert_eq!(outbox.pending_count().await.expect("pending"), 0, "all published");
}

/// Two relays claiming at the same time never receive the same event.
pub async fn concurrent_claims_are_disjoint(outbox: Arc<dyn Outbox>) {
    drain(outbox.as_ref()).await;
    let events: Vec<Event> = (0..40).map(|_| event()).collect();
    for chunk in events.chunks(7) {
        outbox.append(chunk, None).await.expect("append");
    }
    let (a, b) = tokio::join!(outbox.claim("relay#1", 25), outbox.claim("relay#1", 25));
    let (a, b) = (a.expect("claim a"), b.expect("claim b"));
    for claimed in [&a, &b] {
        assert!(claimed.windows(2).all(|w| w[0].seq < w[1].seq), "each claim is in order");
    }
    let ids_a: HashSet<EventId> =
        a.iter().map(|s| s.event.as_ref().map(|e| e.id).expect("readable")).collect();
    assert!(
        b.iter().all(|s| !ids_a.contains(&s.event.as_ref().map(|e| e.id).expect("readable"))),
        "no event is claimed twice"
    );
    assert_eq!(a.len() + b.len(), 40, "together they claim every event");
    let mut claimed: Vec<StoredEvent> = a.into_iter().chain(b).collect();
    claimed.sort_by_key(|s| s.seq);
    assert_eq!(events_of(&claimed), events, "in append order");
    outbox.mark_published(&seqs(&claimed)).await.expect("mark published");
    assert_eq!(outbox.pending_count().await.expect("pending"), 0);
}

/// `append` with `consumed` records it; the same `consumed` again is `AlreadyProcessed` and
/// appends nothing; another consumer of the same event is independent.
pub async fn append_consumed_once(outbox: Arc<dyn Outbox>) {
    drain(outbox.as_ref()).await;
    let consumed = Consumed { consumer: format!("contract-{}", marker()), event_id: EventId::new() };
    let first = event();
    outbox.append(std::slice::from_ref(&first), Some(&consumed)).await.expect("first delivery");
    let result = outbox.append(&[event()], Some(&consumed)).await;
    assert!(matches!(result, Err(PortError::AlreadyProcessed)), "redelivery: {result:?}");
    assert_eq!(events_of(&drain(outbox.as_ref()).await), vec![first], "redelivery appends nothing");
    outbox.append(&[], Some(&consumed)).await.expect_err("still processed, even with no events");
    let other = Consumed { consumer: format!("{}-other", consumed.consumer), ..consumed.clone() };
    outbox.append(&[event()], Some(&other)).await.expect("another consumer");
    assert_eq!(drain(outbox.as_ref()).await.len(), 1);
}

/// `wait_for_new` returns after `max_wait` when nothing happens, at once when events were
/// appended since the last wait, and as soon as events are appended while it waits.
pub async fn wait_for_new(outbox: Arc<dyn Outbox>) {
    let long = Duration::from_secs(30);
    let deadline = Duration::from_secs(10);
    drain(outbox.as_ref()).await;
    // Consume a wake-up left by earlier appends, if any.
    outbox.wait_for_new(Duration::from_millis(10)).await;
    timeout(deadline, outbox.wait_for_new(Duration::from_millis(50))).await.expect("returns after max_wait");

    outbox.append(&[event()], None).await.expect("append");
    let started = Instant::now();
    timeout(deadline, outbox.wait_for_new(long)).await.expect("an earlier append is not lost");
    assert!(started.elapsed() < deadline);

    let waiter = {
        let outbox = outbox.clone();
        tokio::spawn(async move { outbox.wait_for_new(long).await })
    };
    outbox.append(&[event()], None).await.expect("append");
    timeout(deadline, waiter).await.expect("the waiter wakes on append").expect("waiter task");
    drain(outbox.as_ref()).await;
}
