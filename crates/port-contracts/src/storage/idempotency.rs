//! `ExecutionRepository` contracts for idempotent inserts (SPEC §6): a key repeated within the
//! window returns the first execution and writes nothing, an older holder gives its key up, keys
//! are per flow, and of two concurrent calls with one key exactly one inserts.
//!
//! Every execution belongs to a fresh flow id, so these contracts may share a database; the
//! ones that check the outbox need an outbox no other test uses at the same time.

use super::executions::execution;
use super::fixtures::{drain, events_of, now};
use chrono::Duration;
use flow_domain::event::Event;
use flow_domain::ids::FlowId;
use flow_domain::model::{Execution, ExecutionStatus, Owner};
use flow_domain::ports::{ExecutionRepository, Outbox};
use std::sync::Arc;
use uuid::Uuid;

/// A queued execution of `flow` holding `key`, created `age` ago.
fn keyed(flow: FlowId, key: &str, age: Duration) -> Execution {
    let mut e = execution(flow, None, vec![Owner::user(Uuid::now_v7())], now() - age);
    e.idempotency_key = Some(key.into());
    e
}

fn execute_event(e: &Execution) -> Event {
    Event::flow_execute(e.flow_id, e.id, now())
}

/// The first call with a key inserts (returning `None`, appending its events); a repeat within
/// the window returns the first execution as stored, inserts nothing and appends nothing; a
/// holder created exactly at the window start is still within it.
pub async fn insert_idempotent_repeat_within_window(
    executions: Arc<dyn ExecutionRepository>,
    outbox: Arc<dyn Outbox>,
) {
    let flow = FlowId::new();
    let window = Duration::hours(24);
    let first = keyed(flow, "key-1", Duration::zero());
    drain(outbox.as_ref()).await;
    let events = vec![execute_event(&first)];
    let got = executions.insert_idempotent(&first, &events, now() - window).await.expect("first call");
    assert_eq!(got, None, "the first call with a key inserts");
    assert_eq!(executions.get(first.id).await.expect("get"), Some(first.clone()), "stored with its key");
    assert_eq!(events_of(&drain(outbox.as_ref()).await), events, "the first call appends its events");

    let repeat = keyed(flow, "key-1", Duration::zero());
    let got = executions.insert_idempotent(&repeat, &[execute_event(&repeat)], now() - window).await;
    assert_eq!(got.expect("repeat"), Some(first.clone()), "a repeat returns the first execution");
    assert_eq!(executions.get(repeat.id).await.expect("get"), None, "a repeat inserts nothing");
    assert!(drain(outbox.as_ref()).await.is_empty(), "a repeat appends no event");

    let at_start = keyed(flow, "key-1", Duration::zero());
    let got = executions.insert_idempotent(&at_start, &[], first.created_at).await.expect("at window start");
    assert_eq!(got, Some(first), "a holder created exactly at the window start is within the window");
    assert_eq!(executions.get(at_start.id).await.expect("get"), None, "nothing inserted");
}

/// A key held by an execution created before the window start is taken over: the new
/// execution is inserted and holds the key (repeats now return it), the old one keeps its
/// record without the key and can still be saved.
pub async fn insert_idempotent_takes_over_an_old_key(executions: Arc<dyn ExecutionRepository>) {
    let flow = FlowId::new();
    let old = keyed(flow, "key-old", Duration::hours(48));
    let got = executions.insert_idempotent(&old, &[], now() - Duration::hours(72)).await;
    assert_eq!(got.expect("old call"), None, "inserted");

    let window_start = now() - Duration::hours(24);
    let new = keyed(flow, "key-old", Duration::zero());
    let got = executions.insert_idempotent(&new, &[], window_start).await.expect("new call");
    assert_eq!(got, None, "a key older than the window is taken over by a new execution");
    assert_eq!(executions.get(new.id).await.expect("get"), Some(new.clone()), "the new one holds the key");
    let released = Execution { idempotency_key: None, ..old.clone() };
    assert_eq!(executions.get(old.id).await.expect("get"), Some(released), "the old one gave it up");

    let repeat = keyed(flow, "key-old", Duration::zero());
    let got = executions.insert_idempotent(&repeat, &[], window_start).await.expect("repeat");
    assert_eq!(got, Some(new.clone()), "repeats now return the new holder");

    let mut finished = old.clone();
    finished.status = ExecutionStatus::Failed;
    finished.error = Some("given up".into());
    executions.save(&finished, &[]).await.expect("the old execution can still be saved");
    let stored = executions.get(old.id).await.expect("get").expect("stored");
    assert_eq!(stored.idempotency_key, None, "saving does not take the key back");
    assert_eq!(stored.error.as_deref(), Some("given up"), "saved");
    let got = executions.insert_idempotent(&repeat, &[], window_start).await.expect("repeat");
    assert_eq!(got, Some(new), "the new execution still holds the key");
}

/// Keys are per flow: the same key on another flow is independent.
pub async fn insert_idempotent_keys_are_per_flow(executions: Arc<dyn ExecutionRepository>) {
    let window_start = now() - Duration::hours(24);
    let a = keyed(FlowId::new(), "shared-key", Duration::zero());
    let b = keyed(FlowId::new(), "shared-key", Duration::zero());
    assert_eq!(executions.insert_idempotent(&a, &[], window_start).await.expect("a"), None, "a inserted");
    assert_eq!(executions.insert_idempotent(&b, &[], window_start).await.expect("b"), None, "b inserted");
    assert_eq!(executions.get(b.id).await.expect("get"), Some(b), "another flow's key is independent");
}

/// Of two concurrent calls with one key, exactly one inserts and the other gets its
/// execution; one event is appended.
pub async fn insert_idempotent_concurrent_calls(
    executions: Arc<dyn ExecutionRepository>,
    outbox: Arc<dyn Outbox>,
) {
    let flow = FlowId::new();
    let window_start = now() - Duration::hours(24);
    let (x, y) = (keyed(flow, "race", Duration::zero()), keyed(flow, "race", Duration::zero()));
    let (ex, ey) = (vec![execute_event(&x)], vec![execute_event(&y)]);
    drain(outbox.as_ref()).await;
    let (rx, ry) = tokio::join!(
        executions.insert_idempotent(&x, &ex, window_start),
        executions.insert_idempotent(&y, &ey, window_start)
    );
    let (rx, ry) = (rx.expect("call x"), ry.expect("call y"));
    let (winner, loser, winner_events, answer) = match (rx, ry) {
        (None, Some(answer)) => (&x, &y, &ex, answer),
        (Some(answer), None) => (&y, &x, &ey, answer),
        other => panic!("exactly one of two concurrent calls inserts, got {other:?}"),
    };
    assert_eq!(&answer, winner, "the other call gets the inserted execution");
    assert_eq!(executions.get(winner.id).await.expect("get"), Some(winner.clone()), "winner stored");
    assert_eq!(executions.get(loser.id).await.expect("get"), None, "loser not stored");
    assert_eq!(&events_of(&drain(outbox.as_ref()).await), winner_events, "only the winner's events");
}
